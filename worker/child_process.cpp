#include "worker/child_process.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "coordinator/signals.h"

extern char** environ;

namespace jslds {

void FileDescriptor::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

// posix_spawn file actions and attributes, destroyed on every path.
struct SpawnActions {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnActions() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnActions() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

std::vector<std::string> child_environment(const SpawnOptions& o) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool dropped = o.environment.count(name) > 0;
    for (const auto& u : o.unset_environment) dropped = dropped || u == name;
    if (!dropped) env.push_back(std::move(entry));
  }
  for (const auto& [k, v] : o.environment) env.push_back(k + "=" + v);
  return env;
}

}  // namespace

ChildProcess ChildProcess::spawn(const SpawnOptions& o) {
  const std::string exe = o.executable.string();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, "pipe2 for the report stream of " + exe);
  FileDescriptor read_end(fds[0]), write_end(fds[1]);
  // The write end must not already sit on report_fd: dup2(fd, fd) would keep O_CLOEXEC.
  if (write_end.get() == o.report_fd) {
    int moved = ::fcntl(write_end.get(), F_DUPFD_CLOEXEC, o.report_fd + 1);
    if (moved < 0) throw_errno(errno, "fcntl(F_DUPFD_CLOEXEC)");
    write_end.reset(moved);
  }
  if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) != 0) throw_errno(errno, "fcntl(O_NONBLOCK)");
  FileDescriptor log(::open(o.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log) throw_errno(errno, "cannot open the run's log file " + o.log_file.string());

  SpawnActions sa;
  posix_spawn_file_actions_addopen(&sa.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&sa.actions, log.get(), 1);
  posix_spawn_file_actions_adddup2(&sa.actions, log.get(), 2);
  posix_spawn_file_actions_adddup2(&sa.actions, write_end.get(), o.report_fd);
  for (const auto& [here, there] : o.inherit_fds)
    posix_spawn_file_actions_adddup2(&sa.actions, here, there);
  posix_spawnattr_setpgroup(&sa.attr, 0);  // a process group of its own
  // Default dispositions and an empty mask: the worker's handlers and blocked signals must
  // not leak into the child (it installs its own SIGTERM handler).
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&sa.attr, &all);
  posix_spawnattr_setsigmask(&sa.attr, &none);
  posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                         POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  auto env_strings = child_environment(o);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, exe.c_str(), &sa.actions, &sa.attr, argv.data(), envp.data());
  if (rc != 0) throw_errno(rc, fmt::format("posix_spawn of {}", exe));
  StopSignals::register_child_group(pid);
  ChildProcess child;
  child.pid_ = pid;
  child.report_ = std::move(read_end);
#ifdef SYS_pidfd_open
  // Not yet reaped, so the pid cannot have been reused. ENOSYS (old kernel) or any other
  // failure just leaves the supervisor on its timed waitpid checks.
  child.exit_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
#endif
  return child;  // write_end and log close here: only the child holds them now
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      report_(std::move(other.report_)),
      exit_(std::move(other.exit_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    report_ = std::move(other.report_);
    exit_ = std::move(other.exit_);
  }
  return *this;
}

ChildProcess::~ChildProcess() { kill_and_reap(); }

void ChildProcess::kill_and_reap() noexcept {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  StopSignals::unregister_child_group(pid_);
  pid_ = -1;
  exit_.reset();
}

void ChildProcess::signal_group(int signal) noexcept {
  if (pid_ > 0) ::kill(-pid_, signal);
}

std::optional<int> ChildProcess::try_wait() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return std::nullopt;
  if (r < 0) {
    if (errno == EINTR) return std::nullopt;
    throw_errno(errno, fmt::format("waitpid({})", pid_));
  }
  StopSignals::unregister_child_group(pid_);
  pid_ = -1;
  exit_.reset();
  return status;
}

}  // namespace jslds
