// Dataset accessors, DataError, load_dataset() dispatch, trial windows and the
// train/validation split.
// Legend: B trials, T time bins, N neurons, K external inputs.
#include "core/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include <unistd.h>

#include <fmt/format.h>

#include "core/config.h"
#include "core/data/hdf5_file.h"
#include "core/data/loaders.h"
#include "core/data/readers.h"

namespace jslds {

int64_t Dataset::n_trials() const {
  if (spikes_btn.defined()) return spikes_btn.size(0);
  if (inputs_btk.defined()) return inputs_btk.size(0);
  if (targets_bto.defined()) return targets_bto.size(0);
  return 0;
}

int64_t Dataset::n_bins() const {
  if (spikes_btn.defined()) return spikes_btn.size(1);
  if (inputs_btk.defined()) return inputs_btk.size(1);
  if (targets_bto.defined()) return targets_bto.size(1);
  return 0;
}

int64_t Dataset::n_neurons() const { return spikes_btn.defined() ? spikes_btn.size(2) : 0; }

int64_t Dataset::n_inputs() const { return inputs_btk.defined() ? inputs_btk.size(2) : 0; }

static std::string data_error_text(const std::string& file, const std::string& object,
                                   const std::string& message) {
  if (object.empty()) return fmt::format("{}: {}", file, message);
  return fmt::format("{}: {}: {}", file, object, message);
}

DataError::DataError(std::string file, std::string object, const std::string& message)
    : std::runtime_error(data_error_text(file, object, message)),
      file_(std::move(file)),
      object_(std::move(object)),
      detail_(message) {}

namespace data_detail {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// The (B, T, N) float32 tensor of binned counts must fit (see check_memory).
void check_binned_size(double trials, int64_t bins, int64_t neurons, double bin_ms,
                       const std::string& file, const std::string& object) {
  check_memory(trials * static_cast<double>(bins) * static_cast<double>(neurons), 4.0, file,
               object,
               fmt::format("binning at {} ms: {} trials × {} bins × {} neurons", bin_ms, trials,
                           bins, neurons),
               "a larger data.bin_ms");
}

}  // namespace

const char* format_name(Format f) {
  switch (f) {
    case Format::kHdf5: return "hdf5";
    case Format::kNwb: return "nwb";
    case Format::kMat: return "mat";
  }
  return "?";
}

namespace {
thread_local std::vector<std::string>* g_log_capture = nullptr;
}  // namespace

LogCapture::LogCapture() : previous_(g_log_capture) { g_log_capture = &lines_; }
LogCapture::~LogCapture() { g_log_capture = previous_; }

void log_data(const std::string& message) {
  if (g_log_capture) g_log_capture->push_back(message);
  else std::cerr << "data: " << message << "\n";
}

void note_unused_options(const std::string& file, Format format, const DataOptions& o) {
  const DataOptions defaults;
  std::vector<std::string> unused;
  auto quoted = [](const std::string& v) { return "'" + v + "'"; };
  const bool nwb = format == Format::kNwb, mat = format == Format::kMat;
  if (!nwb && o.trials != defaults.trials) unused.push_back("data.trials = " + quoted(o.trials));
  if (!mat && o.variable != defaults.variable)
    unused.push_back("data.variable = " + quoted(o.variable));
  if (!mat && o.field != defaults.field) unused.push_back("data.field = " + quoted(o.field));
  if (!mat && o.source_bin_ms != defaults.source_bin_ms)
    unused.push_back(fmt::format("data.source_bin_ms = {}", o.source_bin_ms));
  if (format == Format::kHdf5 && o.condition_field != defaults.condition_field)
    unused.push_back("data.condition_field = " + quoted(o.condition_field));
  if (unused.empty()) return;
  log_data(fmt::format("{}: {} not used for {} files: ignored", file, fmt::join(unused, ", "),
                       nwb ? "NWB" : mat ? "MAT" : "project-layout HDF5"));
}

void throw_bad_count(const std::string& file, const std::string& object,
                     const std::string& element, double value) {
  std::string what = std::isnan(value)        ? "not a number"
                     : !std::isfinite(value) ? "infinite"
                     : value < 0             ? "negative"
                     : value > 1e15          ? "too large (over 1e15 spikes in one bin: a unit or "
                                               "format error?)"
                                             : "not a whole number";
  throw DataError(file, object,
                  fmt::format("{} = {} is {}: expected spike counts (finite, non-negative, "
                              "whole numbers)",
                              element, value, what));
}

Format detect_format(const std::filesystem::path& file, const std::string& requested) {
  const std::string name = file.string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) throw DataError(name, "", "no such file");
  if (std::filesystem::is_directory(file, ec))
    throw DataError(name, "", "is a directory, expected a data file");
  if (std::filesystem::file_size(file, ec) == 0 && !ec)
    throw DataError(name, "", "is empty (0 bytes), expected an NWB, HDF5 or MATLAB .mat file");
  if (requested == "hdf5") return Format::kHdf5;
  if (requested == "nwb") return Format::kNwb;
  if (requested == "mat") return Format::kMat;
  if (requested != "auto")
    throw DataError(name, "", fmt::format("unknown data.format '{}': expected auto, hdf5, nwb "
                                          "or mat", requested));
  char header[8] = {};
  {
    std::ifstream in(file, std::ios::binary);
    in.read(header, sizeof header);
  }
  if (std::string(header, 6) == "MATLAB") return Format::kMat;
  if (h5::File::is_hdf5(file)) {
    auto f = h5::File::open_read(file);
    if (f.has("/units") || f.attribute_string("/", "nwb_version")) return Format::kNwb;
    return Format::kHdf5;
  }
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  if (ext == ".mat") return Format::kMat;  // matio gives the precise complaint
  throw DataError(name, "",
                  fmt::format("neither an HDF5 file (NWB or the project layout) nor a MATLAB "
                              ".mat file (extension '{}', no HDF5 signature, no MATLAB header)",
                              ext));
}

