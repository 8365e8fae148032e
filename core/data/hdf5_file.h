// A small RAII layer over the HDF5 C API, used by the NWB reader and the project's HDF5
// layout (DESIGN §4). Internal to core/data: it includes <hdf5.h>, which only jslds_core
// (and tests that link hdf5::hdf5) can see.
//
// Every hid_t is owned by exactly one Handle, which closes it with the matching H5*close
// function; destructors never throw. Failures throw DataError naming the file and the
// object path inside it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <hdf5.h>

namespace jslds::h5 {

/// Owns one HDF5 identifier (file, group, dataset, dataspace, datatype, attribute or
/// property list) and closes it with the function given at construction. Move-only.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();

  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

/// What a path inside the file names.
enum class ObjectKind { kMissing, kGroup, kDataset, kOther };

/// A dataset's element class as far as the loaders care.
enum class ElementClass { kInteger, kFloat, kString, kOther };

/// An open HDF5 file. Paths are absolute inside the file ("/units/spike_times") or relative
/// to the root ("units/spike_times").
class File {
 public:
  /// Opens an existing file read-only. Throws DataError if it is missing or not HDF5.
  static File open_read(const std::filesystem::path& file);
  /// Creates (truncates) a file for writing, without object modification times so that
  /// equal contents give byte-identical files. Throws DataError on failure.
  static File create(const std::filesystem::path& file);
  /// True when `file` starts with the HDF5 signature (at offset 0, 512, 1024, …).
  static bool is_hdf5(const std::filesystem::path& file);

  const std::string& name() const { return name_; }
  hid_t id() const { return file_.get(); }

  ObjectKind kind(const std::string& path) const;
  bool has(const std::string& path) const { return kind(path) != ObjectKind::kMissing; }
  /// Names of the members of a group, in name order. Throws if `group` is not a group.
  std::vector<std::string> members(const std::string& group) const;
  /// "a (group), b (dataset 35), …" for error messages that list what is there.
  std::string describe_members(const std::string& group) const;

  /// Dimensions of a dataset (empty for a scalar). Throws if missing.
  std::vector<int64_t> shape(const std::string& path) const;
  ElementClass element_class(const std::string& path) const;
  /// Element size in bytes (e.g. 8 for float64).
  size_t element_size(const std::string& path) const;

  /// Every element of an integer or float dataset, converted by HDF5 to double.
  /// Throws DataError if missing or not numeric.
  std::vector<double> read_doubles(const std::string& path) const;
  /// Same for an int64 view (integer datasets only).
  std::vector<int64_t> read_int64(const std::string& path) const;
  /// Every element of a string dataset (variable or fixed length, trailing NULs and spaces
  /// removed); numeric datasets are formatted as numbers ("3", "2.5").
  std::vector<std::string> read_strings(const std::string& path) const;

  /// A numeric attribute of the object at `path`, or nullopt when absent.
  std::optional<double> attribute_double(const std::string& path, const std::string& name) const;
  /// A string attribute of the object at `path`, or nullopt when absent or not a string.
  std::optional<std::string> attribute_string(const std::string& path,
                                              const std::string& name) const;

  void create_group(const std::string& path);
  /// Writes a dataset of `dims` from `data` (row-major), `mem_type` being the native type
  /// of `data` and `file_type` the type stored (e.g. H5T_STD_U32LE).
  void write(const std::string& path, const std::vector<int64_t>& dims, hid_t mem_type,
             hid_t file_type, const void* data);
  void write_strings(const std::string& path, const std::vector<std::string>& values);
  void write_attribute(const std::string& path, const std::string& name, double value);
  void write_attribute(const std::string& path, const std::string& name,
                       const std::string& value);

 private:
  File(Handle file, std::string name) : file_(std::move(file)), name_(std::move(name)) {}
  Handle open_dataset(const std::string& path) const;
  Handle open_object(const std::string& path) const;
  [[noreturn]] void fail(const std::string& object, const std::string& message) const;

  Handle file_;
  std::string name_;
};

}  // namespace jslds::h5
