#include "store/experiment_store.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "store/schema.h"

namespace jslds::store {
namespace {

// UTC ISO-8601 with milliseconds, computed by SQLite so every writer uses one clock format.
constexpr std::string_view kNow = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

constexpr std::array<std::string_view, 7> kStatusNames = {
    "pending", "running", "done", "failed", "diverged", "interrupted", "pruned"};

bool valid_campaign_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
  });
}

void validate_campaign_spec(const CampaignSpec& spec) {
  if (!valid_campaign_name(spec.name)) {
    throw StoreError(fmt::format(
        "campaign name '{}' is invalid: expected one or more of A-Z a-z 0-9 . _ -", spec.name));
  }
  if (spec.objective_goal != "maximize" && spec.objective_goal != "minimize") {
    throw StoreError(fmt::format(
        "campaign '{}': objective goal '{}' is invalid: expected \"maximize\" or \"minimize\"",
        spec.name, spec.objective_goal));
  }
}

// The coordinates of a fixed point as little-endian float64 bytes (numpy: np.frombuffer(b,
// dtype='<f8')).
std::vector<unsigned char> encode_coords(const std::vector<double>& coords) {
  std::vector<unsigned char> bytes(coords.size() * sizeof(double));
  for (std::size_t i = 0; i < coords.size(); ++i) {
    uint64_t bits = std::bit_cast<uint64_t>(coords[i]);
    for (int b = 0; b < 8; ++b) bytes[i * 8 + b] = static_cast<unsigned char>(bits >> (8 * b));
  }
  return bytes;
}

std::vector<double> decode_coords(const std::vector<unsigned char>& bytes) {
  if (bytes.size() % 8 != 0) {
    throw StoreError(fmt::format("fixed point coords BLOB has {} bytes, not a multiple of 8",
                                 bytes.size()));
  }
  std::vector<double> coords(bytes.size() / 8);
  for (std::size_t i = 0; i < coords.size(); ++i) {
    uint64_t bits = 0;
    for (int b = 0; b < 8; ++b) bits |= static_cast<uint64_t>(bytes[i * 8 + b]) << (8 * b);
    coords[i] = std::bit_cast<double>(bits);
  }
  return coords;
}

constexpr std::string_view kCampaignColumns =
    "id, name, spec_toml, spec_sha256, method, objective_metric, objective_goal, status, epoch, "
    "created_at, updated_at";

CampaignRow read_campaign(const Statement& st) {
  CampaignRow c;
  c.id = st.column_int64(0);
  c.name = st.column_text(1);
  c.spec_toml = st.column_text(2);
  c.spec_sha256 = st.column_text(3);
  c.method = st.column_text(4);
  c.objective_metric = st.column_text(5);
  c.objective_goal = st.column_text(6);
  c.status = st.column_text(7);
  c.epoch = st.column_int64(8);
  c.created_at = st.column_text(9);
  c.updated_at = st.column_text(10);
  return c;
}

constexpr std::string_view kRunColumns =
    "id, campaign_id, number, repeat, config_json, config_sha256, status, attempts, epoch, "
    "worker, device, run_dir, steps_done, started_at, finished_at, error";

RunRow read_run(const Statement& st) {
  RunRow r;
  r.id = st.column_int64(0);
  r.campaign_id = st.column_int64(1);
  r.number = st.column_int64(2);
  r.repeat = st.column_int64(3);
  r.config_json = st.column_text(4);
  r.config_sha256 = st.column_text(5);
  r.status = parse_run_status(st.column_text(6));
  r.attempts = st.column_int64(7);
  r.epoch = st.column_int64(8);
  r.worker = st.column_optional_text(9);
  r.device = st.column_optional_text(10);
  r.run_dir = st.column_text(11);
  r.steps_done = st.column_int64(12);
  r.started_at = st.column_optional_text(13);
  r.finished_at = st.column_optional_text(14);
  r.error = st.column_optional_text(15);
  return r;
}

