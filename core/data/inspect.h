// What a data file holds and how the current options would bin it (`jslds data inspect`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/config.h"

namespace jslds {

/// Summary of one data file, independent of Torch so that callers need not include it.
struct DataFileReport {
  std::string file;
  std::string format;                  // "nwb" | "mat" | "hdf5" (as data.format = auto decides)
  std::vector<std::string> objects;    // one line per NWB table / MAT variable / HDF5 dataset
  int64_t neurons = 0;                 // units (NWB), matrix rows (MAT), N of /spikes (HDF5)
  int64_t trials = 0;                  // source trials; 0 for a continuous NWB session
  double duration_s = 0.0;             // recording time the rates below are averaged over
  std::vector<double> mean_rate_hz;    // per neuron: spikes / duration_s
  std::vector<int64_t> binned_shape;   // (B, T, N) load_dataset gives with the options; empty
                                       // when it failed (see binned_error) or for task data
  double bin_ms = 0.0;                 // bin width of binned_shape
  std::string binned_provenance;       // load_dataset's provenance line
  std::string binned_error;            // load_dataset's error message, "" on success
};

/// Reads `file` (any format load_dataset reads) and summarises it; then runs load_dataset
/// with `options` (its path replaced by `file`) to report the binned shape, or why binning
/// fails. Throws DataError only when the file itself cannot be read (missing, not
/// HDF5/MAT); binning problems land in `binned_error`.
DataFileReport inspect_data_file(const std::filesystem::path& file, const DataOptions& options);

/// Human-readable multi-line text of a report (what `jslds data inspect` prints).
std::string format_report(const DataFileReport& report);

}  // namespace jslds
