// Checkpoints (DESIGN §3–4): checkpoint.pt holds the model, train_state.pt what resuming
// needs besides it. Both are written to a temporary file, fsynced and renamed, so a reader
// sees either the previous complete file or the new one.
//
// checkpoint.pt is a torch zip archive (torch::pickle_save) that Python reads with
// `torch.load(path)`: a dict of
//   "<parameter or buffer name>" → tensor (float32, CPU), e.g. "cell.w_rzh", "encoder.gru.weight_ih_l0"
//   "config"          → the canonical run configuration (TOML text, core/config.h to_toml)
//   "format"          → "jslds-checkpoint/1"
//   "step"            → optimiser steps done
//   "dims.neurons", "dims.heldin_neurons", "dims.external_inputs", "dims.outputs" → ints (ModelDims)
//   "content_sha256"  → hex sha256 over every other entry (names, dtypes, shapes, bytes, text)
// Loading recomputes the content hash and refuses a mismatch, and refuses files torch cannot
// parse (truncated, flipped bytes in the archive structure): a corrupted checkpoint is never
// loaded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include <ATen/core/Tensor.h>

#include "core/atomic_file.h"  // FileDigest, write_file_atomically
#include "core/config.h"
#include "core/model/jslds_model.h"

namespace jslds {

/// A checkpoint or train-state file that cannot be written, read or trusted.
/// what() reads "PATH: problem".
class CheckpointError : public std::runtime_error {
 public:
  CheckpointError(const std::filesystem::path& path, const std::string& message);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A model restored from checkpoint.pt, on the CPU, in training mode as constructed.
struct LoadedModel {
  RunConfig config;         // parsed from the stored canonical TOML
  std::string config_toml;  // that text
  ModelDims dims;
  int64_t step = 0;         // optimiser steps done when it was saved
  JsldsModel model{nullptr};
  std::string data_sha256;  // dataset_sha256 of the training data; empty in older checkpoints
};

/// Saves the model's parameters and buffers (moved to the CPU), the canonical config, the
/// step and (when not empty) `data_sha256`, the dataset_sha256 of the training data.
/// Throws CheckpointError when the file cannot be written.
FileDigest save_checkpoint(const std::filesystem::path& file, const JsldsModelImpl& model, const RunConfig& config,
                           int64_t step, const std::string& data_sha256 = "");

/// Reads and verifies checkpoint.pt and rebuilds the model it holds. Throws CheckpointError
/// when the file is missing, unreadable, truncated or altered (content hash mismatch), is
/// not a jslds checkpoint, or its parameters do not fit the model its config describes;
/// ConfigError when its stored configuration is invalid.
LoadedModel load_checkpoint(const std::filesystem::path& checkpoint_pt);

/// Copies the parameters and buffers of a verified checkpoint into `model` (same
/// architecture required; device kept). Returns the checkpoint's step; with `config_toml`,
/// also the stored configuration's text (not parsed). Throws as load_checkpoint.
int64_t load_parameters(const std::filesystem::path& checkpoint_pt, JsldsModelImpl& model,
                        std::string* config_toml = nullptr);

/// What resuming needs besides the model (train_state.pt).
struct TrainState {
  int64_t step = 0;
  std::string config_sha256;        // config_sha256() of the run configuration
  at::Tensor optimizer_archive;     // uint8 bytes of the serialised torch::optim::Adam state
  at::Tensor global_rng_state;      // uint8 state of Torch's default CPU generator
  at::Tensor batch_rng_state;       // uint8 state of the mini-batch sampler's generator
  std::string data_sha256;          // dataset_sha256 of the training data; empty: not recorded
  double train_seconds = 0.0;       // wall seconds in optimiser steps for steps 1..step, summed
                                    // over every attempt; 0 in files written before it was kept
  bool has_train_seconds = false;   // false: an older file without that entry
  std::string builds;               // the jslds builds (core/build_id.h) that trained steps 1..step:
                                    // "B", or "B1; from step 40: B2" after a resume by another
                                    // build; empty in files written before it was kept
};

/// Saves train_state.pt (same archive format and content hash as checkpoint.pt).
FileDigest save_train_state(const std::filesystem::path& file, const TrainState& state);

/// Reads and verifies train_state.pt. Throws CheckpointError as load_checkpoint.
TrainState load_train_state(const std::filesystem::path& file);

}  // namespace jslds
