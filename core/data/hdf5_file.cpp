#include "core/data/hdf5_file.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/data/loaders.h"

namespace jslds::h5 {
namespace {

// HDF5 prints its error stack to stderr by default; we report errors ourselves.
void silence_hdf5_errors() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

std::string normalise(const std::string& path) {
  if (path.empty() || path[0] != '/') return "/" + path;
  return path;
}

Handle plist(hid_t cls) {
  Handle p(H5Pcreate(cls), H5Pclose);
  return p;
}

const char* class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_ARRAY: return "array";
    default: return "other";
  }
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

}  // namespace

Handle::Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) {
  other.id_ = H5I_INVALID_HID;
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0 && close_) close_(id_);
    id_ = other.id_;
    close_ = other.close_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

Handle::~Handle() {
  if (id_ >= 0 && close_) close_(id_);  // return value ignored: destructors never throw
}

bool File::is_hdf5(const std::filesystem::path& file) {
  silence_hdf5_errors();
  return H5Fis_hdf5(file.c_str()) > 0;
}

File File::open_read(const std::filesystem::path& file) {
  silence_hdf5_errors();
  const std::string name = file.string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    throw DataError(name, "", "no such file");
  if (!is_hdf5(file))
    throw DataError(name, "", "not an HDF5 file (no HDF5 signature; expected NWB 2.x or the "
                              "project's HDF5 layout)");
  Handle f(H5Fopen(name.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!f) {
    if (::access(name.c_str(), R_OK) != 0)
      throw DataError(name, "", fmt::format("cannot read the file: {}", std::strerror(errno)));
    // HDF5's own words for the innermost failure (e.g. "truncated file: eof = 1000000, …").
    std::string detail;
    H5Ewalk2(
        H5E_DEFAULT, H5E_WALK_DOWNWARD,
        [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
          if (e->desc && *e->desc) *static_cast<std::string*>(out) = e->desc;
          return 0;
        },
        &detail);
    throw DataError(name, "",
                    fmt::format("HDF5 cannot open it ({}), although it starts as an HDF5 file: "
                                "expected a complete HDF5 file; is it truncated (an interrupted "
                                "copy or download) or corrupt?",
                                detail.empty() ? std::string("no reason given") : detail));
  }
  return File(std::move(f), name);
}

File File::create(const std::filesystem::path& file) {
  silence_hdf5_errors();
  const std::string name = file.string();
  Handle fcpl = plist(H5P_FILE_CREATE);
  H5Pset_obj_track_times(fcpl.get(), false);  // root group without timestamps
  Handle f(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT), H5Fclose);
  if (!f) throw DataError(name, "", "cannot create HDF5 file (directory missing or not writable?)");
  return File(std::move(f), name);
}

void File::fail(const std::string& object, const std::string& message) const {
  throw DataError(name_, object, message);
}

ObjectKind File::kind(const std::string& path) const {
  const std::string p = normalise(path);
  if (p == "/") return ObjectKind::kGroup;
  // H5Lexists needs every intermediate link to exist, so check them one by one.
  size_t pos = 0;
  while ((pos = p.find('/', pos + 1)) != std::string::npos) {
    if (H5Lexists(file_.get(), p.substr(0, pos).c_str(), H5P_DEFAULT) <= 0)
      return ObjectKind::kMissing;
  }
  if (H5Lexists(file_.get(), p.c_str(), H5P_DEFAULT) <= 0) return ObjectKind::kMissing;
  Handle obj(H5Oopen(file_.get(), p.c_str(), H5P_DEFAULT), H5Oclose);
  if (!obj) return ObjectKind::kMissing;  // dangling link
  switch (H5Iget_type(obj.get())) {
    case H5I_GROUP: return ObjectKind::kGroup;
    case H5I_DATASET: return ObjectKind::kDataset;
    default: return ObjectKind::kOther;
  }
}

std::vector<std::string> File::members(const std::string& group) const {
  const std::string p = normalise(group);
  if (kind(p) != ObjectKind::kGroup) fail(p, "expected a group");
  Handle g(H5Gopen2(file_.get(), p.c_str(), H5P_DEFAULT), H5Gclose);
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &names) < 0)
    fail(p, "cannot list the group's members");
  return names;
}

std::string File::describe_members(const std::string& group) const {
  const std::string p = normalise(group);
  if (kind(p) != ObjectKind::kGroup) return "(not a group)";
  std::string out;
  for (const auto& m : members(p)) {
    const std::string child = (p == "/" ? p : p + "/") + m;
    if (!out.empty()) out += ", ";
    switch (kind(child)) {
      case ObjectKind::kGroup: out += m + "/"; break;
      case ObjectKind::kDataset: {
        auto dims = shape(child);
        out += dims.empty() ? m + " (scalar)" : fmt::format("{} ({})", m, fmt::join(dims, "×"));
        break;
      }
      default: out += m;
    }
  }
  return out.empty() ? "(empty)" : out;
}

