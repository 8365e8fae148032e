// Legend: B trials, T bins, N neurons, n latent, m inferred inputs, p inputs, O outputs.
#include "core/train/loss.h"

#include <cmath>

#include <torch/torch.h>

#include "core/model/jslds_model.h"

namespace jslds {

double kl_warmup_weight(int64_t step, const LossOptions& options) {
  const double start = options.kl_warmup_steps.size() > 0 ? static_cast<double>(options.kl_warmup_steps[0]) : 0.0;
  const double end = options.kl_warmup_steps.size() > 1 ? static_cast<double>(options.kl_warmup_steps[1]) : start;
  const double beta0 = 0.01;
  const double s = static_cast<double>(step);
  double fraction = 1.0;
  if (s <= start) {
    fraction = beta0;
  } else if (s < end) {
    fraction = beta0 + (1.0 - beta0) * (s - start) / (end - start);
  }
  return options.kl_scale * fraction;
}

at::Tensor poisson_nll_per_trial(const at::Tensor& log_rates_btn, const at::Tensor& spikes_btn) {
  TORCH_CHECK(log_rates_btn.sizes() == spikes_btn.sizes(), "poisson_nll_per_trial: log-rates ",
              log_rates_btn.sizes(), " and spike counts ", spikes_btn.sizes(), " differ in shape");
  return (torch::exp(log_rates_btn) - spikes_btn * log_rates_btn).sum() / static_cast<double>(spikes_btn.size(0));
}

at::Tensor masked_mse(const at::Tensor& outputs_bto, const at::Tensor& targets_bto, const at::Tensor& mask_bt) {
  TORCH_CHECK(outputs_bto.sizes() == targets_bto.sizes(), "masked_mse: outputs ", outputs_bto.sizes(),
              " and targets ", targets_bto.sizes(), " differ in shape");
  const at::Tensor sq = (outputs_bto - targets_bto).square();
  if (!mask_bt.defined()) return sq.mean();
  TORCH_CHECK(mask_bt.dim() == 2 && mask_bt.size(0) == outputs_bto.size(0) && mask_bt.size(1) == outputs_bto.size(1),
              "masked_mse: expected a mask (", outputs_bto.size(0), ",", outputs_bto.size(1), "), got ",
              mask_bt.sizes());
  const at::Tensor weight = mask_bt.sum() * static_cast<double>(outputs_bto.size(2));
  return (sq * mask_bt.unsqueeze(2)).sum() / weight.clamp_min(1.0);
}

at::Tensor kl_initial_condition(const at::Tensor& mean_bn, const at::Tensor& logvar_bn, double prior_var) {
  const at::Tensor kl = 0.5 * ((torch::exp(logvar_bn) + mean_bn.square()) / prior_var - 1.0 - logvar_bn +
                               std::log(prior_var));
  return kl.sum() / static_cast<double>(mean_bn.size(0));
}

at::Tensor kl_inferred_inputs(const at::Tensor& u_btm, const at::Tensor& mean_btm, const at::Tensor& logvar_btm,
                              double ar_tau_bins, double ar_var) {
  const int64_t T = u_btm.size(1);
  const double phi = std::exp(-1.0 / ar_tau_bins);
  // log q − log p without the common −½ log 2π.
  const at::Tensor log_q = -0.5 * (logvar_btm + (u_btm - mean_btm).square() / torch::exp(logvar_btm));
  const at::Tensor u_prev = torch::cat({torch::zeros_like(u_btm.narrow(1, 0, 1)), u_btm.narrow(1, 0, T - 1)}, 1);
  at::Tensor var_t = torch::full({T, 1}, ar_var * (1.0 - phi * phi), u_btm.options());
  var_t[0] = ar_var;  // stationary start
  const at::Tensor log_p = -0.5 * (torch::log(var_t) + (u_btm - phi * u_prev).square() / var_t);
  return (log_q - log_p).sum() / static_cast<double>(u_btm.size(0));
}

LossBreakdown compute_loss(const JsldsModelImpl& model, const ModelOutput& out, const Batch& batch,
                           const LossOptions& w, int64_t step) {
  LossBreakdown result;
  auto add = [&](const char* name, double weight, const at::Tensor& term) {
    result.terms.emplace_back(name, term);
    const at::Tensor weighted = weight * term;
    result.total = result.total.defined() ? result.total + weighted : weighted;
  };
  const bool jslds = out.a_btn.defined();
  if (model.poisson_mode()) {
    TORCH_CHECK(batch.spikes_btn.defined(), "compute_loss: poisson mode needs spike counts in the batch");
    const double trials = static_cast<double>(out.g_btn.size(0));
    add("loss_rnn", w.w_rnn, poisson_nll_per_trial(out.log_rates_btn, batch.spikes_btn));
    if (jslds) {
      add("loss_jslds", w.w_jslds, poisson_nll_per_trial(out.log_rates_a_btn, batch.spikes_btn));
      add("loss_approx", w.w_approx, (out.g_btn - out.a_btn).square().sum() / trials);
      add("loss_fp", w.w_fp, (out.f_estar_btn - out.estar_btn).square().sum() / trials);
    }
    const double beta = kl_warmup_weight(step, w);
    add("loss_kl_ic", beta, kl_initial_condition(out.ic_mean_bn, out.ic_logvar_bn, kInitialConditionPriorVar));
    if (out.inferred_btm.defined()) {
      add("loss_kl_ii", beta,
          kl_inferred_inputs(out.inferred_btm, out.inferred_mean_btm, out.inferred_logvar_btm,
                             model.options.model.ar_tau_bins, model.options.model.ar_var));
    }
  } else {
    TORCH_CHECK(batch.targets_bto.defined(), "compute_loss: task mode needs targets in the batch");
    add("loss_rnn", w.w_rnn, masked_mse(out.outputs_bto, batch.targets_bto, batch.mask_bt));
    if (jslds) {
      add("loss_jslds", w.w_jslds, masked_mse(out.outputs_a_bto, batch.targets_bto, batch.mask_bt));
      add("loss_approx", w.w_approx, (out.g_btn - out.a_btn).square().mean());
      add("loss_fp", w.w_fp, (out.f_estar_btn - out.estar_btn).square().mean());
    }
  }
  at::Tensor l2;
  for (const auto& weight : model.l2_weights()) {
    const at::Tensor s = weight.square().sum();
    l2 = l2.defined() ? l2 + s : s;
  }
  if (l2.defined()) add("loss_l2", w.l2, l2);
  if (jslds && out.ustar_btp.defined()) {
    const at::Tensor u_mean = out.u_btp.mean(/*dim=*/1, /*keepdim=*/true);
    add("loss_xe", w.w_xe, (out.ustar_btp - u_mean).square().mean());
  }
  return result;
}

}  // namespace jslds
