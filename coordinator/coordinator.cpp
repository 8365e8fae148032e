#include "coordinator/coordinator.h"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <cmath>
#include <ostream>
#include <regex>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <sys/resource.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "coordinator/artifacts_owner.h"
#include "coordinator/signals.h"
#include "core/atomic_file.h"
#include "core/checkpoint_receipt.h"

namespace jslds {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
using store::RunStatus;

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

RunStatus status_of(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kDone: return RunStatus::kDone;
    case RunOutcome::kDiverged: return RunStatus::kDiverged;
    case RunOutcome::kInterrupted: return RunStatus::kInterrupted;
    case RunOutcome::kFailed: return RunStatus::kFailed;
    case RunOutcome::kNotStarted: break;  // depends on the lease: see on_result
  }
  return RunStatus::kFailed;
}

double number_or_nan(const json& v) {
  return v.is_number() ? v.get<double>() : std::nan("");
}

// A result event's text field `key` when it is a non-empty string.
std::optional<std::string> nonempty_string(const json& r, const char* key) {
  const auto it = r.find(key);
  if (it == r.end() || !it->is_string() || it->get<std::string>().empty()) return std::nullopt;
  return it->get<std::string>();
}

// The fixed points, modes and summary of a child's result event (docs/report-format.md).
void record_report(store::ExperimentStore& db, int64_t run_id, const std::string& report_json) {
  json r = json::parse(report_json, nullptr, /*allow_exceptions=*/false);
  if (!r.is_object()) return;
  if (const auto build = nonempty_string(r, "jslds_build")) db.record_run_build(run_id, *build);
  // The data the run was trained on, as the trainer fingerprinted them (authoritative).
  if (const auto data = nonempty_string(r, "data_sha256")) db.record_run_data_fingerprint(run_id, *data);
  if (r.contains("summary") && r["summary"].is_object()) {
    std::map<std::string, double> summary;
    for (const auto& [k, v] : r["summary"].items())
      if (v.is_number()) summary[k] = v.get<double>();
    db.record_summaries(run_id, summary);
  }
  if (r.contains("fixed_points") && r["fixed_points"].is_array()) {
    std::vector<store::FixedPointRecord> points;
    for (const auto& p : r["fixed_points"]) {
      store::FixedPointRecord f;
      f.idx = p.value("idx", int64_t{0});
      f.source = p.value("source", std::string("numerical"));
      f.q = number_or_nan(p.value("q", json()));
      f.stability = p.value("stability", std::string("unstable"));
      f.n_unstable = p.value("n_unstable", int64_t{0});
      f.max_abs_eig = number_or_nan(p.value("max_abs_eig", json()));
      for (const auto& x : p.value("coords", json::array())) f.coords.push_back(number_or_nan(x));
      // Only numerical points are refined or not (the JSON says false for expansion points too).
      if (auto it = p.find("refined"); f.source == "numerical" && it != p.end() && it->is_boolean())
        f.refined = it->get<bool>();
      points.push_back(std::move(f));
    }
    db.record_fixed_points(run_id, points);
  }
  if (r.contains("modes") && r["modes"].is_array()) {
    std::vector<store::ModeRecord> modes;
    for (const auto& m : r["modes"]) {
      store::ModeRecord x;
      x.point_idx = m.value("point_idx", int64_t{0});
      x.mode_idx = m.value("mode_idx", int64_t{0});
      x.eig_re = number_or_nan(m.value("eig_re", json()));
      x.eig_im = number_or_nan(m.value("eig_im", json()));
      x.abs = number_or_nan(m.value("abs", json()));
      x.freq_hz = number_or_nan(m.value("freq_hz", json()));
      if (m.contains("tau_s") && m["tau_s"].is_number()) x.tau_s = m["tau_s"].get<double>();
      modes.push_back(x);
    }
    db.record_modes(run_id, modes);
  }
}

// Files of a finished run worth listing in the artifacts table (the checkpoint is recorded
// from its event, with its sha256).
void record_run_files(store::ExperimentStore& db, int64_t run_id, const fs::path& dir,
                      int64_t step) {
  static const std::pair<const char*, const char*> kFiles[] = {
      {"result", "result.json"},  {"log", "log.txt"},       {"analysis", "analysis.h5"},
      {"train_state", "train_state.pt"}, {"config", "config.toml"}};
  for (const auto& [kind, name] : kFiles) {
    std::error_code ec;
    fs::path file = dir / name;
    auto bytes = fs::file_size(file, ec);
    if (ec) continue;
    store::ArtifactRecord a;
    a.kind = kind;
    a.path = file.string();
    a.step = step;
    a.bytes = static_cast<int64_t>(bytes);
    db.record_artifact(run_id, a);
  }
}

// ---------------------------------------------------------------------------------------

// "key: stored → now" for the first few keys that differ between two canonical spec texts
// (coordinator/sweep_spec.cpp canonical_text: [campaign], [base] with its run-config
// sections, [parameters]), so a refused resume says what changed, --set overrides included.
std::string spec_changes(const std::string& stored, const std::string& now) {
  auto entries = [](const std::string& text) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    std::string line, section;
    bool in_base = false;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (line.front() == '[') {
        const std::string name = line.substr(1, line.find(']') - 1);
        if (name == "base" || name == "campaign" || name == "parameters") {
          in_base = name == "base";
          section = name;
        } else {
          section = in_base ? "base." + name : name;  // a run-config section inside [base]
        }
        continue;
      }
      const size_t eq = line.find(" = ");
      if (eq == std::string::npos) continue;
      out[section + "." + line.substr(0, eq)] = line.substr(eq + 3);
    }
    return out;
  };
  const auto a = entries(stored), b = entries(now);
  std::vector<std::string> changes;
  for (const auto& [key, value] : a) {
    auto it = b.find(key);
    if (it == b.end()) changes.push_back(fmt::format("{}: {} → (removed)", key, value));
    else if (it->second != value) changes.push_back(fmt::format("{}: {} → {}", key, value, it->second));
  }
  for (const auto& [key, value] : b)
    if (!a.count(key)) changes.push_back(fmt::format("{}: (none) → {}", key, value));
  if (changes.empty()) return "no key, only the text's form";
  const size_t shown = std::min<size_t>(changes.size(), 5);
  std::string out = fmt::format("{}", fmt::join(changes.begin(), changes.begin() + shown, "; "));
  if (changes.size() > shown) out += fmt::format("; and {} more", changes.size() - shown);
  return out;
}

