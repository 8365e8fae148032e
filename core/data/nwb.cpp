// NWB 2.x units tables (ragged spike times) binned into trials or continuous windows.
// Format: NWB 2.x "Units" table (units/spike_times + units/spike_times_index, END offsets)
// and "TimeIntervals" tables (start_time/stop_time columns), read through the HDF5 C API.
// Legend: B trials (windows), T time bins, N neurons (units).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/data/hdf5_file.h"
#include "core/data/loaders.h"
#include "core/data/readers.h"

namespace jslds::data_detail {

std::vector<std::string> nwb_interval_tables(const h5::File& f) {
  std::vector<std::string> out;
  if (f.kind("/intervals") != h5::ObjectKind::kGroup) return out;
  for (const auto& m : f.members("/intervals"))
    if (f.kind("/intervals/" + m) == h5::ObjectKind::kGroup) out.push_back("intervals/" + m);
  return out;
}

std::string nwb_trials_table(const h5::File& f, const std::string& requested) {
  if (requested.empty()) return f.has("/intervals/trials") ? "/intervals/trials" : "";
  std::string table = requested[0] == '/' ? requested : "/" + requested;
  if (f.kind(table) != h5::ObjectKind::kGroup && requested.find('/') == std::string::npos &&
      f.kind("/intervals" + table) == h5::ObjectKind::kGroup)
    table = "/intervals" + table;  // a bare table name, e.g. "encoding_table"
  return table;
}

Dataset read_nwb(const std::filesystem::path& file, const DataOptions& options) {
  auto f = h5::File::open_read(file);
  const std::string name = f.name();
  const double bin_s = options.bin_ms / 1000.0;

  // Units: spike times of unit u are times[index[u-1] : index[u]].
  if (!f.has("/units/spike_times"))
    throw DataError(name, "/units/spike_times",
                    fmt::format("not found; {}: expected an NWB 2.x file with a units table",
                                f.has("/units") ? "/units holds: " + f.describe_members("/units")
                                                : "/ holds: " + f.describe_members("/")));
  const auto times = f.read_doubles("/units/spike_times");
  if (!f.has("/units/spike_times_index"))
    throw DataError(name, "/units/spike_times_index",
                    "not found: expected the END offsets of each unit's spike times");
  const auto index = f.read_int64("/units/spike_times_index");
  const auto N = static_cast<int64_t>(index.size());
  if (N == 0)
    throw DataError(name, "/units/spike_times_index", "zero units: expected at least one neuron");
  for (int64_t u = 0; u < N; ++u) {
    const int64_t begin = u == 0 ? 0 : index[static_cast<size_t>(u - 1)];
    const int64_t end = index[static_cast<size_t>(u)];
    if (end < begin || end > static_cast<int64_t>(times.size()))
      throw DataError(name, "/units/spike_times_index",
                      fmt::format("unit {}: offsets {}..{} are not ascending within the {} "
                                  "spike times: inconsistent shapes",
                                  u, begin, end, times.size()));
  }
  if (index.back() != static_cast<int64_t>(times.size()))
    throw DataError(name, "/units/spike_times_index",
                    fmt::format("last END offset {} but /units/spike_times holds {} values: "
                                "inconsistent shapes",
                                index.back(), times.size()));
  for (size_t i = 0; i < times.size(); ++i)
    if (!std::isfinite(times[i]))
      throw DataError(name, "/units/spike_times",
                      fmt::format("element {} is {}: expected finite times in seconds", i,
                                  times[i]));

  // Each unit's times, sorted (NWB does not require it).
  std::vector<std::vector<double>> unit_times(static_cast<size_t>(N));
  for (int64_t u = 0; u < N; ++u) {
    const int64_t begin = u == 0 ? 0 : index[static_cast<size_t>(u - 1)];
    auto& v = unit_times[static_cast<size_t>(u)];
    v.assign(times.begin() + begin, times.begin() + index[static_cast<size_t>(u)]);
    if (!std::is_sorted(v.begin(), v.end())) std::sort(v.begin(), v.end());
  }

  std::vector<std::string> ids;
  if (f.has("/units/id")) {
    ids = f.read_strings("/units/id");
    if (static_cast<int64_t>(ids.size()) != N)
      throw DataError(name, "/units/id", fmt::format("{} ids for {} units: inconsistent shapes",
                                                     ids.size(), N));
  } else {
    for (int64_t u = 0; u < N; ++u) ids.push_back(std::to_string(u));
  }

  // Trials: an intervals table, or one continuous stretch cut into windows.
  const std::string table = nwb_trials_table(f, options.trials);
  const auto tables = nwb_interval_tables(f);
  const std::string table_list =
      tables.empty() ? "(none: the file has no /intervals tables)"
                     : fmt::format("{}", fmt::join(tables, ", "));
  std::vector<double> starts, stops;
  std::vector<std::string> labels;
  std::string object, source;
  int64_t last_unit = -1;  // continuous session: the unit holding the latest spike
  if (!table.empty()) {
    if (f.kind(table) != h5::ObjectKind::kGroup)
      throw DataError(name, table,
                      fmt::format("intervals table not found: expected data.trials to name one "
                                  "of {}",
                                  table_list));
    for (const char* column : {"/start_time", "/stop_time"})
      if (!f.has(table + column))
        throw DataError(name, table + column,
                        fmt::format("column not found; the table holds: {}",
                                    f.describe_members(table)));
    starts = f.read_doubles(table + "/start_time");
    stops = f.read_doubles(table + "/stop_time");
    if (starts.size() != stops.size())
      throw DataError(name, table, fmt::format("{} start_time values but {} stop_time values: "
                                               "inconsistent shapes",
                                               starts.size(), stops.size()));
    if (starts.empty()) throw DataError(name, table, "zero trials: the table has no rows");
    for (size_t i = 0; i < starts.size(); ++i)
      if (!std::isfinite(starts[i]) || !std::isfinite(stops[i]) || !(stops[i] > starts[i]))
        throw DataError(name, table,
                        fmt::format("row {}: start_time {} s, stop_time {} s: expected finite "
                                    "times with stop_time > start_time",
                                    i, starts[i], stops[i]));
    if (!options.condition_field.empty()) {
      const std::string column = table + "/" + options.condition_field;
      if (!f.has(column))
        throw DataError(name, column, fmt::format("condition column not found; the table "
                                                  "holds: {}",
                                                  f.describe_members(table)));
      labels = f.read_strings(column);
      if (labels.size() != starts.size())
        throw DataError(name, column, fmt::format("{} labels for {} trials: inconsistent shapes",
                                                  labels.size(), starts.size()));
    }
    object = table;
    source = "table " + table;
  } else {
    if (options.window_bins <= 0)
      throw DataError(name, "/intervals/trials",
                      fmt::format("no trials table and data.window_bins = 0: set data.trials to "
                                  "one of the intervals tables, {}, or data.window_bins to cut "
                                  "the continuous session into windows",
                                  tables.empty() ? "(the file has none)"
                                                 : fmt::format("{}", fmt::join(tables, ", "))));
    double last = 0;
    int64_t before_zero = 0;
    for (size_t u = 0; u < unit_times.size(); ++u) {
      const auto& v = unit_times[u];
      if (!v.empty() && v.back() > last) {
        last = v.back();
        last_unit = static_cast<int64_t>(u);
      }
      before_zero += std::lower_bound(v.begin(), v.end(), 0.0) - v.begin();
    }
    starts = {0.0};
    stops = {last};
    object = "/units/spike_times";
    source = fmt::format(fmt::runtime(last < 1e9 ? "continuous 0–{:.3f} s" : "continuous 0–{:.6g} s"), last);
    if (!options.condition_field.empty())
      log_data(fmt::format("{}: data.condition_field = '{}' not used: a continuous session (no trials table) has "
                           "no per-trial conditions, so the validation split is not stratified; set data.trials "
                           "to the intervals table that holds that column ({})",
                           name, options.condition_field, table_list));
    if (before_zero > 0)
      log_data(fmt::format("{}: /units/spike_times: {} spike times before 0 s lie outside the continuous session "
                           "(0 s to the latest spike) and are left out",
                           name, before_zero));
  }

  std::vector<int64_t> trial_bins;
  for (size_t i = 0; i < starts.size(); ++i)
    trial_bins.push_back(whole_bins(stops[i] - starts[i], bin_s));
  WindowPlan plan;
  try {
    plan = plan_windows(trial_bins, options.window_bins, options.bin_ms, N, name, object);
  } catch (const DataError& e) {
    if (last_unit < 0 || trial_bins.front() <= options.window_bins) throw;
    // A continuous session lasts until its latest spike: one wrong time (a corrupt file, a
    // clock in another unit) makes it look huge. Say which time set the length.
    throw DataError(name, object,
                    fmt::format("{}; the continuous session runs from 0 s to the latest spike time, {:.6g} s "
                                "(unit {}, id {}): if that time is wrong, the file's spike times are",
                                e.detail(), stops.back(), last_unit, ids[static_cast<size_t>(last_unit)]) +
                        " corrupt or not in seconds");
  }
  if (!plan.note.empty()) log_data(fmt::format("{}: {}", name, plan.note));

  const auto B = static_cast<int64_t>(plan.windows.size());
  const int64_t T = plan.bins;
  auto spikes = torch::zeros({B, T, N}, torch::kFloat32);
  float* out = spikes.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& w = plan.windows[static_cast<size_t>(b)];
    const double t0 = starts[static_cast<size_t>(w.trial)] + static_cast<double>(w.first_bin) * bin_s;
    for (int64_t u = 0; u < N; ++u) {
      const auto& v = unit_times[static_cast<size_t>(u)];
      for (auto it = std::lower_bound(v.begin(), v.end(), t0); it != v.end(); ++it) {
        const auto k = static_cast<int64_t>(std::floor((*it - t0) / bin_s));
        if (k >= T) break;
        out[(b * T + k) * N + u] += 1.0f;
      }
    }
  }

  Dataset d;
  d.spikes_btn = spikes;
  d.bin_ms = options.bin_ms;
  d.neuron_ids = std::move(ids);
  if (!labels.empty())
    for (const auto& w : plan.windows) d.conditions.push_back(labels[static_cast<size_t>(w.trial)]);
  if (options.window_bins > 0)
    for (const auto& w : plan.windows) d.source_trial.push_back(w.trial);
  d.provenance = fmt::format("nwb {} ({}) at {} ms: {} trials × {} bins × {} neurons{}", name,
                             source, options.bin_ms, B, T, N,
                             plan.note.empty() ? "" : "; " + plan.note);
  return d;
}

}  // namespace jslds::data_detail