std::string legal_targets(RunStatus from) {
  std::string out;
  for (RunStatus to : all_run_statuses()) {
    if (!is_legal_transition(from, to)) continue;
    if (!out.empty()) out += ", ";
    out += to_string(to);
  }
  return out.empty() ? "none: it is final" : out;
}

}  // namespace

// ---- run states -------------------------------------------------------------------------

std::string_view to_string(RunStatus status) {
  return kStatusNames.at(static_cast<std::size_t>(status));
}

const std::vector<RunStatus>& all_run_statuses() {
  static const std::vector<RunStatus> all = {
      RunStatus::kPending, RunStatus::kRunning,     RunStatus::kDone,  RunStatus::kFailed,
      RunStatus::kDiverged, RunStatus::kInterrupted, RunStatus::kPruned};
  return all;
}

RunStatus parse_run_status(std::string_view text) {
  for (std::size_t i = 0; i < kStatusNames.size(); ++i) {
    if (kStatusNames[i] == text) return static_cast<RunStatus>(i);
  }
  throw StoreError(fmt::format(
      "unknown run status '{}': expected one of pending, running, done, failed, diverged, "
      "interrupted, pruned",
      text));
}

bool is_legal_transition(RunStatus from, RunStatus to) {
  using S = RunStatus;
  switch (from) {
    case S::kPending:
      return to == S::kRunning || to == S::kPruned;
    case S::kRunning:
      return to == S::kDone || to == S::kFailed || to == S::kDiverged || to == S::kInterrupted ||
             to == S::kPruned || to == S::kPending;
    case S::kInterrupted:
    case S::kFailed:
    case S::kDiverged:
      return to == S::kRunning || to == S::kPending;
    case S::kDone:
    case S::kPruned:
      return false;
  }
  return false;
}

// ---- ExperimentStore --------------------------------------------------------------------

namespace {
OpenOptions deferring_the_journal(OpenOptions options) {
  options.defer_journal_policy = true;
  return options;
}
}  // namespace

ExperimentStore::ExperimentStore(const std::string& path, const OpenOptions& options)
    : db_(path, deferring_the_journal(options)) {
  if (db_.read_only()) {
    check_schema(db_);
  } else {
    // Another program's database is refused before its journal mode is changed.
    const int version = refuse_foreign_database(db_);
    db_.apply_journal_policy();
    if (!options.defer_migration || version == 0) apply_schema(db_);
  }
}

CampaignHandle ExperimentStore::create_or_load_campaign(const CampaignSpec& spec) {
  validate_campaign_spec(spec);
  apply_schema(db_);  // a migration deferred by OpenOptions::defer_migration (no-op when current)
  return batch([&] {
    CampaignHandle handle;
    if (auto existing = find_campaign(spec.name)) {
      Statement st(db_, fmt::format("UPDATE campaigns SET epoch = epoch + 1, status = 'running', "
                                    "updated_at = {} WHERE id = ?",
                                    kNow));
      st.bind(1, existing->id).run();
      handle.id = existing->id;
      handle.epoch = existing->epoch + 1;
      handle.existing = true;
      handle.stored_spec_sha256 = existing->spec_sha256;
    } else {
      Statement st(db_, fmt::format(
                            "INSERT INTO campaigns (name, spec_toml, spec_sha256, method, "
                            "objective_metric, objective_goal, status, epoch, created_at, "
                            "updated_at) VALUES (?, ?, ?, ?, ?, ?, 'running', 1, {0}, {0})",
                            kNow));
      st.bind(1, spec.name)
          .bind(2, spec.spec_toml)
          .bind(3, spec.spec_sha256)
          .bind(4, spec.method)
          .bind(5, spec.objective_metric)
          .bind(6, spec.objective_goal)
          .run();
      handle.id = db_.last_insert_rowid();
      handle.epoch = 1;
      handle.existing = false;
      handle.stored_spec_sha256 = spec.spec_sha256;
    }
    record_event(handle.id, std::nullopt, "info",
                 handle.existing ? fmt::format("campaign resumed (epoch {})", handle.epoch)
                                 : std::string("campaign created (epoch 1)"));
    return handle;
  });
}

