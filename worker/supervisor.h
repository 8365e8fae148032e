// Runs one task as a `jslds train` child and watches it (DESIGN §2):
//
//   EXE train RUN_DIR/config.toml --run-dir RUN_DIR --report-fd 3 [--resume]
//
// EXE is this program (/proc/self/exe) unless JSLDS_TRAIN_EXE names another (tests and
// benchmarks use stand-ins that speak the same report stream). The child's stdout and stderr
// are appended to RUN_DIR/log.txt; its JSON lines on fd 3 (docs/report-format.md) become
// metric points, checkpoints and the final result; its end (exit status, signal, missing
// result) becomes the run's outcome with a message.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/protocol.h"
#include "worker/child_process.h"

namespace jslds {

struct SupervisorOptions {
  /// The training executable; empty = JSLDS_TRAIN_EXE if set, else /proc/self/exe.
  std::filesystem::path train_exe;
  /// Intra-op threads for runs with runtime.threads = 0 (OMP_NUM_THREADS, MKL_NUM_THREADS).
  /// 0 = leave the environment alone.
  int threads = 0;
  /// CUDA_VISIBLE_DEVICES for runs with runtime.device = "auto"; empty = leave alone.
  std::string cuda_visible_devices;
  /// After SIGTERM, how long the child may take to checkpoint and exit before SIGKILL. The
  /// default keeps a whole graceful stop inside DESIGN §2's 60 s.
  std::chrono::milliseconds stop_grace{std::chrono::seconds(45)};
};

/// The facts about a child's end from which its run's outcome follows.
struct ChildEnd {
  int wait_status = 0;                 // raw status from waitpid
  bool stop_requested = false;         // the supervisor sent SIGTERM (stop)
  bool killed_after_grace = false;     // … and SIGKILL after stop_grace
  std::optional<std::string> result_event;  // the "result" JSON line, if one arrived
  int64_t last_step = 0;               // the highest step in progress/checkpoint events
  int64_t checkpoint_step = 0;         // the step of the newest checkpoint (0: none)
  std::string log_tail;                // the end of RUN_DIR/log.txt, for failure messages
  int malformed_lines = 0;             // report lines that were not valid JSON events
};

/// Classifies a child's end (pure):
///   exit 0 + result "done"/"diverged"  → done/diverged (diverged: the event's message)
///   exit 0 without a result            → failed, "exited with status 0 without a result"
///   exit 143/130, or SIGTERM/SIGINT/SIGKILL after a stop request, or SIGTERM from anyone
///                                      → interrupted at checkpoint_step (resumable)
///   another exit status or signal      → failed, "exited with status N" / "killed by
///                                        SIGSEGV (Segmentation fault)", plus the log tail
/// Throws ProtocolError for a result event that is not a JSON object with a valid status.
Result classify_child_end(const ChildEnd& end);

/// What a poll of the child produced.
struct SupervisorUpdate {
  std::vector<MetricPoint> points;           // progress events, in order
  std::optional<CheckpointInfo> checkpoint;  // the newest checkpoint event, if any
  std::optional<Result> result;              // set once, when the child has ended
  /// Set once, at the first poll after a start that had something to say (an adopted or
  /// completed checkpoint, files moved aside, an orphaned trainer stopped): sent on at once so
  /// that the database keeps it even when this attempt is killed before its result.
  std::string note;
};

/// One task at a time. Not thread-safe; one Supervisor per worker.
class Supervisor {
 public:
  explicit Supervisor(SupervisorOptions options);
  /// SIGKILLs and reaps a child that is still running. Never throws.
  ~Supervisor() = default;

  /// Starts the child for `task` (run_dir/config.toml must exist).
  ///
  /// First it takes RUN_DIR/run.lock, which the child inherits and holds for its lifetime: a
  /// training process of an earlier launch that still runs in the directory (its worker rank
  /// was killed) gets SIGTERM, so it checkpoints, and the start waits for it to exit
  /// (stop_grace, then SIGKILL); two processes never train in one directory.
  ///
  /// With task.resume, the run directory's checkpoint.pt is used only if its sha256 equals
  /// task.checkpoint_sha256 (the newest recorded checkpoint), or else equals the sha256 in
  /// the trainer's receipt RUN_DIR/checkpoint.json (core/checkpoint_receipt.h) for a step at
  /// least as late: a checkpoint written after its worker was killed, which the next poll
  /// hands over (SupervisorUpdate::checkpoint) so the database records it. Otherwise it is
  /// renamed checkpoint.pt.unverified and the run starts from step 0 (the result's message
  /// says so). A child that cannot be started gives a `failed` result at the next poll.
  /// Throws std::logic_error while busy.
  void start(const Task& task);

  bool busy() const { return task_.has_value(); }
  const std::optional<Task>& task() const { return task_; }

  /// Reads the report stream and checks the child for up to `timeout` (poll(2) on the
  /// pipe and on the child's pidfd, so it returns as soon as something arrives or the child
  /// ends). Sends SIGKILL once a stop's grace
  /// has passed. After the update that carries `result`, the supervisor is idle again.
  SupervisorUpdate poll(std::chrono::milliseconds timeout);

  /// Asks the child to stop: SIGTERM to its process group (it checkpoints and exits 143).
  /// Idempotent; no-op when idle.
  void stop();

 private:
  void read_report(SupervisorUpdate& update);
  void handle_line(std::string_view line, SupervisorUpdate& update);
  Result finish(int wait_status);

  /// Takes RUN_DIR/run.lock (flock) for this run, stopping a previous training process that
  /// still holds it (an orphan whose worker was killed). Returns an empty string on success,
  /// else why the run cannot start.
  std::string lock_run_directory(const std::filesystem::path& dir);

  SupervisorOptions options_;
  std::optional<Task> task_;
  std::optional<ChildProcess> child_;
  FileDescriptor run_lock_;                  // held from start until the child is reaped
  std::optional<CheckpointInfo> adopted_;    // a receipted checkpoint to record, sent once
  std::optional<Result> start_failure_;
  std::string note_;  // added to the result's message (e.g. an unverified checkpoint)
  bool note_sent_ = false;  // note_ as of the start went out in a SupervisorUpdate
  size_t log_start_ = 0;  // offset in RUN_DIR/log.txt of this attempt's first line
  std::string buffer_;
  std::optional<std::string> result_event_;
  int64_t last_step_ = 0;
  int64_t checkpoint_step_ = 0;
  int malformed_lines_ = 0;
  bool stop_requested_ = false;
  bool killed_after_grace_ = false;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point kill_at_;
};

}  // namespace jslds