void check_memory(double elements, double bytes_per_element, const std::string& file,
                  const std::string& object, const std::string& what, const std::string& advice) {
  const double pages = static_cast<double>(::sysconf(_SC_PHYS_PAGES));
  const double page_size = static_cast<double>(::sysconf(_SC_PAGE_SIZE));
  const double memory = pages > 0 && page_size > 0 ? pages * page_size : 8.0 * kGiB;
  const double bytes = elements * bytes_per_element;
  if (bytes <= memory / 2) return;
  throw DataError(file, object,
                  fmt::format("{} = {:.4g} values ({:.4g} GiB) need more than half of this "
                              "machine's {:.1f} GiB of memory: expected {}",
                              what, elements, bytes / kGiB, memory / kGiB, advice));
}

int64_t whole_bins(double duration_s, double bin_s) {
  const double bins = std::floor(duration_s / bin_s + 1e-9);
  constexpr double kMax = 4611686018427387904.0;  // 2^62
  return bins >= kMax ? static_cast<int64_t>(kMax) : static_cast<int64_t>(bins);
}

WindowPlan plan_windows(const std::vector<int64_t>& trial_bins, int64_t window_bins,
                        double bin_ms, int64_t neurons, const std::string& file,
                        const std::string& object, int64_t first_trial_number) {
  if (trial_bins.empty()) throw DataError(file, object, "zero trials: expected at least one");
  WindowPlan plan;
  const auto [min_it, max_it] = std::minmax_element(trial_bins.begin(), trial_bins.end());
  const int64_t shortest = *min_it, longest = *max_it;
  if (window_bins <= 0) {
    if (shortest <= 0)
      throw DataError(file, object,
                      longest <= 0
                          ? fmt::format("every trial is shorter than one bin of {} ms: expected a smaller "
                                        "data.bin_ms (or, for a MAT file, data.source_bin_ms giving the "
                                        "matrices' own bin width)",
                                        bin_ms)
                          : fmt::format("trial {} is shorter than one bin of {} ms: expected every "
                                        "trial to hold at least one bin (or set data.window_bins to "
                                        "drop short trials)",
                                        (min_it - trial_bins.begin()) + first_trial_number, bin_ms));
    check_binned_size(static_cast<double>(trial_bins.size()), shortest, neurons, bin_ms, file,
                      object);
    plan.bins = shortest;
    for (size_t i = 0; i < trial_bins.size(); ++i)
      plan.windows.push_back({static_cast<int64_t>(i), 0});
    if (longest != shortest)
      plan.note = fmt::format("trials of unequal length ({}..{} bins): each cropped to the "
                              "shortest, {} bins ({} ms)",
                              shortest, longest, shortest, shortest * bin_ms);
    return plan;
  }
  if (window_bins > longest)
    throw DataError(file, object,
                    fmt::format("window of {} bins ({} ms) is longer than every trial (longest "
                                "{} bins = {} ms): expected data.window_bins <= {}",
                                window_bins, window_bins * bin_ms, longest, longest * bin_ms,
                                longest));
  double n_windows = 0;
  for (int64_t n : trial_bins) n_windows += static_cast<double>(n / window_bins);
  check_binned_size(n_windows, window_bins, neurons, bin_ms, file, object);
  plan.bins = window_bins;
  int64_t dropped = 0, unused = 0;
  for (size_t i = 0; i < trial_bins.size(); ++i) {
    const int64_t n = trial_bins[i] / window_bins;
    if (n == 0) ++dropped;
    unused += trial_bins[i] - n * window_bins;
    for (int64_t j = 0; j < n; ++j) plan.windows.push_back({static_cast<int64_t>(i), j * window_bins});
  }
  plan.note = fmt::format("{} trial(s) split into {} window(s) of {} bins ({} ms)",
                          trial_bins.size(), plan.windows.size(), window_bins,
                          window_bins * bin_ms);
  if (dropped) plan.note += fmt::format("; {} trial(s) shorter than a window dropped", dropped);
  if (unused) plan.note += fmt::format("; {} bin(s) at trial ends unused", unused);
  return plan;
}

}  // namespace data_detail