std::optional<CampaignRow> ExperimentStore::find_campaign(std::string_view name) {
  Statement st(db_, fmt::format("SELECT {} FROM campaigns WHERE name = ?", kCampaignColumns));
  st.bind(1, name);
  if (!st.step()) return std::nullopt;
  return read_campaign(st);
}

CampaignRow ExperimentStore::get_campaign(int64_t campaign_id) {
  Statement st(db_, fmt::format("SELECT {} FROM campaigns WHERE id = ?", kCampaignColumns));
  st.bind(1, campaign_id);
  if (!st.step()) throw StoreError(fmt::format("no campaign with id {}", campaign_id));
  return read_campaign(st);
}

std::vector<CampaignRow> ExperimentStore::list_campaigns() {
  Statement st(db_, fmt::format("SELECT {} FROM campaigns ORDER BY id", kCampaignColumns));
  std::vector<CampaignRow> out;
  while (st.step()) out.push_back(read_campaign(st));
  return out;
}

void ExperimentStore::replace_campaign_spec(int64_t campaign_id, const CampaignSpec& spec) {
  validate_campaign_spec(spec);
  batch([&] {
    Statement st(db_, fmt::format("UPDATE campaigns SET spec_toml = ?, spec_sha256 = ?, "
                                  "method = ?, objective_metric = ?, objective_goal = ?, "
                                  "updated_at = {} WHERE id = ?",
                                  kNow));
    st.bind(1, spec.spec_toml)
        .bind(2, spec.spec_sha256)
        .bind(3, spec.method)
        .bind(4, spec.objective_metric)
        .bind(5, spec.objective_goal)
        .bind(6, campaign_id)
        .run();
    if (db_.changes() == 0) throw StoreError(fmt::format("no campaign with id {}", campaign_id));
    record_event(campaign_id, std::nullopt, "warning",
                 fmt::format("campaign spec replaced (sha256 {})", spec.spec_sha256));
  });
}

void ExperimentStore::set_campaign_status(int64_t campaign_id, std::string_view status) {
  Statement st(db_,
               fmt::format("UPDATE campaigns SET status = ?, updated_at = {} WHERE id = ?", kNow));
  st.bind(1, status).bind(2, campaign_id).run();
  if (db_.changes() == 0) throw StoreError(fmt::format("no campaign with id {}", campaign_id));
}

std::vector<InsertedRun> ExperimentStore::insert_runs(int64_t campaign_id,
                                                      std::span<const NewRun> runs) {
  return batch([&] {
    Statement find(db_,
                   "SELECT id, number FROM runs WHERE campaign_id = ? AND config_sha256 = ? "
                   "AND repeat = ?");
    Statement taken(db_,
                    "SELECT config_sha256, repeat FROM runs WHERE campaign_id = ? AND number = ?");
    Statement insert(db_,
                     "INSERT INTO runs (campaign_id, number, repeat, config_json, config_sha256, "
                     "run_dir, data_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)");
    Statement param(db_,
                    "INSERT INTO params (run_id, name, value_real, value_text) VALUES (?, ?, ?, ?)");
    std::vector<InsertedRun> out;
    out.reserve(runs.size());
    for (const NewRun& run : runs) {
      find.reset();
      find.bind(1, campaign_id).bind(2, run.config_sha256).bind(3, run.repeat);
      if (find.step()) {
        out.push_back({find.column_int64(0), find.column_int64(1), false});
        continue;
      }
      taken.reset();
      taken.bind(1, campaign_id).bind(2, run.number);
      if (taken.step()) {
        throw StoreError(fmt::format(
            "campaign {}: run number {} already belongs to config sha256 {} repeat {}, not to "
            "the new config sha256 {} repeat {} (did the expansion order change?)",
            campaign_id, run.number, taken.column_text(0), taken.column_int64(1),
            run.config_sha256, run.repeat));
      }
      insert.reset();
      insert.bind(1, campaign_id)
          .bind(2, run.number)
          .bind(3, run.repeat)
          .bind(4, run.config_json)
          .bind(5, run.config_sha256)
          .bind(6, run.run_dir);
      if (run.data_sha256.empty())
        insert.bind(7, nullptr);
      else
        insert.bind(7, run.data_sha256);
      insert.run();
      int64_t run_id = db_.last_insert_rowid();
      for (const ParamValue& p : run.params) {
        param.reset();
        param.bind(1, run_id).bind(2, p.name);
        if (const double* number = std::get_if<double>(&p.value)) {
          param.bind(3, *number).bind(4, nullptr);
        } else {
          param.bind(3, nullptr).bind(4, std::get<std::string>(p.value));
        }
        param.run();
      }
      out.push_back({run_id, run.number, true});
    }
    return out;
  });
}

