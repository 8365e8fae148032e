// The training loss of MODEL.md §5, term by term.
//
// Poisson mode (LFADS convention: per-trial SUMS over time and neurons, mean over trials;
// log y! dropped):
//   L = w_rnn · Σ(λ − y log λ) + w_jslds · Σ(λa − y log λa) + w_approx · Σ_t ‖g_t − a_t‖²
//     + w_fp · Σ_t ‖F(e*_t,u*) − e*_t‖² + β(step) · (KL_ic + KL_ii) + l2 · Σ‖W_rec‖²
//     [+ w_xe · mean((u* − mean_t u)²) with a learned input expansion point]
// Task mode (JSLDS reference convention: MEANS over batch, time and dimension; the output
// terms over masked time steps only):
//   L = w_rnn · mean(o − y)² + w_jslds · mean(oa − y)² + w_approx · mean(h − a)²
//     + w_fp · mean(F(e*,u*) − e*)² + l2 · Σ‖θ‖²  [+ w_xe term as above]
//
// Legend: B trials, T bins, N neurons, n latent, m inferred inputs, p generator inputs,
// O task outputs. All functions are pure (tensors in, tensors out) and differentiable.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace jslds {

class JsldsModelImpl;
struct ModelOutput;

/// One mini-batch (or the validation set) on the model's device.
struct Batch {
  at::Tensor spikes_btn;          // poisson: counts of ALL neurons (B,T,N), the loss target
  at::Tensor encoder_spikes_btn;  // poisson: counts of the held-in neurons (B,T,N_in), encoder input
  at::Tensor inputs_btk;          // external inputs (B,T,k), undefined when k = 0
  at::Tensor targets_bto;         // task: targets (B,T,O)
  at::Tensor mask_bt;             // task: 1 where the targets count (B,T); undefined = all
};

/// The total loss and its unweighted terms, named as logged: loss_rnn, loss_jslds,
/// loss_approx, loss_fp, loss_kl_ic, loss_kl_ii (poisson), loss_l2, loss_xe (learned u*).
/// Terms of the JSLDS chain are absent when the forward pass skipped it.
struct LossBreakdown {
  at::Tensor total;  // scalar, differentiable
  std::vector<std::pair<std::string, at::Tensor>> terms;
};

/// KL warm-up weight β(step) (MODEL §5): 0.01·kl_scale up to kl_warmup_steps[0], then
/// linear to kl_scale at kl_warmup_steps[1] and constant after.
double kl_warmup_weight(int64_t step, const LossOptions& options);

/// Σ_{t,n}(λ − y log λ) per trial, averaged over trials: log_rates (B,T,N) = log λ (counts
/// per bin), spikes (B,T,N). Scalar.
at::Tensor poisson_nll_per_trial(const at::Tensor& log_rates_btn, const at::Tensor& spikes_btn);

/// Mean over masked (B,T) steps and the O outputs of (outputs − targets)²; mask (B,T) of 0/1
/// or undefined (all steps). Scalar; 0 when the mask is all zero.
at::Tensor masked_mse(const at::Tensor& outputs_bto, const at::Tensor& targets_bto, const at::Tensor& mask_bt);

/// KL(N(μ, e^{logvar}) ‖ N(0, prior_var·I)), summed over dimensions, mean over trials. (B,n) → scalar.
at::Tensor kl_initial_condition(const at::Tensor& mean_bn, const at::Tensor& logvar_bn, double prior_var);

/// One-sample Monte-Carlo KL of q(u) = Π_t N(μ_t, e^{logvar_t}) against the AR(1) prior
/// u_t = φ u_{t−1} + ε, φ = exp(−1/ar_tau_bins), with `ar_var` the STATIONARY variance:
/// u_1 ~ N(0, ar_var), ε ~ N(0, ar_var (1 − φ²)). Summed over time and inputs, mean over
/// trials; samples, means and log-variances (B,T,m) → scalar.
at::Tensor kl_inferred_inputs(const at::Tensor& u_btm, const at::Tensor& mean_btm, const at::Tensor& logvar_btm,
                              double ar_tau_bins, double ar_var);

/// Prior variance of the initial condition g_0 (MODEL §4).
constexpr double kInitialConditionPriorVar = 0.1;

/// The loss of MODEL §5 for `output = model.forward(batch…)` at optimiser step `step`
/// (1-based; sets β). Throws c10::Error when the batch lacks the mode's targets.
LossBreakdown compute_loss(const JsldsModelImpl& model, const ModelOutput& output, const Batch& batch,
                           const LossOptions& options, int64_t step);

}  // namespace jslds
