// Analysis of a trained JsldsModel (MODEL.md §7 on the model's generator).
// Letters: B trials, T bins, n latent dimension, p points.
#include "core/analysis/model_analysis.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/model/jslds_model.h"
#include "core/train/loss.h"

namespace jslds::analysis {
namespace {

int64_t trial_count(const JsldsModelImpl& model, const Batch& trials) {
  const at::Tensor& lead = model.poisson_mode() ? trials.encoder_spikes_btn : trials.inputs_btk;
  if (!lead.defined() || lead.dim() != 3) {
    throw std::invalid_argument(fmt::format(
        "model analysis: the trials hold no {} (expected a (trials, bins, channels) tensor for a {}-mode model)",
        model.poisson_mode() ? "held-in spike counts" : "external inputs", model.poisson_mode() ? "poisson" : "task"));
  }
  return lead.size(0);
}

// Restores the module's training flag when the collection ends (also on exceptions).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(JsldsModelImpl& model) : model_(model), was_training_(model.is_training()) { model_.eval(); }
  ~EvalModeGuard() { model_.train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  JsldsModelImpl& model_;
  bool was_training_;
};

}  // namespace

CollectedStates collect_states(JsldsModelImpl& model, const Batch& trials, int64_t chunk_trials) {
  if (chunk_trials < 1) throw std::invalid_argument(fmt::format("collect_states: chunk_trials must be >= 1, got {}", chunk_trials));
  const int64_t total = trial_count(model, trials);
  if (total == 0) throw std::invalid_argument("model analysis: no trials to collect expansion points and states from");
  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(model);
  ForwardOptions fo;
  fo.sample = false;
  fo.jslds = true;
  const int64_t n = model.latent_dim();
  std::vector<at::Tensor> estar, states;
  for (int64_t first = 0; first < total; first += chunk_trials) {
    const int64_t count = std::min(chunk_trials, total - first);
    auto part = [&](const at::Tensor& t) { return t.defined() ? t.narrow(0, first, count) : t; };
    const ModelOutput out = model.forward(part(trials.encoder_spikes_btn), part(trials.inputs_btk), fo);
    states.push_back(out.g_btn.reshape({-1, n}));
    estar.push_back(out.estar_btn.reshape({-1, n}));
  }
  return {torch::cat(estar).contiguous(), torch::cat(states).contiguous()};
}

AutonomousMap generator_map(const JsldsModelImpl& model) {
  torch::NoGradGuard no_grad;
  const GeneratorCellImpl& cell = *model.cell;
  const int64_t n = model.latent_dim();
  if (cell.options.kind() == CellKind::kTanh) {
    return tanh_map(TanhWeights{cell.w_h.detach().clone(), cell.b.detach().clone()});
  }
  const std::vector<at::Tensor> w_rz = cell.w_rzh.detach().split(n, 0);  // [W_rh; W_zh]
  const std::vector<at::Tensor> b_rz = (cell.b_rz.detach() + cell.fg_bias).split(n, 0);  // [b_r; b_z + b_fg]
  GruWeights w;
  w.w_rh = w_rz[0].clone();
  w.w_zh = w_rz[1].clone();
  w.w_ch = cell.w_ch.detach().clone();
  w.b_r = b_rz[0].clone();
  w.b_z = b_rz[1].clone();
  w.b_c = cell.b_c.detach().clone();
  return gru_map(w);
}

AnalysisInput model_analysis_input(JsldsModelImpl& model, const Batch& trials, double bin_ms) {
  CollectedStates collected = collect_states(model, trials);
  AnalysisInput input;
  input.set_map(generator_map(model));
  input.expansion_points_pn = std::move(collected.expansion_points_pn);
  input.states_pn = std::move(collected.states_pn);
  input.bin_ms = bin_ms;
  return input;
}

AnalysisResult analyse_model(JsldsModelImpl& model, const Batch& trials, const AnalysisOptions& options,
                             double bin_ms, uint64_t seed, const AnalysisProgressFn& progress,
                             const std::function<bool()>& stop_requested) {
  const AnalysisInput input = model_analysis_input(model, trials, bin_ms);
  if (progress) {
    progress("collect", fmt::format("{} expansion points and generator states from {} trials (latent dimension {})",
                                    input.states_pn.size(0), trial_count(model, trials), model.latent_dim()));
  }
  FixedPointSearchOptions search = FixedPointSearchOptions::from_config(options);
  search.stop_requested = stop_requested;
  return run_analysis(input, options, seed, progress, &search);
}

}  // namespace jslds::analysis