// ARTIFACTS/<campaign>, absolute: where a launch puts the campaign's new run directories.
fs::path campaign_root(const fs::path& artifacts, const std::string& campaign) {
  return fs::weakly_canonical(fs::absolute(artifacts)) / campaign;
}

// A campaign folder moved together with its database (a project copied to another disk, from
// scratch to home): each folder its runs were stored in that is gone maps to `root` when
// `root` holds this campaign's marker (same name and created_at) and the directory of every
// run of that folder that ever started (its checkpoint, its results).
std::map<fs::path, fs::path> moved_run_roots(const std::vector<store::RunRow>& stored,
                                             const fs::path& root, const std::string& campaign,
                                             const std::string& created_at) {
  std::map<fs::path, fs::path> moved;
  const auto marker = read_artifacts_marker(root);
  if (!marker || marker->campaign != campaign || marker->created_at != created_at) return moved;
  std::map<fs::path, bool> candidates;  // gone folder → every started run of it is in root
  for (const auto& row : stored) {
    const fs::path dir(row.run_dir);
    const fs::path old_root = dir.parent_path();
    std::error_code ec;
    if (old_root == root) continue;
    if (!candidates.count(old_root)) {
      if (fs::exists(old_root, ec) || ec) continue;
      candidates[old_root] = true;
    }
    const bool started = row.attempts > 0 || row.status != RunStatus::kPending;
    if (started && !fs::is_directory(root / dir.filename(), ec)) candidates[old_root] = false;
  }
  for (const auto& [old_root, all_there] : candidates)
    if (all_there) moved[old_root] = root;
  return moved;
}

// Runs this launch would continue (interrupted, stale running, failed with --retry-failed; with
// steps done) whose run-directory folder is gone and not found moved: the launch would start
// them again from step 0 in a re-created folder. One message naming the folders, the runs and
// the way out; empty when there are none.
std::string missing_run_folders(const std::vector<store::RunRow>& stored,
                                const std::map<fs::path, fs::path>& moved,
                                const std::string& campaign, bool retry_failed) {
  std::map<fs::path, std::vector<std::string>> lost;  // folder → "run N at step S"
  for (const auto& row : stored) {
    const fs::path old_root = fs::path(row.run_dir).parent_path();
    // Only runs this launch would continue: a diverged one starts afresh anyway.
    const bool continues = row.status == RunStatus::kInterrupted ||
                           row.status == RunStatus::kRunning ||
                           (row.status == RunStatus::kFailed && retry_failed);
    if (moved.count(old_root) || row.steps_done <= 0 || !continues) continue;
    std::error_code ec;
    if (fs::exists(old_root, ec) || ec) continue;
    lost[old_root].push_back(fmt::format("run {} at step {}", row.number, row.steps_done));
  }
  if (lost.empty()) return "";
  std::vector<std::string> parts;
  for (const auto& [folder, runs] : lost)
    parts.push_back(fmt::format("{} ({})", folder.string(), fmt::join(runs, ", ")));
  return fmt::format(
      "the run directories of campaign '{}' with training to continue are gone: {}. If the "
      "folder was moved, launch with --artifacts set to the folder that now holds {}/ (its "
      "campaign.json names the campaign; the runs are then recorded there and continue from "
      "their checkpoints), or move it back. If it is lost, create it empty (mkdir -p) and "
      "launch again: those runs then start again from step 0",
      campaign, fmt::join(parts, "; "), campaign);
}

// The data fingerprint a finished run's result.json records ("data_sha256"), if any.
std::optional<std::string> result_data_sha256(const fs::path& result_json) {
  std::ifstream in(result_json, std::ios::binary);
  if (!in) return std::nullopt;
  const json r = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!r.is_object()) return std::nullopt;
  return nonempty_string(r, "data_sha256");
}

// "run 3" or "runs 1, 2, 5" (the first 8, then "and N more").
std::string run_numbers(const std::vector<int64_t>& numbers) {
  const size_t shown = std::min<size_t>(numbers.size(), 8);
  return fmt::format("run{} {}{}", numbers.size() > 1 ? "s" : "", fmt::join(numbers.begin(), numbers.begin() + shown, ", "),
                     numbers.size() > shown ? fmt::format(" and {} more", numbers.size() - shown) : "");
}

// The stored data fingerprints (runs.data_sha256 by run number) completed for runs recorded
// without one (schema version < 3): a started run by what its own files record (result.json,
// then options.recorded_data_sha256), one not started by the current data's. What a launch
// records for those rows, and the started ones that record none.
struct Fingerprints {
  std::map<int64_t, std::string> known;      // number → fingerprint to compare with
  std::map<int64_t, std::string> to_record;  // the NULL rows' fingerprints, to store
  std::vector<int64_t> unknown;              // started, recorded nowhere
};

Fingerprints complete_fingerprints(store::ExperimentStore& store, int64_t campaign_id,
                                   const std::vector<store::RunRow>& rows,
                                   const std::map<int64_t, std::string>& run_dirs, const CoordinatorOptions& options) {
  Fingerprints f;
  f.known = store.data_fingerprints(campaign_id);
  for (const auto& row : rows) {
    if (f.known.count(row.number)) continue;
    if (row.attempts == 0) {
      if (const auto now = options.data_sha256.find(row.config_sha256); now != options.data_sha256.end())
        f.to_record[row.number] = now->second;
      continue;
    }
    const auto moved = run_dirs.find(row.number);
    const fs::path dir = moved != run_dirs.end() ? fs::path(moved->second) : fs::path(row.run_dir);
    std::optional<std::string> recorded = result_data_sha256(dir / "result.json");
    if (!recorded && options.recorded_data_sha256) recorded = options.recorded_data_sha256(dir);
    if (recorded) {
      f.known[row.number] = *recorded;
      f.to_record[row.number] = *recorded;
    } else {
      f.unknown.push_back(row.number);
    }
  }
  return f;
}

