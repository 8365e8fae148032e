// analysis.h5 writer (HDF5 C API). Every hid_t is owned by exactly one H5Object.
#include "core/analysis/analysis_h5.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <hdf5.h>

namespace jslds::analysis {
namespace {

/// Owns one HDF5 identifier and closes it with the matching H5*close; move-only; the
/// destructor never throws (a failing close is ignored: there is nothing left to do).
class H5Object {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Object() = default;
  H5Object(hid_t id, Closer close, const std::string& what, const std::string& file)
      : id_(id), close_(close) {
    if (id_ < 0) throw std::runtime_error(fmt::format("{}: HDF5 could not {}", file, what));
  }
  H5Object(H5Object&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  H5Object& operator=(H5Object&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
      close_ = o.close_;
    }
    return *this;
  }
  H5Object(const H5Object&) = delete;
  H5Object& operator=(const H5Object&) = delete;
  ~H5Object() { reset(); }

  hid_t get() const { return id_; }
  /// Closes now and reports failure (used for the file, whose close flushes the data).
  void close(const std::string& file) {
    if (id_ < 0) return;
    herr_t status = close_(std::exchange(id_, -1));
    if (status < 0) throw std::runtime_error(fmt::format("{}: HDF5 could not close", file));
  }

 private:
  void reset() noexcept {
    if (id_ >= 0) close_(std::exchange(id_, -1));
  }
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

class Writer {
 public:
  explicit Writer(std::string file) : file_(std::move(file)) {}

  void check(herr_t status, const std::string& what) const {
    if (status < 0) throw std::runtime_error(fmt::format("{}: HDF5 could not {}", file_, what));
  }

  H5Object group(hid_t parent, const std::string& name) const {
    return {H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
            "create group /" + name, file_};
  }

  /// A dataset of `dims` from `data` (row-major, length = product of dims).
  template <typename T>
  void dataset(hid_t loc, const std::string& path, hid_t type, const std::vector<hsize_t>& dims,
               const std::vector<T>& data) const {
    hsize_t count = 1;
    for (hsize_t d : dims) count *= d;
    if (count != data.size())
      throw std::logic_error(fmt::format("{}: dataset {} has {} values for {} cells", file_, path,
                                         data.size(), count));
    H5Object space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                   H5Sclose, "create the dataspace of " + path, file_);
    H5Object set(H5Dcreate2(loc, path.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT),
                 H5Dclose, "create dataset " + path, file_);
    if (count > 0)
      check(H5Dwrite(set.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()),
            "write dataset " + path);
  }

  void attribute(hid_t loc, const std::string& name, double value) const {
    write_attribute(loc, name, H5T_NATIVE_DOUBLE, &value);
  }
  void attribute(hid_t loc, const std::string& name, int64_t value) const {
    write_attribute(loc, name, H5T_NATIVE_INT64, &value);
  }
  void attribute(hid_t loc, const std::string& name, const std::string& value) const {
    H5Object type(H5Tcopy(H5T_C_S1), H5Tclose, "copy the string type", file_);
    check(H5Tset_size(type.get(), std::max<size_t>(1, value.size())),
          "size the string attribute " + name);
    check(H5Tset_cset(type.get(), H5T_CSET_UTF8), "set UTF-8 on attribute " + name);
    std::string padded = value.empty() ? std::string(1, '\0') : value;
    write_attribute(loc, name, type.get(), padded.data());
  }

