// `jslds data inspect`: a summary of a data file as stored, then what load_dataset makes of
// it with the given [data] options.
#include "core/data/inspect.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include <fmt/format.h>

#include "core/data/hdf5_file.h"
#include "core/data/loaders.h"
#include "core/data/mat_file.h"
#include "core/data/readers.h"

namespace jslds {
namespace {

constexpr size_t kMaxListed = 60;      // HDF5 datasets listed before "… and K more"
constexpr size_t kMaxConditions = 20;  // condition labels listed before "… and K more"

void list_datasets(const h5::File& f, const std::string& group, std::vector<std::string>& out,
                   size_t& skipped) {
  for (const auto& m : f.members(group)) {
    const std::string path = (group == "/" ? "/" : group + "/") + m;
    auto kind = f.kind(path);
    if (kind == h5::ObjectKind::kGroup) {
      list_datasets(f, path, out, skipped);
    } else if (kind == h5::ObjectKind::kDataset) {
      if (out.size() >= kMaxListed) {
        ++skipped;
        continue;
      }
      auto dims = f.shape(path);
      out.push_back(fmt::format("{} ({})", path, dims.empty() ? "scalar"
                                                             : fmt::format("{}", fmt::join(dims, "×"))));
    }
  }
}

// Mean rate per neuron from per-neuron totals.
void set_rates(DataFileReport& r, const std::vector<double>& totals) {
  r.total_spikes = std::accumulate(totals.begin(), totals.end(), 0.0);
  for (double t : totals)
    r.mean_rate_hz.push_back(r.duration_s && *r.duration_s > 0 ? t / *r.duration_s : 0.0);
}

void inspect_nwb(const h5::File& f, const DataOptions& options, DataFileReport& r) {
  const auto tables = data_detail::nwb_interval_tables(f);
  if (f.has("/units/spike_times") && f.has("/units/spike_times_index")) {
    auto times = f.read_doubles("/units/spike_times");
    auto index = f.read_int64("/units/spike_times_index");
    r.objects.push_back(fmt::format("units: {} units, {} spike times; columns: {}", index.size(),
                                    times.size(), f.describe_members("/units")));
    double lo = 0, hi = 0;
    for (double t : times)
      if (std::isfinite(t)) lo = std::min(lo, t), hi = std::max(hi, t);
    for (const auto& table : tables)
      if (f.has(table + "/stop_time"))
        for (double t : f.read_doubles(table + "/stop_time"))
          if (std::isfinite(t)) hi = std::max(hi, t);
    r.neurons = static_cast<int64_t>(index.size());
    r.duration_s = hi - lo;
    std::vector<double> totals;
    int64_t prev = 0;
    for (int64_t end : index) {
      totals.push_back(static_cast<double>(end - prev));
      prev = end;
    }
    set_rates(r, totals);
  } else {
    r.objects.push_back("units: (no units/spike_times)");
    r.summary_note = "no /units/spike_times table of spike times";
  }
  for (const auto& table : tables) {
    int64_t rows = f.has(table + "/start_time") ? f.shape(table + "/start_time").at(0) : 0;
    r.objects.push_back(fmt::format("intervals table {}: {} rows; columns: {}", table, rows,
                                    fmt::join(f.members(table), ", ")));
  }
  const std::string table = data_detail::nwb_trials_table(f, options.trials);
  if (table.empty()) {
    r.trials = 0;
  } else if (f.has(table + "/start_time")) {
    r.trials = f.shape(table + "/start_time").at(0);
  } else {
    r.summary_note = fmt::format("data.trials = '{}' is not an intervals table with start_time "
                                 "(tables: {})",
                                 options.trials, tables.empty() ? "none" : fmt::format("{}", fmt::join(tables, ", ")));
  }
  r.objects.push_back(fmt::format("top-level groups: {}", f.describe_members("/")));
}

void inspect_hdf5(const h5::File& f, DataFileReport& r) {
  size_t skipped = 0;
  list_datasets(f, "/", r.objects, skipped);
  if (skipped) r.objects.push_back(fmt::format("… and {} more datasets", skipped));
  r.written_by = f.attribute_string("/", "provenance").value_or("");
  const double bin_ms = f.attribute_double("/", "bin_ms").value_or(0.0);
  if (f.has("/spikes") && f.shape("/spikes").size() == 3) {
    auto dims = f.shape("/spikes");
    auto values = f.read_doubles("/spikes");
    r.trials = dims[0];
    r.neurons = dims[2];
    r.duration_s = static_cast<double>(dims[0] * dims[1]) * bin_ms / 1000.0;
    std::vector<double> totals(static_cast<size_t>(dims[2]), 0.0);
    if (!totals.empty())
      for (size_t i = 0; i < values.size(); ++i) totals[i % totals.size()] += values[i];
    set_rates(r, totals);
  } else if (f.has("/targets") && f.shape("/targets").size() == 3) {
    auto dims = f.shape("/targets");
    r.trials = dims[0];
    r.neurons = 0;
    r.task_targets = dims[2];
    r.duration_s = static_cast<double>(dims[0] * dims[1]) * bin_ms / 1000.0;
    if (f.has("/inputs") && f.shape("/inputs").size() == 3) r.task_inputs = f.shape("/inputs")[2];
  } else {
    r.summary_note = "neither /spikes (trials, time, neurons) nor /targets (trials, time, "
                     "outputs): not the project layout";
  }
}

void inspect_mat(const mat::File& f, const DataOptions& options, DataFileReport& r) {
  std::vector<std::string> structs;
  for (const auto& v : f.variables()) {
    std::string line = fmt::format("variable {}: {} {}", v.name, v.class_name, fmt::join(v.dims, "×"));
    if (!v.fields.empty()) line += fmt::format("; fields: {}", fmt::join(v.fields, ", "));
    r.objects.push_back(line);
    if (v.class_name == "struct") structs.push_back(v.name);
  }
  std::string variable = options.variable;
  if (variable.empty() && structs.size() == 1) variable = structs[0];
  if (variable.empty()) {
    r.summary_note = fmt::format("data.variable is not set and the file holds {} struct arrays "
                                 "({}): set it to the one with a trial per element",
                                 structs.size(), fmt::join(structs, ", "));
    return;
  }
  mat::Variable var;
  try {
    var = f.read(variable);
  } catch (const DataError& e) {
    r.summary_note = fmt::format("data.variable = '{}': {}", variable, e.detail());
    return;
  }
  if (var->class_type != MAT_C_STRUCT) {
    r.summary_note = fmt::format("data.variable = '{}' is a {} array, not a struct array of "
                                 "trials",
                                 variable, mat::class_name(var->class_type));
    return;
  }
  size_t n = 1;
  for (int i = 0; i < var->rank; ++i) n *= var->dims[i];
  r.trials = static_cast<int64_t>(n);
  std::vector<std::string> fields;
  {
    const unsigned nf = Mat_VarGetNumberOfFields(var.get());
    char* const* names = Mat_VarGetStructFieldnames(var.get());
    for (unsigned i = 0; names && i < nf; ++i) fields.emplace_back(names[i]);
  }
  if (std::find(fields.begin(), fields.end(), options.field) == fields.end()) {
    r.summary_note = fmt::format("data.field = '{}' is not a field of {} (fields: {})",
                                 options.field, variable, fmt::join(fields, ", "));
    return;
  }
  std::vector<double> totals, values;
  double source_bins = 0;
  for (size_t i = 0; i < n; ++i) {
    const matvar_t* m = Mat_VarGetStructFieldByName(var.get(), options.field.c_str(), i);
    if (!m || m->rank != 2 || !mat::numeric_values(m, values)) {
      r.summary_note = fmt::format("{}({}).{} is not a numeric neurons×time matrix", variable,
                                   i + 1, options.field);
      return;
    }
    const size_t rows = m->dims[0];
    if (i == 0) totals.assign(rows, 0.0);
    if (rows != totals.size() || rows == 0) {
      r.summary_note = fmt::format("{}({}).{} has {} rows but {}(1).{} has {}", variable, i + 1,
                                   options.field, rows, variable, options.field, totals.size());
      return;
    }
    for (size_t k = 0; k < values.size(); ++k) totals[k % rows] += values[k];
    source_bins += static_cast<double>(m->dims[1]);
  }
  r.neurons = static_cast<int64_t>(totals.size());
  r.duration_s = source_bins * options.source_bin_ms / 1000.0;
  set_rates(r, totals);
}

// A log line without the "FILE: " prefix the readers put in front.
std::string without_file(const std::string& line, const std::string& file) {
  const std::string prefix = file + ": ";
  return line.rfind(prefix, 0) == 0 ? line.substr(prefix.size()) : line;
}

}  // namespace

DataFileReport inspect_data_file(const std::filesystem::path& file, const DataOptions& options) {
  using data_detail::Format;
  DataFileReport r;
  r.file = file.string();
  const Format format = data_detail::detect_format(file, options.format);
  r.format = data_detail::format_name(format);
  // Opening errors (not a MAT/HDF5 file) propagate; errors inside become the summary note.
  if (format == Format::kMat) {
    auto f = mat::File::open_read(file);
    try {
      inspect_mat(f, options, r);
    } catch (const DataError& e) {
      r.summary_note = e.what();
    }
  } else {
    auto f = h5::File::open_read(file);
    try {
      if (format == Format::kNwb) inspect_nwb(f, options, r);
      else inspect_hdf5(f, r);
    } catch (const DataError& e) {
      r.summary_note = e.what();
    }
  }
  DataOptions o = options;
  o.path = r.file;
  o.simulate.clear();
  data_detail::LogCapture log;
  try {
    Dataset d = load_dataset(o);
    r.binned_shape = {d.n_trials(), d.n_bins(), d.n_neurons()};
    r.bin_ms = d.bin_ms;
    r.binned_provenance = d.provenance;
    if (d.spikes_btn.defined()) {
      // Summed in float64 one trial at a time: a float64 copy of the whole tensor would
      // triple the memory the counts take, past the loader's limit (check_memory).
      double total = 0;
      for (int64_t b = 0; b < d.n_trials(); ++b) total += d.spikes_btn[b].sum(torch::kFloat64).item<double>();
      r.binned_spikes = total;
    }
    r.binned_inputs = d.n_inputs();
    r.binned_targets = d.targets_bto.defined() ? d.targets_bto.size(2) : 0;
    std::map<std::string, int64_t> counts;
    for (const auto& c : d.conditions) ++counts[c];
    r.condition_counts.assign(counts.begin(), counts.end());
    for (const auto& line : log.lines()) r.binned_notes.push_back(without_file(line, r.file));
    // The split `jslds train` makes (held-out neurons, validation trials): its refusals too,
    // so that inspect is the pre-flight check its help promises.
    (void)make_split(d, o);
  } catch (const DataError& e) {
    r.binned_error = e.what();
  }
  return r;
}

std::string format_report(const DataFileReport& r, bool with_binned_error) {
  std::string out = fmt::format("file:     {}\nformat:   {}\n", r.file, r.format);
  if (!r.written_by.empty()) out += fmt::format("written:  by {}\n", r.written_by);
  out += "objects:\n";
  for (const auto& o : r.objects) out += "  " + o + "\n";
  const bool task = r.task_targets > 0;
  if (task) {
    out += fmt::format("task:     {} inputs, {} targets (task data: no neurons)\n", r.task_inputs,
                       r.task_targets);
  } else {
    out += fmt::format("neurons:  {}\n", r.neurons ? std::to_string(*r.neurons) : "unknown");
  }
  if (!r.trials) out += "trials:   unknown\n";
  else if (*r.trials == 0) out += "trials:   0 (a continuous session: no trials table)\n";
  else out += fmt::format("trials:   {}\n", *r.trials);
  // Readable also when a corrupt time makes it absurd (1e300 s printed as 300 digits).
  out += r.duration_s ? fmt::format(fmt::runtime(std::abs(*r.duration_s) < 1e9 ? "duration: {:.3f} s\n" : "duration: {:.6g} s\n"),
                                    *r.duration_s)
                      : "duration: unknown\n";
  if (r.total_spikes) out += fmt::format("spikes:   {:.0f} in the file\n", *r.total_spikes);
  if (!r.summary_note.empty()) out += fmt::format("summary:  incomplete: {}\n", r.summary_note);
  if (!r.mean_rate_hz.empty()) {
    const double mean = std::accumulate(r.mean_rate_hz.begin(), r.mean_rate_hz.end(), 0.0) /
                        static_cast<double>(r.mean_rate_hz.size());
    out += fmt::format("mean rate per neuron (Hz, population mean {:.3f}):\n", mean);
    for (size_t i = 0; i < r.mean_rate_hz.size(); i += 10) {
      const size_t end = std::min(i + 10, r.mean_rate_hz.size());
      std::vector<std::string> cells;
      for (size_t k = i; k < end; ++k) cells.push_back(fmt::format("{:7.3f}", r.mean_rate_hz[k]));
      out += fmt::format("  [{:3}-{:3}] {}\n", i, end - 1, fmt::join(cells, " "));
    }
  }
  if (!r.binned_error.empty()) {
    out += with_binned_error
               ? fmt::format("binned:   not possible with these options: {}\n", r.binned_error)
               : "binned:   not possible with these options (the error follows)\n";
    return out;
  }
  if (r.binned_targets > 0)
    out += fmt::format("binned:   {} trials × {} bins at {} ms: task data, {} inputs, {} targets\n",
                       r.binned_shape.at(0), r.binned_shape.at(1), r.bin_ms, r.binned_inputs,
                       r.binned_targets);
  else
    out += fmt::format("binned:   {} trials × {} bins × {} neurons at {} ms, {:.0f} spikes{}\n",
                       r.binned_shape.at(0), r.binned_shape.at(1), r.binned_shape.at(2),
                       r.bin_ms, r.binned_spikes,
                       r.binned_inputs > 0 ? fmt::format(", {} inputs", r.binned_inputs) : "");
  for (const auto& note : r.binned_notes) out += fmt::format("          note: {}\n", note);
  if (!r.condition_counts.empty()) {
    std::vector<std::string> cells;
    for (size_t i = 0; i < r.condition_counts.size() && i < kMaxConditions; ++i)
      cells.push_back(fmt::format("{} ({})", r.condition_counts[i].first,
                                  r.condition_counts[i].second));
    if (r.condition_counts.size() > kMaxConditions)
      cells.push_back(fmt::format("… and {} more", r.condition_counts.size() - kMaxConditions));
    out += fmt::format("conditions: {}, trials each: {}\n", r.condition_counts.size(),
                       fmt::join(cells, ", "));
  }
  return out;
}

}  // namespace jslds