std::vector<RunRow> ExperimentStore::list_runs(int64_t campaign_id,
                                               std::optional<RunStatus> status) {
  std::string sql = fmt::format("SELECT {} FROM runs WHERE campaign_id = ?", kRunColumns);
  if (status) sql += " AND status = ?";
  sql += " ORDER BY number";
  Statement st(db_, sql);
  st.bind(1, campaign_id);
  if (status) st.bind(2, to_string(*status));
  std::vector<RunRow> out;
  while (st.step()) out.push_back(read_run(st));
  return out;
}

RunRow ExperimentStore::get_run(int64_t run_id) {
  Statement st(db_, fmt::format("SELECT {} FROM runs WHERE id = ?", kRunColumns));
  st.bind(1, run_id);
  if (!st.step()) throw StoreError(fmt::format("no run with id {}", run_id));
  return read_run(st);
}

std::optional<RunRow> ExperimentStore::find_run(int64_t campaign_id, int64_t number) {
  Statement st(db_,
               fmt::format("SELECT {} FROM runs WHERE campaign_id = ? AND number = ?", kRunColumns));
  st.bind(1, campaign_id).bind(2, number);
  if (!st.step()) return std::nullopt;
  return read_run(st);
}

std::vector<ParamValue> ExperimentStore::run_params(int64_t run_id) {
  Statement st(db_,
               "SELECT name, value_real, value_text FROM params WHERE run_id = ? ORDER BY name");
  st.bind(1, run_id);
  std::vector<ParamValue> out;
  while (st.step()) {
    ParamValue p;
    p.name = st.column_text(0);
    if (!st.is_null(1)) {
      p.value = st.column_double(1);
    } else {
      p.value = st.column_text(2);
    }
    out.push_back(std::move(p));
  }
  return out;
}

int64_t ExperimentStore::mark_stale_runs_interrupted(int64_t campaign_id, int64_t current_epoch) {
  return batch([&] {
    Statement st(db_,
                 "UPDATE runs SET status = 'interrupted', error = 'coordinator of epoch ' || "
                 "epoch || ' stopped while the run was running' WHERE campaign_id = ? AND "
                 "status = 'running' AND epoch < ? RETURNING id, number, error");
    st.bind(1, campaign_id).bind(2, current_epoch);
    std::vector<std::pair<int64_t, std::string>> changes;  // run id, its event
    while (st.step()) {
      changes.emplace_back(st.column_int64(0), fmt::format("run {}: running -> interrupted: {}",
                                                           st.column_int64(1), st.column_text(2)));
    }
    st.reset();
    // Each run's history shows the change, as transition_run would record it.
    for (const auto& [run_id, message] : changes)
      record_event(campaign_id, run_id, "warning", message);
    if (!changes.empty()) {
      record_event(campaign_id, std::nullopt, "warning",
                   fmt::format("{} run(s) of an earlier launch were still running; marked "
                               "interrupted",
                               changes.size()));
    }
    return static_cast<int64_t>(changes.size());
  });
}

