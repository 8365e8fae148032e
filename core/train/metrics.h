// Validation metrics of MODEL.md §6. Pure functions of tensors; results are doubles.
//
// Legend: B trials, T bins, N neurons, n latent, O task outputs.
#pragma once

#include <ATen/core/Tensor.h>

namespace jslds {

/// Floor of the null model's per-neuron rate (counts per bin), so that a neuron silent in
/// the training trials gives no NaN (MODEL §6).
constexpr double kNullRateFloor = 1e-9;

/// Mean over bins and neurons of the full Poisson negative log-likelihood
/// λ − y log λ + log y! (nats), for log_rates = log λ (B,T,N) and counts y (B,T,N).
double poisson_nll_mean(const at::Tensor& log_rates_btn, const at::Tensor& spikes_btn);

/// Bits per spike (Pei et al. 2021, NLB'21): [NLL(null) − NLL(model)] / (Σy · ln 2), the
/// null model being each neuron's constant rate `null_rate_n` (N) (counts per bin, floored
/// at kNullRateFloor). 0 for the null model itself, > 0 for a model better than it.
/// NaN when the counts hold no spike. Accumulates in double precision.
double bits_per_spike(const at::Tensor& log_rates_btn, const at::Tensor& spikes_btn, const at::Tensor& null_rate_n);

/// Mean over trials and time of ‖g_t − a_t‖ / ‖g_t‖ (states (B,T,n); norms floored at 1e-12).
double relative_state_error(const at::Tensor& g_btn, const at::Tensor& a_btn);

/// Mean over trials, time and dimensions of (F(e*_t, u*) − e*_t)².
double fixed_point_residual(const at::Tensor& f_estar_btn, const at::Tensor& estar_btn);

}  // namespace jslds
