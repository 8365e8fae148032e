// Rank 0's campaign loop (DESIGN §2, §3): expands the sweep, creates or resumes the campaign
// in the experiment database, hands runs to free workers at once (dynamic scheduling),
// records their progress and results in batched transactions, and stops gracefully on a
// signal or before a time limit.
//
// Only this loop touches the database; workers never do. It never busy-waits: it sleeps in
// WorkerPool::receive (≤ 10 ms steps) while nothing happens.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "coordinator/scheduler.h"
#include "coordinator/sweep_spec.h"
#include "coordinator/worker_pool.h"
#include "store/experiment_store.h"

namespace jslds {

/// The spec of an existing campaign differs from the one given (without --force-spec), or
/// a forced spec would drop runs of the campaign. A usage error: exit status 2.
class SpecMismatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CoordinatorOptions {
  /// Run directories are ARTIFACTS/<campaign>/<run number>/ (made absolute). A campaign claims
  /// ARTIFACTS/<campaign>/ with a marker; a launch of another campaign there is refused
  /// (coordinator/artifacts_owner.h).
  std::filesystem::path artifacts = "jslds-runs";
  /// The database's path, named in the marker and in refusals (informational).
  std::string database;
  /// Re-run failed and diverged runs while runs.attempts < the spec's max_attempts.
  bool retry_failed = false;
  /// Resume a campaign whose stored spec differs (its run list may only grow).
  bool force_spec = false;
  /// End of the allocation (--time-limit, SLURM_JOB_END_TIME). Runs that cannot finish
  /// before deadline − stop_margin are not started; at deadline − stop_margin the campaign
  /// stops gracefully.
  std::optional<std::chrono::system_clock::time_point> deadline;
  std::chrono::seconds stop_margin{120};
  /// A graceful stop waits this long for workers' results before marking the rest
  /// interrupted itself (DESIGN §2: the whole stop within 60 s).
  std::chrono::seconds stop_timeout{55};
  /// While the finished runs' mean duration is below this, each busy worker is also handed
  /// the run it starts next (as long as at least as many runs wait as there are workers, and
  /// its current run has not lasted 10 times the mean), so the coordinator's round trip
  /// between two runs overlaps the current one. Zero: never.
  std::chrono::duration<double> queue_runs_shorter_than{2.0};
  /// Database writes are committed together at most this far apart (checkpoints at once).
  std::chrono::milliseconds commit_interval{250};
  /// One line per finished run and per state change of the campaign; nullptr = quiet.
  std::ostream* log = nullptr;
  /// The fingerprint (dataset_sha256, core/data/dataset.h) of each run's data as it is now,
  /// by the run's config_sha256 (`jslds sweep` loads every distinct [data] section before a
  /// launch). Stored with new runs; a resume whose runs were launched with other data is
  /// refused (DataChanged). Empty: neither stored nor checked.
  std::map<std::string, std::string> data_sha256;
  /// The fingerprint a started run's own files record (`jslds sweep` reads train_state.pt or
  /// checkpoint.pt, which need LibTorch); consulted for runs the database has none for (created
  /// before schema version 3) after their result.json. nullopt: not recorded there.
  std::function<std::optional<std::string>(const std::filesystem::path& run_dir)> recorded_data_sha256;
};

/// The data at a resumed campaign's data.path (or its simulator) differ from those its runs
/// were launched with: resuming would rank runs trained on different data together. A usage
/// error: exit status 2.
class DataChanged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What one launch did.
struct LaunchSummary {
  int64_t campaign_id = 0;
  int64_t epoch = 0;
  bool resumed = false;               // the campaign existed before this launch
  int64_t stale_interrupted = 0;      // running rows of a dead launch marked interrupted
  int64_t runs_total = 0;
  std::map<RunStatus, int> counts;    // states of all runs at the end
  int runs_finished = 0;              // results received in this launch (any outcome)
  int runs_queued = 0;                // runs handed to a busy worker to start next
  int withdraw_requests = 0;          // queued runs asked back (some may have started by then)
  bool stopped = false;               // ended by a signal, a worker's stop or the time limit
  std::string stop_reason;
  double wall_seconds = 0;            // the loop, from the first dispatch to the end
  double busy_seconds = 0;            // wall time from first dispatch to last result
  double child_seconds = 0;           // sum of the children's lifetimes (spawn → reap)
  double cpu_seconds = 0;             // this process's CPU time (user + system) in the loop
  int workers = 0;
};

class Coordinator {
 public:
  /// Keeps references; all three must outlive run().
  Coordinator(store::ExperimentStore& store, WorkerPool& pool, const SweepSpec& spec,
              CoordinatorOptions options);

  /// Runs (or resumes) the campaign until every run is settled or a stop ends the launch,
  /// then sends Shutdown to every worker. Throws SpecMismatch, ConfigError (an expanded run
  /// is invalid: nothing has been written), StoreError, or what the pool throws.
  LaunchSummary run();

 private:
  struct State;
  CoordinatorOptions options_;
  store::ExperimentStore& store_;
  WorkerPool& pool_;
  const SweepSpec& spec_;
};

/// How preview_launch's refusal lines begin.
extern const char* const kRefusedPrefix;

/// What a launch of `spec` with `options` would do, found without changing anything (for
/// `jslds sweep --dry-run`): one line per finding. `store` is the database opened read-only,
/// or nullptr when the file does not exist yet. Says whether the launch would create or resume
/// the campaign (with its runs by state and how many would start), and whether it would be
/// refused: another spec without --force-spec (SpecMismatch's reason), or run-directory
/// folders whose campaign.json names another campaign (coordinator/artifacts_owner.h; a
/// folder without a marker but with other files is reported as a likely refusal). Also says
/// when the runs' folder would be recorded as moved. A refusal is a line starting with
/// kRefusedPrefix; how many runs would start is said only when nothing is refused. Throws
/// StoreError for an unreadable database.
std::vector<std::string> preview_launch(store::ExperimentStore* store, const SweepSpec& spec,
                                        const std::vector<ExpandedRun>& runs,
                                        const CoordinatorOptions& options);

/// Deadline from `--time-limit` text ("90s", "45m", "2h", "1h30m", "1d"; a number alone is
/// seconds), relative to `now`. Throws std::invalid_argument naming the text and the accepted
/// forms, also for a number after a unit without its own ("1h30").
std::chrono::system_clock::time_point parse_time_limit(std::string_view text,
                                                       std::chrono::system_clock::time_point now);

/// SLURM_JOB_END_TIME (Unix seconds) when set and valid, else nullopt.
std::optional<std::chrono::system_clock::time_point> slurm_job_end_time();

}  // namespace jslds
