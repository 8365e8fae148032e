// Legend: B trials, T bins, N neurons, N_in held-in neurons, N_out held-out neurons,
// k inputs, O task outputs, n latent.
#include "core/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "core/blas_core.h"
#include "core/build_id.h"
#include "core/checkpoint_receipt.h"
#include "core/train/metrics.h"

namespace jslds {

namespace {

constexpr int64_t kEvalChunkTrials = 256;

at::Tensor index_tensor(const std::vector<int64_t>& indices) {
  return torch::tensor(indices, torch::kLong);
}

at::Tensor select_trials(const at::Tensor& t, const at::Tensor& trials) {
  return t.defined() ? t.index_select(0, trials).contiguous() : at::Tensor();
}

at::Tensor to_device(const at::Tensor& t, c10::Device device) { return t.defined() ? t.to(device) : t; }

Batch batch_to(const Batch& b, c10::Device device) {
  return {to_device(b.spikes_btn, device), to_device(b.encoder_spikes_btn, device), to_device(b.inputs_btk, device),
          to_device(b.targets_bto, device), to_device(b.mask_bt, device)};
}

int64_t batch_trials(const Batch& b) {
  if (b.spikes_btn.defined()) return b.spikes_btn.size(0);
  return b.targets_bto.size(0);
}

std::string format_terms(const std::vector<std::pair<std::string, double>>& terms) {
  std::string s;
  for (const auto& [name, value] : terms) s += fmt::format("{}{}={:.6g}", s.empty() ? "" : ", ", name, value);
  return s;
}

}  // namespace

ModelDims model_dims(const ModelOptions& model, const Dataset& data, const Split& split) {
  ModelDims dims;
  dims.external_inputs = data.inputs_btk.defined() ? data.inputs_btk.size(2) : 0;
  if (model.mode == "poisson") {
    if (!data.spikes_btn.defined()) {
      throw std::invalid_argument(fmt::format(
          "model.mode = \"poisson\" needs spike counts, but the data ({}) hold none (task data with inputs and "
          "targets: set model.mode = \"task\")",
          data.provenance));
    }
    dims.neurons = data.spikes_btn.size(2);
    dims.heldin_neurons = split.heldin_neurons.empty() ? dims.neurons : static_cast<int64_t>(split.heldin_neurons.size());
  } else if (model.mode == "task") {
    if (!data.targets_bto.defined() || !data.inputs_btk.defined()) {
      throw std::invalid_argument(fmt::format(
          "model.mode = \"task\" needs inputs and targets, but the data ({}) hold {} (spike recordings: set "
          "model.mode = \"poisson\")",
          data.provenance, data.targets_bto.defined() ? "no inputs" : "no targets"));
    }
    dims.outputs = data.targets_bto.size(2);
  } else {
    throw std::invalid_argument("model.mode must be poisson or task, got '" + model.mode + "'");
  }
  return dims;
}

Trainer::Trainer(const RunConfig& config, const Dataset& data, const Split& split, const TrainerOptions& options)
    : config_(config), options_(options) {
  torch::manual_seed(static_cast<uint64_t>(config_.train.seed));
  batch_generator_ = at::detail::createCPUGenerator(static_cast<uint64_t>(config_.train.seed) + 1);
  dims_ = model_dims(config_.model, data, split);
  data_sha256_ = dataset_sha256(data);
  builds_ = numerics_id();
  if (split.train_trials.empty()) throw std::invalid_argument("the split has no training trials");
  const bool poisson = config_.model.mode == "poisson";

  const at::Tensor train_trials = index_tensor(split.train_trials);
  validation_is_training_ = split.valid_trials.empty();
  const at::Tensor valid_trials = validation_is_training_ ? train_trials : index_tensor(split.valid_trials);

  std::vector<int64_t> heldin = split.heldin_neurons;
  if (poisson && heldin.empty()) {
    for (int64_t i = 0; i < dims_.neurons; ++i) heldin.push_back(i);
  }
  const at::Tensor heldin_cpu = index_tensor(heldin);

  auto make_batch = [&](const at::Tensor& trials) {
    Batch b;
    if (poisson) {
      b.spikes_btn = select_trials(data.spikes_btn, trials).to(torch::kFloat32);
      b.encoder_spikes_btn = b.spikes_btn.index_select(2, heldin_cpu).contiguous();
    } else {
      b.targets_bto = select_trials(data.targets_bto, trials).to(torch::kFloat32);
      if (data.mask_bt.defined()) b.mask_bt = select_trials(data.mask_bt, trials).to(torch::kFloat32);
    }
    if (data.inputs_btk.defined()) b.inputs_btk = select_trials(data.inputs_btk, trials).to(torch::kFloat32);
    return b;
  };
  Batch train_cpu = make_batch(train_trials);
  Batch valid_cpu = make_batch(valid_trials);

  model_ = JsldsModel(JsldsModelOptions(config_.model, dims_));
  if (poisson) {
    null_rate_n_ = train_cpu.spikes_btn.mean(at::IntArrayRef{0, 1});
    model_->set_log_rate_bias(null_rate_n_);
  }
  model_->to(options_.device);
  train_ = batch_to(train_cpu, options_.device);
  valid_ = batch_to(valid_cpu, options_.device);
  if (poisson) {
    null_rate_n_ = null_rate_n_.to(options_.device);
    heldin_index_ = heldin_cpu.to(options_.device);
    if (!split.heldout_neurons.empty()) heldout_index_ = index_tensor(split.heldout_neurons).to(options_.device);
  }

  parameters_ = model_->parameters();
  optimizer_ = std::make_unique<torch::optim::Adam>(
      parameters_, torch::optim::AdamOptions(config_.train.lr)
                       .betas(std::make_tuple(0.9, 0.999))
                       .eps(config_.train.adam_eps));
}

Trainer::~Trainer() = default;

Batch Trainer::gather(const Batch& s, const at::Tensor& index) const {
  return {select_trials(s.spikes_btn, index), select_trials(s.encoder_spikes_btn, index),
          select_trials(s.inputs_btk, index), select_trials(s.targets_bto, index), select_trials(s.mask_bt, index)};
}

StepResult Trainer::train_step() {
  const TrainOptions& to = config_.train;
  StepResult result;
  result.step = step_ + 1;
  result.lr = to.lr * std::pow(to.lr_decay, static_cast<double>(step_));

  const int64_t n_train = batch_trials(train_);
  const int64_t batch_size = std::min(to.batch_size, n_train);
  const at::Tensor perm = torch::randperm(n_train, batch_generator_, torch::TensorOptions().dtype(torch::kLong));
  const Batch batch = gather(train_, perm.narrow(0, 0, batch_size).to(options_.device));

  model_->train();
  for (auto& p : parameters_) p.mutable_grad() = at::Tensor();
  ForwardOptions fo;
  fo.sample = true;
  fo.jslds = options_.jslds_chain;
  const ModelOutput out = model_->forward(batch.encoder_spikes_btn, batch.inputs_btk, fo);
  LossBreakdown loss = compute_loss(*model_, out, batch, config_.loss, result.step);

  // One device→host transfer for the total and every term.
  std::vector<at::Tensor> scalars{loss.total.detach()};
  for (const auto& [name, term] : loss.terms) scalars.push_back(term.detach());
  const at::Tensor values = torch::stack(scalars).to(torch::kCPU, torch::kFloat64);
  const double* v = values.data_ptr<double>();
  result.loss = v[0];
  for (size_t i = 0; i < loss.terms.size(); ++i) result.terms.emplace_back(loss.terms[i].first, v[i + 1]);
  if (!std::isfinite(result.loss)) {
    result.finite = false;
    return result;
  }

  loss.total.backward();
  result.grad_norm = torch::nn::utils::clip_grad_norm_(parameters_, to.clip_norm);
  if (!std::isfinite(result.grad_norm)) {
    result.finite = false;
    return result;
  }
  for (auto& group : optimizer_->param_groups()) {
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(result.lr);
  }
  optimizer_->step();
  step_ = result.step;
  return result;
}

Metrics Trainer::evaluate() {
  torch::NoGradGuard no_grad;
  model_->eval();
  const bool poisson = model_->poisson_mode();
  const int64_t total = batch_trials(valid_);
  ForwardOptions fo;
  fo.sample = false;
  fo.jslds = options_.jslds_chain;
  std::vector<at::Tensor> gs, as, es, fes, rates, rates_a, outs, outs_a;
  for (int64_t first = 0; first < total; first += kEvalChunkTrials) {
    const int64_t count = std::min(kEvalChunkTrials, total - first);
    auto part = [&](const at::Tensor& t) { return t.defined() ? t.narrow(0, first, count) : t; };
    const ModelOutput out = model_->forward(part(valid_.encoder_spikes_btn), part(valid_.inputs_btk), fo);
    gs.push_back(out.g_btn);
    if (out.a_btn.defined()) {
      as.push_back(out.a_btn);
      es.push_back(out.estar_btn);
      fes.push_back(out.f_estar_btn);
    }
    if (poisson) {
      rates.push_back(out.log_rates_btn);
      if (out.log_rates_a_btn.defined()) rates_a.push_back(out.log_rates_a_btn);
    } else {
      outs.push_back(out.outputs_bto);
      if (out.outputs_a_bto.defined()) outs_a.push_back(out.outputs_a_bto);
    }
  }
  model_->train();

  Metrics m;
  if (poisson) {
    const at::Tensor y_in = valid_.spikes_btn.index_select(2, heldin_index_);
    const at::Tensor null_in = null_rate_n_.index_select(0, heldin_index_);
    const at::Tensor log_rates = torch::cat(rates, 0);
    const at::Tensor lr_in = log_rates.index_select(2, heldin_index_);
    m["val_nll"] = poisson_nll_mean(lr_in, y_in);
    m["val_bps"] = bits_per_spike(lr_in, y_in, null_in);
    if (!rates_a.empty()) {
      m["val_bps_jslds"] = bits_per_spike(torch::cat(rates_a, 0).index_select(2, heldin_index_), y_in, null_in);
    }
    if (heldout_index_.defined()) {
      m["val_cobps"] = bits_per_spike(log_rates.index_select(2, heldout_index_),
                                      valid_.spikes_btn.index_select(2, heldout_index_),
                                      null_rate_n_.index_select(0, heldout_index_));
    }
  } else {
    m["val_mse"] = masked_mse(torch::cat(outs, 0), valid_.targets_bto, valid_.mask_bt).item<double>();
    if (!outs_a.empty()) {
      m["val_mse_jslds"] = masked_mse(torch::cat(outs_a, 0), valid_.targets_bto, valid_.mask_bt).item<double>();
    }
  }
  if (!as.empty()) {
    m["rel_state_error"] = relative_state_error(torch::cat(gs, 0), torch::cat(as, 0));
    m["fp_residual"] = fixed_point_residual(torch::cat(fes, 0), torch::cat(es, 0));
  }
  return m;
}

TrainOutcome Trainer::run(const std::filesystem::path& run_dir, const TrainHooks& hooks) {
  using Clock = std::chrono::steady_clock;
  const TrainOptions& to = config_.train;
  TrainOutcome outcome;
  outcome.train_seconds = train_seconds_;
  double step_seconds = 0.0;   // time in train_step since the last evaluation
  int64_t steps_timed = 0;
  double loss_sum = 0.0;
  std::map<std::string, double> term_sums;
  double last_lr = 0.0;

  auto checkpoint = [&] {
    if (run_dir.empty()) return;
    const FileDigest digest = save(run_dir);
    if (hooks.on_checkpoint) hooks.on_checkpoint(step_, run_dir / "checkpoint.pt", digest);
  };

  while (step_ < to.steps) {
    if (hooks.stop_requested && hooks.stop_requested()) {
      checkpoint();
      outcome.status = "interrupted";
      outcome.step = step_;
      return outcome;
    }
    const auto t0 = Clock::now();
    const StepResult r = train_step();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    train_seconds_ += dt;
    outcome.train_seconds = train_seconds_;
    if (!r.finite) {
      outcome.status = "diverged";
      outcome.step = r.step;
      outcome.message = std::isfinite(r.loss)
                            ? fmt::format("non-finite gradient norm ({}) at step {} (loss {:.6g}; {})", r.grad_norm,
                                          r.step, r.loss, format_terms(r.terms))
                            : fmt::format("non-finite training loss ({}) at step {} ({})", r.loss, r.step,
                                          format_terms(r.terms));
      return outcome;
    }
    step_seconds += dt;
    ++steps_timed;
    loss_sum += r.loss;
    for (const auto& [name, value] : r.terms) term_sums[name] += value;
    last_lr = r.lr;

    if (step_ % to.eval_every == 0 || step_ == to.steps) {
      Metrics m = evaluate();
      const double count = static_cast<double>(steps_timed);
      m["train_loss"] = loss_sum / count;
      for (const auto& [name, sum] : term_sums) m[name] = sum / count;
      m["lr"] = last_lr;
      m["steps_per_s"] = step_seconds > 0.0 ? count / step_seconds : 0.0;
      outcome.final_metrics = m;
      if (hooks.on_eval) hooks.on_eval(step_, m);
      step_seconds = 0.0;
      steps_timed = 0;
      loss_sum = 0.0;
      term_sums.clear();
    }
    if (step_ % to.checkpoint_every == 0 || step_ == to.steps) checkpoint();
  }
  if (outcome.final_metrics.empty()) outcome.final_metrics = evaluate();  // resumed after the last step
  outcome.status = "done";
  outcome.step = step_;
  return outcome;
}

namespace {

// What must not change between an interrupted run and its resumption: everything but the
// step budget, the evaluation and checkpoint intervals, the analysis settings and the runtime
// placement, which this resets.
RunConfig without_resumable_keys(RunConfig c) {
  c.train.steps = 0;
  c.train.eval_every = 0;
  c.train.checkpoint_every = 0;
  c.analysis = AnalysisOptions{};
  c.runtime = RuntimeOptions{};
  return c;
}

}  // namespace

std::string numerics_id() {
  const std::string core = loaded_blas_core_name();
  return core.empty() ? build_id() : build_id() + ", OpenBLAS " + core;
}

std::string Trainer::state_config_sha256() const {
  return config_sha256(without_resumable_keys(config_));
}

FileDigest Trainer::save(const std::filesystem::path& run_dir) {
  // Staged as .next, then published through the receipt (core/checkpoint_receipt.h), so that a
  // crash at any moment leaves a whole pair that resume can use.
  const FileDigest digest =
      save_checkpoint(staged_checkpoint_path(run_dir / "checkpoint.pt"), *model_, config_, step_, data_sha256_);
  TrainState state;
  state.step = step_;
  state.config_sha256 = state_config_sha256();
  state.data_sha256 = data_sha256_;
  state.train_seconds = train_seconds_;
  state.builds = builds_;
  torch::serialize::OutputArchive archive;
  optimizer_->save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  const std::string s = bytes.str();
  state.optimizer_archive =
      torch::from_blob(const_cast<char*>(s.data()), {static_cast<int64_t>(s.size())}, torch::kUInt8).clone();
  {
    at::Generator global = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(global.mutex());
    state.global_rng_state = global.get_state();
  }
  {
    std::lock_guard<std::mutex> lock(batch_generator_.mutex());
    state.batch_rng_state = batch_generator_.get_state();
  }
  const FileDigest state_digest = save_train_state(staged_checkpoint_path(run_dir / "train_state.pt"), state);
  publish_staged_checkpoint(run_dir, {step_, "checkpoint.pt", digest.bytes, digest.sha256, state_digest.sha256});
  return digest;
}

namespace {

// The keys whose values differ between two configurations, as "key: before -> now".
std::vector<std::string> config_changes(const RunConfig& before, const RunConfig& now) {
  std::vector<std::string> diffs;
  for (const std::string& key : config_keys()) {
    const std::string a = config_value_text(before, key);
    const std::string b = config_value_text(now, key);
    if (a != b) diffs.push_back(fmt::format("{}: {} -> {}", key, a, b));
  }
  return diffs;
}

}  // namespace

void Trainer::resume(const std::filesystem::path& run_dir) {
  const std::filesystem::path state_file = run_dir / "train_state.pt";
  const std::filesystem::path checkpoint_file = run_dir / "checkpoint.pt";
  const TrainState state = load_train_state(state_file);
  if (state.config_sha256 != state_config_sha256()) {
    // Name the keys that changed, read from the configuration checkpoint.pt holds (when it
    // can be read: the refusal itself does not depend on it).
    std::string changed;
    try {
      std::vector<std::string> diffs = config_changes(without_resumable_keys(load_checkpoint(checkpoint_file).config),
                                                      without_resumable_keys(config_));
      if (diffs.size() > 5) {
        diffs.resize(5);
        diffs.push_back("…");
      }
      if (!diffs.empty()) changed = fmt::format("changed: {}; ", fmt::join(diffs, ", "));
    } catch (const std::exception&) {
    }
    throw CheckpointError(state_file,
                          fmt::format("was written for a different run configuration ({}only train.steps, "
                                      "train.eval_every, train.checkpoint_every, [analysis] and [runtime] may "
                                      "change when resuming); start a new run directory instead",
                                      changed));
  }
  if (!state.data_sha256.empty() && state.data_sha256 != data_sha256_) {
    throw CheckpointError(state_file,
                          fmt::format("was written for other data: the data the configuration names ({}) now have "
                                      "the fingerprint {}, the run was trained on {} (a file replaced or "
                                      "regenerated since); restore the data the run was trained on, or start a new "
                                      "run directory",
                                      config_.data.path.empty() ? "data.simulate = " + config_.data.simulate
                                                                : config_.data.path,
                                      data_sha256_.substr(0, 12), state.data_sha256.substr(0, 12)));
  }
  std::string stored_config;
  const int64_t checkpoint_step = load_parameters(checkpoint_file, *model_, &stored_config);
  // What this resume changes (only keys a resume may change differ, or the check above would
  // have refused): said, so a resume that re-reads an edited file is not silent about it.
  try {
    resumed_with_changes_ =
        config_changes(parse_config(stored_config, checkpoint_file.string() + " (entry 'config')"), config_);
  } catch (const std::exception&) {
    resumed_with_changes_.clear();
  }
  if (checkpoint_step != state.step) {
    throw CheckpointError(state_file, fmt::format("holds step {} but checkpoint.pt holds step {}; the pair is "
                                                  "inconsistent (interrupted while writing?)",
                                                  state.step, checkpoint_step));
  }
  const at::Tensor archive_bytes = state.optimizer_archive.contiguous();
  std::istringstream in(std::string(static_cast<const char*>(archive_bytes.data_ptr()), archive_bytes.nbytes()));
  torch::serialize::InputArchive archive;
  archive.load_from(in, options_.device);
  optimizer_->load(archive);
  {
    at::Generator global = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(global.mutex());
    global.set_state(state.global_rng_state);
  }
  {
    std::lock_guard<std::mutex> lock(batch_generator_.mutex());
    batch_generator_.set_state(state.batch_rng_state);
  }
  step_ = state.step;
  train_seconds_ = state.train_seconds;
  resumed_without_train_seconds_ = !state.has_train_seconds;
  // The last build named in the list ("B" or "…; from step K: B") against this one.
  const size_t later = state.builds.rfind("; from step ");
  const std::string last = state.builds.empty()       ? std::string("not recorded")
                           : later == std::string::npos ? state.builds
                                                        : state.builds.substr(state.builds.find(": ", later) + 2);
  resumed_from_other_build_.clear();
  builds_ = state.builds.empty() ? "not recorded" : state.builds;
  // Only steps still to train make another build part of the run's history (a finished run
  // resumed for its analysis trains none).
  if (const std::string here = numerics_id(); last != here && step_ < config_.train.steps) {
    resumed_from_other_build_ = last;
    if (step_ > 0) builds_ += fmt::format("; from step {}: {}", step_, here);
    else builds_ = here;
  }
}

}  // namespace jslds
