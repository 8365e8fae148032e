// A binned recording or simulated session, and its train/validation split.
//
// Legend: B trials, T time bins, N neurons, K external input channels, O task targets.
// Tensors are float32 on the CPU. Loaders live in core/data/loaders.h (DESIGN §4).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace jslds {

struct Dataset {
  at::Tensor spikes_btn;               // spike counts per bin (B,T,N); undefined for task data
  at::Tensor inputs_btk;               // external inputs (B,T,K); undefined when K = 0
  at::Tensor targets_bto;              // task targets (B,T,O); undefined in poisson data
  at::Tensor mask_bt;                  // 1 where targets count (B,T); undefined = all ones
  std::vector<std::string> conditions; // per-trial condition labels (size B) or empty
  std::vector<int64_t> source_trial;   // with data.window_bins: the recorded trial (0-based) each
                                       // window was cut from (size B); empty otherwise
  std::vector<std::string> neuron_ids; // size N (empty for task data)
  double bin_ms = 0.0;                 // bin width (ms)
  std::string provenance;              // one line: file or simulator, options, shape
  std::map<std::string, at::Tensor> truth;  // simulators' ground truth (name → tensor)

  int64_t n_trials() const;
  int64_t n_bins() const;
  int64_t n_neurons() const;  // 0 for task data
  int64_t n_inputs() const;   // K
};

/// A fingerprint of what a model is trained on: lower-case hex sha256 over the binned
/// tensors (spikes, inputs, targets, mask: name, dtype, shape and bytes), the condition labels
/// and bin_ms, in that order. Independent of the file format and of provenance text, so
/// the same recording read twice, or the same simulation, gives the same value; any change
/// of a count, of the binning or of the trial selection changes it. Checkpoints store it so
/// that resuming or analysing against changed data is noticed.
std::string dataset_sha256(const Dataset& data);

/// Which trials train and validate, and which neurons are held out for co-smoothing.
/// All index lists are sorted ascending.
struct Split {
  std::vector<int64_t> train_trials;
  std::vector<int64_t> valid_trials;
  std::vector<int64_t> heldin_neurons;
  std::vector<int64_t> heldout_neurons;  // empty when data.heldout_neurons = 0
};

}  // namespace jslds
