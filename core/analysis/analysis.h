// The analysis of a fitted generator (MODEL.md §7): expansion points, numerical fixed
// points, their Jacobians and eigenmodes, and the attractor-structure summaries.
//
// run_analysis is a pure function of an autonomous map and two point sets, so it runs on
// known systems in tests and on any model through core/analysis/model_analysis.h. Its result
// is plain data (no tensors): analysis_report.h turns it into the JSON of
// docs/report-format.md and a human-readable summary, analysis_h5.h writes analysis.h5.
//
// Letters: p points, n latent dimension.
#pragma once

#include <complex>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/analysis/eigenmodes.h"
#include "core/analysis/fixed_points.h"
#include "core/analysis/generator_maps.h"
#include "core/config.h"

namespace jslds::analysis {

/// What the analysis needs to know about a fitted generator.
struct AnalysisInput {
  /// F(x, u = 0): (p, n) → (p, n). Must be differentiable by autograd whenever `jacobian` or
  /// `residual_gradient` is empty.
  StepFn step;
  /// Optional closed-form Jacobian (p, n) → (p, n, n); empty = autograd with the sum trick.
  JacobianFn jacobian;
  /// Optional closed-form (F(x) − x, (J − I)ᵀ(F(x) − x)) for the fixed-point search; empty =
  /// autograd through `step`.
  ResidualGradientFn residual_gradient;
  /// Expansion points e*_t collected on validation trials (any number of rows, (p, n)).
  at::Tensor expansion_points_pn;
  /// Generator states on validation trials (p, n): the search starts from a sample of them.
  at::Tensor states_pn;
  /// Bin width Δt in milliseconds (> 0): turns eigenvalues into Hz and seconds.
  double bin_ms = 0.0;

  /// Sets step, jacobian and residual_gradient from a map (e.g. gru_map(weights)).
  void set_map(const AutonomousMap& map);
};

enum class PointSource { kExpansion, kNumerical };

/// "expansion" | "numerical" (the strings of docs/report-format.md).
std::string_view source_name(PointSource s);

/// Number of leading eigenvectors kept per point (analysis.h5 `eigenvectors`).
inline constexpr int64_t kTopEigenvectors = 8;

/// One analysed point: an expansion point or a numerical fixed point.
struct PointAnalysis {
  PointSource source = PointSource::kExpansion;
  std::vector<double> coords;  // (n) position in latent space
  double q = 0.0;              // ½‖F(x) − x‖² (also for expansion points)
  /// Numerical points: polished into a fixed point to numerical precision by the Newton
  /// refinement; false for a slow point (and for every point when the refinement is off).
  bool refined = false;
  Stability stability = Stability::kStable;
  int64_t n_unstable = 0;      // eigenvalues with |λ| > 1 + ε_m (1 = saddle)
  double max_abs_eig = 0.0;    // spectral radius of J at the point
  std::vector<std::complex<double>> eigenvalues;  // all n, by decreasing |λ|
  /// Eigenvectors of the first min(n, kTopEigenvectors) eigenvalues, each of length n
  /// (LAPACK normalisation: unit Euclidean norm).
  std::vector<std::vector<std::complex<double>>> top_eigenvectors;
  std::vector<Mode> modes;  // all modes, conjugate pairs once (eigenmodes.h)
};

/// Diagnostics of the numerical search.
struct SearchReport {
  int64_t n_inits = 0;       // starting states
  int64_t iterations = 0;    // Adam iterations run
  std::string stop_reason;   // "all_converged" | "max_iters" | "no_points"
  double final_lr = 0.0;
  int64_t n_converged = 0;   // starting states that met fp_tol
  int64_t n_unique = 0;      // after merging duplicates
  int64_t n_outliers = 0;    // dropped as farther than 10× the starts' spread
  bool newton_on = false;      // the Newton refinement ran (analysis.newton_steps > 0)
  int64_t n_refined = 0;       // converged starts it polished into fixed points
  int64_t n_slow_points = 0;   // converged starts it could not polish: kept as slow points
  int64_t newton_steps = 0;    // refinement steps taken by the slowest start
  double max_refine_distance = 0.0;  // farthest a refined start moved
  double seconds = 0.0;      // wall time of the search
};

struct AnalysisResult {
  int64_t latent_dim = 0;
  double bin_ms = 0.0;
  double unique_tol = 0.0;   // merge distance used (resolved from the options)
  double cluster_tol = 0.0;  // linkage distance used
  int64_t n_expansion_candidates = 0;        // rows of AnalysisInput::expansion_points_pn
  std::vector<PointAnalysis> expansion_points;
  std::vector<PointAnalysis> fixed_points;   // numerical fixed points, by increasing q
  /// MODEL §7.5 scalars: n_fixed_points, n_stable, n_saddle, n_marginal, spectral_radius,
  /// n_slow_modes, dominant_freq_hz, theta_mode, n_stable_clusters, ring_score. NaN when
  /// undefined (dominant_freq_hz without any oscillatory mode, spectral_radius without points).
  std::map<std::string, double> summary;
  SearchReport search;
};

/// Progress of a long analysis: a stage name and a one-line detail, for a log or stderr.
using AnalysisProgressFn = std::function<void(const std::string& stage, const std::string& detail)>;

/// Runs MODEL §7 steps 1–5:
///  1. expansion points: merged at unique_tol and at most max_points kept by farthest-point
///     sampling (select_expansion_points);
///  2. numerical fixed points: n_inits rows sampled (with replacement) from states_pn plus
///     N(0, init_noise²) noise, search_fixed_points with FixedPointSearchOptions::from_config
///     (override with `search`); with newton_steps > 0 the converged points are polished by
///     refine_fixed_points (tolerance 1e-4·fp_tol), those it cannot polish kept as they are
///     and marked as slow points (PointAnalysis::refined false); then merged at unique_tol
///     keeping the smallest q, and points farther than 10× the starts' mean distance to their
///     centroid dropped;
///  3. Jacobians (closed form or autograd), eigen-decomposition, stability classes;
///  4. modes in Hz and seconds; 5. the structure summaries.
/// Definitions of the summaries (docs/analysis.md):
///  - n_fixed_points, n_stable, n_marginal: numerical fixed points and their classes;
///    n_saddle: those with exactly one |λ| > 1 + ε_m;
///  - spectral_radius: largest |λ| over the numerical fixed points, or over the expansion
///    points when there are no fixed points;
///  - n_slow_modes: median over expansion points of the number of modes (pairs once) with
///    r > 0.99;
///  - dominant_freq_hz: median over expansion points having an oscillatory pair of the
///    frequency of their slowest-decaying (largest r) pair;
///  - theta_mode: 1 if at least half the expansion points have a pair with frequency in
///    theta_band_hz and r > 0.9, else 0;
///  - n_stable_clusters: connected components of the stable and marginal fixed points
///    linked at cluster_tol;
///  - ring_score: structure.h ring_score of the fixed points when there are at least 3 of
///    them, else of the expansion points.
/// unique_tol = 0 means 1e-2·√n; cluster_tol = 0 means unique_tol.
/// `seed` fixes the starting states. Throws std::invalid_argument for a missing step,
/// mismatched or non-finite point sets, or bin_ms ≤ 0.
AnalysisResult run_analysis(const AnalysisInput& input, const AnalysisOptions& options,
                            uint64_t seed, const AnalysisProgressFn& progress = {},
                            const FixedPointSearchOptions* search = nullptr);

}  // namespace jslds::analysis