RunRow ExperimentStore::transition_run(int64_t run_id, RunStatus to,
                                       const TransitionDetails& details) {
  return batch([&] {
    RunRow run = get_run(run_id);
    if (!is_legal_transition(run.status, to)) {
      throw StoreError(fmt::format(
          "run {} (id {}): illegal transition {} -> {} (legal from {}: {})", run.number, run.id,
          to_string(run.status), to_string(to), to_string(run.status),
          legal_targets(run.status)));
    }
    std::string set = "status = ?1";
    switch (to) {
      case RunStatus::kRunning:
        set += fmt::format(
            ", attempts = attempts + 1, epoch = (SELECT epoch FROM campaigns WHERE id = "
            "campaign_id), started_at = {}, finished_at = NULL, error = NULL, worker = ?2, "
            "device = ?3",
            kNow);
        break;
      case RunStatus::kDone:
        set += fmt::format(", finished_at = {}, error = NULL", kNow);
        break;
      case RunStatus::kFailed:
      case RunStatus::kDiverged:
      case RunStatus::kPruned:
        set += fmt::format(", finished_at = {}, error = ?4", kNow);
        break;
      case RunStatus::kInterrupted:
        set += ", error = ?4";
        break;
      case RunStatus::kPending:
        set += ", worker = NULL, device = NULL, error = NULL, finished_at = NULL";
        break;
    }
    if (details.unstarted) {
      if (run.status != RunStatus::kRunning || to == RunStatus::kRunning)
        throw StoreError(fmt::format("run {} (id {}): only a running run can be handed back unstarted, not {} -> {}",
                                     run.number, run.id, to_string(run.status), to_string(to)));
      // The attempt never began: it is not counted, and names no start time, worker or device.
      set += ", attempts = MAX(attempts - 1, 0), started_at = NULL, worker = NULL, device = NULL";
    }
    set += ", steps_done = COALESCE(?5, steps_done)";
    Statement st(db_, fmt::format("UPDATE runs SET {} WHERE id = ?6", set));
    st.bind(1, to_string(to))
        .bind(2, details.worker)
        .bind(3, details.device)
        .bind(4, details.error)
        .bind(5, details.steps_done)
        .bind(6, run_id)
        .run();

    std::string message =
        fmt::format("run {}: {} -> {}", run.number, to_string(run.status), to_string(to));
    if (to == RunStatus::kRunning && details.worker) message += " on " + *details.worker;
    if (to == RunStatus::kRunning && details.device) message += " (" + *details.device + ")";
    if (details.unstarted) message += " (handed back before it started)";
    if (details.steps_done) message += fmt::format(" at step {}", *details.steps_done);
    if (details.error && to != RunStatus::kRunning && to != RunStatus::kDone &&
        (to != RunStatus::kPending || details.unstarted)) {
      message += ": " + *details.error;
    }
    std::string_view level = to == RunStatus::kFailed                                   ? "error"
                             : to == RunStatus::kDiverged || to == RunStatus::kInterrupted ? "warning"
                                                                                          : "info";
    record_event(run.campaign_id, run_id, level, message);
    return get_run(run_id);
  });
}

void ExperimentStore::update_steps_done(int64_t run_id, int64_t steps_done) {
  Statement st(db_, "UPDATE runs SET steps_done = ? WHERE id = ?");
  st.bind(1, steps_done).bind(2, run_id).run();
  if (db_.changes() == 0) throw StoreError(fmt::format("no run with id {}", run_id));
}

void ExperimentStore::record_metrics(std::span<const MetricPoint> points) {
  batch([&] {
    Statement st(db_,
                 "INSERT OR REPLACE INTO metrics (run_id, name, step, value) VALUES (?, ?, ?, ?)");
    for (const MetricPoint& p : points) {
      st.reset();
      st.bind(1, p.run_id).bind(2, p.name).bind(3, p.step);
      if (std::isnan(p.value)) {
        st.bind(4, nullptr);
      } else {
        st.bind(4, p.value);
      }
      st.run();
    }
  });
}

void ExperimentStore::record_metrics(int64_t run_id, int64_t step,
                                     const std::map<std::string, double>& metrics) {
  std::vector<MetricPoint> points;
  points.reserve(metrics.size());
  for (const auto& [name, value] : metrics) points.push_back({run_id, step, name, value});
  record_metrics(points);
}

