// Messages between the coordinator (rank 0) and its workers (DESIGN §2), and their one
// encoding.
//
// Direction and meaning:
//   coordinator → worker: Task (run this run, or start it when the current one ends),
//                         Withdraw (hand back a queued task that has not started),
//                         Stop (stop the current run gracefully), Shutdown (no more work:
//                         stop any run and leave the loop)
//   worker → coordinator: Hello (I am ready; where I run), Progress (metrics and checkpoints
//                         of the current run), Result (the run ended), Stop (a signal reached
//                         this worker: stop the whole campaign gracefully)
//
// Encoding: one JSON object per message with a "type" member (nlohmann/json, UTF-8). JSON
// is slower than a binary layout but the messages are few (a handful per run) and small, and
// a decoding error names the member that was wrong. Local workers (--jobs J) pass Message
// values directly; only the MPI pool encodes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace jslds {

/// A message that could not be decoded: what was wrong and where in the message.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Final states a worker can report for a run (DESIGN §3). `kInterrupted` means the child was
/// stopped (signal or Stop) and can resume from its checkpoint. `kNotStarted`: the task was
/// handed back before any child started (a stopping worker, or a Withdraw); the run returns
/// to where it was before the task, and the attempt does not count.
enum class RunOutcome { kDone, kDiverged, kFailed, kInterrupted, kNotStarted };

/// "done" | "diverged" | "failed" | "interrupted" | "not_started".
const char* to_string(RunOutcome outcome);
/// Inverse of to_string; throws ProtocolError for any other text.
RunOutcome run_outcome_from_string(std::string_view text);

/// Worker → coordinator, once at start-up: where the worker runs.
struct Hello {
  std::string host;      // host name of the worker's node
  int local_rank = 0;    // rank among the workers on that node (MPI_Comm_split_type SHARED)
  int local_size = 1;    // workers on that node
  int threads = 1;       // intra-op threads each child gets (cores on node / workers on node)
  std::string device;    // what CUDA_VISIBLE_DEVICES the worker sets for `device = auto`, or "cpu"
};

/// Coordinator → worker: run one run. The run directory already holds config.toml.
struct Task {
  int64_t run_id = 0;        // runs.id in the experiment database
  int64_t run_number = 0;    // runs.number (the run directory's name)
  int attempt = 1;           // 1-based attempt number (runs.attempts after this start)
  int64_t epoch = 0;         // campaign launch epoch that issued the task
  std::string run_dir;       // absolute path of ARTIFACTS/<campaign>/<number>
  bool resume = false;       // continue from checkpoint.pt in run_dir (--resume)
  std::string checkpoint_sha256;  // with resume: the recorded hex sha256 the file must match
  int64_t checkpoint_step = 0;    // with resume: the step of that checkpoint
  std::string device;        // the run's runtime.device ("auto" | "cpu" | "cuda" | "cuda:K")
  int64_t threads = 0;       // the run's runtime.threads (0 = the worker decides)
};

/// One evaluation of a running run: `metrics` at training step `step`.
struct MetricPoint {
  int64_t step = 0;
  std::map<std::string, double> metrics;  // name → value; non-finite values are dropped
};

/// A checkpoint the child has written (docs/report-format.md, event "checkpoint").
struct CheckpointInfo {
  int64_t step = 0;
  std::string path;    // absolute path of checkpoint.pt
  int64_t bytes = 0;
  std::string sha256;  // hex sha256 of the file
};

/// Worker → coordinator while a run trains. Workers batch evaluations and send at most one
/// Progress per second per run, except that a checkpoint is sent at once.
struct Progress {
  int64_t run_id = 0;
  int attempt = 1;
  std::vector<MetricPoint> points;           // in step order
  std::optional<CheckpointInfo> checkpoint;  // the newest checkpoint since the last Progress
  std::string note;  // what the worker found at the attempt's start (recorded as an event)
};

/// In Result::message of a failed run, what precedes the quoted end of RUN_DIR/log.txt
/// (the lines after it are for `jslds show`; one-line views cut the message here).
inline constexpr std::string_view kLogTailMarker = "; end of log.txt:";

/// Worker → coordinator: the run's child has ended.
struct Result {
  int64_t run_id = 0;
  int attempt = 1;
  RunOutcome outcome = RunOutcome::kFailed;
  int64_t step = 0;          // last step reached (interrupted: the step of the last checkpoint)
  std::string message;       // failed/diverged/interrupted: what happened, for runs.error
  int exit_status = -1;      // the child's exit status, -1 when it was killed by a signal
  int term_signal = 0;       // the signal that killed the child, 0 if none
  double child_seconds = 0;  // wall time from spawn to reaping the child (s)
  std::string report_json;   // done/diverged: the child's "result" event object, verbatim
};

/// Both directions. Coordinator → worker: stop the current run gracefully (SIGTERM to the
/// child, which checkpoints) and report it `interrupted`. Worker → coordinator: a signal
/// reached this worker; stop the campaign.
struct Stop {
  std::string reason;
};

/// Coordinator → worker: leave the worker loop (after stopping any run).
struct Shutdown {};

/// Coordinator → worker: if the task for (run_id, attempt) is still queued behind the current
/// run, drop it and answer a Result `not_started`; if it has started, ignore this.
struct Withdraw {
  int64_t run_id = 0;
  int attempt = 1;
};

using Message = std::variant<Hello, Task, Progress, Result, Stop, Shutdown, Withdraw>;

/// The message's type name: "hello", "task", "progress", "result", "stop", "shutdown",
/// "withdraw".
const char* message_type(const Message& message);

/// The one wire encoding (a JSON object with "type"). Non-finite metric values are dropped.
std::string encode(const Message& message);

/// Inverse of encode. Throws ProtocolError naming the member that is missing or mistyped.
Message decode(std::string_view bytes);

}  // namespace jslds
