#include "core/data/mat_file.h"

#include <cstdint>
#include <fstream>

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

namespace {

// libmatio reads a v5 file cut short inside its last variable without any error (zeros where
// the data are missing), so the framing is checked first: after the 128-byte header, each
// top-level data element is an 8-byte tag (uint32 type, uint32 byte count) and its data,
// padded to 8 bytes unless compressed (type 15, miCOMPRESSED) (MathWorks, "MAT-File Format",
// Level 5, "Data Element Format"). Only the tags are read; the content is libmatio's.
void check_v5_framing(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::ifstream in(file, std::ios::binary);
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (!in || ec) return;  // libmatio reports unreadable files
  char header[128];
  if (!in.read(header, sizeof header)) return;
  const bool swapped = header[126] == 'M' && header[127] == 'I';
  auto u32 = [&](const unsigned char* p) {
    return swapped ? (uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3])
                   : (uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]);
  };
  uint64_t offset = sizeof header;
  for (int element = 1; offset + 8 <= size; ++element) {
    unsigned char tag[8];
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in.read(reinterpret_cast<char*>(tag), sizeof tag)) return;
    const uint32_t type = u32(tag), bytes = u32(tag + 4);
    const uint64_t padded = type == 15 ? bytes : (uint64_t(bytes) + 7) / 8 * 8;
    const uint64_t end = offset + 8 + padded;
    if (end > size && !(type != 15 && offset + 8 + bytes == size))
      throw DataError(name, "",
                      fmt::format("the file is truncated: its data element {} (at byte {}) declares {} "
                                  "bytes, but the file ends {} bytes after its tag (an interrupted copy or "
                                  "download?); expected a complete MAT v5 file",
                                  element, offset, bytes, size - offset - 8));
    offset = end;
  }
}

}  // namespace

File File::open_read(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) throw DataError(name, "", "no such file");
  std::unique_ptr<mat_t, FileCloser> m(Mat_Open(name.c_str(), MAT_ACC_RDONLY));
  if (!m)
    throw DataError(name, "",
                    "not a MATLAB .mat file libmatio can read (expected a MAT v5 file, or "
                    "v7.3 with libmatio built with HDF5)");
  if (Mat_GetVersion(m.get()) == MAT_FT_MAT5) check_v5_framing(file);
  return File(std::move(m), name);
}

File File::create_v5(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::unique_ptr<mat_t, FileCloser> m(Mat_CreateVer(name.c_str(), nullptr, MAT_FT_MAT5));
  if (!m) throw DataError(name, "", "cannot create MAT file");
  return File(std::move(m), name);
}

File File::create_v73(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::unique_ptr<mat_t, FileCloser> m(Mat_CreateVer(name.c_str(), nullptr, MAT_FT_MAT73));
  if (!m) throw DataError(name, "", "cannot create MAT v7.3 file (libmatio without HDF5?)");
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