std::vector<MetricPoint> ExperimentStore::metrics(int64_t run_id, int64_t last_steps) {
  std::string sql = "SELECT step, name, value FROM metrics WHERE run_id = ?1";
  if (last_steps > 0) {
    sql += " AND step >= (SELECT min(step) FROM (SELECT DISTINCT step FROM metrics WHERE "
           "run_id = ?1 ORDER BY step DESC LIMIT ?2))";
  }
  sql += " ORDER BY step, name";
  Statement st(db_, sql);
  st.bind(1, run_id);
  if (last_steps > 0) st.bind(2, last_steps);
  std::vector<MetricPoint> out;
  while (st.step()) {
    out.push_back({run_id, st.column_int64(0), st.column_text(1),
                   st.is_null(2) ? std::nan("") : st.column_double(2)});
  }
  return out;
}

void ExperimentStore::record_summaries(int64_t run_id,
                                       const std::map<std::string, double>& summaries) {
  batch([&] {
    Statement st(db_, "INSERT OR REPLACE INTO summaries (run_id, name, value) VALUES (?, ?, ?)");
    for (const auto& [name, value] : summaries) {
      st.reset();
      st.bind(1, run_id).bind(2, name);
      if (std::isnan(value)) {
        st.bind(3, nullptr);
      } else {
        st.bind(3, value);
      }
      st.run();
    }
  });
}

std::map<std::string, double> ExperimentStore::run_summaries(int64_t run_id) {
  Statement st(db_, "SELECT name, value FROM summaries WHERE run_id = ? ORDER BY name");
  st.bind(1, run_id);
  std::map<std::string, double> out;
  while (st.step()) {
    out[st.column_text(0)] = st.is_null(1) ? std::nan("") : st.column_double(1);
  }
  return out;
}

void ExperimentStore::record_fixed_points(int64_t run_id,
                                          std::span<const FixedPointRecord> points) {
  batch([&] {
    Statement clear(db_, "DELETE FROM fixed_points WHERE run_id = ?");
    clear.bind(1, run_id).run();
    Statement st(db_,
                 "INSERT INTO fixed_points (run_id, idx, source, q, stability, n_unstable, "
                 "max_abs_eig, coords, refined) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const FixedPointRecord& p : points) {
      if (p.source != "expansion" && p.source != "numerical") {
        throw StoreError(fmt::format(
            "run id {}: fixed point {} has source '{}': expected \"expansion\" or \"numerical\"",
            run_id, p.idx, p.source));
      }
      if (p.stability != "stable" && p.stability != "marginal" && p.stability != "unstable") {
        throw StoreError(fmt::format(
            "run id {}: fixed point {} has stability '{}': expected \"stable\", \"marginal\" or "
            "\"unstable\"",
            run_id, p.idx, p.stability));
      }
      std::vector<unsigned char> blob = encode_coords(p.coords);
      st.reset();
      st.bind(1, run_id)
          .bind(2, p.idx)
          .bind(3, p.source)
          .bind(4, p.q)
          .bind(5, p.stability)
          .bind(6, p.n_unstable)
          .bind(7, p.max_abs_eig)
          .bind(8, Blob{blob.data(), blob.size()})
          .bind(9, p.refined ? std::optional<int64_t>(*p.refined ? 1 : 0) : std::nullopt)
          .run();
    }
  });
}

std::vector<FixedPointRecord> ExperimentStore::fixed_points(int64_t run_id) {
  // A reader never migrates: a version 1 database has no refined column.
  const bool has_refined = schema_version(db_) >= 2;
  Statement st(db_, fmt::format("SELECT idx, source, q, stability, n_unstable, max_abs_eig, coords, "
                                "{} FROM fixed_points WHERE run_id = ? ORDER BY idx",
                                has_refined ? "refined" : "NULL"));
  st.bind(1, run_id);
  std::vector<FixedPointRecord> out;
  while (st.step()) {
    FixedPointRecord p;
    p.idx = st.column_int64(0);
    p.source = st.column_text(1);
    p.q = st.is_null(2) ? std::nan("") : st.column_double(2);
    p.stability = st.column_text(3);
    p.n_unstable = st.column_int64(4);
    p.max_abs_eig = st.is_null(5) ? std::nan("") : st.column_double(5);
    p.coords = decode_coords(st.column_blob(6));
    if (!st.is_null(7)) p.refined = st.column_int64(7) != 0;
    out.push_back(std::move(p));
  }
  return out;
}

