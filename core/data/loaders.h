// Reading recordings into a Dataset, splitting it, simulating sessions with known dynamics,
// and writing the project's own HDF5 layout (DESIGN §4; formats and generative models in
// docs/data.md).
//
// Legend: B trials, T time bins, N neurons, K external input channels, O task targets.
//
// Thread safety: the functions are reentrant, but the HDF5 C library they use is not built
// thread-safe on Debian, so call them from one thread at a time.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include "core/config.h"
#include "core/data/dataset.h"

namespace jslds {

/// Bad or unreadable input data. what() reads "FILE: OBJECT: problem (expected …)";
/// `file` is the data file (or "simulate KIND" for simulators) and `object` the dataset,
/// table, variable or field inside it ("" when the problem concerns the whole file).
class DataError : public std::runtime_error {
 public:
  DataError(std::string file, std::string object, const std::string& message);
  const std::string& file() const { return file_; }
  const std::string& object() const { return object_; }
  /// The message without the "FILE: OBJECT: " prefix.
  const std::string& detail() const { return detail_; }

 private:
  std::string file_;
  std::string object_;
  std::string detail_;
};

/// Loads the data a run configuration names: `options.simulate` (in memory, see simulate())
/// when set, else the file `options.path` read by `options.format` ("auto" decides by file
/// signature, then extension: a "MATLAB" text header → MAT (v5, or v7.3 = HDF5, both read by
/// libmatio); HDF5 files holding /units or a root nwb_version attribute are NWB, other HDF5
/// files the project layout). Binning, trial tables, windows and re-binning follow `options`
/// as documented in docs/data.md. Spike counts are float32 (B,T,N) holding non-negative
/// integers. A relative data.path is relative to the current directory.
/// Throws DataError naming the file and object for missing files, wrong formats, missing
/// datasets/variables (listing what is there), negative, fractional or non-finite counts,
/// zero neurons or trials, windows longer than every trial, inconsistent shapes, and binned
/// tensors larger than half of the machine's memory (checked before allocating).
Dataset load_dataset(const DataOptions& options);

/// Splits trials into train/validation and neurons into held-in/held-out (co-smoothing).
/// Deterministic in (data shape, conditions, options.split_seed, options.valid_fraction,
/// options.heldout_neurons). With condition labels the validation trials are drawn per
/// condition (stratified: round(valid_fraction · trials of that condition), at least one
/// when valid_fraction > 0 and the condition has ≥ 2 trials). Without labels
/// round(valid_fraction · B) trials validate. round(heldout_neurons · N) neurons are held out
/// (none for task data). Every index list is sorted ascending; at least one trial always
/// trains. With options.split_by = "trial" and windows (data.source_trial), the units drawn
/// are the recorded trials the windows were cut from: all windows of one trial go to the
/// same side, counted and stratified as trials. Throws DataError when the dataset has no
/// trials, or when split_by = "trial" leaves fewer than two recorded trials to draw.
Split make_split(const Dataset& data, const DataOptions& options);

/// Simulates a session with known ground truth in `Dataset::truth` (docs/data.md gives every
/// equation and default). `kind` is one of flipflop | oscillator | ring-theta | lorenz.
/// Sizes come from options.sim_trials / sim_bins / sim_neurons (0 = the simulator's
/// default), the bin width from options.bin_ms, the oscillation/theta frequency from
/// options.freq_hz, and all randomness from options.sim_seed: the same options give a
/// bit-identical Dataset. flipflop yields task data (inputs_btk K=6, targets_bto O=3,
/// mask_bt, spikes undefined); the others yield float32 Poisson counts spikes_btn.
/// Throws DataError for an unknown kind, a negative sim_seed or impossible sizes (negative,
/// too large for half of the machine's memory, lorenz with fewer than 2 samples, flipflop
/// with ≤ 5 bins, freq_hz at or above the Nyquist frequency 500/bin_ms Hz).
Dataset simulate(const std::string& kind, const DataOptions& options);

/// Writes `data` in the project's HDF5 layout (DESIGN §4): /spikes (B,T,N) uint32 counts,
/// /inputs (B,T,K), /targets (B,T,O), /mask (B,T) float32 when defined, /condition (B)
/// and /neuron_ids (N) strings when present, /truth/NAME for every truth tensor (its own
/// dtype), root attributes bin_ms (float64) and provenance (string). Object modification
/// times are not recorded, so equal datasets give byte-identical files. Overwrites `file`.
/// Throws DataError when `file` is a directory, its directory does not exist, the file
/// cannot be created or a write fails.
void write_dataset_h5(const Dataset& data, const std::filesystem::path& file);

/// True when `file` is an HDF5 file whose root has a string attribute `name` starting with
/// `prefix` (e.g. provenance "simulate …" of write_dataset_h5, format "jslds-analysis" of
/// analysis.h5): how commands recognise files they wrote before replacing one. Never throws.
bool hdf5_root_attribute_starts_with(const std::filesystem::path& file, const std::string& name,
                                     const std::string& prefix);

}  // namespace jslds
