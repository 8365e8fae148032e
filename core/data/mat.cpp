// MATLAB struct arrays of per-trial neurons×time count matrices, re-binned (libmatio).
// Format: MAT-file Level 5 (MathWorks "MAT-File Format", and v7.3 = HDF5 when libmatio
// supports it); matrices are column-major, element (n, s) at data[n + s·rows].
// Legend: B trials (windows), T time bins, N neurons, S source bins of a trial.
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/data/loaders.h"
#include "core/data/mat_file.h"
#include "core/data/readers.h"

namespace jslds::data_detail {
namespace {

std::string char_value(const matvar_t* m) {
  size_t n = 1;
  for (int i = 0; i < m->rank; ++i) n *= m->dims[i];
  std::string s;
  if (m->data_size == 2 || m->data_type == MAT_T_UINT16 || m->data_type == MAT_T_UTF16) {
    const auto* p = static_cast<const uint16_t*>(m->data);
    for (size_t i = 0; i < n; ++i) s += p[i] < 128 ? static_cast<char>(p[i]) : '?';
  } else {
    s.assign(static_cast<const char*>(m->data), n);
  }
  return s;
}

}  // namespace

Dataset read_mat(const std::filesystem::path& file, const DataOptions& options) {
  auto f = mat::File::open_read(file);
  const std::string name = f.name();

  std::string variable = options.variable;
  if (variable.empty()) {
    std::vector<std::string> structs;
    for (const auto& v : f.variables())
      if (v.class_name == "struct") structs.push_back(v.name);
    if (structs.size() != 1)
      throw DataError(name, "data.variable",
                      fmt::format("not set and the file holds {} struct arrays: set it to the "
                                  "struct array with one trial per element; the file holds: {}",
                                  structs.size(), f.describe_variables()));
    variable = structs[0];
    log_data(fmt::format("{}: using the only struct array, '{}'", name, variable));
  }
  mat::Variable var = f.read(variable);
  if (var->class_type != MAT_C_STRUCT)
    throw DataError(name, variable,
                    fmt::format("is a {} array: expected a struct array with one trial per "
                                "element; the file holds: {}",
                                mat::class_name(var->class_type), f.describe_variables()));
  size_t n_trials = 1;
  for (int i = 0; i < var->rank; ++i) n_trials *= var->dims[i];
  std::vector<std::string> fields;
  {
    const unsigned nf = Mat_VarGetNumberOfFields(var.get());
    char* const* names = Mat_VarGetStructFieldnames(var.get());
    for (unsigned i = 0; names && i < nf; ++i) fields.emplace_back(names[i]);
  }
  auto require_field = [&](const std::string& field) {
    if (std::find(fields.begin(), fields.end(), field) == fields.end())
      throw DataError(name, variable + "." + field,
                      fmt::format("field not found; {} has fields: {}", variable,
                                  fmt::join(fields, ", ")));
  };
  require_field(options.field);
  if (!options.condition_field.empty()) require_field(options.condition_field);
  if (n_trials == 0) throw DataError(name, variable, "zero trials: the struct array is empty");

  const double ratio = options.bin_ms / options.source_bin_ms;
  const auto factor = static_cast<int64_t>(std::llround(ratio));
  if (!(options.source_bin_ms > 0) || factor < 1 || std::abs(ratio - factor) > 1e-6 * ratio)
    throw DataError(name, variable + "." + options.field,
                    fmt::format("data.bin_ms = {} is not a whole multiple of data.source_bin_ms "
                                "= {}: expected bin_ms = k · source_bin_ms",
                                options.bin_ms, options.source_bin_ms));

  // Read and validate every trial's matrix (rows = neurons, columns = source bins).
  std::vector<std::vector<double>> trials(n_trials);
  std::vector<int64_t> source_bins(n_trials), trial_bins(n_trials);
  std::vector<std::string> labels;
  int64_t N = -1;
  for (size_t i = 0; i < n_trials; ++i) {
    // MATLAB indexes from 1; messages use MATLAB's notation so users find the element.
    const std::string where = fmt::format("{}({}).{}", variable, i + 1, options.field);
    const matvar_t* m = Mat_VarGetStructFieldByName(var.get(), options.field.c_str(), i);
    if (!m) throw DataError(name, where, "cannot read the field");
    if (m->class_type == MAT_C_SPARSE)
      throw DataError(name, where, "is a sparse matrix: expected a full neurons×time matrix "
                                   "(store it with full())");
    if (m->isComplex) throw DataError(name, where, "is complex: expected real spike counts");
    if (m->rank != 2)
      throw DataError(name, where, fmt::format("has {} dimensions: expected a neurons×time "
                                               "matrix", m->rank));
    auto& values = trials[i];
    if (!mat::numeric_values(m, values))
      throw DataError(name, where, fmt::format("is a {} array: expected a numeric neurons×time "
                                               "count matrix",
                                               mat::class_name(m->class_type)));
    const auto rows = static_cast<int64_t>(m->dims[0]);
    const auto cols = static_cast<int64_t>(m->dims[1]);
    if (rows == 0) throw DataError(name, where, "has zero rows: expected one row per neuron");
    if (N < 0) N = rows;
    if (rows != N)
      throw DataError(name, where,
                      fmt::format("has {} rows (neurons) but {}(1).{} has {}: inconsistent shapes",
                                  rows, variable, options.field, N));
    check_counts(values.data(), values.size(), name, where, [&](size_t k) {
      return fmt::format("{}({},{})", where, k % static_cast<size_t>(rows) + 1,
                         k / static_cast<size_t>(rows) + 1);
    });
    source_bins[i] = cols;
    trial_bins[i] = cols / factor;
    if (!options.condition_field.empty()) {
      const std::string cwhere = fmt::format("{}({}).{}", variable, i + 1, options.condition_field);
      const matvar_t* c = Mat_VarGetStructFieldByName(var.get(), options.condition_field.c_str(), i);
      if (!c) throw DataError(name, cwhere, "cannot read the condition label");
      std::vector<double> num;
      if (c->class_type == MAT_C_CHAR) {
        labels.push_back(char_value(c));
      } else if (mat::numeric_values(c, num) && num.size() == 1) {
        labels.push_back(fmt::format("{}", num[0]));
      } else {
        throw DataError(name, cwhere, fmt::format("is a {} array: expected a char label or one "
                                                  "number",
                                                  mat::class_name(c->class_type)));
      }
    }
  }

  int64_t leftover = 0;
  for (size_t i = 0; i < n_trials; ++i) leftover += source_bins[i] - trial_bins[i] * factor;
  if (leftover > 0)
    log_data(fmt::format("{}: re-binning {} ms → {} ms left {} source bin(s) at trial ends "
                         "unused",
                         name, options.source_bin_ms, options.bin_ms, leftover));
  WindowPlan plan = plan_windows(trial_bins, options.window_bins, options.bin_ms, N, name,
                                 variable + "." + options.field, /*first_trial_number=*/1);
  if (!plan.note.empty()) log_data(fmt::format("{}: {}", name, plan.note));

  const auto B = static_cast<int64_t>(plan.windows.size());
  const int64_t T = plan.bins;
  auto spikes = torch::zeros({B, T, N}, torch::kFloat32);
  float* out = spikes.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& w = plan.windows[static_cast<size_t>(b)];
    const auto& src = trials[static_cast<size_t>(w.trial)];
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = (w.first_bin + t) * factor; s < (w.first_bin + t + 1) * factor; ++s)
        for (int64_t n = 0; n < N; ++n)
          out[(b * T + t) * N + n] += static_cast<float>(src[static_cast<size_t>(n + s * N)]);
  }

  Dataset d;
  d.spikes_btn = spikes;
  d.bin_ms = options.bin_ms;
  for (int64_t n = 0; n < N; ++n) d.neuron_ids.push_back(std::to_string(n + 1));
  if (!labels.empty())
    for (const auto& w : plan.windows) d.conditions.push_back(labels[static_cast<size_t>(w.trial)]);
  if (options.window_bins > 0)
    for (const auto& w : plan.windows) d.source_trial.push_back(w.trial);
  d.provenance = fmt::format("mat {} (v{}, {}.{}, {} ms → {} ms): {} trials × {} bins × {} "
                             "neurons{}",
                             name, f.version(), variable, options.field, options.source_bin_ms,
                             options.bin_ms, B, T, N, plan.note.empty() ? "" : "; " + plan.note);
  return d;
}

}  // namespace jslds::data_detail
