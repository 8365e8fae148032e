// Eigenmodes and stability classes (MODEL.md §7.3–7.4).
// Letters: p points, n latent dimension.
#include "core/analysis/eigenmodes.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

#include <fmt/format.h>
#include <torch/torch.h>

namespace jslds::analysis {

std::string_view stability_name(Stability s) {
  switch (s) {
    case Stability::kStable: return "stable";
    case Stability::kMarginal: return "marginal";
    case Stability::kUnstable: return "unstable";
  }
  return "unknown";
}

Stability classify(double max_abs_eig) {
  if (max_abs_eig < 1.0 - kMarginalBand) return Stability::kStable;
  if (max_abs_eig > 1.0 + kMarginalBand) return Stability::kUnstable;
  return Stability::kMarginal;
}

std::string_view mode_kind_name(ModeKind k) {
  switch (k) {
    case ModeKind::kReal: return "real";
    case ModeKind::kOscillation: return "oscillation";
    case ModeKind::kFlip: return "flip";
  }
  return "unknown";
}

Mode describe_mode(std::complex<double> eigenvalue, double bin_s, int64_t mode_idx) {
  if (!(bin_s > 0.0))
    throw std::invalid_argument(fmt::format("describe_mode: bin width must be > 0 s, got {}", bin_s));
  Mode m;
  m.mode_idx = mode_idx;
  m.eigenvalue = {eigenvalue.real(), std::abs(eigenvalue.imag())};
  m.abs = std::abs(eigenvalue);
  if (eigenvalue.imag() != 0.0) {
    m.kind = ModeKind::kOscillation;
    m.freq_hz = std::abs(std::arg(eigenvalue)) / (2.0 * std::numbers::pi * bin_s);
  } else {
    m.kind = eigenvalue.real() < 0.0 ? ModeKind::kFlip : ModeKind::kReal;
    m.freq_hz = 0.0;
  }
  // τ = −Δt/ln r: +inf at r = 1, 0 at r = 0, negative for growing modes.
  const double log_r = std::log(m.abs);
  m.tau_s = log_r == 0.0 ? std::numeric_limits<double>::infinity() : -bin_s / log_r;
  return m;
}

std::vector<Mode> modes_from_eigenvalues(const std::vector<std::complex<double>>& sorted,
                                         double bin_s) {
  std::vector<Mode> modes;
  modes.reserve(sorted.size());
  for (const auto& lambda : sorted) {
    if (lambda.imag() < 0.0) continue;  // the conjugate of a pair already reported
    modes.push_back(describe_mode(lambda, bin_s, static_cast<int64_t>(modes.size())));
  }
  return modes;
}

Spectrum sorted_spectrum(const at::Tensor& jac_pnn) {
  if (!jac_pnn.defined() || jac_pnn.dim() != 3 || jac_pnn.size(1) != jac_pnn.size(2) ||
      !jac_pnn.is_floating_point())
    throw std::invalid_argument(fmt::format(
        "sorted_spectrum: expected real Jacobians of shape (points, n, n), got {}",
        jac_pnn.defined() ? fmt::format("({})", fmt::join(jac_pnn.sizes(), ", "))
                          : std::string("undefined")));
  torch::NoGradGuard no_grad;
  at::Tensor jac = jac_pnn.detach().to(torch::kCPU, torch::kFloat64);
  const int64_t p = jac.size(0), n = jac.size(1);
  Spectrum s;
  if (p == 0) {
    s.eigenvalues_pn = torch::zeros({0, n}, torch::kComplexDouble);
    s.eigenvectors_pnn = torch::zeros({0, n, n}, torch::kComplexDouble);
    return s;
  }
  if (!torch::isfinite(jac).all().item<bool>())
    throw std::invalid_argument("sorted_spectrum: a Jacobian contains NaN or Inf");
  auto [values, vectors] = torch::linalg_eig(jac);
  at::Tensor order = std::get<1>(torch::sort(values.abs(), /*stable=*/true, /*dim=*/1,
                                             /*descending=*/true));
  s.eigenvalues_pn = values.gather(1, order);
  s.eigenvectors_pnn = vectors.gather(2, order.unsqueeze(1).expand({p, n, n}));
  return s;
}

}  // namespace jslds::analysis