// Why a resume of a campaign whose runs were launched with other data must be refused, or ""
// when the data are the same (or were not recorded). `stored` are runs.data_sha256 by run
// number, `now` the fingerprints of the data as they are, by config_sha256.
std::string changed_data(const std::string& campaign, const std::vector<store::RunRow>& rows,
                         const std::map<int64_t, std::string>& stored, const std::vector<ExpandedRun>& runs,
                         const std::map<std::string, std::string>& now) {
  std::map<std::string, const ExpandedRun*> by_sha;
  for (const auto& r : runs) by_sha.emplace(r.config_sha256, &r);
  // (data source, launched with, now) → run numbers
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<int64_t>> changed;
  for (const auto& row : rows) {
    const auto was = stored.find(row.number);
    const auto is = now.find(row.config_sha256);
    const auto run = by_sha.find(row.config_sha256);
    if (was == stored.end() || is == now.end() || run == by_sha.end() || was->second == is->second) continue;
    const DataOptions& data = run->second->config.data;
    const std::string source = data.path.empty() ? fmt::format("data.simulate = \"{}\"", data.simulate)
                                                 : fmt::format("data.path {}", data.path);
    changed[{source, was->second, is->second}].push_back(row.number);
  }
  if (changed.empty()) return "";
  std::vector<std::string> parts;
  for (const auto& [key, numbers] : changed) {
    const auto& [source, was, is] = key;
    parts.push_back(fmt::format("{} ({}) were launched with data of fingerprint {}, which now gives {}",
                                run_numbers(numbers), source, was.substr(0, 12), is.substr(0, 12)));
  }
  return fmt::format(
      "campaign '{}': the data changed since its runs were launched: {}. Resuming would train or rank runs of one "
      "campaign on different data. Put the original data back (the "
      "fingerprint covers the binned counts, the trial selection and the bin width, not the file's name or "
      "format), or launch the new data as a new campaign (another [campaign] name)",
      campaign, fmt::join(parts, "; "));
}

}  // namespace

struct Coordinator::State {
  store::CampaignHandle campaign;
  std::map<int64_t, const ExpandedRun*> expanded;  // by run id
  std::map<int64_t, fs::path> run_dirs;            // by run id
  std::map<int, std::string> worker_device;        // from Hello
  std::optional<store::Transaction> transaction;
  clock_type::time_point opened;
};

Coordinator::Coordinator(store::ExperimentStore& store, WorkerPool& pool, const SweepSpec& spec,
                         CoordinatorOptions options)
    : options_(std::move(options)), store_(store), pool_(pool), spec_(spec) {}

