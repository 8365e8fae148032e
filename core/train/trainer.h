// The training loop of MODEL.md §5: Adam (β = (0.9, 0.999), the configured — large — eps),
// learning rate lr0 · lr_decay^(step−1), global gradient-norm clipping, KL warm-up,
// evaluation every `eval_every` steps (MODEL §6 metrics on the validation trials),
// checkpoints every `checkpoint_every` steps and at the end, and a non-finite loss or
// gradient ending the run as `diverged`.
//
// Determinism: the model init, the posterior samples and dropout masks draw from Torch's
// global CPU generator seeded with train.seed; mini-batches from a separate generator seeded
// with train.seed + 1. With one intra-op thread the loss sequence is bit-identical for the
// same config, and a resumed run (train_state.pt restores the optimiser and both generators)
// continues the uninterrupted run's sequence. Because the global generator is shared, run
// one Trainer at a time in a process (construct the next after the previous finished).
//
// Legend: B trials, T bins, N neurons, N_in held-in neurons, k inputs, O task outputs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <ATen/core/Generator.h>
#include <c10/core/Device.h>

#include "core/config.h"
#include "core/data/dataset.h"
#include "core/model/jslds_model.h"
#include "core/train/checkpoint.h"
#include "core/train/loss.h"

namespace torch::optim {
class Adam;
}

