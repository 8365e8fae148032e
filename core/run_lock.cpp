#include "core/run_lock.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace jslds {

namespace fs = std::filesystem;

RunLockHolder read_run_lock_holder(int fd) {
  char text[64] = {};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  if (n <= 0) return {};
  return {static_cast<pid_t>(std::atol(text)), std::strstr(text, kStartedByHand) != nullptr};
}

std::string run_lock_open_error(const fs::path& file, int error) {
  std::string message = fmt::format("cannot open {}: {}", file.string(), std::strerror(error));
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(file, ec))) {
    const fs::path target = fs::read_symlink(file, ec);
    message += fmt::format(" (it is a symbolic link to {}; run.lock holds no data: remove the link "
                           "and start again)",
                           ec ? std::string("an unreadable target") : target.string());
  }
  return message;
}

std::optional<RunLockHolder> training_in_progress(const fs::path& run_dir) {
  const fs::path file = run_dir / "run.lock";
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<RunLockHolder> holder;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) holder = read_run_lock_holder(fd);
  } else {
    ::flock(fd, LOCK_UN);
  }
  ::close(fd);
  return holder;
}

RunDirectoryLock::~RunDirectoryLock() {
  if (fd_ >= 0 && !inherited_) ::close(fd_);
}

RunDirectoryLock::RunDirectoryLock(RunDirectoryLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), inherited_(std::exchange(other.inherited_, false)) {}

RunDirectoryLock& RunDirectoryLock::operator=(RunDirectoryLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0 && !inherited_) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    inherited_ = std::exchange(other.inherited_, false);
  }
  return *this;
}

RunDirectoryLock RunDirectoryLock::acquire_for_training(const fs::path& run_dir) {
  const fs::path file = run_dir / "run.lock";
  RunDirectoryLock lock;
  struct stat inherited_stat {}, file_stat {};
  if (::fstat(kInheritedRunLockFd, &inherited_stat) == 0 && ::stat(file.c_str(), &file_stat) == 0 &&
      inherited_stat.st_dev == file_stat.st_dev && inherited_stat.st_ino == file_stat.st_ino) {
    // The supervisor's lock, held on our behalf (worker/supervisor.h): keep it open, and
    // do not let an exec of ours inherit it.
    ::fcntl(kInheritedRunLockFd, F_SETFD, FD_CLOEXEC);
    lock.fd_ = kInheritedRunLockFd;
    lock.inherited_ = true;
    return lock;
  }
  lock.fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock.fd_ < 0)
    throw std::runtime_error(run_lock_open_error(file, errno));
  if (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK)
      throw std::runtime_error(fmt::format("cannot lock {}: {}", file.string(), std::strerror(errno)));
    const pid_t holder = read_run_lock_holder(lock.fd_).pid;
    throw RunDirectoryBusy(
        fmt::format("{} is in use: another training process ({}) holds {}; two trainings must not share a run "
                    "directory. Wait for it to end, stop it (SIGTERM makes it checkpoint), or choose another "
                    "--run-dir",
                    run_dir.string(), holder > 0 ? fmt::format("pid {}", holder) : std::string("pid unknown"),
                    file.filename().string()),
        holder);
  }
  const std::string pid = std::to_string(::getpid()) + " " + std::string(kStartedByHand) + "\n";
  // Informational only (who trains here): a failure to write it does not stop the training.
  if (::ftruncate(lock.fd_, 0) == 0) (void)!::pwrite(lock.fd_, pid.data(), pid.size(), 0);
  return lock;
}

}  // namespace jslds
