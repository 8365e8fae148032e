// What a data file holds and how the current options would bin it (`jslds data inspect`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"

namespace jslds {

/// Summary of one data file, independent of Torch so that callers need not include it.
/// The summary part describes the file as stored; the binned part what load_dataset makes
/// of it with the given [data] options.
struct DataFileReport {
  std::string file;
  std::string format;                  // "nwb" | "mat" | "hdf5" (as data.format = auto decides)
  std::vector<std::string> objects;    // one line per NWB table / MAT variable / HDF5 dataset
  std::string written_by;              // HDF5 root attribute "provenance" (e.g. the simulator)
  // Each of these is nullopt when the options do not let the file say (see summary_note).
  std::optional<int64_t> neurons;      // units (NWB), matrix rows (MAT), N of /spikes (HDF5)
  std::optional<int64_t> trials;       // source trials; 0 for a continuous NWB session
  std::optional<double> duration_s;    // recording time the rates below are averaged over
  std::optional<double> total_spikes;  // every spike in the file (not only inside trials)
  std::vector<double> mean_rate_hz;    // per neuron: spikes / duration_s
  int64_t task_inputs = 0, task_targets = 0;  // K and O of project-layout task data
  std::string summary_note;            // why a summary value is unknown, "" when complete

  std::vector<int64_t> binned_shape;   // (B, T, N) load_dataset gives with the options (N = 0
                                       // for task data); empty when binning failed
  double bin_ms = 0.0;                 // bin width of binned_shape
  double binned_spikes = 0.0;          // total count in the binned tensor
  int64_t binned_inputs = 0, binned_targets = 0;  // K, O of task data
  std::vector<std::pair<std::string, int64_t>> condition_counts;  // label → trials, by label
  std::vector<std::string> binned_notes;  // what load_dataset logged (crops, ignored options)
  std::string binned_provenance;       // load_dataset's provenance line
  std::string binned_error;            // load_dataset's error message, "" on success
};

/// Reads `file` (any format load_dataset reads) and summarises it; then runs load_dataset
/// with `options` (its path replaced by `file`, simulate cleared) to report the binned shape,
/// or why binning fails. Throws DataError when the file itself cannot be read (missing,
/// empty, not HDF5/MAT, not openable by HDF5 or libmatio); problems of the options (a missing
/// variable or field, a window longer than every trial, …) land in `summary_note` and
/// `binned_error` instead, so the caller can show what the file holds.
DataFileReport inspect_data_file(const std::filesystem::path& file, const DataOptions& options);

/// Human-readable multi-line text of a report (what `jslds data inspect` prints). With
/// `with_binned_error` false the "binned:" line only says that binning failed, for callers
/// that print binned_error themselves (the CLI prints it on stderr).
std::string format_report(const DataFileReport& report, bool with_binned_error = true);

}  // namespace jslds
