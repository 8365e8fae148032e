// Internal to core/data: the per-format readers behind load_dataset() and the helpers they
// share (trial windows, count validation, the data log).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/data/dataset.h"

namespace jslds::h5 {
class File;
}

namespace jslds::data_detail {

enum class Format { kHdf5, kNwb, kMat };
const char* format_name(Format f);

/// Resolves data.format ("auto" looks at the file: a "MATLAB" text header → mat; an HDF5
/// signature with /units or a root nwb_version attribute → nwb; other HDF5 → hdf5; then the
/// extension). Throws DataError when the file is missing or the format cannot be told.
Format detect_format(const std::filesystem::path& file, const std::string& requested);

Dataset read_project_h5(const std::filesystem::path& file, const DataOptions& options);
Dataset read_nwb(const std::filesystem::path& file, const DataOptions& options);
Dataset read_mat(const std::filesystem::path& file, const DataOptions& options);

/// The NWB intervals tables (groups under /intervals) as "intervals/NAME", in file order.
std::vector<std::string> nwb_interval_tables(const h5::File& f);

/// The absolute path of the NWB intervals table that data.trials = `requested` names:
/// "" → "/intervals/trials" when the file has it, else "" (a continuous session);
/// "intervals/x" and "/intervals/x" as given; a bare name "x" that is not a group at the
/// root → "/intervals/x" when that table exists. Does not check that the result exists.
std::string nwb_trials_table(const h5::File& f, const std::string& requested);

/// One window cut from one source trial: bins [first_bin, first_bin + plan.bins).
struct Window {
  int64_t trial = 0;
  int64_t first_bin = 0;
};
struct WindowPlan {
  std::vector<Window> windows;
  int64_t bins = 0;   // T of every window
  std::string note;   // what was cropped/split/dropped, "" when trials were used whole
};

/// Turns trials of `trial_bins[i]` bins into equal-length windows (docs/data.md, "Trials
/// and windows"): window_bins = 0 crops every trial to the shortest; window_bins > 0 splits
/// each trial into consecutive non-overlapping windows of that many bins, dropping the
/// remainder and trials shorter than one window. Throws DataError (file, object) when
/// there are no trials, the shortest trial has no whole bin, or the window is longer than
/// every trial.
/// Before listing the windows it checks with check_memory() that the (B, T, N = `neurons`)
/// float32 tensor they make fits in memory. Errors number trials from `first_trial_number`
/// (1 for MAT files, in MATLAB's notation; 0 for NWB table rows).
WindowPlan plan_windows(const std::vector<int64_t>& trial_bins, int64_t window_bins,
                        double bin_ms, int64_t neurons, const std::string& file,
                        const std::string& object, int64_t first_trial_number = 0);

/// The number of whole bins of `bin_s` seconds in `duration_s` seconds, saturated at 2^62
/// so that absurd bin widths cannot overflow (check_memory rejects such sizes afterwards).
int64_t whole_bins(double duration_s, double bin_s);

/// Checks that every value is a finite, non-negative whole number. `describe(i)` names
/// element i for the message (e.g. "D(3).data(5,17)"). Throws DataError(file, object).
template <class Describe>
void check_counts(const double* values, size_t n, const std::string& file,
                  const std::string& object, Describe describe);

/// Guards an allocation before it happens: throws DataError(file, object) when `elements`
/// values of `bytes_per_element` bytes each would take more than half of this machine's
/// physical memory (sysconf). The message reads "<what> = X values (Y GiB) need more than
/// half of this machine's Z GiB of memory: expected <advice>". `elements` is a double so
/// that absurd products (e.g. a 0.001 ms bin width) cannot overflow.
void check_memory(double elements, double bytes_per_element, const std::string& file,
                  const std::string& object, const std::string& what, const std::string& advice);

/// One line to the data log (stderr, which `jslds train` sends to the run's log.txt), or to
/// the innermost live LogCapture of this thread.
void log_data(const std::string& message);

/// While alive, collects this thread's log_data() lines instead of printing them (`jslds
/// data inspect` shows them as notes of the binned shape). Scoped; nests.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
  std::vector<std::string>* previous_;
};

/// Logs one line naming the [data] options that `format` does not use but that differ
/// from their defaults (e.g. data.trials on a MAT file), so that nothing is ignored silently.
void note_unused_options(const std::string& file, Format format, const DataOptions& options);

[[noreturn]] void throw_bad_count(const std::string& file, const std::string& object,
                                  const std::string& element, double value);

template <class Describe>
void check_counts(const double* values, size_t n, const std::string& file,
                  const std::string& object, Describe describe) {
  for (size_t i = 0; i < n; ++i) {
    const double v = values[i];
    // NaN fails every comparison, so `!(v >= 0)` catches it along with negatives.
    if (!(v >= 0.0) || v > 1e15 || v != static_cast<double>(static_cast<int64_t>(v)))
      throw_bad_count(file, object, describe(i), v);
  }
}

}  // namespace jslds::data_detail
