// The project's own HDF5 layout (DESIGN §4, docs/data.md): reading and writing.
// Legend: B trials, T time bins, N neurons, K external inputs, O task targets.
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/data/hdf5_file.h"
#include "core/data/loaders.h"
#include "core/data/readers.h"

namespace jslds {
namespace data_detail {
namespace {

std::string shape_text(const std::vector<int64_t>& dims) {
  return dims.empty() ? "scalar" : fmt::format("({})", fmt::join(dims, ", "));
}

// Reads a float dataset of rank `rank` whose leading dimensions must equal `lead`
// (-1 = any) into a float32 tensor.
at::Tensor read_block(const h5::File& f, const std::string& path, size_t rank,
                      const std::vector<int64_t>& lead, const char* expected) {
  auto dims = f.shape(path);
  bool ok = dims.size() == rank;
  for (size_t i = 0; ok && i < lead.size(); ++i) ok = lead[i] < 0 || dims[i] == lead[i];
  if (!ok)
    throw DataError(f.name(), path, fmt::format("shape {}: expected {}", shape_text(dims),
                                                expected));
  auto values = f.read_doubles(path);
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw DataError(f.name(), path, fmt::format("element {} is {}: expected finite values", i,
                                                  values[i]));
  return torch::from_blob(values.data(), dims, torch::kFloat64).to(torch::kFloat32);
}

std::string trial_word(int64_t n, const char* what) { return fmt::format("{} {}", n, what); }

}  // namespace

Dataset read_project_h5(const std::filesystem::path& file, const DataOptions& options) {
  auto f = h5::File::open_read(file);
  const std::string name = f.name();
  const bool has_spikes = f.has("/spikes"), has_targets = f.has("/targets");
  if (!has_spikes && !has_targets)
    throw DataError(name, "/spikes",
                    fmt::format("not found (nor /targets for task data); / holds: {}; expected "
                                "the project layout (DESIGN §4) or an NWB file with /units",
                                f.describe_members("/")));
  Dataset d;
  auto bin_ms = f.attribute_double("/", "bin_ms");
  if (!bin_ms && has_spikes) bin_ms = f.attribute_double("/spikes", "bin_ms");
  if (!bin_ms || !(*bin_ms > 0) || !std::isfinite(*bin_ms))
    throw DataError(name, "/ attribute bin_ms",
                    bin_ms ? fmt::format("{}: expected a bin width > 0 ms", *bin_ms)
                           : "missing: expected the bin width in ms as a root attribute");
  d.bin_ms = *bin_ms;
  if (std::abs(d.bin_ms - options.bin_ms) > 1e-9 * d.bin_ms)
    log_data(fmt::format("{}: the file's bins are {} ms; data.bin_ms = {} is not applied to "
                         "the project layout",
                         name, d.bin_ms, options.bin_ms));
  if (options.window_bins > 0)
    log_data(fmt::format("{}: data.window_bins = {} is not applied to the project layout (its "
                         "trials are used whole)",
                         name, options.window_bins));

  int64_t B = -1, T = -1;
  if (has_spikes) {
    auto dims = f.shape("/spikes");
    if (dims.size() != 3)
      throw DataError(name, "/spikes", fmt::format("shape {}: expected (trials, time, neurons)",
                                                   shape_text(dims)));
    if (dims[0] == 0) throw DataError(name, "/spikes", "zero trials: expected at least one");
    if (dims[1] == 0) throw DataError(name, "/spikes", "zero time bins: expected at least one");
    if (dims[2] == 0) throw DataError(name, "/spikes", "zero neurons: expected at least one");
    auto values = f.read_doubles("/spikes");
    const int64_t T_ = dims[1], N_ = dims[2];
    check_counts(values.data(), values.size(), name, "/spikes", [&](size_t i) {
      const auto k = static_cast<int64_t>(i);
      return fmt::format("element ({}, {}, {})", k / (T_ * N_), (k / N_) % T_, k % N_);
    });
    d.spikes_btn = torch::from_blob(values.data(), dims, torch::kFloat64).to(torch::kFloat32);
    B = dims[0];
    T = dims[1];
  }
  const std::string bt = has_spikes ? fmt::format("({}, {}, …) like /spikes", B, T) : "";
  if (has_targets) {
    d.targets_bto = read_block(f, "/targets", 3, {B, T},
                               has_spikes ? ("(trials, time, outputs) = " + bt).c_str()
                                          : "(trials, time, outputs)");
    B = d.targets_bto.size(0);
    T = d.targets_bto.size(1);
    if (B == 0) throw DataError(name, "/targets", "zero trials: expected at least one");
  }
  if (f.has("/inputs"))
    d.inputs_btk = read_block(f, "/inputs", 3, {B, T},
                              fmt::format("(trials, time, inputs) with trials = {}, time = {}",
                                          B, T).c_str());
  if (f.has("/mask"))
    d.mask_bt = read_block(f, "/mask", 2, {B, T},
                           fmt::format("(trials, time) = ({}, {})", B, T).c_str());
  if (f.has("/condition")) {
    d.conditions = f.read_strings("/condition");
    if (static_cast<int64_t>(d.conditions.size()) != B)
      throw DataError(name, "/condition",
                      fmt::format("{} labels: expected one per trial ({})", d.conditions.size(), B));
  }
  const int64_t N = d.n_neurons();
  if (f.has("/neuron_ids")) {
    d.neuron_ids = f.read_strings("/neuron_ids");
    if (static_cast<int64_t>(d.neuron_ids.size()) != N)
      throw DataError(name, "/neuron_ids",
                      fmt::format("{} ids: expected one per neuron ({})", d.neuron_ids.size(), N));
  } else {
    for (int64_t n = 0; n < N; ++n) d.neuron_ids.push_back(std::to_string(n));
  }
  if (f.kind("/truth") == h5::ObjectKind::kGroup) {
    for (const auto& member : f.members("/truth")) {
      const std::string path = "/truth/" + member;
      if (f.kind(path) != h5::ObjectKind::kDataset) continue;
      auto dims = f.shape(path);
      switch (f.element_class(path)) {
        case h5::ElementClass::kInteger: {
          auto v = f.read_int64(path);
          d.truth[member] = torch::from_blob(v.data(), dims, torch::kInt64).clone();
          break;
        }
        case h5::ElementClass::kFloat: {
          auto v = f.read_doubles(path);
          auto t = torch::from_blob(v.data(), dims, torch::kFloat64);
          d.truth[member] = f.element_size(path) == 8 ? t.clone() : t.to(torch::kFloat32);
          break;
        }
        default:
          log_data(fmt::format("{}: {} is not numeric; skipped", name, path));
      }
    }
  }
  auto written_by = f.attribute_string("/", "provenance");
  d.provenance = fmt::format("hdf5 {}: {} × {} bins × {} neurons at {} ms{}", name,
                             trial_word(B, "trials"), T, N, d.bin_ms,
                             written_by ? " [" + *written_by + "]" : "");
  return d;
}

}  // namespace data_detail

void write_dataset_h5(const Dataset& data, const std::filesystem::path& file) {
  const std::string name = file.string();
  {
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec))
      throw DataError(name, "", "is a directory: expected a file name, e.g. " +
                                    (file / "session.h5").string());
    const auto parent = file.parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
      throw DataError(name, "", fmt::format("directory {} does not exist: create it first",
                                            parent.string()));
  }
  auto check_float = [&](const at::Tensor& t, const char* what) {
    if (t.defined() && !torch::isfinite(t).all().item<bool>())
      throw DataError(name, what, "holds non-finite values: refusing to write them");
  };
  check_float(data.inputs_btk, "/inputs");
  check_float(data.targets_bto, "/targets");
  check_float(data.mask_bt, "/mask");
  at::Tensor counts;
  if (data.spikes_btn.defined()) {
    auto s = data.spikes_btn.to(torch::kFloat64);
    if (!(s >= 0).logical_and(s == s.round()).logical_and(s <= 4294967295.0).all().item<bool>())
      throw DataError(name, "/spikes", "holds values that are not whole non-negative counts "
                                       "below 2^32: expected spike counts");
    counts = s.to(torch::kInt64).contiguous();
  }
  auto f = h5::File::create(file);
  auto dims_of = [](const at::Tensor& t) { return t.sizes().vec(); };
  auto write_float = [&](const std::string& path, const at::Tensor& t) {
    auto c = t.to(torch::kFloat32).contiguous();
    f.write(path, dims_of(c), H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, c.data_ptr<float>());
  };
  if (counts.defined()) {
    auto c = counts.to(torch::kInt64);
    std::vector<uint32_t> v(static_cast<size_t>(c.numel()));
    const int64_t* src = c.data_ptr<int64_t>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint32_t>(src[i]);
    f.write("/spikes", dims_of(c), H5T_NATIVE_UINT32, H5T_STD_U32LE, v.data());
  }
  if (data.inputs_btk.defined()) write_float("/inputs", data.inputs_btk);
  if (data.targets_bto.defined()) write_float("/targets", data.targets_bto);
  if (data.mask_bt.defined()) write_float("/mask", data.mask_bt);
  if (!data.conditions.empty()) f.write_strings("/condition", data.conditions);
  if (!data.neuron_ids.empty()) f.write_strings("/neuron_ids", data.neuron_ids);
  if (!data.truth.empty()) {
    f.create_group("/truth");
    for (const auto& [key, tensor] : data.truth) {
      const std::string path = "/truth/" + key;
      auto t = tensor.contiguous();
      if (t.is_floating_point() && t.scalar_type() == torch::kFloat64) {
        f.write(path, dims_of(t), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, t.data_ptr<double>());
      } else if (t.is_floating_point()) {
        write_float(path, t);
      } else {
        auto i = t.to(torch::kInt64).contiguous();
        f.write(path, dims_of(i), H5T_NATIVE_INT64, H5T_STD_I64LE, i.data_ptr<int64_t>());
      }
    }
  }
  f.write_attribute("/", "bin_ms", data.bin_ms);
  f.write_attribute("/", "provenance", data.provenance);
}

}  // namespace jslds
