// Legend: B trials, T bins, N neurons, n latent.
#include "core/train/metrics.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

namespace jslds {

namespace {

// Σ over all entries of λ − y log λ + log y!, in double precision.
double poisson_nll_sum(const at::Tensor& log_rates, const at::Tensor& spikes) {
  const at::Tensor lr = log_rates.to(torch::kFloat64);
  const at::Tensor y = spikes.to(torch::kFloat64);
  return (torch::exp(lr) - y * lr + torch::lgamma(y + 1.0)).sum().item<double>();
}

}  // namespace

double poisson_nll_mean(const at::Tensor& log_rates_btn, const at::Tensor& spikes_btn) {
  TORCH_CHECK(log_rates_btn.sizes() == spikes_btn.sizes(), "poisson_nll_mean: log-rates ",
              log_rates_btn.sizes(), " and spike counts ", spikes_btn.sizes(), " differ in shape");
  return poisson_nll_sum(log_rates_btn, spikes_btn) / static_cast<double>(spikes_btn.numel());
}

double bits_per_spike(const at::Tensor& log_rates_btn, const at::Tensor& spikes_btn, const at::Tensor& null_rate_n) {
  TORCH_CHECK(log_rates_btn.sizes() == spikes_btn.sizes() && spikes_btn.dim() == 3, "bits_per_spike: log-rates ",
              log_rates_btn.sizes(), " and spike counts ", spikes_btn.sizes(), " must both be (B,T,N)");
  TORCH_CHECK(null_rate_n.dim() == 1 && null_rate_n.size(0) == spikes_btn.size(2), "bits_per_spike: expected ",
              spikes_btn.size(2), " null-model rates, got shape ", null_rate_n.sizes());
  const double total_spikes = spikes_btn.to(torch::kFloat64).sum().item<double>();
  if (total_spikes <= 0.0) return std::numeric_limits<double>::quiet_NaN();
  const at::Tensor null_log_rates =
      torch::log(null_rate_n.to(torch::kFloat64).clamp_min(kNullRateFloor)).view({1, 1, -1}).expand(spikes_btn.sizes());
  const double nll_null = poisson_nll_sum(null_log_rates, spikes_btn);
  const double nll_model = poisson_nll_sum(log_rates_btn, spikes_btn);
  return (nll_null - nll_model) / (total_spikes * std::log(2.0));
}

double relative_state_error(const at::Tensor& g_btn, const at::Tensor& a_btn) {
  TORCH_CHECK(g_btn.sizes() == a_btn.sizes(), "relative_state_error: states ", g_btn.sizes(), " and ",
              a_btn.sizes(), " differ in shape");
  const at::Tensor g = g_btn.to(torch::kFloat64);
  const at::Tensor a = a_btn.to(torch::kFloat64);
  return ((g - a).norm(2, /*dim=*/{-1}) / g.norm(2, {-1}).clamp_min(1e-12)).mean().item<double>();
}

double fixed_point_residual(const at::Tensor& f_estar_btn, const at::Tensor& estar_btn) {
  TORCH_CHECK(f_estar_btn.sizes() == estar_btn.sizes(), "fixed_point_residual: shapes ", f_estar_btn.sizes(),
              " and ", estar_btn.sizes(), " differ");
  return (f_estar_btn.to(torch::kFloat64) - estar_btn.to(torch::kFloat64)).square().mean().item<double>();
}

}  // namespace jslds
