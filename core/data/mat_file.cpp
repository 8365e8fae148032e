#include "core/data/mat_file.h"

#include <fmt/format.h>

#include "core/data/loaders.h"

namespace jslds::mat {

const char* class_name(matio_classes c) {
  switch (c) {
    case MAT_C_CELL: return "cell";
    case MAT_C_STRUCT: return "struct";
    case MAT_C_OBJECT: return "object";
    case MAT_C_CHAR: return "char";
    case MAT_C_SPARSE: return "sparse";
    case MAT_C_DOUBLE: return "double";
    case MAT_C_SINGLE: return "single";
    case MAT_C_INT8: return "int8";
    case MAT_C_UINT8: return "uint8";
    case MAT_C_INT16: return "int16";
    case MAT_C_UINT16: return "uint16";
    case MAT_C_INT32: return "int32";
    case MAT_C_UINT32: return "uint32";
    case MAT_C_INT64: return "int64";
    case MAT_C_UINT64: return "uint64";
    case MAT_C_FUNCTION: return "function";
    case MAT_C_OPAQUE: return "opaque";
    default: return "empty";
  }
}

bool numeric_values(const matvar_t* m, std::vector<double>& out) {
  const size_t n = m->rank == 0 ? 0 : [&] {
    size_t k = 1;
    for (int i = 0; i < m->rank; ++i) k *= m->dims[i];
    return k;
  }();
  out.resize(n);
  auto convert = [&](auto* p) {
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<double>(p[i]);
  };
  switch (m->class_type) {
    case MAT_C_DOUBLE: convert(static_cast<const double*>(m->data)); return true;
    case MAT_C_SINGLE: convert(static_cast<const float*>(m->data)); return true;
    case MAT_C_INT8: convert(static_cast<const int8_t*>(m->data)); return true;
    case MAT_C_UINT8: convert(static_cast<const uint8_t*>(m->data)); return true;
    case MAT_C_INT16: convert(static_cast<const int16_t*>(m->data)); return true;
    case MAT_C_UINT16: convert(static_cast<const uint16_t*>(m->data)); return true;
    case MAT_C_INT32: convert(static_cast<const int32_t*>(m->data)); return true;
    case MAT_C_UINT32: convert(static_cast<const uint32_t*>(m->data)); return true;
    case MAT_C_INT64: convert(static_cast<const int64_t*>(m->data)); return true;
    case MAT_C_UINT64: convert(static_cast<const uint64_t*>(m->data)); return true;
    default: return false;
  }
}

File File::open_read(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) throw DataError(name, "", "no such file");
  std::unique_ptr<mat_t, FileCloser> m(Mat_Open(name.c_str(), MAT_ACC_RDONLY));
  if (!m)
    throw DataError(name, "",
                    "not a MATLAB .mat file libmatio can read (expected a MAT v5 file, or "
                    "v7.3 with libmatio built with HDF5)");
  return File(std::move(m), name);
}

File File::create_v5(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::unique_ptr<mat_t, FileCloser> m(Mat_CreateVer(name.c_str(), nullptr, MAT_FT_MAT5));
  if (!m) throw DataError(name, "", "cannot create MAT file");
  return File(std::move(m), name);
}

std::string File::version() const {
  switch (Mat_GetVersion(mat_.get())) {
    case MAT_FT_MAT73: return "7.3";
    case MAT_FT_MAT4: return "4";
    default: return "5";
  }
}

std::vector<VariableInfo> File::variables() const {
  std::vector<VariableInfo> out;
  Mat_Rewind(mat_.get());
  while (true) {
    Variable v(Mat_VarReadNextInfo(mat_.get()));
    if (!v) break;
    VariableInfo info;
    info.name = v->name ? v->name : "";
    info.class_name = class_name(v->class_type);
    info.dims.assign(v->dims, v->dims + v->rank);
    if (v->class_type == MAT_C_STRUCT) {
      const unsigned n = Mat_VarGetNumberOfFields(v.get());
      char* const* names = Mat_VarGetStructFieldnames(v.get());
      for (unsigned i = 0; names && i < n; ++i) info.fields.emplace_back(names[i]);
    }
    out.push_back(std::move(info));
  }
  Mat_Rewind(mat_.get());
  return out;
}

std::string File::describe_variables() const {
  std::string out;
  for (const auto& v : variables()) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} ({} {}", v.name, v.class_name, fmt::join(v.dims, "×"));
    if (!v.fields.empty()) out += fmt::format(", fields {}", fmt::join(v.fields, ", "));
    out += ")";
  }
  return out.empty() ? "(no variables)" : out;
}

Variable File::read(const std::string& variable) const {
  Mat_Rewind(mat_.get());
  Variable v(Mat_VarRead(mat_.get(), variable.c_str()));
  if (!v)
    throw DataError(name_, variable,
                    fmt::format("variable not found (or unreadable); the file holds: {}",
                                describe_variables()));
  return v;
}

void File::write(matvar_t* variable) const {
  if (Mat_VarWrite(mat_.get(), variable, MAT_COMPRESSION_ZLIB) != 0)
    throw DataError(name_, variable && variable->name ? variable->name : "",
                    "cannot write variable");
}

}  // namespace jslds::mat