Dataset load_dataset(const DataOptions& options) {
  using namespace data_detail;
  if (!options.simulate.empty()) {
    if (!options.path.empty())
      throw DataError(options.path, "",
                      fmt::format("data.path and data.simulate = '{}' are both set: expected "
                                  "one of them",
                                  options.simulate));
    return simulate(options.simulate, options);
  }
  if (options.path.empty())
    throw DataError("(no file)", "", "data.path is empty and data.simulate is not set: "
                                     "expected a .nwb/.h5/.mat file or a simulator");
  if (!(options.bin_ms > 0) || !std::isfinite(options.bin_ms))
    throw DataError(options.path, "", fmt::format("data.bin_ms = {}: expected > 0", options.bin_ms));
  const std::filesystem::path file(options.path);
  const Format format = detect_format(file, options.format);
  note_unused_options(options.path, format, options);
  switch (format) {
    case Format::kHdf5: return read_project_h5(file, options);
    case Format::kNwb: return read_nwb(file, options);
    case Format::kMat: return read_mat(file, options);
  }
  throw DataError(options.path, "", "unreachable: unknown format");
}

namespace {

// Fisher–Yates with std::mt19937_64, whose output sequence the C++ standard fixes, so the
// split is the same with every standard library (std::shuffle's is not specified).
void shuffle(std::vector<int64_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

int64_t rounded_count(double fraction, int64_t n) {
  return static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
}

}  // namespace

std::string dataset_sha256(const Dataset& data) {
  Sha256 h;
  auto add_tensor = [&](const char* name, const at::Tensor& t) {
    h.update(name);
    h.update(std::string_view("\0", 1));
    if (!t.defined()) {
      h.update("undefined;");
      return;
    }
    const at::Tensor c = t.detach().cpu().contiguous();
    std::string header = std::string(c10::toString(c.scalar_type())) + ":";
    for (const int64_t s : c.sizes()) header += std::to_string(s) + ",";
    h.update(header + ";");
    h.update(std::string_view(static_cast<const char*>(c.data_ptr()), c.nbytes()));
  };
  add_tensor("spikes", data.spikes_btn);
  add_tensor("inputs", data.inputs_btk);
  add_tensor("targets", data.targets_bto);
  add_tensor("mask", data.mask_bt);
  h.update("conditions");
  for (const auto& c : data.conditions) {
    h.update(std::string_view("\0", 1));
    h.update(c);
  }
  h.update(fmt::format(";bin_ms={:.17g}", data.bin_ms));
  return h.hex_digest();
}

Split make_split(const Dataset& data, const DataOptions& options) {
  const int64_t n_trials = data.n_trials();
  if (n_trials <= 0) throw DataError(data.provenance, "", "cannot split a dataset with zero trials");
  if (!(options.valid_fraction >= 0 && options.valid_fraction < 1))
    throw DataError(data.provenance, "data.valid_fraction",
                    fmt::format("{} is outside [0, 1)", options.valid_fraction));
  if (!(options.heldout_neurons >= 0 && options.heldout_neurons < 1))
    throw DataError(data.provenance, "data.heldout_neurons",
                    fmt::format("{} is outside [0, 1)", options.heldout_neurons));
  if (!data.conditions.empty() && static_cast<int64_t>(data.conditions.size()) != n_trials)
    throw DataError(data.provenance, "conditions",
                    fmt::format("{} labels for {} trials", data.conditions.size(), n_trials));

  // The units the split draws: the trials, or with data.split_by = "trial" the recorded trials
  // the windows were cut from, so that every window of one trial falls on the same side.
  const bool by_source = options.split_by == "trial" && static_cast<int64_t>(data.source_trial.size()) == n_trials;
  std::vector<int64_t> unit_of(static_cast<size_t>(n_trials));
  std::vector<std::string> unit_label;
  {
    std::map<int64_t, int64_t> unit_of_source;
    for (int64_t i = 0; i < n_trials; ++i) {
      const std::string label = data.conditions.empty() ? std::string() : data.conditions[static_cast<size_t>(i)];
      if (!by_source) {
        unit_of[static_cast<size_t>(i)] = i;
        unit_label.push_back(label);
        continue;
      }
      const auto [it, added] = unit_of_source.try_emplace(data.source_trial[static_cast<size_t>(i)],
                                                          static_cast<int64_t>(unit_of_source.size()));
      unit_of[static_cast<size_t>(i)] = it->second;
      if (added) unit_label.push_back(label);
    }
  }
  const auto n_units = static_cast<int64_t>(unit_label.size());
  if (by_source && n_units < 2 && options.valid_fraction > 0)
    throw DataError(data.provenance, "data.split_by",
                    fmt::format("\"trial\": the {} windows come from {} recorded trial (a continuous session): no "
                                "trial is left for validation; expected split_by = \"window\"",
                                n_trials, n_units));

  Split split;
  std::seed_seq trial_seed{static_cast<uint64_t>(options.split_seed), uint64_t{1}};
  std::mt19937_64 rng(trial_seed);

  // Group units by condition (one group without labels), in label order.
  std::map<std::string, std::vector<int64_t>> groups;
  for (int64_t u = 0; u < n_units; ++u) groups[unit_label[static_cast<size_t>(u)]].push_back(u);
  // Conditions of a single unit cannot give a validation unit and keep a training one, so
  // they are split together, as one pool: with every label unique (e.g. one clip per trial)
  // the split is then simply random instead of leaving no validation trial at all.
  std::vector<int64_t> singletons;
  for (auto it = groups.begin(); it != groups.end();) {
    if (it->second.size() == 1) {
      singletons.push_back(it->second.front());
      it = groups.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<std::vector<int64_t>*> pools;
  for (auto& [label, units] : groups) pools.push_back(&units);
  if (!singletons.empty()) pools.push_back(&singletons);
  std::vector<bool> valid_unit(static_cast<size_t>(n_units), false);
  for (std::vector<int64_t>* pool : pools) {
    std::vector<int64_t>& units = *pool;
    shuffle(units, rng);
    const auto n = static_cast<int64_t>(units.size());
    int64_t n_valid = rounded_count(options.valid_fraction, n);
    if (options.valid_fraction > 0 && n >= 2) n_valid = std::max<int64_t>(n_valid, 1);
    n_valid = std::min(n_valid, n - 1);  // every condition keeps a training unit
    for (int64_t k = 0; k < n_valid; ++k) valid_unit[static_cast<size_t>(units[static_cast<size_t>(k)])] = true;
  }
  for (int64_t i = 0; i < n_trials; ++i)
    (valid_unit[static_cast<size_t>(unit_of[static_cast<size_t>(i)])] ? split.valid_trials : split.train_trials)
        .push_back(i);
  std::sort(split.train_trials.begin(), split.train_trials.end());
  std::sort(split.valid_trials.begin(), split.valid_trials.end());

  const int64_t n_neurons = data.n_neurons();
  std::vector<int64_t> neurons(static_cast<size_t>(n_neurons));
  for (int64_t i = 0; i < n_neurons; ++i) neurons[static_cast<size_t>(i)] = i;
  std::seed_seq neuron_seed{static_cast<uint64_t>(options.split_seed), uint64_t{2}};
  std::mt19937_64 neuron_rng(neuron_seed);
  shuffle(neurons, neuron_rng);
  int64_t n_heldout = std::min(heldout_count(options.heldout_neurons, n_neurons),
                               std::max<int64_t>(n_neurons - 1, 0));
  if (options.heldout_neurons > 0 && n_neurons > 0 && n_heldout == 0)
    throw DataError(data.provenance, "data.heldout_neurons",
                    n_neurons < 2 ? fmt::format("{} asks for held-out neurons, but the data have {} neuron: "
                                                "co-smoothing needs at least 2; set it to 0",
                                                options.heldout_neurons, n_neurons)
                                  : fmt::format("{} of {} neurons {}", options.heldout_neurons, n_neurons,
                                                no_heldout_neuron_advice(n_neurons)));

  split.heldout_neurons.assign(neurons.begin(), neurons.begin() + n_heldout);
  split.heldin_neurons.assign(neurons.begin() + n_heldout, neurons.end());
  std::sort(split.heldout_neurons.begin(), split.heldout_neurons.end());
  std::sort(split.heldin_neurons.begin(), split.heldin_neurons.end());
  return split;
}

}  // namespace jslds