 private:
  void write_attribute(hid_t loc, const std::string& name, hid_t type, const void* value) const {
    H5Object space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar dataspace", file_);
    H5Object attr(H5Acreate2(loc, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                  H5Aclose, "create attribute " + name, file_);
    check(H5Awrite(attr.get(), type, value), "write attribute " + name);
  }

  std::string file_;
};

/// An int8 HDF5 enumeration with the given member names (values 0, 1, …).
H5Object enum_type(const std::vector<const char*>& names, const std::string& file) {
  H5Object type(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose, "create an enum type", file);
  for (size_t i = 0; i < names.size(); ++i) {
    const auto value = static_cast<int8_t>(i);
    if (H5Tenum_insert(type.get(), names[i], &value) < 0)
      throw std::runtime_error(fmt::format("{}: HDF5 could not add enum member {}", file, names[i]));
  }
  return type;
}

void write_points(const Writer& w, hid_t file, const std::string& name,
                  const std::vector<PointAnalysis>& points, int64_t n, double bin_s,
                  hid_t stability_type, hid_t kind_type) {
  H5Object g = w.group(file, name);
  const auto p = static_cast<hsize_t>(points.size());
  const auto nn = static_cast<hsize_t>(n);
  const auto k = static_cast<hsize_t>(std::min<int64_t>(n, kTopEigenvectors));
  std::vector<double> coords, q, eig, vec, max_abs, freq, tau;
  std::vector<int8_t> stability, kind, refined;
  std::vector<int64_t> n_unstable;
  for (const auto& pt : points) {
    coords.insert(coords.end(), pt.coords.begin(), pt.coords.end());
    q.push_back(pt.q);
    for (const auto& lambda : pt.eigenvalues) {
      eig.push_back(lambda.real());
      eig.push_back(lambda.imag());
      const Mode m = describe_mode(lambda, bin_s);
      freq.push_back(m.freq_hz);
      tau.push_back(m.tau_s);
      kind.push_back(static_cast<int8_t>(m.kind));
    }
    for (const auto& v : pt.top_eigenvectors)
      for (const auto& c : v) {
        vec.push_back(c.real());
        vec.push_back(c.imag());
      }
    stability.push_back(static_cast<int8_t>(pt.stability));
    refined.push_back(pt.refined ? 1 : 0);
    n_unstable.push_back(pt.n_unstable);
    max_abs.push_back(pt.max_abs_eig);
  }
  w.dataset(g.get(), "coords", H5T_NATIVE_DOUBLE, {p, nn}, coords);
  w.dataset(g.get(), "q", H5T_NATIVE_DOUBLE, {p}, q);
  w.dataset(g.get(), "eigenvalues", H5T_NATIVE_DOUBLE, {p, nn, 2}, eig);
  w.dataset(g.get(), "eigenvectors", H5T_NATIVE_DOUBLE, {p, k, nn, 2}, vec);
  w.dataset(g.get(), "stability", stability_type, {p}, stability);
  w.dataset(g.get(), "n_unstable", H5T_NATIVE_INT64, {p}, n_unstable);
  w.dataset(g.get(), "max_abs_eig", H5T_NATIVE_DOUBLE, {p}, max_abs);
  w.dataset(g.get(), "freq_hz", H5T_NATIVE_DOUBLE, {p, nn}, freq);
  w.dataset(g.get(), "tau_s", H5T_NATIVE_DOUBLE, {p, nn}, tau);
  w.dataset(g.get(), "mode_kind", kind_type, {p, nn}, kind);
  w.dataset(g.get(), "refined", H5T_NATIVE_INT8, {p}, refined);
}

void write_analysis_h5_to(const AnalysisResult& r, const std::filesystem::path& path,
                          const std::filesystem::path& tmp) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors are reported by our exceptions
  const std::string name = path.string();
  {
    Writer w(name);
    H5Object file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                  "create the file (temporary " + tmp.string() + ")", name);
    w.attribute(file.get(), "format", std::string("jslds-analysis"));
    w.attribute(file.get(), "format_version", static_cast<int64_t>(kAnalysisH5Version));
    w.attribute(file.get(), "latent_dim", r.latent_dim);
    w.attribute(file.get(), "bin_ms", r.bin_ms);
    w.attribute(file.get(), "unique_tol", r.unique_tol);
    w.attribute(file.get(), "cluster_tol", r.cluster_tol);
    w.attribute(file.get(), "n_expansion_candidates", r.n_expansion_candidates);
    for (const auto& [key, value] : r.summary) w.attribute(file.get(), key, value);

    H5Object stability_type = enum_type({"stable", "marginal", "unstable"}, name);
    H5Object kind_type = enum_type({"real", "oscillation", "flip"}, name);
    const double bin_s = r.bin_ms * 1e-3;
    write_points(w, file.get(), "expansion_points", r.expansion_points, r.latent_dim, bin_s,
                 stability_type.get(), kind_type.get());
    write_points(w, file.get(), "fixed_points", r.fixed_points, r.latent_dim, bin_s,
                 stability_type.get(), kind_type.get());
    {
      H5Object fixed(H5Gopen2(file.get(), "fixed_points", H5P_DEFAULT), H5Gclose,
                     "open group /fixed_points", name);
      w.attribute(fixed.get(), "n_inits", r.search.n_inits);
      w.attribute(fixed.get(), "iterations", r.search.iterations);
      w.attribute(fixed.get(), "stop_reason", r.search.stop_reason);
      w.attribute(fixed.get(), "final_lr", r.search.final_lr);
      w.attribute(fixed.get(), "n_converged", r.search.n_converged);
      w.attribute(fixed.get(), "n_unique", r.search.n_unique);
      w.attribute(fixed.get(), "n_outliers", r.search.n_outliers);
      w.attribute(fixed.get(), "newton_refinement", static_cast<int64_t>(r.search.newton_on));
      w.attribute(fixed.get(), "newton_steps", r.search.newton_steps);
      w.attribute(fixed.get(), "n_refined", r.search.n_refined);
      w.attribute(fixed.get(), "n_slow_points", r.search.n_slow_points);
      w.attribute(fixed.get(), "max_refine_distance", r.search.max_refine_distance);
      w.attribute(fixed.get(), "seconds", r.search.seconds);
    }
    file.close(name);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    throw std::runtime_error(fmt::format("{}: could not move the written file {} into place: {}",
                                         name, tmp.string(), ec.message()));
}

}  // namespace

void write_analysis_h5(const AnalysisResult& r, const std::filesystem::path& path) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  try {
    write_analysis_h5_to(r, path, tmp);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);  // never leave a partial temporary behind
    throw;
  }
}

}  // namespace jslds::analysis
