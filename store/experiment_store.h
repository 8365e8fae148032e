// The experiment database of a sweep (DESIGN §3, §5): campaigns, runs and their state
// machine, swept parameters, training curves, summaries, fixed points, eigenmodes,
// artifacts and events.
//
// One process writes (rank 0 of `mpirun jslds sweep`, or the local `jslds sweep --jobs J`);
// any number of processes read with `ExperimentStore(path, {.read_only = true})` while it
// writes. Each writing member function is one transaction; wrap several in batch() to commit
// them together (a batch is one fsync instead of many).
//
// Thread safety: an ExperimentStore belongs to one thread at a time.
// Times are UTC ISO-8601 with milliseconds, e.g. "2024-05-01T12:00:00.123Z".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "store/sqlite.h"

namespace jslds::store {

/// Run states of DESIGN §3.
enum class RunStatus {
  kPending,      ///< expanded, waiting for a worker
  kRunning,      ///< handed to a worker in the campaign's current epoch
  kDone,         ///< finished; never re-run
  kFailed,       ///< exception, crash or bad config; message and exit status in `error`
  kDiverged,     ///< non-finite loss
  kInterrupted,  ///< stopped by a signal or a dead coordinator; resumes from its checkpoint
  kPruned,       ///< stopped early by the sweep's early-stopping rule
};

/// "pending", "running", "done", "failed", "diverged", "interrupted", "pruned".
std::string_view to_string(RunStatus status);
/// Inverse of to_string; throws StoreError listing the seven states for anything else.
RunStatus parse_run_status(std::string_view text);
/// All seven states in the order above.
const std::vector<RunStatus>& all_run_statuses();

/// The legal moves of the run state machine (docs/database.md has the diagram):
///   pending     → running, pruned
///   running     → done, failed, diverged, interrupted, pruned, pending (task handed back
///                 before its child started)
///   interrupted → running, pending
///   failed      → running, pending  (only with --retry-failed; the coordinator checks
///   diverged    → running, pending   max_attempts against `attempts`)
///   done, pruned: final.
/// A move to the same state is not a transition and is illegal.
bool is_legal_transition(RunStatus from, RunStatus to);

/// What the coordinator knows about a campaign before creating or loading it.
struct CampaignSpec {
  std::string name;              // identity in the database, [A-Za-z0-9._-]+
  std::string spec_toml;         // the canonical sweep spec text
  std::string spec_sha256;       // sha256 hex of spec_toml (the caller computes it)
  std::string method;            // grid | random | sobol
  std::string objective_metric;  // summary name, e.g. "val_bps"
  std::string objective_goal;    // "maximize" | "minimize"
};

/// Result of create_or_load_campaign.
struct CampaignHandle {
  int64_t id = 0;
  /// Launch counter: 1 for a new campaign, incremented on every load. `running` rows with a
  /// smaller epoch belong to a dead launch (see mark_stale_runs_interrupted).
  int64_t epoch = 0;
  /// True when the campaign already existed (this launch resumes it).
  bool existing = false;
  /// The spec sha256 stored in the database (equals spec.spec_sha256 for a new campaign).
  /// The caller refuses a resume when it differs, unless --force-spec.
  std::string stored_spec_sha256;
};

/// A campaign row.
struct CampaignRow {
  int64_t id = 0;
  std::string name;
  std::string spec_toml;
  std::string spec_sha256;
  std::string method;
  std::string objective_metric;
  std::string objective_goal;
  std::string status;  // "running" while a launch is active, then whatever set_campaign_status set
  int64_t epoch = 0;
  std::string created_at;
  std::string updated_at;
};

/// One swept parameter of a run: dotted run-config key and its value. Numbers (integers
/// included) go to params.value_real, everything else to params.value_text.
struct ParamValue {
  std::string name;  // e.g. "model.latent_dim"
  std::variant<double, std::string> value;
};

/// A run as expanded by the sweep (coordinator/sweep_spec).
struct NewRun {
  int64_t number = 0;          // 1-based position in the campaign, stable across resumes
  int64_t repeat = 0;          // 0-based repeat index (independent seed)
  std::string config_json;     // the complete canonical run config as JSON
  std::string config_sha256;   // its canonical sha256 (core/config.h config_sha256)
  std::string run_dir;         // ARTIFACTS/<campaign>/<number>
  std::vector<ParamValue> params;
  std::string data_sha256;     // dataset_sha256 of its data at launch; "" = not known (NULL)
};

/// Result of insert_runs, one per NewRun in the same order.
struct InsertedRun {
  int64_t id = 0;       // runs.id
  int64_t number = 0;   // the stored number (the existing row's number when not inserted)
  bool inserted = false;  // false: (campaign, config_sha256, repeat) already existed
};

/// A runs row.
struct RunRow {
  int64_t id = 0;
  int64_t campaign_id = 0;
  int64_t number = 0;
  int64_t repeat = 0;
  std::string config_json;
  std::string config_sha256;
  RunStatus status = RunStatus::kPending;
  int64_t attempts = 0;  // times it entered `running`
  int64_t epoch = 0;     // campaign epoch of its last start (0 = never started)
  std::optional<std::string> worker;  // e.g. "rank 3 on node17" while/after running
  std::optional<std::string> device;  // e.g. "cuda:1", "cpu"
  std::string run_dir;
  int64_t steps_done = 0;
  std::optional<std::string> started_at;   // last entry into `running`
  std::optional<std::string> finished_at;  // entry into done/failed/diverged/pruned
  std::optional<std::string> error;        // failed/diverged: what happened
};

/// Extra facts recorded with a state change. Fields left empty keep their stored value,
/// except as noted in transition_run.
struct TransitionDetails {
  std::optional<std::string> worker = {};
  std::optional<std::string> device = {};
  std::optional<std::string> error = {};   // failed / diverged / interrupted: the message
  std::optional<int64_t> steps_done = {};  // last completed (or checkpointed) step
  /// running → pending or interrupted of a task handed back before its child started: the
  /// attempt is taken back (attempts − 1).
  bool unstarted = false;
};

/// One point of a training curve (metrics table).
struct MetricPoint {
  int64_t run_id = 0;
  int64_t step = 0;
  std::string name;  // e.g. "train_loss", "val_bps"
  double value = 0;  // NaN is stored as NULL
};

/// A fixed point of the trained generator (docs/report-format.md `fixed_points`).
struct FixedPointRecord {
  int64_t idx = 0;
  std::string source;     // "expansion" | "numerical"
  double q = 0;           // mean-over-dims squared speed at the point
  std::string stability;  // "stable" | "marginal" | "unstable"
  int64_t n_unstable = 0; // eigenvalues with |λ| > 1
  double max_abs_eig = 0;
  std::vector<double> coords;  // latent_dim numbers; stored as a BLOB of little-endian float64
  // Numerical points: whether the Newton refinement polished it into a fixed point (false: a
  // slow point). Absent for expansion points and in databases older than schema version 2.
  std::optional<bool> refined;
};

/// An eigenmode of the Jacobian at a fixed point (docs/report-format.md `modes`).
struct ModeRecord {
  int64_t point_idx = 0;
  int64_t mode_idx = 0;
  double eig_re = 0;
  double eig_im = 0;
  double abs = 0;
  double freq_hz = 0;
  std::optional<double> tau_s;  // empty = infinite (|λ| = 1)
};

/// A file belonging to a run (checkpoint, analysis.h5, log, result.json, ...).
struct ArtifactRecord {
  std::string kind;             // "checkpoint" | "train_state" | "analysis" | "log" | "result" | ...
  std::string path;             // absolute path
  std::optional<int64_t> step;  // training step it reflects, when meaningful
  int64_t bytes = 0;
  std::string sha256;           // hex of the file contents ("" when not computed)
  std::string created_at;       // filled by the store when read back
};

/// An events row (free-form log of a campaign; state changes are logged here too).
struct EventRow {
  int64_t id = 0;
  int64_t campaign_id = 0;
  std::optional<int64_t> run_id;
  std::string at;
  std::string level;  // "info" | "warning" | "error"
  std::string message;
};

class ExperimentStore {
 public:
  /// Opens (and for writers creates or migrates, see store/schema.h) the database at `path`
  /// (":memory:" for tests). Throws StoreError when the file cannot be opened, is not a
  /// jslds database, or was written by a newer jslds (PRAGMA user_version too large).
  explicit ExperimentStore(const std::string& path, const OpenOptions& options = {});