LaunchSummary Coordinator::run() {
  LaunchSummary summary;
  summary.workers = pool_.size();
  auto say = [&](const std::string& line) {
    if (options_.log) *options_.log << line << "\n" << std::flush;
  };

  // 1. Expand and validate every run before touching the database.
  const std::vector<ExpandedRun> runs = expand(spec_);
  summary.runs_total = static_cast<int64_t>(runs.size());

  // 2. Create or resume the campaign; the spec must match unless forced.
  std::optional<store::CampaignRow> existing = store_.find_campaign(spec_.name);
  if (existing && existing->spec_sha256 != spec_.sha256 && !options_.force_spec)
    throw SpecMismatch(fmt::format(
        "campaign '{}' exists with another spec (stored sha256 {}, {} has {}; changed: {}; "
        "--set base.… overrides are part of the spec): resume it with the original spec and "
        "overrides, pass --force-spec to let it grow (runs are matched by config sha256 and "
        "repeat; none may disappear), or choose a new [campaign] name",
        spec_.name, existing->spec_sha256.substr(0, 12), spec_.source, spec_.sha256.substr(0, 12),
        spec_changes(existing->spec_toml, spec_.canonical)));
  std::map<std::pair<std::string, int64_t>, int64_t> stored_numbers;  // (sha, repeat) → number
  std::map<int64_t, std::string> stored_dirs;                          // number → run_dir
  std::vector<store::RunRow> stored_rows;
  int64_t next_number = 1;
  if (existing) {
    stored_rows = store_.list_runs(existing->id);
    for (const auto& row : stored_rows) {
      stored_numbers[{row.config_sha256, row.repeat}] = row.number;
      stored_dirs[row.number] = row.run_dir;
      next_number = std::max(next_number, row.number + 1);
    }
    if (existing->spec_sha256 != spec_.sha256) {
      std::set<std::pair<std::string, int64_t>> now;
      for (const auto& r : runs) now.insert({r.config_sha256, r.repeat});
      for (const auto& [key, number] : stored_numbers)
        if (!now.count(key))
          throw SpecMismatch(fmt::format(
              "--force-spec: run {} of campaign '{}' is not in the new spec's expansion; a "
              "forced spec may only add runs",
              number, spec_.name));
    }
  }
  // Every folder that holds or will hold this campaign's run directories must be this
  // campaign's: checked before the database or any run directory changes.
  // The folders are locked (in path order: no deadlock between launches) until the marker is
  // written, so two databases launched at once cannot both pass.
  const fs::path root = campaign_root(options_.artifacts, spec_.name);
  // A folder moved with its database: the runs continue where they are now, instead of from
  // step 0 in a re-created old folder. The records change once the claims below pass.
  std::map<fs::path, fs::path> relocated;  // stored root that is gone → root
  if (existing) {
    relocated = moved_run_roots(stored_rows, root, spec_.name, existing->created_at);
    if (std::string lost = missing_run_folders(stored_rows, relocated, spec_.name,
                                                   options_.retry_failed);
        !lost.empty())
      throw ArtifactsConflict(lost);
    for (auto& [number, dir] : stored_dirs)
      if (relocated.count(fs::path(dir).parent_path()))
        dir = (root / fs::path(dir).filename()).string();
  }
  // The data must be those the runs were launched with (nothing changed yet). A run recorded
  // without a fingerprint (schema version < 3) that has started is compared by the one its own
  // files hold; one that has not started is given the current data's.
  Fingerprints fingerprints;
  if (existing && !options_.data_sha256.empty()) {
    fingerprints = complete_fingerprints(store_, existing->id, stored_rows, stored_dirs, options_);
    if (std::string why = changed_data(spec_.name, stored_rows, fingerprints.known, runs, options_.data_sha256);
        !why.empty())
      throw DataChanged(why);
  }
  std::set<fs::path> stored_roots;
  for (const auto& [number, dir] : stored_dirs) stored_roots.insert(fs::path(dir).parent_path());
  bool new_runs_in_root = false;
  for (const auto& r : runs)
    if (!stored_numbers.count({r.config_sha256, r.repeat})) new_runs_in_root = true;
  std::set<fs::path> run_roots = stored_roots;
  if (new_runs_in_root) run_roots.insert(root);
  CampaignOwner owner{spec_.name, std::nullopt, options_.database};
  if (existing) owner.created_at = existing->created_at;
  std::vector<ArtifactsClaim> claims;
  for (const fs::path& dir : run_roots)
    claims.emplace_back(dir, owner, /*create=*/dir == root && new_runs_in_root,
                        /*holds_own_runs=*/stored_roots.count(dir) > 0);

  store::CampaignSpec cs{spec_.name,           spec_.canonical,         spec_.sha256,
                         to_string(spec_.method), spec_.objective_metric, spec_.objective_goal};
  State st;
  st.campaign = store_.create_or_load_campaign(cs);
  owner.created_at = store_.get_campaign(st.campaign.id).created_at;
  for (auto& claim : claims) claim.claim(*owner.created_at);
  claims.clear();  // markers written: the folders' locks go
  summary.campaign_id = st.campaign.id;
  summary.epoch = st.campaign.epoch;
  summary.resumed = st.campaign.existing;
  if (existing && existing->spec_sha256 != spec_.sha256) {
    store_.replace_campaign_spec(st.campaign.id, cs);
    store_.record_event(st.campaign.id, std::nullopt, "warning",
                        fmt::format("spec replaced (--force-spec): sha256 {} → {}",
                                    existing->spec_sha256.substr(0, 12),
                                    spec_.sha256.substr(0, 12)));
  }
  for (const auto& [old_root, new_root] : relocated) {
    const int64_t moved = store_.relocate_run_dirs(st.campaign.id, old_root.string(), new_root.string());
    const std::string line = fmt::format(
        "run directories moved: {} no longer exists and {} holds this campaign's runs (its "
        "marker names the campaign); {} run(s) recorded there",
        old_root.string(), new_root.string(), moved);
    store_.record_event(st.campaign.id, std::nullopt, "warning", line);
    say(line);
  }
  summary.stale_interrupted = store_.mark_stale_runs_interrupted(st.campaign.id, st.campaign.epoch);

  // 3. Insert the runs idempotently. New runs of a grown campaign get numbers after the
  //    existing ones, so existing run directories never change meaning.
  std::vector<store::NewRun> rows;
  rows.reserve(runs.size());
  int64_t kept_elsewhere = 0;  // existing runs whose directory is not under `root`
  for (const auto& r : runs) {
    store::NewRun n;
    auto it = stored_numbers.find({r.config_sha256, r.repeat});
    n.number = it != stored_numbers.end() ? it->second
               : existing                 ? next_number++
                                          : r.number;
    n.repeat = r.repeat;
    n.config_json = to_json(r.config);
    n.config_sha256 = r.config_sha256;
    if (const auto f = options_.data_sha256.find(r.config_sha256); f != options_.data_sha256.end())
      n.data_sha256 = f->second;
    // A run keeps the directory it was created with (its checkpoint is there), whatever
    // --artifacts says now; --artifacts places new runs only.
    auto dir = stored_dirs.find(n.number);
    n.run_dir = dir != stored_dirs.end() ? dir->second : (root / std::to_string(n.number)).string();
    if (dir != stored_dirs.end() && fs::path(dir->second).parent_path() != root)
      ++kept_elsewhere;
    for (const auto& p : r.params) {
      store::ParamValue v;
      v.name = p.key;
      if (p.real) {
        v.value = *p.real;
      } else {
        // The database holds the value itself ("gru"), not its TOML literal ("\"gru\""), so
        // that --where 'params.model.cell = "gru"' and pandas see plain strings.
        auto parsed = toml::parse("v = " + p.text);
        auto plain = parsed["v"].value<std::string>();
        v.value = plain ? *plain : p.text;
      }
      n.params.push_back(std::move(v));
    }
    rows.push_back(std::move(n));
  }
  auto inserted = store_.insert_runs(st.campaign.id, rows);
  // Runs launched before the database recorded fingerprints (schema version 3) get theirs now:
  // from their own files when they have started, else the current data's.
  if (!fingerprints.to_record.empty()) store_.record_data_fingerprints(st.campaign.id, fingerprints.to_record);
  if (const std::vector<int64_t>& unknown = fingerprints.unknown; !unknown.empty()) {
    const std::string line = fmt::format(
        "{} of campaign '{}' started before jslds recorded data fingerprints and neither the database "
        "nor {} files record one: whether the data changed since cannot be checked for {}",
        run_numbers(unknown), spec_.name, unknown.size() > 1 ? "their" : "its", unknown.size() > 1 ? "them" : "it");
    store_.record_event(st.campaign.id, std::nullopt, "warning", line);
    say("warning: " + line);
  }
  for (size_t i = 0; i < inserted.size(); ++i) {
    st.expanded[inserted[i].id] = &runs[i];
    st.run_dirs[inserted[i].id] = rows[i].run_dir;
  }
  if (kept_elsewhere > 0)
    say(fmt::format("{} run(s) of earlier launches keep their run directories (not under {}, "
                    "where this launch puts new runs)",
                    kept_elsewhere, root.string()));

  // 4. The scheduler starts from the database's view of every run of the campaign.
  Scheduler scheduler({spec_.max_attempts, options_.retry_failed}, st.campaign.epoch);
  for (const auto& row : store_.list_runs(st.campaign.id)) {
    if (!st.expanded.count(row.id)) continue;  // not in this spec (cannot happen unless forced)
    scheduler.add({row.id, row.number, row.status, static_cast<int>(row.attempts), row.epoch});
  }
  store_.record_event(
      st.campaign.id, std::nullopt, "info",
      fmt::format("launch epoch {}: {} runs, {} workers{}", st.campaign.epoch, runs.size(),
                  pool_.size(),
                  summary.stale_interrupted
                      ? fmt::format(", {} stale running runs marked interrupted",
                                    summary.stale_interrupted)
                      : ""));
  {
    auto c = scheduler.counts();
    say(fmt::format("campaign {} (launch {}{}): {} runs, {} done, {} to run, {} workers",
                    spec_.name, st.campaign.epoch, st.campaign.existing ? ", resumed" : "",
                    runs.size(), c[RunStatus::kDone], scheduler.runnable_count(),
                    pool_.size()));
  }

  // 5. The loop.
  auto begin = [&] {
    if (!st.transaction) {
      st.transaction.emplace(store_.database());
      st.opened = clock_type::now();
    }
  };
  auto commit = [&] {
    if (st.transaction) {
      st.transaction->commit();
      st.transaction.reset();
    }
  };

  const double cpu_start = cpu_seconds();
  const auto loop_start = clock_type::now();
  std::optional<clock_type::time_point> first_dispatch, last_result;
  DurationEstimate estimate;
  bool stopping = false;
  clock_type::time_point stop_deadline;
  // A worker gets work once its Hello has arrived (so its name and device are known).
  std::vector<bool> ready(static_cast<size_t>(pool_.size()), false);
  std::optional<std::chrono::system_clock::time_point> stop_at;
  if (options_.deadline) stop_at = *options_.deadline - options_.stop_margin;

  auto begin_stop = [&](const std::string& reason) {
    if (stopping) return;
    stopping = true;
    summary.stopped = true;
    summary.stop_reason = reason;
    stop_deadline = clock_type::now() + options_.stop_timeout;
    std::set<int> running_workers;  // one Stop per worker, whatever runs it holds
    for (const auto& lease : scheduler.leases()) running_workers.insert(lease.worker);
    say(fmt::format("stopping: {}; waiting up to {} s for {} running run(s) to checkpoint",
                    reason, options_.stop_timeout.count(), running_workers.size()));
    begin();
    store_.record_event(st.campaign.id, std::nullopt, "warning",
                        fmt::format("stopping gracefully: {}", reason));
    for (int w : running_workers) pool_.send(w, Stop{reason});
  };

  // When each worker's current run began, as far as rank 0 knows (handed to it idle, or its
  // queued run taking over at the previous run's result).
  std::vector<clock_type::time_point> current_since(static_cast<size_t>(pool_.size()));
  // `max_leases` 1: an idle worker's run; 2: the run a busy worker starts next.
  auto dispatch = [&](int worker, int max_leases) -> bool {
    auto lease = scheduler.assign(worker, max_leases);
    if (!lease) return false;
    const ExpandedRun& run = *st.expanded.at(lease->run_id);
    const fs::path dir = st.run_dirs.at(lease->run_id);
    fs::create_directories(dir);
    // Rewritten at every dispatch, so atomic for the child is enough: no fsync on the
    // coordinator's path between runs.
    write_file_atomically(dir / "config.toml", to_toml(run.config), Durability::kNoFsync);
    if (!lease->resume) {
      // A fresh start: an earlier attempt's checkpoint receipt must not vouch for anything
      // from now on, even if this task never reaches a supervisor (handed back, or the job
      // is killed first: a later resume would adopt the failed attempt's checkpoint).
      std::error_code ec;
      fs::remove(checkpoint_receipt_path(dir), ec);
    }
    Task task;
    task.run_id = lease->run_id;
    task.run_number = lease->number;
    task.attempt = lease->attempt;
    task.epoch = lease->epoch;
    task.run_dir = dir.string();
    task.device = run.config.runtime.device;
    task.threads = run.config.runtime.threads;
    if (lease->resume) {
      // Resume even without a recorded checkpoint: the supervisor may find one written after
      // the last launch lost contact, vouched for by the trainer's receipt.
      task.resume = true;
      for (const auto& a : store_.artifacts(lease->run_id)) {  // newest step first
        if (a.kind != "checkpoint" || a.sha256.empty()) continue;
        task.checkpoint_sha256 = a.sha256;
        task.checkpoint_step = a.step.value_or(0);
        break;
      }
    }
    begin();
    store::TransitionDetails details;
    details.worker = pool_.name(worker);
    details.device = st.worker_device.at(worker);
    if (!lease->resume) {
      // A fresh start (first attempt, or a --retry-failed one): an earlier attempt's
      // checkpoint, curve and step count must not carry over, or a later resume of this
      // attempt would continue the failed one.
      store_.forget_earlier_attempts(lease->run_id);
      details.steps_done = 0;
    }
    store_.transition_run(lease->run_id, RunStatus::kRunning, details);
    pool_.send(worker, task);
    if (max_leases == 1) current_since[static_cast<size_t>(worker)] = clock_type::now();
    if (!first_dispatch) first_dispatch = clock_type::now();
    return true;
  };

  bool warned_objective = false;  // about a done run without the objective metric
  std::map<int64_t, std::string> start_notes;  // run id → its running attempt's start note
  std::set<int64_t> withdrawn;  // runs whose queued task was asked back (Withdraw sent)
  auto on_result = [&](int worker, const Result& r) {
    withdrawn.erase(r.run_id);
    // A task handed back before its child started returns to where it was: interrupted (to
    // continue from its checkpoint) if it was to resume, else pending; the attempt is undone.
    const bool unstarted = r.outcome == RunOutcome::kNotStarted;
    RunStatus status = status_of(r.outcome);
    if (unstarted) {
      const auto lease = scheduler.lease_of_run(r.run_id);
      status = lease && lease->resume ? RunStatus::kInterrupted : RunStatus::kPending;
    }
    try {
      scheduler.finish(r.run_id, worker, r.attempt, status, /*started=*/!unstarted);
    } catch (const IllegalTransition& e) {
      begin();
      store_.record_event(st.campaign.id, r.run_id, "warning",
                          fmt::format("ignored a result: {}", e.what()));
      return;
    }
    if (unstarted) {
      begin();
      store::TransitionDetails details;
      details.steps_done = r.step;
      details.error = r.message;
      details.unstarted = true;
      store_.transition_run(r.run_id, status, details);
      say(fmt::format("run {} handed back before it started ({}): {}", scheduler.run(r.run_id).number,
                      store::to_string(status), r.message));
      return;
    }
    last_result = clock_type::now();
    current_since[static_cast<size_t>(worker)] = *last_result;  // its queued run, if any, has begun
    ++summary.runs_finished;
    summary.child_seconds += r.child_seconds;
    begin();
    if (r.outcome == RunOutcome::kDone || r.outcome == RunOutcome::kDiverged) {
      estimate.add(r.child_seconds);
      if (!r.report_json.empty()) record_report(store_, r.run_id, r.report_json);
      record_run_files(store_, r.run_id, st.run_dirs.at(r.run_id), r.step);
    }
    const auto& run = scheduler.run(r.run_id);
    std::string message = r.message;
    if (status == RunStatus::kFailed) {
      // Where --retry-failed would continue it (its newest recorded checkpoint), or that it
      // has no attempts left; before the quoted end of its log.
      std::optional<int64_t> checkpoint;
      for (const auto& a : store_.artifacts(r.run_id))  // newest step first
        if (a.kind == "checkpoint" && a.step.value_or(0) > 0) {
          checkpoint = a.step;
          break;
        }
      std::string hint;
      if (run.attempts >= spec_.max_attempts)
        hint = fmt::format("; that was its last attempt ([campaign] max_attempts = {})",
                           spec_.max_attempts);
      else if (checkpoint)
        hint = fmt::format("; --retry-failed continues it from its checkpoint of step {}",
                           *checkpoint);
      const size_t tail = message.find(kLogTailMarker);
      message.insert(tail == std::string::npos ? message.size() : tail, hint);
    } else if (status == RunStatus::kDiverged) {
      // Training is bit-identical for one configuration and seed (train_checkpoint_test), so
      // a retry here would diverge again: say what helps instead.
      message += run.attempts >= spec_.max_attempts
                     ? fmt::format("; that was its last attempt ([campaign] max_attempts = {})",
                                   spec_.max_attempts)
                     : std::string("; a --retry-failed start repeats the same configuration and "
                                   "seed, which diverge again at the same step on the same kind "
                                   "of machine: sweep a smaller train.lr or train.clip_norm instead");
    }
    store::TransitionDetails details;
    details.steps_done = r.step;
    if (r.outcome != RunOutcome::kDone) details.error = message;
    store_.transition_run(r.run_id, status, details);
    // A done run's message is usually its start note, already recorded at the start.
    if (r.outcome == RunOutcome::kDone && !r.message.empty() && r.message != start_notes[r.run_id])
      store_.record_event(st.campaign.id, r.run_id, "warning", r.message);
    start_notes.erase(r.run_id);
    auto c = scheduler.counts();
    std::string objective;
    if (r.outcome == RunOutcome::kDone) {
      json report = json::parse(r.report_json, nullptr, false);
      if (report.is_object() && report.contains("summary") &&
          report["summary"].contains(spec_.objective_metric) &&
          report["summary"][spec_.objective_metric].is_number())
        objective = fmt::format(", {} {:.4g}", spec_.objective_metric,
                                report["summary"][spec_.objective_metric].get<double>());
      else if (!warned_objective && report.is_object() && report.contains("summary") &&
               report["summary"].is_object()) {
        // A misspelt or inapplicable objective (val_cobps without held-out neurons) would
        // leave `jslds best` nothing to rank: say so at the first run, not at the end.
        warned_objective = true;
        std::vector<std::string> names;
        for (const auto& item : report["summary"].items()) names.push_back(item.key());
        const std::string warning = fmt::format(
            "run {} reported no '{}', the campaign's objective metric, so `jslds best` cannot "
            "rank it; it reported: {}",
            run.number, spec_.objective_metric, fmt::join(names, ", "));
        say("warning: " + warning);
        begin();
        store_.record_event(st.campaign.id, r.run_id, "warning", warning);
      }
    }
    std::string first_line = message.substr(0, message.find('\n'));
    // The quoted log lines are in the database (`jslds show`), not in this one-line view.
    if (const size_t tail = first_line.rfind(kLogTailMarker); tail != std::string::npos)
      first_line.erase(tail);
    say(fmt::format("[{} done, {} failed, {} running, {} left] run {} {} after {:.1f} s at step "
                    "{}{}{}",
                    c[RunStatus::kDone], c[RunStatus::kFailed] + c[RunStatus::kDiverged],
                    c[RunStatus::kRunning], c[RunStatus::kPending] + c[RunStatus::kInterrupted],
                    run.number, store::to_string(status), r.child_seconds, r.step, objective,
                    first_line.empty() || r.outcome == RunOutcome::kDone ? ""
                                                                         : ": " + first_line));
  };

  auto on_progress = [&](const Progress& p) {
    begin();
    if (!p.note.empty()) {
      // What the worker found at the start (a checkpoint adopted or completed, files set
      // aside): recorded now, because this attempt may be killed before its result.
      store_.record_event(st.campaign.id, p.run_id, "info", fmt::format("attempt {}: {}", p.attempt, p.note));
      start_notes[p.run_id] = p.note;
      commit();
    }
    std::vector<store::MetricPoint> points;
    int64_t step = 0;
    for (const auto& point : p.points) {
      step = std::max(step, point.step);
      for (const auto& [name, value] : point.metrics)
        points.push_back({p.run_id, point.step, name, value});
    }
    if (!points.empty()) {
      store_.record_metrics(points);
      store_.update_steps_done(p.run_id, step);
    }
    if (p.checkpoint) {
      store::ArtifactRecord a;
      a.kind = "checkpoint";
      a.path = p.checkpoint->path;
      a.step = p.checkpoint->step;
      a.bytes = p.checkpoint->bytes;
      a.sha256 = p.checkpoint->sha256;
      store_.record_artifact(p.run_id, a);
      commit();  // a checkpoint is what a resume needs: make it durable now
    }
  };

  while (true) {
    const auto now_wall = std::chrono::system_clock::now();
    if (!stopping && StopSignals::requested())
      begin_stop(fmt::format("{} received by the coordinator",
                             signal_name(StopSignals::signal_number())));
    if (!stopping && stop_at && now_wall >= *stop_at)
      begin_stop("the time limit is 2 minutes away");

    // Hand work to every idle worker (dynamic scheduling).
    if (!stopping) {
      bool may_start = !stop_at || may_start_before(now_wall, *stop_at, estimate.mean());
      for (int w = 0; w < pool_.size() && may_start; ++w)
        if (ready[static_cast<size_t>(w)] && scheduler.lease_count(w) == 0 && !dispatch(w, 1))
          break;
      // Short runs: each busy worker also gets the run it starts next, so the round trip
      // (its result to rank 0, the database writes, the next task back) overlaps the current
      // run instead of following it; only while runs are short and at least as many runs wait
      // as there are workers. A current run that has lasted 10 times the mean (at least
      // 0.5 s) is taken for a long one: nothing is queued behind it.
      const auto mean = estimate.mean();
      const auto now = clock_type::now();
      auto runs_long = [&](int w) {
        return mean && now - current_since[static_cast<size_t>(w)] >
                           std::chrono::duration<double>(std::max(0.5, 10 * mean->count()));
      };
      if (mean && mean->count() < options_.queue_runs_shorter_than.count() &&
          (!stop_at || may_start_before(now_wall, *stop_at, 2 * *mean))) {
        std::optional<int> waiting;  // runnable runs, counted once per pass (a scan of all runs)
        for (int w = 0; w < pool_.size(); ++w) {
          if (!ready[static_cast<size_t>(w)] || scheduler.lease_count(w) != 1 || runs_long(w)) continue;
          if (!waiting) waiting = scheduler.runnable_count();
          if (*waiting < pool_.size() || !dispatch(w, 2)) break;
          --*waiting;
          ++summary.runs_queued;
        }
      }
      // A queued run must not wait behind a long run: it is asked back (a worker that has
      // started it already ignores the request) once the run ahead of it turns out long, and
      // whenever a worker is idle with nothing left to hand out.
      bool idle_worker = false;
      for (int w = 0; w < pool_.size(); ++w)
        idle_worker = idle_worker || (ready[static_cast<size_t>(w)] && scheduler.lease_count(w) == 0);
      const bool starved = idle_worker && !scheduler.has_runnable();
      for (int w = 0; w < pool_.size(); ++w) {
        auto queued = scheduler.queued_lease_of(w);
        if (!queued || withdrawn.count(queued->run_id) || !(starved || runs_long(w))) continue;
        withdrawn.insert(queued->run_id);
        pool_.send(w, Withdraw{queued->run_id, queued->attempt});
        ++summary.withdraw_requests;
      }
    }

    const bool busy = !scheduler.leases().empty();
    const bool any_ready = std::any_of(ready.begin(), ready.end(), [](bool b) { return b; });
    if (!busy && (any_ready || stopping)) {
      if (stopping || !scheduler.has_runnable()) break;
      bool may_start = !stop_at || may_start_before(now_wall, *stop_at, estimate.mean());
      if (!may_start) {
        begin_stop("no remaining run can finish before the time limit");
        break;
      }
    }
    if (stopping && clock_type::now() >= stop_deadline) {
      begin();
      for (const auto& lease : scheduler.leases()) {
        scheduler.finish(lease.run_id, lease.worker, lease.attempt, RunStatus::kInterrupted);
        store::TransitionDetails d;
        d.error = fmt::format("no result from {} within {} s of the stop; resumes from its last "
                              "recorded checkpoint",
                              pool_.name(lease.worker), options_.stop_timeout.count());
        store_.transition_run(lease.run_id, RunStatus::kInterrupted, d);
      }
      break;
    }

    // Commit a batch that has been open long enough before sleeping.
    if (st.transaction && clock_type::now() - st.opened >= options_.commit_interval) commit();
    auto message = pool_.receive(st.transaction ? std::chrono::milliseconds(5)
                                                : std::chrono::milliseconds(50));
    if (!message) {
      commit();
      continue;
    }
    std::visit(
        [&](const auto& m) {
          using T = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<T, Result>) {
            on_result(message->worker, m);
          } else if constexpr (std::is_same_v<T, Progress>) {
            on_progress(m);
          } else if constexpr (std::is_same_v<T, Hello>) {
            st.worker_device[message->worker] = m.device;
            ready[static_cast<size_t>(message->worker)] = true;
            begin();
            store_.record_event(st.campaign.id, std::nullopt, "info",
                                fmt::format("worker {} ready: {} threads per run, device {}",
                                            pool_.name(message->worker), m.threads, m.device));
          } else if constexpr (std::is_same_v<T, Stop>) {
            begin_stop(m.reason);
          } else {
            throw ProtocolError(fmt::format("unexpected {} message from worker {}",
                                            message_type(message->message),
                                            pool_.name(message->worker)));
          }
        },
        message->message);
  }

  for (int w = 0; w < pool_.size(); ++w) pool_.send(w, Shutdown{});
  const auto end = clock_type::now();
  summary.counts = scheduler.counts();
  summary.cpu_seconds = cpu_seconds() - cpu_start;
  summary.wall_seconds = std::chrono::duration<double>(end - first_dispatch.value_or(loop_start)).count();
  if (first_dispatch && last_result)
    summary.busy_seconds = std::chrono::duration<double>(*last_result - *first_dispatch).count();
  begin();
  const std::string status = summary.stopped ? "stopped" : "finished";
  store_.set_campaign_status(st.campaign.id, status);
  store_.record_event(st.campaign.id, std::nullopt, "info",
                      fmt::format("launch epoch {} {}{}: {} results in {:.1f} s", st.campaign.epoch,
                                  status, summary.stopped ? " (" + summary.stop_reason + ")" : "",
                                  summary.runs_finished, summary.wall_seconds));
  commit();
  auto& c = summary.counts;
  say(fmt::format("campaign {} {}: {} done, {} failed, {} diverged, {} interrupted, {} pending{}",
                  spec_.name, status, c[RunStatus::kDone], c[RunStatus::kFailed],
                  c[RunStatus::kDiverged], c[RunStatus::kInterrupted], c[RunStatus::kPending],
                  summary.stopped ? "; run the same command again to resume" : ""));
  return summary;
}

