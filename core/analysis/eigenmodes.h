// Eigen-decomposition of batched Jacobians, stability classes and eigenmodes in physical
// units (MODEL.md §7 steps 3–4).
//
// Letters: p points, n latent dimension.
#pragma once

#include <complex>
#include <cstdint>
#include <string_view>
#include <vector>

#include <ATen/core/Tensor.h>

namespace jslds::analysis {

/// ε_m of MODEL §7.3: the band around |λ| = 1 that counts as marginal.
inline constexpr double kMarginalBand = 0.01;

enum class Stability {
  kStable,    // max|λ| < 1 − ε_m
  kMarginal,  // |max|λ| − 1| ≤ ε_m
  kUnstable,  // max|λ| > 1 + ε_m (a saddle when exactly one |λ| > 1 + ε_m)
};

/// "stable" | "marginal" | "unstable" (the strings of docs/report-format.md).
std::string_view stability_name(Stability s);

/// Stability class of a point from the largest eigenvalue modulus of its Jacobian.
Stability classify(double max_abs_eig);

enum class ModeKind {
  kReal,         // real λ > 0: pure decay (or growth); frequency 0
  kOscillation,  // complex pair r·e^{±iω}: rotation at |ω|/(2πΔt) Hz
  kFlip,         // real λ < 0: period-2 flip (sign alternates every bin); not an oscillation
};

/// "real" | "oscillation" | "flip".
std::string_view mode_kind_name(ModeKind k);

/// One eigenmode of a Jacobian, λ = r·e^{iω} (MODEL §7.4). A conjugate pair is one mode,
/// represented by its member with Im λ > 0.
struct Mode {
  int64_t mode_idx = 0;             // rank by decreasing |λ|, a conjugate pair counted once
  std::complex<double> eigenvalue;  // λ (Im λ ≥ 0)
  double abs = 0.0;                 // r = |λ|
  double freq_hz = 0.0;             // |ω|/(2πΔt) for oscillations; 0 for real λ (flips too)
  double tau_s = 0.0;               // −Δt/ln r in seconds: +inf at r = 1, negative = growth
  ModeKind kind = ModeKind::kReal;
};

/// Describes one eigenvalue with bin width `bin_s` (seconds, > 0). A real eigenvalue is one
/// whose imaginary part is exactly zero (LAPACK returns real eigenvalues of a real matrix
/// with Im = 0 exactly).
Mode describe_mode(std::complex<double> eigenvalue, double bin_s, int64_t mode_idx = 0);

/// Modes of one point from its eigenvalues sorted by decreasing |λ|: the member of each
/// conjugate pair with Im λ < 0 is skipped, mode_idx counts the modes kept.
std::vector<Mode> modes_from_eigenvalues(const std::vector<std::complex<double>>& sorted,
                                         double bin_s);

/// Eigen-decomposition of a batch of real Jacobians with LibTorch's linalg_eig, in float64.
struct Spectrum {
  at::Tensor eigenvalues_pn;    // complex128 (p, n), sorted by decreasing |λ| (stable sort:
                                // a conjugate pair stays adjacent, Im > 0 first)
  at::Tensor eigenvectors_pnn;  // complex128 (p, n, n): column k of [p] belongs to eigenvalue k
};

/// jac_pnn: (p, n, n) real, finite. Throws std::invalid_argument otherwise.
Spectrum sorted_spectrum(const at::Tensor& jac_pnn);

}  // namespace jslds::analysis
