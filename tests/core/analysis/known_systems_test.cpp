// run_analysis on systems whose fixed points and eigenmodes are known in closed form
// (issue 5 "Tests"; MODEL.md §7).
// Letters: p points, n latent dimension.
#include "core/analysis/analysis.h"

#include <cmath>
#include <numbers>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/analysis/structure.h"

namespace jslds::analysis {
namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

/// Lean options for tests: fewer starts than the default 1024 (the systems are small).
AnalysisOptions test_options(int64_t n_inits = 128) {
  AnalysisOptions o;
  o.n_inits = n_inits;
  return o;
}

/// x ↦ x Aᵀ, a linear autonomous map.
AnalysisInput linear_input(const torch::Tensor& a, double bin_ms, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t n = a.size(0);
  AnalysisInput in;
  in.step = [a](const torch::Tensor& x) { return x.mm(a.t()); };
  in.expansion_points_pn = torch::randn({40, n}, kF64);
  in.states_pn = torch::randn({200, n}, kF64);
  in.bin_ms = bin_ms;
  return in;
}

TEST(KnownSystems, RotationByTwoPiFDtGivesFrequencyFAndTimeConstant) {
  const double f = 8.0, bin_ms = 20.0, dt = bin_ms * 1e-3, radius = 0.95;
  const double theta = 2.0 * std::numbers::pi * f * dt;
  torch::Tensor a = radius * torch::tensor({std::cos(theta), -std::sin(theta),
                                            std::sin(theta), std::cos(theta)}, kF64).view({2, 2});
  AnalysisResult r = run_analysis(linear_input(a, bin_ms, 1), test_options(), /*seed=*/1);

  ASSERT_EQ(r.fixed_points.size(), 1u);
  const PointAnalysis& fp = r.fixed_points[0];
  EXPECT_LT(std::hypot(fp.coords[0], fp.coords[1]), 1e-3);
  EXPECT_EQ(fp.stability, Stability::kStable);
  ASSERT_EQ(fp.modes.size(), 1u);  // one conjugate pair, reported once
  const Mode& m = fp.modes[0];
  EXPECT_EQ(m.kind, ModeKind::kOscillation);
  EXPECT_NEAR(m.freq_hz, f, 1e-6);
  EXPECT_NEAR(m.abs, radius, 1e-12);
  EXPECT_NEAR(m.tau_s, -dt / std::log(radius), 1e-12);
  EXPECT_GT(m.eigenvalue.imag(), 0.0);
  for (const auto& ep : r.expansion_points) EXPECT_NEAR(ep.modes.at(0).freq_hz, f, 1e-6);
  EXPECT_NEAR(r.summary.at("dominant_freq_hz"), f, 1e-6);
  EXPECT_EQ(r.summary.at("theta_mode"), 1.0);      // 8 Hz ∈ [6, 10] with r = 0.95 > 0.9
  EXPECT_EQ(r.summary.at("n_slow_modes"), 0.0);    // r = 0.95 < 0.99
  EXPECT_NEAR(r.summary.at("spectral_radius"), radius, 1e-12);
}

TEST(KnownSystems, RealNegativeEigenvalueIsAPeriodTwoFlipNotAnOscillation) {
  torch::Tensor a = torch::tensor({-0.9, 0.0, 0.0, 0.3}, kF64).view({2, 2});
  AnalysisResult r = run_analysis(linear_input(a, 10.0, 2), test_options(), /*seed=*/2);
  ASSERT_EQ(r.fixed_points.size(), 1u);
  const auto& modes = r.fixed_points[0].modes;
  ASSERT_EQ(modes.size(), 2u);
  EXPECT_EQ(modes[0].kind, ModeKind::kFlip);
  EXPECT_DOUBLE_EQ(modes[0].eigenvalue.real(), -0.9);
  EXPECT_EQ(modes[0].freq_hz, 0.0);
  EXPECT_NEAR(modes[0].tau_s, -0.01 / std::log(0.9), 1e-12);
  EXPECT_EQ(modes[1].kind, ModeKind::kReal);
  EXPECT_TRUE(std::isnan(r.summary.at("dominant_freq_hz")));  // no oscillatory pair anywhere
  EXPECT_EQ(r.summary.at("theta_mode"), 0.0);
}

TEST(KnownSystems, TanhNetworkWithHalfIdentityHasOneStableFixedPointAtTheOrigin) {
  const int64_t n = 6;
  AnalysisInput in;
  in.set_map(tanh_map({0.5 * torch::eye(n, kF64), torch::zeros({n}, kF64)}));
  torch::manual_seed(3);
  in.expansion_points_pn = torch::randn({30, n}, kF64);
  in.states_pn = torch::randn({100, n}, kF64);
  in.bin_ms = 20.0;
  AnalysisResult r = run_analysis(in, test_options(), /*seed=*/3);
  ASSERT_EQ(r.fixed_points.size(), 1u);
  EXPECT_EQ(r.search.stop_reason, "all_converged");
  EXPECT_LT(torch::tensor(r.fixed_points[0].coords).abs().max().item<double>(), 1e-3);
  EXPECT_EQ(r.fixed_points[0].stability, Stability::kStable);
  EXPECT_NEAR(r.fixed_points[0].max_abs_eig, 0.5, 1e-6);
  EXPECT_EQ(r.summary.at("n_fixed_points"), 1.0);
  EXPECT_EQ(r.summary.at("n_stable"), 1.0);
  EXPECT_EQ(r.summary.at("n_saddle"), 0.0);
  EXPECT_EQ(r.summary.at("n_stable_clusters"), 1.0);
}

TEST(KnownSystems, BistableNetworkHasTwoStableFixedPointsAndOneSaddle) {
  // F(x) = tanh(diag(2, 0.5) x): stable points (±x*, 0) with x* = tanh(2x*) ≈ 0.9575 and a
  // saddle at the origin with eigenvalues 2 and 0.5.
  AnalysisInput in;
  in.set_map(tanh_map({torch::diag(torch::tensor({2.0, 0.5}, kF64)), torch::zeros({2}, kF64)}));
  torch::Tensor line = torch::linspace(-1.2, 1.2, 121, kF64);
  in.states_pn = torch::stack({line, torch::zeros_like(line)}, 1);
  in.expansion_points_pn = in.states_pn.clone();
  in.bin_ms = 20.0;
  AnalysisOptions o = test_options(256);
  o.init_noise = 0.05;
  AnalysisResult r = run_analysis(in, o, /*seed=*/4);

  EXPECT_EQ(r.summary.at("n_fixed_points"), 3.0);
  EXPECT_EQ(r.summary.at("n_stable"), 2.0);
  EXPECT_EQ(r.summary.at("n_saddle"), 1.0);
  EXPECT_EQ(r.summary.at("n_stable_clusters"), 2.0);
  int saddles = 0;
  for (const auto& fp : r.fixed_points) {
    if (fp.stability == Stability::kUnstable) {
      ++saddles;
      EXPECT_EQ(fp.n_unstable, 1);
      EXPECT_NEAR(fp.max_abs_eig, 2.0, 1e-4);
      EXPECT_LT(std::hypot(fp.coords[0], fp.coords[1]), 1e-3);
    } else {
      EXPECT_NEAR(std::abs(fp.coords[0]), 0.957504, 1e-4);
      EXPECT_EQ(fp.stability, Stability::kStable);
    }
  }
  EXPECT_EQ(saddles, 1);
  // Every converged start was polished into one of the three (docs/analysis.md, Newton).
  EXPECT_TRUE(r.search.newton_on);
  EXPECT_GT(r.search.newton_steps, 0);
  EXPECT_EQ(r.search.n_refined, r.search.n_converged);
  EXPECT_EQ(r.search.n_slow_points, 0);
  for (const auto& fp : r.fixed_points) {
    EXPECT_TRUE(fp.refined);
    if (fp.stability == Stability::kStable) {
      EXPECT_NEAR(std::abs(fp.coords[0]), 0.95750402, 1e-7);  // x* = tanh(2x*) to 8 digits
    }
    EXPECT_LT(std::abs(fp.coords[1]), 1e-7);
  }
}

TEST(KnownSystems, GhostOfASaddleNodeIsASlowPointNotAFixedPoint) {
  // F(x) = x + 1e-4 (1 + x²) just past a saddle-node bifurcation: no fixed point, but a
  // bottleneck at x = 0 where ‖F(x) − x‖² = 1e-8 < fp_tol. The search stops there; the
  // refinement cannot reach a root and marks it as a slow point.
  AnalysisInput in;
  in.step = [](const torch::Tensor& x) { return x + 1e-4 * (1 + x.square()); };
  in.states_pn = torch::linspace(-0.05, 0.05, 21, kF64).unsqueeze(1);
  in.expansion_points_pn = in.states_pn.clone();
  in.bin_ms = 10.0;
  AnalysisOptions o = test_options(32);
  o.init_noise = 0.01;
  AnalysisResult r = run_analysis(in, o, /*seed=*/8);
  EXPECT_EQ(r.search.n_converged, 32);
  EXPECT_EQ(r.search.n_refined, 0);
  EXPECT_EQ(r.search.n_slow_points, 32);
  ASSERT_GE(r.fixed_points.size(), 1u);  // kept, as MODEL §7.2 keeps it, but marked
  for (const auto& fp : r.fixed_points) EXPECT_FALSE(fp.refined);

  o.newton_steps = 0;  // MODEL §7.2's search alone: the same points, nothing marked refined
  AnalysisResult kept = run_analysis(in, o, /*seed=*/8);
  EXPECT_FALSE(kept.search.newton_on);
  EXPECT_EQ(kept.search.n_slow_points, 0);
  ASSERT_EQ(kept.fixed_points.size(), r.fixed_points.size());
  EXPECT_LT(std::abs(kept.fixed_points[0].coords[0]), 0.05);
}

TEST(KnownSystems, ContinuousRingAttractorScoresHigh) {
  // F(x) = x + k·x·(1 − ‖x‖): every point of the unit circle is a fixed point (radial
  // eigenvalue 1 − k, tangential 1: marginal), the origin is unstable.
  const double k = 0.5;
  AnalysisInput in;
  in.step = [k](const torch::Tensor& x) {
    return x + k * x * (1 - x.norm(2, {1}, /*keepdim=*/true));
  };
  torch::manual_seed(5);
  torch::Tensor angle = 2 * std::numbers::pi * torch::rand({400}, kF64);
  torch::Tensor radius = 1 + 0.2 * torch::randn({400}, kF64);
  in.states_pn = torch::stack({radius * torch::cos(angle), radius * torch::sin(angle)}, 1);
  // Expansion points on the ring itself, where the tangential eigenvalue is exactly 1.
  in.expansion_points_pn = torch::stack({torch::cos(angle), torch::sin(angle)}, 1);
  in.bin_ms = 20.0;
  AnalysisResult r = run_analysis(in, test_options(256), /*seed=*/5);
  ASSERT_GE(r.fixed_points.size(), 30u);
  int on_ring = 0;
  for (const auto& fp : r.fixed_points) {
    const double radius_fp = std::hypot(fp.coords[0], fp.coords[1]);
    if (radius_fp < 1e-3) {  // the origin, reached by a start close to it: unstable (1 + k)
      EXPECT_EQ(fp.stability, Stability::kUnstable);
      EXPECT_NEAR(fp.max_abs_eig, 1 + k, 1e-3);
      continue;
    }
    ++on_ring;
    EXPECT_NEAR(radius_fp, 1.0, 1e-3);
    EXPECT_EQ(fp.stability, Stability::kMarginal);
    EXPECT_NEAR(fp.eigenvalues[1].real(), 1 - k, 1e-3);  // radial contraction
  }
  EXPECT_GE(on_ring, static_cast<int>(r.fixed_points.size()) - 1);
  EXPECT_GE(r.summary.at("ring_score"), 0.8);
  EXPECT_EQ(r.summary.at("n_slow_modes"), 1.0);  // the tangential mode, |λ| = 1
}

TEST(KnownSystems, AutogradAndClosedFormGruGiveTheSameAnalysis) {
  // A GRU with gain 2.5 has several fixed points; the generic path (autograd through the step
  // for both the search gradient and the Jacobians) must find the same ones.
  torch::manual_seed(9);
  const int64_t n = 6;
  const double gain = 2.5 / std::sqrt(6.0);
  GruWeights w{torch::randn({n, n}, kF64) * gain, torch::randn({n, n}, kF64) * gain,
               torch::randn({n, n}, kF64) * gain, torch::zeros({n}, kF64),
               torch::zeros({n}, kF64), torch::zeros({n}, kF64)};
  AnalysisInput closed;
  closed.set_map(gru_map(w));
  closed.states_pn = torch::randn({100, n}, kF64);
  closed.expansion_points_pn = torch::randn({20, n}, kF64);
  closed.bin_ms = 10.0;
  AnalysisInput generic = closed;
  generic.jacobian = {};
  generic.residual_gradient = {};
  AnalysisResult a = run_analysis(closed, test_options(64), /*seed=*/9);
  AnalysisResult b = run_analysis(generic, test_options(64), /*seed=*/9);
  ASSERT_GE(a.fixed_points.size(), 1u);
  ASSERT_EQ(a.fixed_points.size(), b.fixed_points.size());
  for (size_t i = 0; i < a.fixed_points.size(); ++i) {
    for (int64_t j = 0; j < n; ++j)
      EXPECT_NEAR(a.fixed_points[i].coords[j], b.fixed_points[i].coords[j], 1e-6);
    EXPECT_NEAR(a.fixed_points[i].max_abs_eig, b.fixed_points[i].max_abs_eig, 1e-6);
  }
  for (const auto& [name, value] : a.summary) {
    if (!std::isnan(value)) {
      EXPECT_NEAR(value, b.summary.at(name), 1e-6) << name;
    }
  }
}

TEST(Modes, TimeConstantSignAndLimits) {
  EXPECT_TRUE(std::isinf(describe_mode({1.0, 0.0}, 0.02).tau_s));
  EXPECT_LT(describe_mode({1.1, 0.0}, 0.02).tau_s, 0.0);                  // growth
  EXPECT_NEAR(describe_mode({0.0, 0.5}, 0.02).freq_hz, 12.5, 1e-12);      // ω = π/2: a quarter turn per bin
  EXPECT_NEAR(describe_mode({-1.0, 1e-300}, 0.02).freq_hz, 25.0, 1e-9);   // ω → π: the Nyquist frequency
  EXPECT_EQ(describe_mode({0.0, 0.0}, 0.02).tau_s, 0.0);                  // r = 0: gone after one bin
  EXPECT_THROW(describe_mode({0.5, 0.0}, 0.0), std::invalid_argument);
  EXPECT_EQ(classify(0.98), Stability::kStable);
  EXPECT_EQ(classify(0.995), Stability::kMarginal);
  EXPECT_EQ(classify(1.0101), Stability::kUnstable);
}

TEST(RingScore, AFewScatteredPointsScoreLow) {
  torch::manual_seed(6);
  EXPECT_LT(ring_score(torch::randn({12, 16}, kF64)), 0.3);
}

TEST(RingScore, DenseIsotropicCloudScoresTheRayleighValue) {
  // Coverage → 1 and the radius of a 2-D Gaussian is Rayleigh with CV = √(4/π − 1).
  torch::manual_seed(7);
  const double expected = 1.0 - std::sqrt(4.0 / std::numbers::pi - 1.0);
  EXPECT_NEAR(ring_score(torch::randn({20000, 2}, kF64)), expected, 0.02);
}

TEST(RingScore, PerfectRingScoresOneAndHalfRingScoresHalf) {
  torch::Tensor angle = torch::linspace(0, 2 * std::numbers::pi, 361, kF64).narrow(0, 0, 360);
  torch::Tensor ring = torch::stack({torch::cos(angle), torch::sin(angle), torch::zeros_like(angle)}, 1);
  EXPECT_NEAR(ring_score(3.0 * ring + 1.0), 1.0, 1e-9);
  // Only the bins a half circle occupies count (its projection is centred on the arc's mean).
  torch::Tensor half = ring.narrow(0, 0, 180);
  EXPECT_LT(ring_score(half), 0.7);
}

TEST(Clusters, ConnectedComponentsAtTheLinkageDistance) {
  torch::Tensor pts = torch::tensor({0.0, 0.05, 0.10, 1.0, 1.04, 3.0}, kF64).view({6, 1});
  EXPECT_EQ(count_clusters(pts, 0.06), 3);
  EXPECT_EQ(count_clusters(pts, 0.01), 6);
  EXPECT_EQ(count_clusters(pts, 10.0), 1);
  EXPECT_EQ(count_clusters(torch::zeros({0, 2}, kF64), 1.0), 0);
}

TEST(Median, OddEvenAndEmpty) {
  EXPECT_EQ(median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_EQ(median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_TRUE(std::isnan(median({})));
}

TEST(RunAnalysis, RejectsInputsWithClearMessages) {
  AnalysisInput in = linear_input(torch::eye(2, kF64) * 0.5, 20.0, 8);
  in.expansion_points_pn = torch::zeros({3, 4}, kF64);
  try {
    run_analysis(in, test_options(), 0);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("latent dimension 4 does not match"), std::string::npos)
        << e.what();
  }
  in = linear_input(torch::eye(2, kF64) * 0.5, 0.0, 8);
  EXPECT_THROW(run_analysis(in, test_options(), 0), std::invalid_argument);
}

}  // namespace
}  // namespace jslds::analysis