namespace jslds {

/// Metric name → value (MODEL §6 names: val_bps, val_bps_jslds, val_cobps, val_nll,
/// rel_state_error, fp_residual, val_mse, val_mse_jslds; plus train_loss, the loss terms,
/// lr, steps_per_s in progress reports).
using Metrics = std::map<std::string, double>;

struct TrainerOptions {
  /// Where the model and data live (runtime.device resolved by select_device()).
  c10::Device device = c10::Device(c10::DeviceType::CPU);
  /// Run the JSLDS chain and its loss terms. False only for the co-training overhead benchmark.
  bool jslds_chain = true;
};

/// One optimiser step's outcome.
struct StepResult {
  int64_t step = 0;         // steps done after this one (1-based index of this step)
  double loss = 0.0;        // total loss before the update
  std::vector<std::pair<std::string, double>> terms;  // unweighted loss terms
  double grad_norm = 0.0;   // global gradient norm before clipping
  double lr = 0.0;          // learning rate used
  bool finite = true;       // false: loss or gradient non-finite; the update was NOT applied
};

/// Callbacks of Trainer::run. All optional.
struct TrainHooks {
  /// Checked before every step: true stops the run gracefully (status "interrupted")
  /// after writing a checkpoint.
  std::function<bool()> stop_requested;
  /// Called at every evaluation with the progress metrics.
  std::function<void(int64_t step, const Metrics& metrics)> on_eval;
  /// Called after checkpoint.pt and train_state.pt were written.
  std::function<void(int64_t step, const std::filesystem::path& checkpoint, const FileDigest& digest)> on_checkpoint;
};

struct TrainOutcome {
  std::string status;      // "done" | "diverged" | "interrupted"
  int64_t step = 0;        // steps done (diverged: the step whose loss was non-finite)
  std::string message;     // diverged: what was non-finite
  Metrics final_metrics;   // last evaluation (empty when diverged before the first)
  /// Wall seconds spent in optimiser steps (train_step, not evaluation or checkpoints) for
  /// every step this run's parameters embody: a resumed run adds this attempt's time to the
  /// time recorded in train_state.pt up to its checkpoint (time after the last checkpoint of
  /// an interrupted attempt was lost with those steps and is not counted).
  double train_seconds = 0.0;
};

/// What computes a training's numbers: build_id() (core/build_id.h) and, when OpenBLAS is
/// loaded, its kernel set, e.g. "0.1.0 (git 85f23ed1a2b3), OpenBLAS SkylakeX". Trainer::builds()
/// lists these for every stretch of steps.
std::string numerics_id();

class Trainer {
 public:
  /// Builds the model for `data` (shapes from the data and `split`) and moves the training
  /// and validation trials to the device. Seeds Torch's global generator with train.seed.
  /// Throws std::invalid_argument when the data do not fit model.mode (e.g. task data in
  /// poisson mode) and c10::Error on inconsistent shapes.
  Trainer(const RunConfig& config, const Dataset& data, const Split& split, const TrainerOptions& options = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// One optimiser step on a random mini-batch of training trials.
  StepResult train_step();

  /// MODEL §6 metrics on the validation trials (posterior means, no dropout), in chunks.
  Metrics evaluate();

  /// Trains until train.steps (from the current step), evaluating and checkpointing into
  /// `run_dir` (empty: no files written).
  TrainOutcome run(const std::filesystem::path& run_dir, const TrainHooks& hooks = {});

  /// Writes RUN_DIR/checkpoint.pt then RUN_DIR/train_state.pt; returns the checkpoint's digest.
  FileDigest save(const std::filesystem::path& run_dir);

  /// Restores model, optimiser, step and generators from RUN_DIR/checkpoint.pt and
  /// train_state.pt. Throws CheckpointError when they are corrupted, disagree on the step,
  /// or were written for a different configuration (train.steps, train.eval_every,
  /// train.checkpoint_every, [analysis] and [runtime] may differ).
  void resume(const std::filesystem::path& run_dir);

  int64_t step() const { return step_; }
  JsldsModel& model() { return model_; }
  const RunConfig& config() const { return config_; }
  const ModelDims& dims() const { return dims_; }
  /// dataset_sha256 of the data this trainer was built on (stored in its checkpoints).
  const std::string& data_sha256() const { return data_sha256_; }
  /// Validation trials on the device (the training trials when there are none).
  const Batch& validation() const { return valid_; }
  bool validation_is_training() const { return validation_is_training_; }
  /// After resume(): true when train_state.pt predates the train_seconds bookkeeping, so
  /// train_seconds counts only the steps trained from here on.
  bool resumed_without_train_seconds() const { return resumed_without_train_seconds_; }
  /// After resume(): the keys that may change on resume and did, as "key: before -> now",
  /// against the configuration checkpoint.pt holds (e.g. "train.steps: 600 -> 1000").
  const std::vector<std::string>& resumed_with_changes() const { return resumed_with_changes_; }
  /// The jslds builds (core/build_id.h) that trained this run: this build's id, or after a
  /// resume the stored list, extended ("…; from step N: B") when this build differs from the
  /// last one. Saved in train_state.pt; reported in the result event.
  const std::string& builds() const { return builds_; }
  /// After resume(): the build that trained the steps before it when that is not this build
  /// ("" otherwise; "not recorded" for train_state.pt files written before builds were kept).
  const std::string& resumed_from_other_build() const { return resumed_from_other_build_; }
  /// Per-neuron mean training rate (N) (counts per bin): the bits-per-spike null model.
  const at::Tensor& null_rate() const { return null_rate_n_; }

 private:
  Batch gather(const Batch& source, const at::Tensor& index) const;
  std::string state_config_sha256() const;

  RunConfig config_;
  TrainerOptions options_;
  ModelDims dims_;
  JsldsModel model_{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::vector<at::Tensor> parameters_;
  at::Generator batch_generator_;
  Batch train_;
  Batch valid_;
  bool validation_is_training_ = false;
  at::Tensor heldin_index_;   // (N_in) long, on the device
  at::Tensor heldout_index_;  // (N_out) long, undefined without co-smoothing
  at::Tensor null_rate_n_;
  int64_t step_ = 0;
  double train_seconds_ = 0.0;  // seconds in train_step for steps 1..step_, over every attempt
  bool resumed_without_train_seconds_ = false;
  std::vector<std::string> resumed_with_changes_;
  std::string builds_;
  std::string resumed_from_other_build_;
  std::string data_sha256_;  // dataset_sha256 of the data given to the constructor
};

/// The model dimensions a dataset and split give (exposed for tests and tools).
ModelDims model_dims(const ModelOptions& model, const Dataset& data, const Split& split);

}  // namespace jslds
