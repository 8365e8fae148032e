// Numerical fixed points of an autonomous map and the point-set reductions around them
// (MODEL.md §7 steps 1–2; FixedPointFinder recipe, Golub & Sussillo 2018, JOSS 3:1003).
//
// Letters in tensor names: p points (starting states, expansion points or fixed points),
// n latent (generator) dimension.
//
// Everything here is a pure function of tensors: no model, no files. The map is given as a
// residual-and-gradient function so that a closed form (core/analysis/generator_maps.h) and
// autograd (autograd_residual_gradient) are interchangeable.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>

#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace jslds::analysis {

/// F(x, u = 0) of an autonomous map, batched over rows: (p, n) → (p, n).
using StepFn = std::function<at::Tensor(const at::Tensor& x_pn)>;

/// Batched Jacobian J(x) of a map: (p, n) → (p, n, n), J[p, i, j] = ∂F_i/∂x_j at row p.
using JacobianFn = std::function<at::Tensor(const at::Tensor& x_pn)>;

/// Per row, the residual r = F(x) − x and the gradient of q(x) = ½‖F(x) − x‖² with respect to
/// x, which is (J(x) − I)ᵀ r: (p, n) → ((p, n), (p, n)). Implementations must not build an
/// autograd graph that outlives the call.
using ResidualGradientFn =
    std::function<std::pair<at::Tensor, at::Tensor>(const at::Tensor& x_pn)>;

/// A ResidualGradientFn computed by autograd through `step` (one forward and one backward
/// pass per call). `step` must be differentiable with torch ops.
ResidualGradientFn autograd_residual_gradient(StepFn step);

/// How the per-point objectives are combined before Adam sees the gradient. Adam is
/// invariant to the gradient's scale except through eps, so kMean with eps ε is kSum with eps
/// P·ε: the choice decides whether a point's gradient is large or small against eps.
enum class Reduction {
  /// Σ_p q_p, as MODEL §7.2 prescribes. With lr 1.0 and eps 1e-2 the gradient is large against
  /// eps far from a fixed point, so Adam takes steps of about lr per coordinate and throws
  /// points into the GRU's saturated region (z → 1, where F(x) ≈ x); near a fixed point it is
  /// small against eps and the effective gradient step lr/eps = 100 is unstable unless the
  /// plateau decay has brought lr down ~100-fold. Measured (docs/analysis.md): on a
  /// contracting 16-d GRU (only fixed point: the origin) starts are still unconverged after
  /// 5000 iterations, some at coordinates of magnitude 28; the 64-d benchmark GRU converges
  /// 55 of 1024 starts (the Python reference with --reduce sum agrees).
  kSum,
  /// (1/P) Σ_p q_p: FixedPointFinder's own objective and the Python reference's default.
  /// Converges on every known system of the tests and on the benchmark (1024 of 1024).
  kMean,
};

/// Options of the fixed-point search. The defaults are MODEL §7.2; `from_config` copies the
/// run-configuration keys ([analysis] max_iters, fp_tol, fp_reduction) and leaves the rest
/// at these values; throws std::invalid_argument for an fp_reduction other than mean / sum.
struct FixedPointSearchOptions {
  int64_t max_iters = 5000;      // iteration cap
  double fp_tol = 1e-7;          // a point has converged when ‖F(x) − x‖²/n < fp_tol
  double lr = 1.0;               // initial Adam learning rate (FixedPointFinder)
  double adam_eps = 1e-2;        // Adam epsilon (FixedPointFinder's 0.01, not Adam's 1e-8)
  double adam_beta1 = 0.9;       // Adam first-moment decay
  double adam_beta2 = 0.999;     // Adam second-moment decay
  double plateau_factor = 0.95;  // plateau decay: lr ← max(min_lr, lr·factor) ...
  int64_t plateau_patience = 5;  // ... after this many iterations without relative improvement
  double plateau_threshold = 1e-4;  // ... of at least this fraction of the best objective
  double min_lr = 1e-5;          // floor of the plateau decay
  /// Default kMean, deviating from MODEL §7.2's SUM for the reasons given at Reduction.
  Reduction reduction = Reduction::kMean;
  /// Remove converged points from the batch (their state is kept as it was when they first
  /// met the tolerance). Adam is element-wise and, with either reduction, one point's update
  /// never depends on another point's state, so every point follows exactly the trajectory it
  /// would follow in the full batch until it converges, except through the shared learning
  /// rate: the plateau decay then watches the objective of the points still in the batch.
  /// It saves the work of iterating converged points while the slowest ones finish (about
  /// half on the benchmark), but a frozen point stops just inside the tolerance instead of
  /// moving on towards the fixed point as in MODEL §7.2 and FixedPointFinder, where every
  /// point keeps moving until all have converged. That changes the result when the search
  /// runs to max_iters: on the trained 64-d flip-flop GRU (docs/analysis.md) freezing gave
  /// 62 fixed points after merging instead of 52. Off by default for that reason.
  bool freeze_converged = false;
  /// Asked once per iteration; when it returns true the search throws SearchInterrupted (a
  /// signal arrived: the caller stops gracefully instead of finishing a long search).
  std::function<bool()> stop_requested;

  static FixedPointSearchOptions from_config(const AnalysisOptions& options);
};

/// Thrown by search_fixed_points when FixedPointSearchOptions::stop_requested returns true.
struct SearchInterrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Progress of the search, called every `progress_every` iterations and at the end:
/// (iteration, points still above tolerance, current lr, largest q among them).
using SearchProgressFn =
    std::function<void(int64_t iteration, int64_t n_active, double lr, double q_max)>;

