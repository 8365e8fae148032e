// A small RAII layer over libmatio for MATLAB .mat files (v5, and v7.3 when libmatio was
// built with HDF5). Internal to core/data: it includes <matio.h>.
//
// Each mat_t* and each top-level matvar_t* has exactly one owner; struct fields obtained
// with Mat_VarGetStructFieldByName stay owned by their parent Variable. Failures throw
// DataError naming the file and the variable.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <matio.h>

namespace jslds::mat {

struct FileCloser {
  void operator()(mat_t* m) const noexcept { Mat_Close(m); }
};
struct VariableFreer {
  void operator()(matvar_t* v) const noexcept { Mat_VarFree(v); }
};
/// Owns one top-level variable read from a file (and, through it, its fields).
using Variable = std::unique_ptr<matvar_t, VariableFreer>;

/// Name, class and size of one variable, read without its data.
struct VariableInfo {
  std::string name;
  std::string class_name;            // "struct", "double", "uint8", "char", "cell", …
  std::vector<size_t> dims;
  std::vector<std::string> fields;   // struct field names (empty otherwise)
};

/// The elements of a real numeric array (any integer or float class), converted to double,
/// in MATLAB's column-major order. Returns false when the class is not numeric.
bool numeric_values(const matvar_t* m, std::vector<double>& out);

/// "double", "uint8", "struct", … for a matio class.
const char* class_name(matio_classes c);

class File {
 public:
  /// Opens a .mat file read-only. Throws DataError if missing or not a MAT file.
  static File open_read(const std::filesystem::path& file);
  /// Creates a MAT v5 file (used by tests and tools that write MAT files).
  static File create_v5(const std::filesystem::path& file);

  const std::string& name() const { return name_; }
  mat_t* get() const { return mat_.get(); }
  /// "5" or "7.3" (or "4").
  std::string version() const;

  /// Every variable in the file, in file order (data not read).
  std::vector<VariableInfo> variables() const;
  /// "D (struct 1×210, fields data, condition), proj_vecs (double 2×6)".
  std::string describe_variables() const;
  /// Reads one variable with its data. Throws DataError listing the variables present when
  /// `variable` is missing.
  Variable read(const std::string& variable) const;
  /// Writes a variable (zlib-compressed); throws DataError on failure.
  void write(matvar_t* variable) const;

 private:
  File(std::unique_ptr<mat_t, FileCloser> mat, std::string name)
      : mat_(std::move(mat)), name_(std::move(name)) {}
  std::unique_ptr<mat_t, FileCloser> mat_;
  std::string name_;
};

}  // namespace jslds::mat
