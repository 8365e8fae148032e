// MODEL.md §7 end to end on an abstract autonomous map.
// Letters: p points, n latent dimension.
#include "core/analysis/analysis.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "core/analysis/structure.h"

namespace jslds::analysis {
namespace {

/// MODEL §7.2: fixed points farther than this many times the starting states' mean distance
/// to their centroid are dropped.
constexpr double kOutlierScale = 10.0;
/// MODEL §7.5: a mode is slow when r exceeds this.
constexpr double kSlowModeRadius = 0.99;
/// MODEL §7.5: a theta pair must have r above this.
constexpr double kThetaModeRadius = 0.9;
/// The Newton refinement's tolerance as a fraction of fp_tol (docs/analysis.md).
constexpr double kNewtonTolFactor = 1e-4;

void check_points(const at::Tensor& t, const char* name, int64_t n) {
  if (!t.defined() || t.dim() != 2 || !t.is_floating_point())
    throw std::invalid_argument(fmt::format(
        "analysis input {}: expected a 2-D floating tensor (points, latent_dim), got {}", name,
        t.defined() ? fmt::format("({}) {}", fmt::join(t.sizes(), ", "),
                                  std::string(t.dtype().name()))
                    : std::string("an undefined tensor")));
  if (t.size(1) != n)
    throw std::invalid_argument(fmt::format(
        "analysis input {}: latent dimension {} does not match the other point set's {}", name,
        t.size(1), n));
  if (!torch::isfinite(t).all().item<bool>())
    throw std::invalid_argument(fmt::format("analysis input {}: contains NaN or Inf", name));
}

std::vector<double> to_vector(const at::Tensor& t) {
  at::Tensor c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

std::vector<std::complex<double>> to_complex_vector(const at::Tensor& t) {
  at::Tensor c = t.detach().to(torch::kCPU, torch::kComplexDouble).contiguous();
  const auto* data = c.data_ptr<c10::complex<double>>();
  std::vector<std::complex<double>> out(static_cast<size_t>(c.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = {data[i].real(), data[i].imag()};
  return out;
}

/// Fills eigenvalues, eigenvectors, modes and classes of `points` from their Jacobians.
void describe_points(std::vector<PointAnalysis>& points, const Spectrum& spectrum,
                     int64_t offset, double bin_s) {
  const int64_t n = spectrum.eigenvalues_pn.size(1);
  const int64_t k = std::min(n, kTopEigenvectors);
  for (size_t i = 0; i < points.size(); ++i) {
    const int64_t row = offset + static_cast<int64_t>(i);
    PointAnalysis& pt = points[i];
    pt.eigenvalues = to_complex_vector(spectrum.eigenvalues_pn[row]);
    at::Tensor vectors_nn = spectrum.eigenvectors_pnn[row];
    pt.top_eigenvectors.clear();
    for (int64_t j = 0; j < k; ++j)
      pt.top_eigenvectors.push_back(to_complex_vector(vectors_nn.select(1, j)));
    pt.max_abs_eig = pt.eigenvalues.empty() ? 0.0 : std::abs(pt.eigenvalues.front());
    pt.stability = classify(pt.max_abs_eig);
    pt.n_unstable = 0;
    for (const auto& lambda : pt.eigenvalues)
      if (std::abs(lambda) > 1.0 + kMarginalBand) ++pt.n_unstable;
    pt.modes = modes_from_eigenvalues(pt.eigenvalues, bin_s);
  }
}

std::vector<PointAnalysis> make_points(const at::Tensor& x_pn, const at::Tensor& q_p,
                                       PointSource source) {
  std::vector<PointAnalysis> points(static_cast<size_t>(x_pn.size(0)));
  std::vector<double> q = to_vector(q_p);
  for (size_t i = 0; i < points.size(); ++i) {
    points[i].source = source;
    points[i].coords = to_vector(x_pn[static_cast<int64_t>(i)]);
    points[i].q = q[i];
  }
  return points;
}

at::Tensor coords_tensor(const std::vector<PointAnalysis>& points, int64_t n) {
  at::Tensor x = torch::zeros({static_cast<int64_t>(points.size()), n}, torch::kFloat64);
  for (size_t i = 0; i < points.size(); ++i)
    x[static_cast<int64_t>(i)].copy_(torch::tensor(points[i].coords, torch::kFloat64));
  return x;
}

void summarise(AnalysisResult& r, const AnalysisOptions& options) {
  auto& s = r.summary;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  int64_t n_stable = 0, n_marginal = 0, n_saddle = 0;
  std::vector<PointAnalysis> attracting;  // stable or marginal fixed points
  double radius = nan;
  for (const auto& fp : r.fixed_points) {
    if (fp.stability == Stability::kStable) ++n_stable;
    if (fp.stability == Stability::kMarginal) ++n_marginal;
    if (fp.n_unstable == 1) ++n_saddle;
    if (fp.stability != Stability::kUnstable) attracting.push_back(fp);
    radius = std::isnan(radius) ? fp.max_abs_eig : std::max(radius, fp.max_abs_eig);
  }
  if (r.fixed_points.empty())
    for (const auto& ep : r.expansion_points)
      radius = std::isnan(radius) ? ep.max_abs_eig : std::max(radius, ep.max_abs_eig);
  s["n_fixed_points"] = static_cast<double>(r.fixed_points.size());
  s["n_stable"] = static_cast<double>(n_stable);
  s["n_marginal"] = static_cast<double>(n_marginal);
  s["n_saddle"] = static_cast<double>(n_saddle);
  s["spectral_radius"] = radius;

  std::vector<double> slow_counts, dominant_freqs;
  int64_t with_theta = 0;
  const double theta_low = options.theta_band_hz.at(0), theta_high = options.theta_band_hz.at(1);
  for (const auto& ep : r.expansion_points) {
    int64_t slow = 0;
    bool dominant_found = false, theta = false;
    for (const auto& m : ep.modes) {  // by decreasing r
      if (m.abs > kSlowModeRadius) ++slow;
      if (m.kind != ModeKind::kOscillation) continue;
      if (!dominant_found) {
        dominant_freqs.push_back(m.freq_hz);
        dominant_found = true;
      }
      if (m.abs > kThetaModeRadius && m.freq_hz >= theta_low && m.freq_hz <= theta_high)
        theta = true;
    }
    slow_counts.push_back(static_cast<double>(slow));
    if (theta) ++with_theta;
  }
  const auto n_exp = static_cast<int64_t>(r.expansion_points.size());
  s["n_slow_modes"] = slow_counts.empty() ? nan : median(slow_counts);
  s["dominant_freq_hz"] = median(dominant_freqs);
  s["theta_mode"] = (n_exp > 0 && 2 * with_theta >= n_exp) ? 1.0 : 0.0;
  s["n_stable_clusters"] =
      static_cast<double>(count_clusters(coords_tensor(attracting, r.latent_dim), r.cluster_tol));
  s["ring_score"] = r.fixed_points.size() >= 3
                        ? ring_score(coords_tensor(r.fixed_points, r.latent_dim))
                        : ring_score(coords_tensor(r.expansion_points, r.latent_dim));
}

}  // namespace

void AnalysisInput::set_map(const AutonomousMap& map) {
  step = map.step;
  jacobian = map.jacobian;
  residual_gradient = map.residual_gradient;
}

std::string_view source_name(PointSource s) {
  return s == PointSource::kExpansion ? "expansion" : "numerical";
}

AnalysisResult run_analysis(const AnalysisInput& input, const AnalysisOptions& options,
                            uint64_t seed, const AnalysisProgressFn& progress,
                            const FixedPointSearchOptions* search) {
  if (!input.step) throw std::invalid_argument("analysis input: no step function F(x) given");
  if (!(input.bin_ms > 0.0))
    throw std::invalid_argument(
        fmt::format("analysis input: bin width must be > 0 ms, got {}", input.bin_ms));
  if (!input.states_pn.defined() || input.states_pn.dim() != 2)
    throw std::invalid_argument(
        "analysis input states: expected a 2-D tensor (points, latent_dim) of generator states");
  const int64_t n = input.states_pn.size(1);
  check_points(input.states_pn, "states", n);
  check_points(input.expansion_points_pn, "expansion points", n);
  if (input.states_pn.size(0) == 0 && options.n_inits > 0)
    throw std::invalid_argument(
        "analysis input states: no generator states to start the fixed-point search from");
  if (options.theta_band_hz.size() != 2)
    throw std::invalid_argument("analysis options: theta_band_hz must be [low, high]");
  auto say = [&](const std::string& stage, const std::string& detail) {
    if (progress) progress(stage, detail);
  };
  torch::NoGradGuard no_grad;

  AnalysisResult r;
  r.latent_dim = n;
  r.bin_ms = input.bin_ms;
  r.unique_tol = options.unique_tol > 0.0 ? options.unique_tol
                                          : 1e-2 * std::sqrt(static_cast<double>(n));
  r.cluster_tol = options.cluster_tol > 0.0 ? options.cluster_tol : r.unique_tol;
  r.n_expansion_candidates = input.expansion_points_pn.size(0);
  const at::TensorOptions state_options = input.states_pn.options();

  // 1. Expansion points.
  at::Tensor exp_idx =
      select_expansion_points(input.expansion_points_pn, r.unique_tol, options.max_points);
  at::Tensor exp_pn = input.expansion_points_pn.detach()
                          .index_select(0, exp_idx.to(input.expansion_points_pn.device()))
                          .to(state_options);
  say("expansion points", fmt::format("{} of {} collected points kept (merge distance {:.3g}, at "
                                      "most {})",
                                      exp_pn.size(0), r.n_expansion_candidates, r.unique_tol,
                                      options.max_points));

  // 2. Numerical fixed points from noisy samples of the states.
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor states = input.states_pn.detach().to(torch::kCPU);
  at::Tensor pick = torch::randint(states.size(0), {options.n_inits}, gen);
  at::Tensor x0_pn = (states.index_select(0, pick) +
                      options.init_noise *
                          torch::randn({options.n_inits, n}, gen, states.options()))
                         .to(state_options);
  FixedPointSearchOptions search_options =
      search ? *search : FixedPointSearchOptions::from_config(options);
  ResidualGradientFn residual_gradient =
      input.residual_gradient ? input.residual_gradient : autograd_residual_gradient(input.step);
  const auto t0 = std::chrono::steady_clock::now();
  FixedPointSearchResult found = search_fixed_points(
      residual_gradient, x0_pn, search_options,
      [&](int64_t it, int64_t active, double lr, double q_max) {
        say("fixed points", fmt::format("iteration {}/{}: {} of {} starts above tolerance, lr "
                                        "{:.3g}, largest q {:.3g}",
                                        it, search_options.max_iters, active, options.n_inits,
                                        lr, q_max));
      });
  r.search.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.search.n_inits = options.n_inits;
  r.search.iterations = found.iterations;
  r.search.stop_reason = found.stop_reason;
  r.search.final_lr = found.final_lr;
  at::Tensor conv_idx = found.converged_p.nonzero().squeeze(1);
  r.search.n_converged = conv_idx.numel();
  at::Tensor xc_pn = found.x_pn.index_select(0, conv_idx.to(found.x_pn.device()));
  at::Tensor qc_p = found.q_p.index_select(0, conv_idx);
  // J(x): the closed form when the map has one, else autograd (sum trick).
  const JacobianFn jacobian = input.jacobian ? input.jacobian : [&input](const at::Tensor& x) {
    return autograd_jacobian(input.step, x);
  };
  at::Tensor refined_c = torch::zeros({xc_pn.size(0)}, torch::kBool);
  r.search.newton_on = options.newton_steps > 0;
  if (options.newton_steps > 0 && xc_pn.size(0) > 0) {
    NewtonRefineOptions newton;
    newton.max_steps = options.newton_steps;
    newton.tol = kNewtonTolFactor * search_options.fp_tol;
    NewtonRefineResult polished = refine_fixed_points(input.step, jacobian, xc_pn, newton);
    // Refined points are fixed points to numerical precision; the others are kept where the
    // search left them, as MODEL §7.2 keeps every converged start, and marked as slow points.
    xc_pn = polished.x_pn;
    qc_p = polished.q_p.to(torch::kCPU);
    refined_c = polished.refined_p.to(torch::kCPU);
    r.search.n_refined = refined_c.sum().item<int64_t>();
    r.search.n_slow_points = xc_pn.size(0) - r.search.n_refined;
    r.search.newton_steps = polished.steps;
    r.search.max_refine_distance =
        r.search.n_refined > 0 ? polished.moved_p.max().item<double>() : 0.0;
    say("fixed points",
        fmt::format("Newton refinement: {} of {} converged starts polished to ‖F(x) − x‖²/n < "
                    "{:.3g} in at most {} steps (moved up to {:.3g}); {} starts left as slow points",
                    r.search.n_refined, r.search.n_converged, newton.tol, polished.steps,
                    r.search.max_refine_distance, r.search.n_slow_points));
  }
  at::Tensor unique_idx = merge_duplicates(xc_pn, qc_p, r.unique_tol);
  r.search.n_unique = unique_idx.numel();
  at::Tensor xu_pn = xc_pn.index_select(0, unique_idx.to(xc_pn.device()));
  at::Tensor qu_p = qc_p.index_select(0, unique_idx);
  at::Tensor refined_u = refined_c.index_select(0, unique_idx);
  at::Tensor inliers = inlier_indices(xu_pn, x0_pn, kOutlierScale);
  r.search.n_outliers = r.search.n_unique - inliers.numel();
  at::Tensor fp_pn = xu_pn.index_select(0, inliers.to(xu_pn.device()));
  at::Tensor fq_p = qu_p.index_select(0, inliers);
  at::Tensor f_refined = refined_u.index_select(0, inliers);
  say("fixed points",
      fmt::format("{} fixed points ({} of {} starts converged in {} iterations, {}; {} after "
                  "merging, {} outliers dropped) in {:.1f} s",
                  fp_pn.size(0), r.search.n_converged, options.n_inits, found.iterations,
                  found.stop_reason, r.search.n_unique, r.search.n_outliers, r.search.seconds));

  // 3–4. Jacobians, spectra, classes and modes of both point sets in one batch.
  at::Tensor exp_q_p = 0.5 * (input.step(exp_pn) - exp_pn).to(torch::kFloat64).square().sum(1);
  r.expansion_points = make_points(exp_pn, exp_q_p, PointSource::kExpansion);
  r.fixed_points = make_points(fp_pn, fq_p, PointSource::kNumerical);
  for (size_t i = 0; i < r.fixed_points.size(); ++i)
    r.fixed_points[i].refined = f_refined[static_cast<int64_t>(i)].item<bool>();
  at::Tensor all_pn = torch::cat({exp_pn, fp_pn});
  at::Tensor jac_pnn = jacobian(all_pn);
  if (jac_pnn.sizes() != at::IntArrayRef({all_pn.size(0), n, n}))
    throw std::invalid_argument(fmt::format(
        "analysis input jacobian: returned shape ({}) for {} points; expected ({}, {}, {})",
        fmt::join(jac_pnn.sizes(), ", "), all_pn.size(0), all_pn.size(0), n, n));
  Spectrum spectrum = sorted_spectrum(jac_pnn);
  const double bin_s = input.bin_ms * 1e-3;
  describe_points(r.expansion_points, spectrum, 0, bin_s);
  describe_points(r.fixed_points, spectrum, exp_pn.size(0), bin_s);

  // 5. Structure summaries.
  summarise(r, options);
  return r;
}

}  // namespace jslds::analysis