  /// The underlying connection, for queries (store/query.h) and tests.
  Database& database() { return db_; }

  /// Runs `f()` inside one transaction and commits when it returns; rolls back and rethrows
  /// when it throws. Store calls inside nest as savepoints. Returns what `f` returns.
  template <class F>
  decltype(auto) batch(F&& f) {
    Transaction transaction(db_);
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      f();
      transaction.commit();
    } else {
      decltype(auto) result = f();
      transaction.commit();
      return result;
    }
  }

  // ---- campaigns ------------------------------------------------------------------------

  /// Creates the campaign (epoch 1) or loads it and increments its epoch; sets its status to
  /// "running". An existing campaign keeps its stored spec (see replace_campaign_spec).
  /// Throws StoreError when the name is not [A-Za-z0-9._-]+ or the goal is not
  /// maximize/minimize.
  CampaignHandle create_or_load_campaign(const CampaignSpec& spec);
  /// The campaign called `name`, if any. Read-only.
  std::optional<CampaignRow> find_campaign(std::string_view name);
  /// Throws StoreError ("no campaign with id N") when absent.
  CampaignRow get_campaign(int64_t campaign_id);
  std::vector<CampaignRow> list_campaigns();
  /// `--force-spec`: stores a new spec text, sha256, method and objective.
  void replace_campaign_spec(int64_t campaign_id, const CampaignSpec& spec);
  /// E.g. "finished", "stopped", "failed" at the end of a launch.
  void set_campaign_status(int64_t campaign_id, std::string_view status);

