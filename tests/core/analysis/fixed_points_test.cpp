// Fixed-point search and point-set reductions (core/analysis/fixed_points.h).
// Letters: p points, n latent dimension.
#include "core/analysis/fixed_points.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/analysis/generator_maps.h"

namespace jslds::analysis {
namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// The hand-written Adam of the search takes exactly torch::optim::Adam's steps: the tensor
// ops in float64, the fused CPU loop (core/analysis/cpu_kernels.h) in float32, to rounding.
void expect_adam_matches_torch(Reduction reduction, torch::Dtype dtype = torch::kFloat64) {
  torch::manual_seed(10);
  const int64_t p = 6, n = 3, steps = 40;
  const auto options = torch::TensorOptions().dtype(dtype);
  torch::Tensor a = torch::randn({n, n}, options) * 0.6;
  StepFn step = [a](const torch::Tensor& x) { return x.mm(a.t()); };
  torch::Tensor x0 = torch::randn({p, n}, options);

  FixedPointSearchOptions o;
  o.max_iters = steps;
  o.lr = 0.05;
  o.fp_tol = 1e-300;          // never converges: every iteration takes a step
  o.plateau_factor = 1.0;     // constant learning rate, as in the torch loop below
  o.freeze_converged = false;
  o.reduction = reduction;
  FixedPointSearchResult found = search_fixed_points(autograd_residual_gradient(step), x0, o);
  ASSERT_EQ(found.iterations, steps);

  torch::Tensor x = x0.clone().requires_grad_(true);
  torch::optim::Adam adam({x}, torch::optim::AdamOptions(o.lr).eps(o.adam_eps).betas(
                                   {o.adam_beta1, o.adam_beta2}));
  for (int64_t i = 0; i < steps; ++i) {
    adam.zero_grad();
    torch::Tensor q = 0.5 * (step(x) - x).square().sum(1);
    (reduction == Reduction::kSum ? q.sum() : q.mean()).backward();
    adam.step();
  }
  EXPECT_LT(((found.x_pn - x.detach()).abs().max()).item<double>(),
            dtype == torch::kFloat64 ? 1e-12 : 1e-5);
  EXPECT_GT(((found.x_pn - x0).abs().max()).item<double>(), 1e-3);  // it did move
}

TEST(FixedPointSearch, AdamStepsEqualTorchOptimAdamWithSum) { expect_adam_matches_torch(Reduction::kSum); }
TEST(FixedPointSearch, AdamStepsEqualTorchOptimAdamWithMean) { expect_adam_matches_torch(Reduction::kMean); }
TEST(FixedPointSearch, FusedFloat32AdamStepsEqualTorchOptimAdam) {
  expect_adam_matches_torch(Reduction::kSum, torch::kFloat32);
  expect_adam_matches_torch(Reduction::kMean, torch::kFloat32);
}

TEST(FixedPointSearch, ContractingGruConvergesToTheOrigin) {
  torch::manual_seed(11);
  const int64_t n = 16;
  const double gain = 0.9 / std::sqrt(16.0);
  AutonomousMap map = gru_map({torch::randn({n, n}, kF64) * gain, torch::randn({n, n}, kF64) * gain,
                               torch::randn({n, n}, kF64) * gain, torch::zeros({n}, kF64),
                               torch::full({n}, 0.5, kF64), torch::zeros({n}, kF64)});
  torch::Tensor x0 = 0.5 * torch::randn({64, n}, kF64);
  for (bool freeze : {false, true}) {
    SCOPED_TRACE(freeze ? "freeze_converged" : "every point every iteration (default)");
    FixedPointSearchOptions o;
    o.fp_tol = 1e-12;
    o.freeze_converged = freeze;
    FixedPointSearchResult found = search_fixed_points(map.residual_gradient, x0, o);
    EXPECT_EQ(found.stop_reason, "all_converged");
    EXPECT_TRUE(found.converged_p.all().item<bool>());
    EXPECT_LT(found.x_pn.abs().max().item<double>(), 1e-4);
    EXPECT_LT(found.q_p.max().item<double>(), 0.5 * n * 1e-12);
    if (freeze) {
      // Freezing converged points saved work: fewer point-iterations than iterations × points.
      EXPECT_LT(found.point_iterations, found.iterations * 64);
    } else {
      EXPECT_EQ(found.point_iterations, found.iterations * 64);
    }
  }
}

TEST(FixedPointSearch, ProgressIsReportedAndStopsAtMaxIters) {
  StepFn grow = [](const torch::Tensor& x) { return 1.5 * x + 1.0; };  // fixed point x = −2
  torch::Tensor x0 = torch::zeros({4, 2}, kF64);
  FixedPointSearchOptions o;
  o.max_iters = 30;
  o.fp_tol = 1e-300;
  int64_t calls = 0, last_iteration = 0;
  FixedPointSearchResult found = search_fixed_points(
      autograd_residual_gradient(grow), x0, o,
      [&](int64_t it, int64_t active, double, double) {
        ++calls;
        last_iteration = it;
        EXPECT_EQ(active, 4);
      },
      /*progress_every=*/10);
  EXPECT_EQ(found.stop_reason, "max_iters");
  EXPECT_EQ(found.iterations, 30);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(last_iteration, 30);
  EXPECT_FALSE(found.converged_p.any().item<bool>());
}

TEST(FixedPointSearch, RejectsBadStartingStates) {
  StepFn id = [](const torch::Tensor& x) { return x; };
  EXPECT_THROW(search_fixed_points(autograd_residual_gradient(id), torch::zeros({3}, kF64), {}),
               std::invalid_argument);
  torch::Tensor bad = torch::zeros({2, 2}, kF64);
  bad[1][0] = std::nan("");
  EXPECT_THROW(search_fixed_points(autograd_residual_gradient(id), bad, {}), std::invalid_argument);
}

TEST(FixedPointSearch, OptionsFromTheRunConfiguration) {
  AnalysisOptions a;
  a.max_iters = 123;
  a.fp_tol = 1e-9;
  EXPECT_EQ(FixedPointSearchOptions::from_config(a).reduction, Reduction::kMean);  // the default
  EXPECT_EQ(FixedPointSearchOptions::from_config(a).max_iters, 123);
  EXPECT_EQ(FixedPointSearchOptions::from_config(a).fp_tol, 1e-9);
  a.fp_reduction = "sum";
  EXPECT_EQ(FixedPointSearchOptions::from_config(a).reduction, Reduction::kSum);
  a.fp_reduction = "median";
  EXPECT_THROW(FixedPointSearchOptions::from_config(a), std::invalid_argument);
}

// F(x) = tanh(diag(2, 0.5) x): stable fixed points (±x*, 0), x* = tanh(2x*), saddle at 0.
AutonomousMap bistable_map() {
  return tanh_map({torch::diag(torch::tensor({2.0, 0.5}, kF64)), torch::zeros({2}, kF64)});
}

TEST(NewtonRefinement, PolishesApproximateFixedPointsOfEveryClass) {
  // x* solves x = tanh(2x): bisection to machine precision, independent of the method tested.
  double lo = 0.5, hi = 1.0;
  for (int i = 0; i < 200; ++i) ((std::tanh(2 * (lo + hi) / 2) > (lo + hi) / 2) ? lo : hi) = (lo + hi) / 2;
  const double x_star = (lo + hi) / 2;
  AutonomousMap map = bistable_map();
  // Approximate points as an Adam search leaves them: 1e-3 off, near both attractors and the saddle.
  torch::Tensor x0 = torch::tensor({x_star + 1e-3, 2e-3, -x_star - 1e-3, -1e-3, 1e-3, 1e-3}, kF64)
                         .view({3, 2});
  NewtonRefineResult r = refine_fixed_points(map.step, map.jacobian, x0);
  ASSERT_TRUE(r.refined_p.all().item<bool>());
  EXPECT_NEAR(r.x_pn[0][0].item<double>(), x_star, 1e-9);
  EXPECT_NEAR(r.x_pn[1][0].item<double>(), -x_star, 1e-9);
  EXPECT_LT(r.x_pn[2].abs().max().item<double>(), 1e-9);  // the saddle, not an attractor
  EXPECT_LT(r.x_pn.select(1, 1).abs().max().item<double>(), 1e-9);
  EXPECT_LT(r.q_p.max().item<double>(), 0.5 * 2 * 1e-11);
  EXPECT_NEAR(r.moved_p[0].item<double>(), std::hypot(1e-3, 2e-3), 1e-8);
  EXPECT_GE(r.steps, 1);
  EXPECT_LE(r.steps, 10);  // quadratic convergence from 1e-3
}

TEST(NewtonRefinement, LeavesASlowPointWithoutAFixedPointUnchanged) {
  // The ghost of a saddle-node bifurcation: F(x) = x + 1e-4 (1 + x²) has no fixed point, and
  // its slowest point x = 0 (speed 1e-4) is where a search with a loose tolerance stops.
  StepFn ghost = [](const torch::Tensor& x) { return x + 1e-4 * (1 + x.square()); };
  JacobianFn jac = [](const torch::Tensor& x) { return (1 + 2e-4 * x).unsqueeze(2); };
  torch::Tensor x0 = torch::tensor({0.0, 0.01}, kF64).view({2, 1});
  NewtonRefineResult r = refine_fixed_points(ghost, jac, x0);
  EXPECT_FALSE(r.refined_p.any().item<bool>());
  EXPECT_TRUE(torch::equal(r.x_pn, x0));
  EXPECT_NEAR(r.q_p[0].item<double>(), 0.5 * 1e-8, 1e-20);  // q at the given point
  EXPECT_EQ(r.moved_p.abs().max().item<double>(), 0.0);
  EXPECT_EQ(r.steps, NewtonRefineOptions{}.max_steps);  // it kept trying
}

TEST(NewtonRefinement, MovesOntoAContinuousAttractorWithoutSlidingAlongIt) {
  // F(x) = x + k·x·(1 − ‖x‖): the unit circle is fixed, J − I is singular along it. The
  // damped step is radial: a point off the ring lands on it at its own angle.
  const double k = 0.5;
  StepFn ring = [k](const torch::Tensor& x) {
    return x + k * x * (1 - x.norm(2, {1}, /*keepdim=*/true));
  };
  JacobianFn jac = [ring](const torch::Tensor& x) { return autograd_jacobian(ring, x); };
  torch::Tensor angle = torch::tensor({0.3, 2.0, -2.5}, kF64);
  torch::Tensor radius = torch::tensor({1.002, 0.997, 1.0004}, kF64);
  torch::Tensor x0 = torch::stack({radius * torch::cos(angle), radius * torch::sin(angle)}, 1);
  NewtonRefineResult r = refine_fixed_points(ring, jac, x0);
  ASSERT_TRUE(r.refined_p.all().item<bool>());
  torch::Tensor radius_out = r.x_pn.norm(2, {1});
  torch::Tensor angle_out = torch::atan2(r.x_pn.select(1, 1), r.x_pn.select(1, 0));
  EXPECT_LT((radius_out - 1).abs().max().item<double>(), 1e-6);
  EXPECT_LT((angle_out - angle).abs().max().item<double>(), 1e-9);
}

TEST(NewtonRefinement, OnASlowRingOnlyTrueFixedPointsCountAsRefined) {
  // A ring that is only approximately an attractor: F(x) = x + k·x·(1 − ρ) + ε·sin(3θ)·t̂
  // (ρ = ‖x‖, t̂ the unit tangent). Its fixed points are the six angles θ = jπ/3 on the unit
  // circle; between them the flow along the ring is slow (speed ≤ ε). Whatever a start ends
  // as, it is refined only on a true fixed point, even a start already below the tolerance
  // (θ = 1.0, near π/3). Along the curved ring the steps stay short (the radial contraction
  // rejects long chords), so with the default 100 steps the starts are left as slow points;
  // given enough steps the one near π/3 reaches it.
  const double k = 0.5, eps = 1e-5;
  StepFn slow_ring = [k, eps](const torch::Tensor& x) {
    torch::Tensor rho = x.norm(2, {1}, /*keepdim=*/true);
    torch::Tensor theta = torch::atan2(x.select(1, 1), x.select(1, 0)).unsqueeze(1);
    torch::Tensor tangent = torch::cat({-torch::sin(theta), torch::cos(theta)}, 1);
    return x + k * x * (1 - rho) + eps * torch::sin(3 * theta) * tangent;
  };
  JacobianFn jac = [slow_ring](const torch::Tensor& x) { return autograd_jacobian(slow_ring, x); };
  torch::Tensor angle = torch::tensor({1.0, 0.4, 2.5, -0.9}, kF64);
  const double pi = std::acos(-1.0);
  NewtonRefineOptions o;
  // float32 too: there a damped step along the ring is too short to change x at all, which
  // must not pass for having reached precision.
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
  torch::Tensor x0 = torch::stack({torch::cos(angle), torch::sin(angle)}, 1).to(dtype);
  for (int64_t max_steps : {int64_t{100}, int64_t{3000}}) {
    SCOPED_TRACE(std::string(dtype == torch::kFloat64 ? "float64" : "float32") + ", max_steps " +
                 std::to_string(max_steps));
    o.max_steps = max_steps;
    NewtonRefineResult r = refine_fixed_points(slow_ring, jac, x0, o);  // row 0 is below tol
    for (int64_t i = 0; i < 4; ++i) {
      SCOPED_TRACE("start at angle " + std::to_string(angle[i].item<double>()));
      if (!r.refined_p[i].item<bool>()) {
        EXPECT_TRUE(torch::equal(r.x_pn[i], x0[i]));  // unchanged
        continue;
      }
      const double th = std::atan2(r.x_pn[i][1].item<double>(), r.x_pn[i][0].item<double>());
      const double to_fixed = std::abs(std::remainder(th, pi / 3));
      EXPECT_LT(to_fixed, dtype == torch::kFloat64 ? 1e-6 : 1e-3)
          << "refined at angle " << th << ", not at a fixed point";
      EXPECT_NEAR(r.x_pn[i].norm().item<double>(), 1.0, 1e-5);
    }
    if (max_steps == 100) {
      EXPECT_FALSE(r.refined_p.any().item<bool>());
    } else if (dtype == torch::kFloat64) {
      ASSERT_TRUE(r.refined_p[0].item<bool>());
      EXPECT_NEAR(std::atan2(r.x_pn[0][1].item<double>(), r.x_pn[0][0].item<double>()), pi / 3, 1e-6);
    }
  }
  }
}

