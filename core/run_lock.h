// RUN_DIR/run.lock: one training process per run directory (DESIGN §3, "isolated runs").
//
// The lock is an flock(2) on RUN_DIR/run.lock whose text is the pid of the process that
// trains there. A sweep's supervisor (worker/supervisor.h) takes it before it starts
// `jslds train` and hands its descriptor to the child as descriptor kInheritedRunLockFd, so
// the lock lives exactly as long as the training process. A `jslds train` started by hand
// takes it itself. Either way a second training of the same directory (a second
// `jslds train --resume`, or a sweep resuming a run someone is training by hand) is refused
// instead of two processes writing one checkpoint, one metrics.jsonl and one log.
//
// flock locks belong to an open file description and are released by the kernel when the
// last descriptor of it closes, so a killed process never leaves a stale lock behind. The
// text only says who holds the lock (a supervisor uses it to ask that trainer to stop); the
// flock alone decides whether the directory is taken.
//
// Free of Torch, MPI and SQLite: the worker and the trainer share it.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/types.h>

namespace jslds {

/// The descriptor number at which the supervisor passes its RUN_DIR/run.lock to the child.
inline constexpr int kInheritedRunLockFd = 4;

/// What follows the pid in run.lock when `jslds train` took the lock itself ("1234 by-hand"):
/// a supervisor that must stop such a holder signals that process alone, never its process
/// group (a user's shell pipeline). A supervisor's child leads a process group of its own,
/// which a wrapper named by JSLDS_TRAIN_EXE shares, and is signalled as a group.
inline constexpr const char* kStartedByHand = "by-hand";

/// Who run.lock names: its pid (0 when none) and whether `jslds train` started by hand wrote it.
struct RunLockHolder {
  pid_t pid = 0;
  bool by_hand = false;
};

/// Reads the text of an open run.lock (descriptor `fd`, from offset 0). Never throws; an
/// unreadable or empty file gives {0, false}.
RunLockHolder read_run_lock_holder(int fd);

/// The message for a failed open(2) of run.lock (`file`) with errno `error`. When run.lock is a
/// symbolic link (open follows it, so a dangling one fails with "No such file or directory"),
/// it says so, names the target and tells the user to remove the link: run.lock holds no data.
std::string run_lock_open_error(const std::filesystem::path& file, int error);

/// The process training in `run_dir`: the holder of RUN_DIR/run.lock, or nullopt when the
/// file is missing, unreadable or held by no process. Probes with flock(LOCK_SH | LOCK_NB),
/// which only an exclusive (training) holder refuses, and releases at once; it never takes
/// the directory from a trainer that starts a moment later. Never throws. Used by
/// `jslds analyze`, which must not replace the analysis.h5 of a training in progress.
std::optional<RunLockHolder> training_in_progress(const std::filesystem::path& run_dir);

/// Another live process holds RUN_DIR/run.lock.
class RunDirectoryBusy : public std::runtime_error {
 public:
  RunDirectoryBusy(const std::string& message, pid_t holder)
      : std::runtime_error(message), holder_(holder) {}
  /// The pid written in run.lock by the holder; 0 when the file names none.
  pid_t holder() const { return holder_; }

 private:
  pid_t holder_;
};

/// Holds RUN_DIR/run.lock for the lifetime of the object (move-only).
class RunDirectoryLock {
 public:
  RunDirectoryLock() = default;
  ~RunDirectoryLock();
  RunDirectoryLock(RunDirectoryLock&& other) noexcept;
  RunDirectoryLock& operator=(RunDirectoryLock&& other) noexcept;
  RunDirectoryLock(const RunDirectoryLock&) = delete;
  RunDirectoryLock& operator=(const RunDirectoryLock&) = delete;

  /// Takes RUN_DIR/run.lock for a training process (`jslds train`), without waiting.
  ///
  /// When descriptor kInheritedRunLockFd is already an open description of that very file
  /// (same device and inode), the process was started by a supervisor that holds the lock
  /// for it: that descriptor is kept and nothing else is done. Otherwise the file is created
  /// if missing, locked with flock(LOCK_EX | LOCK_NB), and its text replaced by this
  /// process's pid and kStartedByHand.
  ///
  /// Throws RunDirectoryBusy naming the directory and the holder's pid when another process
  /// holds the lock; std::runtime_error naming the file when it cannot be opened or locked
  /// for another reason (e.g. a read-only directory). `run_dir` must exist.
  static RunDirectoryLock acquire_for_training(const std::filesystem::path& run_dir);

  /// True when the lock came from the supervisor (descriptor kInheritedRunLockFd).
  bool inherited() const { return inherited_; }

 private:
  int fd_ = -1;
  bool inherited_ = false;
};

}  // namespace jslds