Handle File::open_object(const std::string& path) const {
  const std::string p = normalise(path);
  if (!has(p)) {
    auto slash = p.rfind('/');
    std::string parent = slash == 0 ? "/" : p.substr(0, slash);
    fail(p, fmt::format("not found; {} holds: {}", parent,
                        has(parent) ? describe_members(parent) : "(missing too)"));
  }
  Handle obj(H5Oopen(file_.get(), p.c_str(), H5P_DEFAULT), H5Oclose);
  if (!obj) fail(p, "cannot open object");
  return obj;
}

Handle File::open_dataset(const std::string& path) const {
  const std::string p = normalise(path);
  ObjectKind k = kind(p);
  if (k == ObjectKind::kMissing) open_object(p);  // throws with the listing
  if (k != ObjectKind::kDataset) fail(p, "expected a dataset, found a group");
  Handle d(H5Dopen2(file_.get(), p.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d) fail(p, "cannot open dataset");
  return d;
}

std::vector<int64_t> File::shape(const std::string& path) const {
  Handle d = open_dataset(path);
  Handle space(H5Dget_space(d.get()), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail(normalise(path), "cannot read the dataspace");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

ElementClass File::element_class(const std::string& path) const {
  Handle d = open_dataset(path);
  Handle type(H5Dget_type(d.get()), H5Tclose);
  switch (H5Tget_class(type.get())) {
    case H5T_INTEGER: return ElementClass::kInteger;
    case H5T_FLOAT: return ElementClass::kFloat;
    case H5T_STRING: return ElementClass::kString;
    default: return ElementClass::kOther;
  }
}

size_t File::element_size(const std::string& path) const {
  Handle d = open_dataset(path);
  Handle type(H5Dget_type(d.get()), H5Tclose);
  return H5Tget_size(type.get());
}

std::vector<double> File::read_doubles(const std::string& path) const {
  const std::string p = normalise(path);
  Handle d = open_dataset(p);
  Handle type(H5Dget_type(d.get()), H5Tclose);
  H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    fail(p, fmt::format("expected a numeric dataset, found {} elements", class_name(cls)));
  Handle space(H5Dget_space(d.get()), H5Sclose);
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<double> out(static_cast<size_t>(std::max<hssize_t>(n, 0)));
  if (n > 0 &&
      H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    fail(p, "read failed (corrupt file or unsupported filter?)");
  return out;
}

std::vector<int64_t> File::read_int64(const std::string& path) const {
  const std::string p = normalise(path);
  if (element_class(p) != ElementClass::kInteger) fail(p, "expected an integer dataset");
  Handle d = open_dataset(p);
  Handle space(H5Dget_space(d.get()), H5Sclose);
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<int64_t> out(static_cast<size_t>(std::max<hssize_t>(n, 0)));
  if (n > 0 &&
      H5Dread(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    fail(p, "read failed");
  return out;
}

std::vector<std::string> File::read_strings(const std::string& path) const {
  const std::string p = normalise(path);
  ElementClass cls = element_class(p);
  if (cls == ElementClass::kInteger) {
    std::vector<std::string> out;
    for (int64_t v : read_int64(p)) out.push_back(std::to_string(v));
    return out;
  }
  if (cls == ElementClass::kFloat) {
    std::vector<std::string> out;
    for (double v : read_doubles(p)) out.push_back(fmt::format("{}", v));
    return out;
  }
  if (cls != ElementClass::kString) fail(p, "expected a string or numeric dataset");
  Handle d = open_dataset(p);
  Handle file_type(H5Dget_type(d.get()), H5Tclose);
  Handle space(H5Dget_space(d.get()), H5Sclose);
  const auto n = static_cast<size_t>(std::max<hssize_t>(H5Sget_simple_extent_npoints(space.get()), 0));
  std::vector<std::string> out;
  out.reserve(n);
  if (n == 0) return out;
  Handle mem_type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (H5Tis_variable_str(file_type.get()) > 0) {
    H5Tset_size(mem_type.get(), H5T_VARIABLE);
    H5Tset_cset(mem_type.get(), H5Tget_cset(file_type.get()));
    std::vector<char*> buf(n, nullptr);
    if (H5Dread(d.get(), mem_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
      fail(p, "read of variable-length strings failed");
    for (char* s : buf) out.emplace_back(s ? s : "");
    H5Dvlen_reclaim(mem_type.get(), space.get(), H5P_DEFAULT, buf.data());
  } else {
    const size_t width = H5Tget_size(file_type.get());
    H5Tset_size(mem_type.get(), width);
    std::vector<char> buf(n * width, '\0');
    if (H5Dread(d.get(), mem_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
      fail(p, "read of fixed-length strings failed");
    for (size_t i = 0; i < n; ++i) {
      std::string s(buf.data() + i * width, width);
      s.erase(std::find(s.begin(), s.end(), '\0'), s.end());
      while (!s.empty() && s.back() == ' ') s.pop_back();
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::optional<double> File::attribute_double(const std::string& path,
                                             const std::string& name) const {
  Handle obj = open_object(path);
  if (H5Aexists(obj.get(), name.c_str()) <= 0) return std::nullopt;
  Handle attr(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    fail(normalise(path), fmt::format("attribute '{}': expected a number, found {}", name,
                                      class_name(cls)));
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    fail(normalise(path), fmt::format("attribute '{}': expected one value", name));
  double v = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v) < 0)
    fail(normalise(path), fmt::format("attribute '{}': read failed", name));
  return v;
}

std::optional<std::string> File::attribute_string(const std::string& path,
                                                  const std::string& name) const {
  Handle obj = open_object(path);
  if (H5Aexists(obj.get(), name.c_str()) <= 0) return std::nullopt;
  Handle attr(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) return std::nullopt;
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1) return std::nullopt;
  Handle mem_type(H5Tcopy(H5T_C_S1), H5Tclose);
  // HDF5 does not convert between ASCII and UTF-8: read in the stored character set.
  H5Tset_cset(mem_type.get(), H5Tget_cset(type.get()));
  if (H5Tis_variable_str(type.get()) > 0) {
    H5Tset_size(mem_type.get(), H5T_VARIABLE);
    char* s = nullptr;
    if (H5Aread(attr.get(), mem_type.get(), &s) < 0) return std::nullopt;
    std::string out = s ? s : "";
    H5Dvlen_reclaim(mem_type.get(), space.get(), H5P_DEFAULT, &s);
    return out;
  }
  const size_t width = H5Tget_size(type.get());
  H5Tset_size(mem_type.get(), width);
  std::string out(width, '\0');
  if (H5Aread(attr.get(), mem_type.get(), out.data()) < 0) return std::nullopt;
  out.erase(std::find(out.begin(), out.end(), '\0'), out.end());
  return out;
}

void File::create_group(const std::string& path) {
  const std::string p = normalise(path);
  Handle gcpl = plist(H5P_GROUP_CREATE);
  H5Pset_obj_track_times(gcpl.get(), false);
  Handle g(H5Gcreate2(file_.get(), p.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose);
  if (!g) fail(p, "cannot create group");
}

void File::write(const std::string& path, const std::vector<int64_t>& dims, hid_t mem_type,
                 hid_t file_type, const void* data) {
  const std::string p = normalise(path);
  std::vector<hsize_t> h(dims.begin(), dims.end());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                            : H5Screate_simple(static_cast<int>(h.size()), h.data(), nullptr),
               H5Sclose);
  Handle dcpl = plist(H5P_DATASET_CREATE);
  H5Pset_obj_track_times(dcpl.get(), false);
  Handle d(H5Dcreate2(file_.get(), p.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(),
                      H5P_DEFAULT),
           H5Dclose);
  if (!d) fail(p, "cannot create dataset");
  if (H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail(p, "write failed (disk full?)");
}

void File::write_strings(const std::string& path, const std::vector<std::string>& values) {
  const std::string p = normalise(path);
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values) ptrs.push_back(v.c_str());
  write(p, {static_cast<int64_t>(values.size())}, type.get(), type.get(), ptrs.data());
}

void File::write_attribute(const std::string& path, const std::string& name, double value) {
  Handle obj = open_object(path);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate2(obj.get(), name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT,
                         H5P_DEFAULT),
              H5Aclose);
  if (!attr || H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0)
    fail(normalise(path), fmt::format("cannot write attribute '{}'", name));
}

void File::write_attribute(const std::string& path, const std::string& name,
                           const std::string& value) {
  Handle obj = open_object(path);
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate2(obj.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                         H5P_DEFAULT),
              H5Aclose);
  const char* s = value.c_str();
  if (!attr || H5Awrite(attr.get(), type.get(), &s) < 0)
    fail(normalise(path), fmt::format("cannot write attribute '{}'", name));
}

}  // namespace jslds::h5

namespace jslds {

bool hdf5_root_attribute_starts_with(const std::filesystem::path& file, const std::string& name,
                                     const std::string& prefix) {
  try {
    if (!h5::File::is_hdf5(file)) return false;
    const auto value = h5::File::open_read(file).attribute_string("/", name);
    return value && value->rfind(prefix, 0) == 0;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace jslds