  // ---- runs -----------------------------------------------------------------------------

  /// Inserts expanded runs with their params, idempotently: a run whose (campaign,
  /// config_sha256, repeat) exists is left untouched and reported with inserted = false.
  /// One transaction. Throws StoreError when a new run's number is already taken by a
  /// different configuration (the expansion changed order; the message names both).
  std::vector<InsertedRun> insert_runs(int64_t campaign_id, std::span<const NewRun> runs);
  /// All runs of the campaign ordered by number, optionally only those in `status`.
  std::vector<RunRow> list_runs(int64_t campaign_id,
                                std::optional<RunStatus> status = std::nullopt);
  /// Throws StoreError ("no run with id N") when absent.
  RunRow get_run(int64_t run_id);
  std::optional<RunRow> find_run(int64_t campaign_id, int64_t number);
  /// Swept params of a run, ordered by name.
  std::vector<ParamValue> run_params(int64_t run_id);

  /// Every `running` run of the campaign whose epoch is below `current_epoch` becomes
  /// `interrupted` (its coordinator died). Returns how many. Call after
  /// create_or_load_campaign on resume.
  int64_t mark_stale_runs_interrupted(int64_t campaign_id, int64_t current_epoch);

  /// Moves a run to `to` and logs an event. Throws StoreError naming the run, both states
  /// and the legal targets when is_legal_transition(from, to) is false. Effects:
  ///   → running: attempts += 1, epoch = campaign epoch, started_at = now, finished_at and
  ///              error cleared, worker/device = details (cleared when not given);
  ///   → done, failed, diverged, pruned: finished_at = now; error = details.error
  ///              (cleared for done);
  ///   → interrupted: error = details.error;
  ///   → pending: worker, device, error cleared;
  /// attempts − 1 with details.unstarted (from running only; the event says "not started"),
  /// and steps_done = details.steps_done when given. Returns the updated row.
  RunRow transition_run(int64_t run_id, RunStatus to, const TransitionDetails& details = {});
  /// Progress without a state change (from the worker's progress stream).
  void update_steps_done(int64_t run_id, int64_t steps_done);

  // ---- results --------------------------------------------------------------------------