void ExperimentStore::record_modes(int64_t run_id, std::span<const ModeRecord> modes) {
  batch([&] {
    Statement clear(db_, "DELETE FROM modes WHERE run_id = ?");
    clear.bind(1, run_id).run();
    Statement st(db_,
                 "INSERT INTO modes (run_id, point_idx, mode_idx, eig_re, eig_im, abs, freq_hz, "
                 "tau_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    for (const ModeRecord& m : modes) {
      st.reset();
      st.bind(1, run_id)
          .bind(2, m.point_idx)
          .bind(3, m.mode_idx)
          .bind(4, m.eig_re)
          .bind(5, m.eig_im)
          .bind(6, m.abs)
          .bind(7, m.freq_hz)
          .bind(8, m.tau_s)
          .run();
    }
  });
}

std::vector<ModeRecord> ExperimentStore::modes(int64_t run_id) {
  Statement st(db_,
               "SELECT point_idx, mode_idx, eig_re, eig_im, abs, freq_hz, tau_s FROM modes "
               "WHERE run_id = ? ORDER BY point_idx, mode_idx");
  st.bind(1, run_id);
  std::vector<ModeRecord> out;
  while (st.step()) {
    ModeRecord m;
    m.point_idx = st.column_int64(0);
    m.mode_idx = st.column_int64(1);
    m.eig_re = st.column_double(2);
    m.eig_im = st.column_double(3);
    m.abs = st.column_double(4);
    m.freq_hz = st.column_double(5);
    m.tau_s = st.column_optional_double(6);
    out.push_back(m);
  }
  return out;
}

void ExperimentStore::record_artifact(int64_t run_id, const ArtifactRecord& artifact) {
  Statement st(db_, fmt::format("INSERT OR REPLACE INTO artifacts (run_id, kind, path, step, "
                                "bytes, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, {})",
                                kNow));
  st.bind(1, run_id)
      .bind(2, artifact.kind)
      .bind(3, artifact.path)
      .bind(4, artifact.step)
      .bind(5, artifact.bytes)
      .bind(6, artifact.sha256)
      .run();
}

int64_t ExperimentStore::forget_earlier_attempts(int64_t run_id) {
  return batch([&] {
    Statement st(db_, "DELETE FROM artifacts WHERE run_id = ? AND kind = 'checkpoint'");
    st.bind(1, run_id).run();
    const int64_t checkpoints = db_.changes();
    Statement metrics(db_, "DELETE FROM metrics WHERE run_id = ?");
    metrics.bind(1, run_id).run();
    return checkpoints;
  });
}

int64_t ExperimentStore::relocate_run_dirs(int64_t campaign_id, const std::string& from_root,
                                           const std::string& to_root) {
  // ?1 from, ?2 to: a path equal to FROM or starting with FROM/ gets TO in its place.
  auto under = [](const std::string& column) {
    return "(" + column + " = ?1 OR substr(" + column + ", 1, length(?1) + 1) = ?1 || '/')";
  };
  const std::string runs_under = under("run_dir");
  const std::string paths_under = under("path");
  return batch([&] {
    Statement runs(db_, "UPDATE runs SET run_dir = ?2 || substr(run_dir, length(?1) + 1) "
                        "WHERE campaign_id = ?3 AND " + runs_under);
    runs.bind(1, from_root).bind(2, to_root).bind(3, campaign_id).run();
    const int64_t moved = db_.changes();
    Statement files(db_, "UPDATE artifacts SET path = ?2 || substr(path, length(?1) + 1) "
                         "WHERE run_id IN (SELECT id FROM runs WHERE campaign_id = ?3) AND " +
                             paths_under);
    files.bind(1, from_root).bind(2, to_root).bind(3, campaign_id).run();
    return moved;
  });
}