TEST(NewtonRefinement, ASingularSystemIsARejectedStepNotAnError) {
  // F(x) = x + 1e-3·u·(s + s³), s = vᵀx: J − I = 1e-3(1 + 3s²)·u vᵀ has rank 1, and with
  // entries of 1e3–1e4 (s = 1e3) the damped normal matrix is singular in float64 at μ = 1e-12.
  // The only fixed points are the line s = 0 (every x with vᵀx = 0).
  torch::Tensor u = torch::tensor({1.0, 3.0}, kF64), v = torch::tensor({1e3, 2e3}, kF64);
  StepFn f = [u, v](const torch::Tensor& x) {
    torch::Tensor s_p = x.matmul(v).unsqueeze(1);
    return x + 1e-3 * (s_p + s_p.pow(3)) * u;
  };
  JacobianFn jac = [f](const torch::Tensor& x) { return autograd_jacobian(f, x); };
  torch::Tensor x0 = torch::tensor({1.0, 0.0, 0.2, 0.1}, kF64).view({2, 2});
  NewtonRefineOptions o;
  o.initial_damping = 1e-12;
  NewtonRefineResult r;
  ASSERT_NO_THROW(r = refine_fixed_points(f, jac, x0, o));
  for (int64_t i = 0; i < 2; ++i) {
    if (r.refined_p[i].item<bool>()) {
      EXPECT_LT(std::abs(r.x_pn[i].matmul(v).item<double>()), 1e-9) << "refined off the line s = 0";
    } else {
      EXPECT_TRUE(torch::equal(r.x_pn[i], x0[i]));
    }
  }
}