struct FixedPointSearchResult {
  at::Tensor x_pn;           // final states, same order as the starting states
  at::Tensor q_p;            // q = ½‖F(x) − x‖² at x_pn (recomputed, float64)
  at::Tensor converged_p;    // bool: ‖F(x) − x‖²/n < fp_tol
  int64_t iterations = 0;    // gradient evaluations of the batch (≤ max_iters)
  std::string stop_reason;   // "all_converged" | "max_iters" | "no_points"
  double final_lr = 0.0;
  int64_t point_iterations = 0;  // Σ over iterations of points in the batch (the work done)
};

/// Minimises q(x) = ½‖F(x) − x‖² jointly from every row of `x0_pn` with Adam and plateau
/// decay (MODEL §7.2), stopping early when every point has converged.
/// x0_pn: (p, n) float32 or float64; the search runs in that dtype on its device.
/// Throws std::invalid_argument on a non-2-D or non-floating x0_pn, non-finite starting
/// states, or a residual_gradient returning tensors of another shape.
FixedPointSearchResult search_fixed_points(const ResidualGradientFn& residual_gradient,
                                           const at::Tensor& x0_pn,
                                           const FixedPointSearchOptions& options,
                                           const SearchProgressFn& progress = {},
                                           int64_t progress_every = 500);

/// Options of the Newton refinement of converged points (refine_fixed_points).
struct NewtonRefineOptions {
  int64_t max_steps = 100;  // Levenberg–Marquardt steps at most (0: no refinement)
  double tol = 1e-11;       // refined: ‖F(x) − x‖²/n below tol and at the rounding level
  double initial_damping = 1e-3;  // μ of the first step (absolute; adapted per row)
};

struct NewtonRefineResult {
  at::Tensor x_pn;       // refined rows replaced by their fixed points; the others unchanged
  at::Tensor q_p;        // q = ½‖F(x) − x‖² at x_pn (float64)
  at::Tensor refined_p;  // bool: the row was refined (see refine_fixed_points)
  at::Tensor moved_p;    // float64: distance from the input row (0 where not refined)
  int64_t steps = 0;     // steps taken by the slowest row
};

/// Polishes approximate fixed points into fixed points to numerical precision by solving
/// r(x) = F(x) − x = 0 with Levenberg–Marquardt steps (Levenberg 1944, Marquardt 1963;
/// Nocedal & Wright, Numerical Optimization, §10.3), each row independently:
///   A = J(x) − I,  (AᵀA + μI) δ = −Aᵀ r,  x ← x + δ if ‖r(x + δ)‖ < ‖r(x)‖
/// with μ divided by 10 after an accepted step or one too short to change x in the states'
/// dtype, and multiplied by 10 after a rejected one (clamped to [1e-12, 1e8]; a system
/// singular in float64 counts as a rejected step).
/// The damping keeps steps finite where A is singular (a continuous attractor, a marginal
/// mode): there δ is the least-squares step and does not move along the flat direction.
/// The linear algebra runs in float64 with LibTorch (linalg_solve_ex); F and J in the
/// states' dtype. A row is refined when ‖F(x) − x‖²/n < tol and its residual is at the
/// rounding level of that dtype, ‖F(x) − x‖ ≤ 2ε·max(‖|x| + |F(x)|‖, 1) (ε its machine
/// epsilon). A row
/// that is not refined within max_steps (a slow point with no fixed point near it, where
/// Adam's q < fp_tol stopped on a shallow slope, or one still sliding along a slow manifold)
/// is returned as it was given.
/// x_pn (p, n) floating; `jacobian` returns (p, n, n). Throws std::invalid_argument on a
/// non-2-D input, a missing function or a Jacobian of the wrong shape.
NewtonRefineResult refine_fixed_points(const StepFn& step, const JacobianFn& jacobian,
                                       const at::Tensor& x_pn,
                                       const NewtonRefineOptions& options = {});

/// Greedy duplicate merging: visits the points by increasing q and keeps a point unless it
/// lies within `tol` (Euclidean) of one already kept, so each cluster of duplicates keeps its
/// smallest-q member and kept points are pairwise farther apart than `tol`.
/// points_pn (p, n), q_p (p): returns the kept row indices (int64, by increasing q).
at::Tensor merge_duplicates(const at::Tensor& points_pn, const at::Tensor& q_p, double tol);

/// Indices of the rows of points_pn lying within `scale` × (mean distance of reference_pn's
/// rows to their centroid) of that centroid (MODEL §7.2: scale 10, reference = the starting
/// states). Returns int64 indices in increasing order.
at::Tensor inlier_indices(const at::Tensor& points_pn, const at::Tensor& reference_pn,
                          double scale);

/// Expansion points to analyse (MODEL §7.1): merges points closer than `unique_tol` and keeps
/// at most `max_points` by farthest-point sampling, in one pass: starting from the point
/// farthest from the centroid, repeatedly adds the point farthest from those kept, and stops
/// at `max_points` or when that distance is ≤ unique_tol. Kept points are therefore pairwise
/// farther apart than unique_tol, and when fewer than max_points are kept every input point
/// lies within unique_tol of a kept one (a valid merge at unique_tol).
/// Costs O(p · max_points · n), so it takes every e*_t of a validation set directly.
/// Returns int64 indices in selection order. Throws std::invalid_argument for a non-2-D input.
at::Tensor select_expansion_points(const at::Tensor& points_pn, double unique_tol,
                                   int64_t max_points);

}  // namespace jslds::analysis