const char* const kRefusedPrefix = "a launch would be refused: ";

std::vector<std::string> preview_launch(store::ExperimentStore* store, const SweepSpec& spec,
                                        const std::vector<ExpandedRun>& runs,
                                        const CoordinatorOptions& options) {
  std::vector<std::string> out;
  std::optional<size_t> resume_at;  // the line "a launch resumes …"
  std::string would_start;          // its ending when nothing is refused
  const fs::path root = campaign_root(options.artifacts, spec.name);
  std::optional<store::CampaignRow> existing;
  if (store) existing = store->find_campaign(spec.name);
  std::set<std::pair<std::string, int64_t>> stored_keys;
  std::vector<store::RunRow> stored_rows;
  std::map<RunStatus, int64_t> by_state;
  int64_t retryable = 0;
  if (existing) stored_rows = store->list_runs(existing->id);
  if (existing)
    for (const auto& row : stored_rows) {
      stored_keys.insert({row.config_sha256, row.repeat});
      ++by_state[row.status];
      if ((row.status == RunStatus::kFailed || row.status == RunStatus::kDiverged) &&
          row.attempts < spec.max_attempts)
        ++retryable;
    }
  int64_t new_runs = 0;
  std::set<std::pair<std::string, int64_t>> expanded;
  for (const auto& r : runs) {
    expanded.insert({r.config_sha256, r.repeat});
    if (!stored_keys.count({r.config_sha256, r.repeat})) ++new_runs;
  }
  if (!existing) {
    out.push_back(fmt::format("a launch creates campaign '{}' in {} with {} runs; run "
                              "directories under {}",
                              spec.name, options.database, runs.size(), root.string()));
  } else {
    if (existing->spec_sha256 != spec.sha256) {
      if (!options.force_spec) {
        out.push_back(fmt::format(
            "a launch would be refused: campaign '{}' exists in {} with another spec (changed: "
            "{}); resume it with the original spec and overrides, or pass --force-spec to let "
            "it grow",
            spec.name, options.database, spec_changes(existing->spec_toml, spec.canonical)));
        return out;
      }
      for (const auto& key : stored_keys)
        if (!expanded.count(key)) {
          out.push_back(fmt::format("a launch would be refused: --force-spec, but a stored run "
                                    "of campaign '{}' is not in the new spec's expansion (a "
                                    "forced spec may only add runs)",
                                    spec.name));
          return out;
        }
      out.push_back(fmt::format("--force-spec: a launch replaces the stored spec and adds {} "
                                "run(s)",
                                new_runs));
    }
    if (!options.data_sha256.empty()) {
      const Fingerprints fingerprints = complete_fingerprints(*store, existing->id, stored_rows, {}, options);
      if (std::string why = changed_data(spec.name, stored_rows, fingerprints.known, runs, options.data_sha256);
          !why.empty()) {
        out.push_back(std::string(kRefusedPrefix) + why);
        return out;
      }
    }
    std::vector<std::string> states;
    for (const auto& [state, count] : by_state)
      states.push_back(fmt::format("{} {}", count, store::to_string(state)));
    const int64_t to_start = by_state[RunStatus::kPending] + by_state[RunStatus::kInterrupted] +
                             by_state[RunStatus::kRunning] + new_runs +
                             (options.retry_failed ? retryable : 0);
    std::string retry_note;
    if (retryable > 0 && !options.retry_failed)
      retry_note = fmt::format(" ({} failed or diverged could run again with --retry-failed)",
                               retryable);
    // How many would start is said below, once it is known that nothing is refused.
    resume_at = out.size();
    out.push_back(fmt::format("a launch resumes campaign '{}' of {} (created {}): {}{}",
                              spec.name, options.database, existing->created_at,
                              states.empty() ? std::string("no runs yet")
                                             : fmt::format("{}", fmt::join(states, ", ")),
                              new_runs > 0 ? fmt::format(", {} new", new_runs) : std::string()));
    would_start = fmt::format("; {} run(s) would start{}", to_start, retry_note);
  }
  // The run-directory folders, as the claims of a launch would find them.
  std::map<fs::path, fs::path> moved;
  if (existing) moved = moved_run_roots(stored_rows, root, spec.name, existing->created_at);
  for (const auto& [old_root, new_root] : moved)
    out.push_back(fmt::format("{} no longer exists and {} holds this campaign's runs: a launch "
                              "records them there",
                              old_root.string(), new_root.string()));
  if (existing)
    if (std::string lost = missing_run_folders(stored_rows, moved, spec.name, options.retry_failed);
        !lost.empty())
      out.push_back("a launch would be refused: " + lost);
  std::set<fs::path> own_roots;
  for (const auto& row : stored_rows) {
    const fs::path parent = fs::path(row.run_dir).parent_path();
    own_roots.insert(moved.count(parent) ? moved.at(parent) : parent);
  }
  std::set<fs::path> roots = own_roots;
  if (new_runs > 0) roots.insert(root);
  const CampaignOwner owner{spec.name,
                            existing ? std::optional<std::string>(existing->created_at)
                                     : std::nullopt,
                            options.database};
  for (const fs::path& dir : roots) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;  // made by the launch, or left alone
    std::ifstream in(artifacts_marker_path(dir), std::ios::binary);
    const std::string marker_text((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    if (auto why = artifacts_refusal(dir, marker_text, owner, own_roots.count(dir) > 0))
      out.push_back(kRefusedPrefix + *why);
  }
  const bool refused = std::any_of(out.begin(), out.end(), [](const std::string& line) {
    return line.rfind(kRefusedPrefix, 0) == 0;
  });
  if (resume_at && !refused) out[*resume_at] += would_start;
  return out;
}

std::chrono::system_clock::time_point parse_time_limit(std::string_view text,
                                                       std::chrono::system_clock::time_point now) {
  static const std::regex kForm(
      R"(^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)(s)?)?\s*$)");
  std::cmatch m;
  std::string s(text);
  if (s.empty() || !std::regex_match(s.c_str(), m, kForm) ||
      (!m[1].matched && !m[2].matched && !m[3].matched && !m[4].matched))
    throw std::invalid_argument(fmt::format(
        "--time-limit '{}': expected a duration such as 90s, 45m, 2h, 1h30m or 1d (a bare "
        "number is seconds)",
        text));
  // A bare number means seconds only on its own: after a unit ("1h30") it was meant in the
  // next unit down, and reading it as seconds would stop the sweep early without a word.
  const int last_unit = m[3].matched ? 3 : m[2].matched ? 2 : m[1].matched ? 1 : 0;
  if (m[4].matched && !m[5].matched && last_unit > 0) {
    static constexpr const char* kUnit[] = {"", "d", "h", "m"};
    static constexpr const char* kNextUnit[] = {"", "h", "m", "s"};
    std::string meant = s.substr(0, s.find_last_not_of(" \t\n") + 1);
    meant.erase(0, meant.find_first_not_of(" \t\n"));
    throw std::invalid_argument(fmt::format(
        "--time-limit '{}': the {} after {}{} has no unit: write {}{} (only a number alone, "
        "such as 5400, means seconds)",
        text, m[4].str(), m[last_unit].str(), kUnit[last_unit], meant, kNextUnit[last_unit]));
  }
  auto part = [&](int i) { return m[i].matched ? std::stoll(m[i].str()) : 0LL; };
  std::chrono::seconds total(part(1) * 86400 + part(2) * 3600 + part(3) * 60 + part(4));
  if (total.count() <= 0)
    throw std::invalid_argument(fmt::format("--time-limit '{}' must be positive", text));
  return now + total;
}

std::optional<std::chrono::system_clock::time_point> slurm_job_end_time() {
  const char* v = std::getenv("SLURM_JOB_END_TIME");
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  long long seconds = std::strtoll(v, &end, 10);
  if (*end != '\0' || seconds <= 0) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}

}  // namespace jslds
