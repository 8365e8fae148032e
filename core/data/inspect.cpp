#include "core/data/inspect.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include <fmt/format.h>

#include "core/data/hdf5_file.h"
#include "core/data/loaders.h"
#include "core/data/mat_file.h"
#include "core/data/readers.h"

namespace jslds {
namespace {

constexpr size_t kMaxListed = 60;  // HDF5 datasets listed before "… and K more"

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

void inspect_nwb(const h5::File& f, const DataOptions& options, DataFileReport& r) {
  if (f.has("/units/spike_times") && f.has("/units/spike_times_index")) {
    auto times = f.read_doubles("/units/spike_times");
    auto index = f.read_int64("/units/spike_times_index");
    r.neurons = static_cast<int64_t>(index.size());
    r.objects.push_back(fmt::format("units: {} units, {} spike times; columns: {}", index.size(),
                                    times.size(), f.describe_members("/units")));
    double lo = 0, hi = 0;
    for (double t : times)
      if (std::isfinite(t)) lo = std::min(lo, t), hi = std::max(hi, t);
    if (f.has("/intervals"))
      for (const auto& table : f.members("/intervals")) {
        const std::string path = "/intervals/" + table;
        if (!f.has(path + "/start_time") || !f.has(path + "/stop_time")) continue;
        auto stops = f.read_doubles(path + "/stop_time");
        for (double t : stops)
          if (std::isfinite(t)) hi = std::max(hi, t);
      }
    r.duration_s = hi - lo;
    int64_t prev = 0;
    for (int64_t end : index) {
      const double n = static_cast<double>(end - prev);
      r.mean_rate_hz.push_back(r.duration_s > 0 ? n / r.duration_s : 0.0);
      prev = end;
    }
  } else {
    r.objects.push_back("units: (no units/spike_times)");
  }
  if (f.has("/intervals")) {
    for (const auto& table : f.members("/intervals")) {
      const std::string path = "/intervals/" + table;
      if (f.kind(path) != h5::ObjectKind::kGroup) continue;
      int64_t rows = f.has(path + "/start_time") ? f.shape(path + "/start_time").at(0) : 0;
      r.objects.push_back(fmt::format("intervals table {}: {} rows; columns: {}", path, rows,
                                      fmt::join(f.members(path), ", ")));
    }
  }
  std::string table = options.trials;
  if (table.empty() && f.has("/intervals/trials")) table = "/intervals/trials";
  if (!table.empty() && table[0] != '/') table = "/" + table;
  if (!table.empty() && f.has(table + "/start_time")) r.trials = f.shape(table + "/start_time").at(0);
  r.objects.push_back(fmt::format("top-level groups: {}", f.describe_members("/")));
}

void inspect_hdf5(const h5::File& f, DataFileReport& r) {
  size_t skipped = 0;
  list_datasets(f, "/", r.objects, skipped);
  if (skipped) r.objects.push_back(fmt::format("… and {} more datasets", skipped));
  if (f.has("/spikes") && f.shape("/spikes").size() == 3) {
    auto dims = f.shape("/spikes");
    auto values = f.read_doubles("/spikes");
    const double bin_ms = f.attribute_double("/", "bin_ms").value_or(0.0);
    r.trials = dims[0];
    r.neurons = dims[2];
    r.duration_s = static_cast<double>(dims[0] * dims[1]) * bin_ms / 1000.0;
    std::vector<double> total(static_cast<size_t>(dims[2]), 0.0);
    for (size_t i = 0; i < values.size(); ++i) total[i % total.size()] += values[i];
    for (double t : total) r.mean_rate_hz.push_back(r.duration_s > 0 ? t / r.duration_s : 0.0);
  } else if (f.has("/targets")) {
    r.trials = f.shape("/targets").at(0);
  }
}

void inspect_mat(const mat::File& f, const DataOptions& options, DataFileReport& r) {
  std::string variable = options.variable;
  std::vector<std::string> structs;
  for (const auto& v : f.variables()) {
    std::string line = fmt::format("variable {}: {} {}", v.name, v.class_name, fmt::join(v.dims, "×"));
    if (!v.fields.empty()) line += fmt::format("; fields: {}", fmt::join(v.fields, ", "));
    r.objects.push_back(line);
    if (v.class_name == "struct") structs.push_back(v.name);
  }
  if (variable.empty() && structs.size() == 1) variable = structs[0];
  if (variable.empty()) return;
  mat::Variable var;
  try {
    var = f.read(variable);
  } catch (const DataError&) {
    return;  // the binned section reports it
  }
  if (var->class_type != MAT_C_STRUCT) return;
  size_t n = 1;
  for (int i = 0; i < var->rank; ++i) n *= var->dims[i];
  r.trials = static_cast<int64_t>(n);
  std::vector<double> total, values;
  double source_bins = 0;
  for (size_t i = 0; i < n; ++i) {
    const matvar_t* m = Mat_VarGetStructFieldByName(var.get(), options.field.c_str(), i);
    if (!m || m->rank != 2 || !mat::numeric_values(m, values)) return;
    const size_t rows = m->dims[0];
    if (total.empty()) total.assign(rows, 0.0);
    if (rows != total.size()) return;
    for (size_t k = 0; k < values.size(); ++k) total[k % rows] += values[k];
    source_bins += static_cast<double>(m->dims[1]);
  }
  r.neurons = static_cast<int64_t>(total.size());
  r.duration_s = source_bins * options.source_bin_ms / 1000.0;
  for (double t : total) r.mean_rate_hz.push_back(r.duration_s > 0 ? t / r.duration_s : 0.0);
}

}  // namespace

DataFileReport inspect_data_file(const std::filesystem::path& file, const DataOptions& options) {
  using data_detail::Format;
  DataFileReport r;
  r.file = file.string();
  const Format format = data_detail::detect_format(file, options.format);
  r.format = data_detail::format_name(format);
  try {
    if (format == Format::kMat) {
      inspect_mat(mat::File::open_read(file), options, r);
    } else {
      auto f = h5::File::open_read(file);
      if (format == Format::kNwb) inspect_nwb(f, options, r);
      else inspect_hdf5(f, r);
    }
  } catch (const DataError& e) {
    r.objects.push_back(fmt::format("(summary incomplete: {})", e.what()));
  }
  DataOptions o = options;
  o.path = r.file;
  o.simulate.clear();
  try {
    Dataset d = load_dataset(o);
    if (d.spikes_btn.defined()) r.binned_shape = {d.n_trials(), d.n_bins(), d.n_neurons()};
    else r.binned_shape = {d.n_trials(), d.n_bins(), 0};
    r.bin_ms = d.bin_ms;
    r.binned_provenance = d.provenance;
  } catch (const DataError& e) {
    r.binned_error = e.what();
  }
  return r;
}

std::string format_report(const DataFileReport& r) {
  std::string out = fmt::format("file:     {}\nformat:   {}\nobjects:\n", r.file, r.format);
  for (const auto& o : r.objects) out += "  " + o + "\n";
  out += fmt::format("neurons:  {}\ntrials:   {}{}\nduration: {:.3f} s\n", r.neurons, r.trials,
                     r.trials == 0 ? " (continuous or none selected)" : "", r.duration_s);
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
  if (r.binned_error.empty())
    out += fmt::format("binned:   {} trials × {} bins × {} neurons at {} ms\n          {}\n",
                       r.binned_shape.at(0), r.binned_shape.at(1), r.binned_shape.at(2), r.bin_ms,
                       r.binned_provenance);
  else
    out += fmt::format("binned:   not possible with these options: {}\n", r.binned_error);
  return out;
}

}  // namespace jslds