std::map<int64_t, std::string> ExperimentStore::data_fingerprints(int64_t campaign_id) {
  std::map<int64_t, std::string> out;
  if (schema_version(db_) < 3) return out;  // a reader of an older file: no such column
  Statement st(db_, "SELECT number, data_sha256 FROM runs WHERE campaign_id = ? AND data_sha256 IS NOT NULL");
  st.bind(1, campaign_id);
  while (st.step()) out[st.column_int64(0)] = st.column_text(1);
  return out;
}

void ExperimentStore::record_data_fingerprints(int64_t campaign_id,
                                               const std::map<int64_t, std::string>& by_number) {
  batch([&] {
    Statement st(db_, "UPDATE runs SET data_sha256 = ? WHERE campaign_id = ? AND number = ? AND data_sha256 IS NULL");
    for (const auto& [number, sha] : by_number) {
      st.reset();
      st.bind(1, sha).bind(2, campaign_id).bind(3, number).run();
    }
    return 0;
  });
}

void ExperimentStore::record_run_build(int64_t run_id, const std::string& builds) {
  Statement st(db_, "UPDATE runs SET jslds_build = ? WHERE id = ?");
  st.bind(1, builds).bind(2, run_id).run();
}

void ExperimentStore::record_run_data_fingerprint(int64_t run_id, const std::string& data_sha256) {
  Statement st(db_, "UPDATE runs SET data_sha256 = ? WHERE id = ?");
  st.bind(1, data_sha256).bind(2, run_id).run();
}

std::optional<std::string> ExperimentStore::run_build(int64_t run_id) {
  if (schema_version(db_) < 3) return std::nullopt;
  Statement st(db_, "SELECT jslds_build FROM runs WHERE id = ? AND jslds_build IS NOT NULL");
  st.bind(1, run_id);
  if (!st.step()) return std::nullopt;
  return st.column_text(0);
}

std::vector<ArtifactRecord> ExperimentStore::artifacts(int64_t run_id) {
  Statement st(db_,
               "SELECT kind, path, step, bytes, sha256, created_at FROM artifacts WHERE run_id = "
               "? ORDER BY step DESC NULLS LAST, created_at DESC, kind, path");
  st.bind(1, run_id);
  std::vector<ArtifactRecord> out;
  while (st.step()) {
    ArtifactRecord a;
    a.kind = st.column_text(0);
    a.path = st.column_text(1);
    a.step = st.column_optional_int64(2);
    a.bytes = st.column_int64(3);
    a.sha256 = st.column_text(4);
    a.created_at = st.column_text(5);
    out.push_back(std::move(a));
  }
  return out;
}

void ExperimentStore::record_event(int64_t campaign_id, std::optional<int64_t> run_id,
                                   std::string_view level, std::string_view message) {
  if (level != "info" && level != "warning" && level != "error") {
    throw StoreError(fmt::format(
        "event level '{}' is invalid: expected \"info\", \"warning\" or \"error\"", level));
  }
  Statement st(db_, fmt::format("INSERT INTO events (campaign_id, run_id, at, level, message) "
                                "VALUES (?, ?, {}, ?, ?)",
                                kNow));
  st.bind(1, campaign_id).bind(2, run_id).bind(3, level).bind(4, message).run();
}

std::vector<EventRow> ExperimentStore::events(int64_t campaign_id, std::optional<int64_t> run_id,
                                              int64_t limit) {
  std::string sql =
      "SELECT id, campaign_id, run_id, at, level, message FROM events WHERE campaign_id = ?";
  if (run_id) sql += " AND run_id = ?";
  sql = "SELECT * FROM (" + sql + " ORDER BY id DESC LIMIT ?) ORDER BY id";
  Statement st(db_, sql);
  int i = 1;
  st.bind(i++, campaign_id);
  if (run_id) st.bind(i++, *run_id);
  st.bind(i, limit);
  std::vector<EventRow> out;
  while (st.step()) {
    EventRow e;
    e.id = st.column_int64(0);
    e.campaign_id = st.column_int64(1);
    e.run_id = st.column_optional_int64(2);
    e.at = st.column_text(3);
    e.level = st.column_text(4);
    e.message = st.column_text(5);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace jslds::store
