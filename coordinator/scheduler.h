// The run state machine of a campaign (DESIGN §3), pure: no MPI, no database, no clock.
// The coordinator loads the campaign's runs into a Scheduler, asks it which run a free
// worker gets next, and tells it how each run ended; it writes the same transitions to the
// database.
//
//   pending ──assign──▶ running ──finish──▶ done | failed | diverged | interrupted | pruned
//                                                    | pending (handed back unstarted)
//   interrupted ──assign──▶ running                  (continues from its checkpoint)
//   failed, diverged ──assign──▶ running             (only with retry_failed, while
//                                                     attempts < max_attempts; a failed run
//                                                     continues from its checkpoint, a
//                                                     diverged one starts from scratch)
//   running of an earlier epoch ──add──▶ interrupted  (its coordinator died)
//
// The states and the legal moves are the database's (store::RunStatus,
// store::is_legal_transition); the scheduler makes only the moves above. `done` and `pruned`
// never change again. `attempts` counts entries into running, as runs.attempts does. A
// *lease* binds a running run to one worker and attempt number; a result that does not match
// the lease is refused. A worker holds one lease, or two where the coordinator hands it its
// next run before the current one ends (Coordinator, short runs): the first is the run it
// runs, the second the run it starts next.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "store/experiment_store.h"

namespace jslds {

using store::RunStatus;

/// A transition that is not legal, or a result that does not match the run's lease.
class IllegalTransition : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

struct SchedulerOptions {
  int max_attempts = 3;       // a failed/diverged run is retried while attempts < this, >= 1
  bool retry_failed = false;  // re-run failed/diverged runs while attempts < max_attempts
};

/// What the scheduler knows of one run (a row of the runs table).
struct ScheduledRun {
  int64_t run_id = 0;
  int64_t number = 0;      // runs.number: dispatch order among equals
  RunStatus state = RunStatus::kPending;
  int attempts = 0;        // entries into running so far (runs.attempts)
  int64_t epoch = 0;       // the launch epoch that last changed the run
};

/// A running run's binding to a worker.
struct Lease {
  int64_t run_id = 0;
  int64_t number = 0;
  int worker = 0;
  int attempt = 1;     // runs.attempts after this start (1-based)
  int64_t epoch = 0;   // the launch epoch that issued it
  bool resume = false; // the run was interrupted (or failed and is retried): continue from its checkpoint
};

class Scheduler {
 public:
  /// `epoch` is this launch's campaign epoch. Throws std::invalid_argument when
  /// options.max_attempts < 1.
  Scheduler(SchedulerOptions options, int64_t epoch);

  /// Adds a run loaded from the database. A `running` run of an earlier epoch becomes
  /// `interrupted` (its coordinator died); one of this epoch is refused
  /// (IllegalTransition: nothing can be running before this launch assigned it).
  /// Throws std::invalid_argument for a duplicate run_id.
  void add(const ScheduledRun& run);

  /// The next run for `worker`, by priority: interrupted runs (they have progress), then
  /// pending, then retries; lowest number first within each. The run becomes `running` under
  /// a new lease. nullopt when nothing is runnable. `max_leases` is how many leases the
  /// worker may hold after this one: 1 for an idle worker, 2 to give a busy worker the run it
  /// starts next. Throws IllegalTransition when the worker already holds `max_leases` leases,
  /// std::invalid_argument when max_leases < 1.
  std::optional<Lease> assign(int worker, int max_leases = 1);

  /// Ends the lease of `worker` on `run_id` with `outcome` (done, failed, diverged,
  /// interrupted, pruned, or pending for a task handed back unstarted). `started` false: no
  /// child ever ran under this lease (a task handed back), so its attempt is taken back.
  /// Throws IllegalTransition when the worker holds no lease on that run and attempt, or
  /// when `outcome` is not a legal successor of running.
  void finish(int64_t run_id, int worker, int attempt, RunStatus outcome, bool started = true);

  /// Runs that could still be assigned (pending, interrupted, retryable).
  bool has_runnable() const;
  /// How many runs could still be assigned (pending, interrupted, and failed or diverged
  /// ones with retry_failed and attempts below max_attempts).
  int runnable_count() const;
  /// True when nothing is running and nothing is runnable: the campaign is settled.
  bool settled() const { return leases_.empty() && !has_runnable(); }
  /// The second lease of `worker`: the run queued to start when its current one ends.
  std::optional<Lease> queued_lease_of(int worker) const;
  /// The lease on `run_id`, if it is running.
  std::optional<Lease> lease_of_run(int64_t run_id) const;
  /// The first lease `worker` holds (the run it runs), if any.
  std::optional<Lease> lease_of(int worker) const;
  /// How many leases `worker` holds (0, 1, or 2 with a run queued behind the current one).
  int lease_count(int worker) const { return static_cast<int>(leases_.count(worker)); }
  /// Every current lease (running runs).
  std::vector<Lease> leases() const;
  /// Number of runs in each state (states with no run are absent).
  std::map<RunStatus, int> counts() const;
  const ScheduledRun& run(int64_t run_id) const;
  int64_t epoch() const { return epoch_; }

 private:
  bool runnable(const ScheduledRun& r) const;
  int priority(const ScheduledRun& r) const;

  SchedulerOptions options_;
  int64_t epoch_;
  std::map<int64_t, ScheduledRun> runs_;  // by run_id
  std::multimap<int, Lease> leases_;      // by worker, in the order assigned
};

/// Time-limit rule (DESIGN §2): a run expected to take `estimate` may start at `now` only if
/// it ends before `stop_at` (the deadline minus the 2-minute graceful-stop margin). Without
/// an estimate (no run finished yet) every run may start.
bool may_start_before(std::chrono::system_clock::time_point now,
                      std::chrono::system_clock::time_point stop_at,
                      std::optional<std::chrono::duration<double>> estimate);

/// Mean duration of the runs finished so far (done or diverged), the estimate of
/// may_start_before.
class DurationEstimate {
 public:
  /// Adds one finished run's duration (seconds, >= 0; negative values are ignored).
  void add(double seconds);
  std::optional<std::chrono::duration<double>> mean() const;

 private:
  double sum_ = 0;
  int count_ = 0;
};

}  // namespace jslds