TEST(NewtonRefinement, ReachesTheToleranceInFloat32) {
  // float32 states stop at a residual of ~1e-7 per coordinate, far below the tolerance.
  torch::manual_seed(13);
  const int64_t n = 32;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  const double gain = 1.5 / std::sqrt(static_cast<double>(n));
  AutonomousMap map = gru_map({torch::randn({n, n}, f32) * gain, torch::randn({n, n}, f32) * gain,
                               torch::randn({n, n}, f32) * gain, 0.1 * torch::randn({n}, f32),
                               torch::full({n}, 0.5, f32), 0.1 * torch::randn({n}, f32)});
  FixedPointSearchOptions o;
  o.max_iters = 3000;
  FixedPointSearchResult found = search_fixed_points(map.residual_gradient, 0.5 * torch::randn({64, n}, f32), o);
  torch::Tensor conv = found.converged_p.nonzero().squeeze(1);
  ASSERT_GT(conv.numel(), 10);
  torch::Tensor xc = found.x_pn.index_select(0, conv);
  NewtonRefineResult r = refine_fixed_points(map.step, map.jacobian, xc);
  EXPECT_EQ(r.x_pn.scalar_type(), torch::kFloat32);
  EXPECT_GE(r.refined_p.sum().item<int64_t>(), conv.numel() * 9 / 10);
  torch::Tensor q_refined = r.q_p.masked_select(r.refined_p);
  EXPECT_LT(q_refined.max().item<double>(), 0.5 * n * 1e-11);
}

