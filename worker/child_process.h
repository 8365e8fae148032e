// One child process started with posix_spawn (argv array, never a shell) in its own process
// group, with a pipe on a chosen descriptor for its report stream (DESIGN §2).
//
// Why a process group of its own: mpirun and terminals signal whole process groups. In its
// own group the child is reached only through the supervisor, which turns every stop into
// SIGTERM → checkpoint → exit; a SIGUSR1 meant for the rank (whose default action would kill
// the child) never reaches it, and the supervisor can signal the child together with
// anything the child spawned.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace jslds {

/// Owns one file descriptor; closes it in the destructor. Move-only.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { reset(); }
  FileDescriptor(FileDescriptor&& o) noexcept : fd_(o.release()) {}
  FileDescriptor& operator=(FileDescriptor&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

struct SpawnOptions {
  std::filesystem::path executable;
  std::vector<std::string> argv;                  // argv[0] included
  std::map<std::string, std::string> environment; // set (or, with an empty value, kept) on top
                                                  // of this process's environment
  std::vector<std::string> unset_environment;     // removed from the child's environment
  std::filesystem::path log_file;                 // stdout and stderr, appended (created)
  int report_fd = 3;                              // the child writes its report stream here
  /// Descriptors the child inherits: (descriptor here, number in the child). Each becomes a
  /// plain descriptor in the child (no close-on-exec), e.g. the run directory's lock.
  std::vector<std::pair<int, int>> inherit_fds;
};

/// A running or finished child. The destructor SIGKILLs the child's process group if the
/// child has not been reaped, then reaps it; it never throws. Move-only.
class ChildProcess {
 public:
  /// Starts the child. Throws std::system_error naming the executable and the failing call
  /// (pipe, open of the log file, posix_spawn: e.g. ENOENT for a missing executable).
  static ChildProcess spawn(const SpawnOptions& options);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  /// Read end of the report pipe (non-blocking, close-on-exec); -1 after close_report().
  int report_fd() const { return report_.get(); }
  /// A Linux pidfd (pidfd_open(2), kernel ≥ 5.3) that poll(2) reports readable once the child
  /// has ended, so a supervisor can sleep until the exit instead of polling waitpid on a
  /// timer; -1 where the kernel lacks pidfd_open or after the child is reaped.
  int exit_fd() const { return exit_.get(); }
  void close_report() { report_.reset(); }

  /// Sends `signal` to the child's process group; harmless once the child is reaped.
  void signal_group(int signal) noexcept;

  /// Reaps the child if it has ended: its raw wait status (for WIFEXITED & co.), else nullopt.
  std::optional<int> try_wait();
  bool reaped() const { return pid_ <= 0; }

 private:
  ChildProcess() = default;
  void kill_and_reap() noexcept;

  pid_t pid_ = -1;
  FileDescriptor report_;
  FileDescriptor exit_;
};

}  // namespace jslds
