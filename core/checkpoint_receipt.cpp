#include "core/checkpoint_receipt.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace jslds {

namespace fs = std::filesystem;

fs::path checkpoint_receipt_path(const fs::path& run_dir) { return run_dir / "checkpoint.json"; }

void write_checkpoint_receipt(const fs::path& run_dir, const CheckpointReceipt& r) {
  const fs::path file = checkpoint_receipt_path(run_dir);
  fs::path tmp = file;
  tmp += ".tmp";
  const std::string text = nlohmann::json{{"step", r.step},
                                          {"path", r.path},
                                          {"bytes", r.bytes},
                                          {"sha256", r.sha256}}
                               .dump() +
                           "\n";
  auto fail = [&](const char* call) {
    const int error = errno;
    throw std::runtime_error(
        fmt::format("cannot write the checkpoint receipt {}: {}: {}", tmp.string(), call,
                    std::strerror(error)));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("open");
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    ::close(fd);
    fail("write");
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("fsync");
  }
  ::close(fd);
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec)
    throw std::runtime_error(fmt::format("cannot rename {} to {}: {}", tmp.string(),
                                         file.string(), ec.message()));
}

std::optional<CheckpointReceipt> read_checkpoint_receipt(const fs::path& run_dir) {
  std::ifstream in(checkpoint_receipt_path(run_dir), std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto integer = [&](const char* key) -> std::optional<int64_t> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) return std::nullopt;
    return it->get<int64_t>();
  };
  auto text = [&](const char* key) -> std::optional<std::string> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto step = integer("step"), bytes = integer("bytes");
  auto path = text("path"), sha = text("sha256");
  if (!step || !bytes || !path || !sha) return std::nullopt;
  // A plain file name: a receipt can only vouch for a file of its own run directory.
  if (path->empty() || fs::path(*path).filename().string() != *path || *path == "." ||
      *path == "..")
    return std::nullopt;
  if (sha->size() != 64 || sha->find_first_not_of("0123456789abcdef") != std::string::npos)
    return std::nullopt;
  return CheckpointReceipt{*step, *path, *bytes, *sha};
}

}  // namespace jslds