  /// Inserts training-curve points in one transaction; a (run, name, step) already present
  /// is overwritten (a resumed run repeats steps after its checkpoint).
  void record_metrics(std::span<const MetricPoint> points);
  /// The training curve of a run ordered by step then name; with `last_steps` > 0 only the
  /// points of its last `last_steps` distinct steps (the tail `jslds show` prints).
  std::vector<MetricPoint> metrics(int64_t run_id, int64_t last_steps = 0);
  /// Convenience: the metrics of one progress event.
  void record_metrics(int64_t run_id, int64_t step, const std::map<std::string, double>& metrics);
  /// Final metrics and analysis scalars; a name already present is overwritten.
  void record_summaries(int64_t run_id, const std::map<std::string, double>& summaries);
  std::map<std::string, double> run_summaries(int64_t run_id);
  /// Replaces the run's fixed points. Throws StoreError on an unknown source or stability.
  void record_fixed_points(int64_t run_id, std::span<const FixedPointRecord> points);
  std::vector<FixedPointRecord> fixed_points(int64_t run_id);
  /// Replaces the run's eigenmodes.
  void record_modes(int64_t run_id, std::span<const ModeRecord> modes);
  std::vector<ModeRecord> modes(int64_t run_id);
  /// Records a file; the same (run, kind, path) is updated in place (a checkpoint file is
  /// rewritten by rename), so the row always describes the file as it is now.
  void record_artifact(int64_t run_id, const ArtifactRecord& artifact);
  /// The run's artifacts, newest step first.
  std::vector<ArtifactRecord> artifacts(int64_t run_id);
  /// Deletes the run's `checkpoint` artifact rows, so no later resume continues from them,
  /// and its training curve (metrics), which the new attempt rewrites from step 0. Called
  /// when a run starts afresh (a --retry-failed attempt): a failed attempt's checkpoint must
  /// never seed a later one (DESIGN §3). Returns how many checkpoint rows went.
  int64_t forget_earlier_attempts(int64_t run_id);
  /// Moves the campaign's run directories under `from_root` to `to_root` in the records:
  /// runs.run_dir FROM_ROOT/X becomes TO_ROOT/X, and artifact paths under FROM_ROOT likewise
  /// (the folder was moved with its database; the files themselves are not touched). Paths
  /// are compared as text, component-wise (FROM_ROOT itself or FROM_ROOT/…). One transaction.
  /// Returns how many runs moved.
  int64_t relocate_run_dirs(int64_t campaign_id, const std::string& from_root,
                            const std::string& to_root);
  /// runs.data_sha256 of the campaign's runs that have one, by run number: the fingerprint of
  /// each run's data (core/data/dataset.h dataset_sha256) when it was first launched. Empty
  /// for a database older than schema version 3 (read as it is).
  std::map<int64_t, std::string> data_fingerprints(int64_t campaign_id);
  /// Sets runs.data_sha256 of the campaign's runs numbered in `by_number` where it is NULL
  /// (runs created before schema version 3). One transaction.
  void record_data_fingerprints(int64_t campaign_id, const std::map<int64_t, std::string>& by_number);
  /// Sets runs.jslds_build: the jslds builds that trained the run, as its result reports them
  /// ("0.1.0 (git 85f23ed1a2b3)", or "B1; from step 40: B2" when resumed by another build).
  void record_run_build(int64_t run_id, const std::string& builds);
  /// Sets runs.data_sha256 of one run (its result's fingerprint of the data it trained on).
  void record_run_data_fingerprint(int64_t run_id, const std::string& data_sha256);
  /// runs.jslds_build of a run; nullopt when not recorded (or a database older than version 3).
  std::optional<std::string> run_build(int64_t run_id);
  /// Appends to the campaign log. `level` is "info", "warning" or "error".
  void record_event(int64_t campaign_id, std::optional<int64_t> run_id, std::string_view level,
                    std::string_view message);
  /// The newest `limit` events of a campaign (of one run when `run_id` is given), oldest first.
  std::vector<EventRow> events(int64_t campaign_id, std::optional<int64_t> run_id = std::nullopt,
                               int64_t limit = 100);

 private:
  Database db_;
};

}  // namespace jslds::store
