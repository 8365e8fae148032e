#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/config.h"  // sha256_hex

namespace jslds {

FileWriteError::FileWriteError(const std::filesystem::path& path, const std::string& problem)
    : std::runtime_error(path.string() + ": " + problem), path_(path), problem_(problem) {}

namespace {

// Owns a file descriptor; close() reports the error close(2) may carry (deferred write errors).
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string errno_text(const std::string& what) {
  return fmt::format("{} failed: {}", what, std::strerror(errno));
}

}  // namespace

FileDigest write_file_atomically(const std::filesystem::path& file, std::string_view bytes,
                                 Durability durability) {
  const std::filesystem::path tmp = file.string() + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const std::string& problem) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw FileWriteError(file, problem);
  };
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) fail(errno_text("open " + tmp.string()));
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail(errno_text("write"));
      }
      done += static_cast<size_t>(n);
    }
    if (durability == Durability::kFsync && ::fsync(fd.get()) != 0) fail(errno_text("fsync"));
    if (fd.close() != 0) fail(errno_text("close"));
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) fail(errno_text("rename"));
  if (durability == Durability::kFsync) fsync_directory(file.parent_path());  // the rename
  return {static_cast<int64_t>(bytes.size()), sha256_hex(bytes)};
}

void fsync_directory(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) ::fsync(fd.get());
}

}  // namespace jslds