TEST(NewtonRefinement, RejectsAJacobianOfTheWrongShape) {
  AutonomousMap map = bistable_map();
  JacobianFn wrong = [](const torch::Tensor& x) { return torch::zeros({x.size(0), 2, 3}, kF64); };
  torch::Tensor x0 = torch::full({1, 2}, 0.5, kF64);
  try {
    refine_fixed_points(map.step, wrong, x0);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected (1, 2, 2)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(refine_fixed_points(map.step, {}, x0), std::invalid_argument);
}

TEST(MergeDuplicates, KeepsTheSmallestQOfEachCluster) {
  torch::Tensor pts = torch::tensor({0.0, 0.0, 0.001, 0.0, 5.0, 5.0, 5.0, 5.002}, kF64).view({4, 2});
  torch::Tensor q = torch::tensor({3e-9, 1e-9, 2e-9, 4e-9}, kF64);
  torch::Tensor kept = merge_duplicates(pts, q, /*tol=*/0.01);
  ASSERT_EQ(kept.numel(), 2);
  EXPECT_EQ(kept[0].item<int64_t>(), 1);  // smallest q overall, covers point 0
  EXPECT_EQ(kept[1].item<int64_t>(), 2);  // smaller q of the pair at (5, 5)
  EXPECT_EQ(merge_duplicates(pts, q, /*tol=*/1e-6).numel(), 4);
}

TEST(InlierIndices, DropsPointsFarFromTheStartingStates) {
  torch::Tensor ref = torch::tensor({-1.0, 0.0, 1.0, 0.0}, kF64).view({2, 2});  // spread 1
  torch::Tensor pts = torch::tensor({0.5, 0.0, 9.9, 0.0, 10.1, 0.0}, kF64).view({3, 2});
  torch::Tensor keep = inlier_indices(pts, ref, /*scale=*/10.0);
  ASSERT_EQ(keep.numel(), 2);
  EXPECT_EQ(keep[0].item<int64_t>(), 0);
  EXPECT_EQ(keep[1].item<int64_t>(), 1);
}

TEST(SelectExpansionPoints, MergesTightClustersAndCapsByFarthestPointSampling) {
  torch::manual_seed(12);
  torch::Tensor centres = torch::tensor({0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 4.0, 0.0}, kF64).view({3, 3});
  torch::Tensor pts = (centres.repeat({100, 1}) + 1e-4 * torch::randn({300, 3}, kF64));
  torch::Tensor kept = select_expansion_points(pts, /*unique_tol=*/0.01, /*max_points=*/64);
  ASSERT_EQ(kept.numel(), 3);
  torch::Tensor chosen = pts.index_select(0, kept);
  // One representative per cluster.
  EXPECT_LT(torch::cdist(centres, chosen).amin(1).max().item<double>(), 1e-3);
  // With a cap of 2, farthest-point sampling keeps the two most distant clusters.
  torch::Tensor two = pts.index_select(0, select_expansion_points(pts, 0.01, 2));
  EXPECT_NEAR(torch::cdist(two, two).max().item<double>(), 5.0, 1e-3);
}

}  // namespace
}  // namespace jslds::analysis
