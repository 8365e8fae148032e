// `jslds show RUN`: everything the database knows about one run.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/db_access.h"
#include "coordinator/artifacts_owner.h"
#include "store/table_format.h"

namespace jslds::cli {
namespace {

std::string human_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

/// Where a run's directory is now, its stored path being gone, when the campaign folder was
/// moved together with the database (docs/sweeps.md, "moved together with its database"): the
/// same directory under jslds-runs/CAMPAIGN/ beside the database, the folder a launch with the
/// default --artifacts looks in, when that folder's campaign.json names this campaign (name and
/// creation time) and the directory exists. Only the next launch records the new place in the
/// database; until then `show` reads it from there. nullopt when no moved copy is found.
std::optional<std::filesystem::path> moved_run_dir(const std::string& db_path,
                                                   const store::CampaignRow& campaign,
                                                   const std::string& run_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root =
      fs::weakly_canonical(fs::absolute(db_path, ec), ec).parent_path() / "jslds-runs" / campaign.name;
  if (ec) return std::nullopt;
  const auto marker = read_artifacts_marker(root);
  if (!marker || marker->campaign != campaign.name || marker->created_at != campaign.created_at)
    return std::nullopt;
  const fs::path candidate = root / fs::path(run_dir).filename();
  if (!fs::is_directory(candidate, ec)) return std::nullopt;
  return candidate;
}

std::string number_text(double v) { return std::isnan(v) ? "nan" : fmt::format("{:.6g}", v); }

void flatten(const nlohmann::json& j, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      flatten(value, prefix.empty() ? key : prefix + "." + key, out);
    }
  } else {
    out.emplace_back(prefix, j.dump());
  }
}

/// RUN is "campaign/number" or a run id.
store::RunRow resolve_run(store::ExperimentStore& store, const std::string& text) {
  auto slash = text.rfind('/');
  int64_t value = 0;
  std::string_view digits = slash == std::string::npos ? std::string_view(text)
                                                       : std::string_view(text).substr(slash + 1);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
    throw UsageError(fmt::format(
        "RUN '{}' is neither CAMPAIGN/NUMBER (e.g. reach-v1/12) nor a run id (e.g. 57)", text));
  }
  if (slash == std::string::npos) {
    try {
      return store.get_run(value);
    } catch (const store::StoreError&) {
      throw UsageError(fmt::format("no run with id {} in the database", value));
    }
  }
  std::string name = text.substr(0, slash);
  auto campaign = store.find_campaign(name);
  if (!campaign) {
    std::string known;
    for (const auto& c : store.list_campaigns()) known += (known.empty() ? "" : ", ") + c.name;
    throw UsageError(fmt::format("no campaign '{}' in the database; campaigns: {}", name,
                                 known.empty() ? "(none yet)" : known));
  }
  auto run = store.find_run(campaign->id, value);
  if (!run) {
    throw UsageError(fmt::format("campaign '{}' has no run number {} (it has {} runs)", name,
                                 value, store.list_runs(campaign->id).size()));
  }
  return *run;
}

void show(store::ExperimentStore& store, const std::string& db_path, const store::RunRow& run,
          int curve_steps, int max_points, int max_modes) {
  std::ostream& out = std::cout;
  store::CampaignRow campaign = store.get_campaign(run.campaign_id);
  out << fmt::format("run {}/{} (id {}): {}\n", campaign.name, run.number, run.id,
                     store::to_string(run.status));
  out << fmt::format("  campaign    {} (objective {} {}), repeat {}\n", campaign.name,
                     campaign.objective_goal, campaign.objective_metric, run.repeat);
  if (run.attempts == 0)
    out << "  attempts    0 (not started yet)\n";
  else
    out << fmt::format("  attempts    {} (last in launch {}), steps done {}\n", run.attempts,
                       run.epoch, run.steps_done);
  if (run.worker || run.device) {
    out << fmt::format("  worker      {}, device {}\n", run.worker.value_or("-"),
                       run.device.value_or("-"));
  }
  if (const auto build = store.run_build(run.id)) out << fmt::format("  jslds       {}\n", *build);
  if (const auto fingerprints = store.data_fingerprints(run.campaign_id); fingerprints.count(run.number))
    out << fmt::format("  data        fingerprint {} (dataset_sha256)\n", fingerprints.at(run.number).substr(0, 12));
  // started_at is the last attempt's (DESIGN §5); say so when there were several.
  out << fmt::format("  started     {}{}\n  finished    {}\n", run.started_at.value_or("-"),
                     run.attempts > 1 && run.started_at
                         ? fmt::format(" (the last of {} attempts)", run.attempts)
                         : std::string(),
                     run.finished_at.value_or("-"));
  // duration_s as run_overview and `jslds query` define it: only the last attempt's wall time
  // is stored (an earlier attempt's end is not, and a dead coordinator's runs are marked
  // interrupted only at the next launch), so a resumed run names its summed training time.
  std::optional<double> duration_s;
  {
    store::Statement st(store.database(), "SELECT duration_s FROM run_overview WHERE run_id = ?");
    st.bind(1, run.id);
    if (st.step() && !st.is_null(0)) duration_s = st.column_double(0);
  }
  const auto summaries = store.run_summaries(run.id);
  std::string duration_label =
      run.status == store::RunStatus::kRunning ? "wall seconds of the current attempt so far"
      : run.attempts > 1 ? fmt::format("wall seconds of the last of {} attempts only, start to finish",
                                       run.attempts)
                         : std::string("wall seconds from start to finish");
  if (run.attempts > 1) {
    const auto train_seconds = summaries.find("train_seconds");
    duration_label += train_seconds != summaries.end()
                          ? fmt::format("; training time of all attempts: summary train_seconds = {}",
                                        number_text(train_seconds->second))
                          : std::string("; earlier attempts are not counted");
  }
  out << fmt::format("  duration_s  {} ({})\n",
                     duration_s ? fmt::format("{:.1f}", *duration_s) : std::string("-"),
                     duration_label);
  // A moved campaign folder (or a deleted run directory) is said, not listed as if present.
  std::error_code dir_ec;
  const bool present = run.run_dir.empty() || std::filesystem::exists(run.run_dir, dir_ec) || dir_ec;
  const auto moved = present ? std::nullopt : moved_run_dir(db_path, campaign, run.run_dir);
  if (present) {
    out << fmt::format("  run dir     {}\n", run.run_dir);
  } else if (moved) {
    out << fmt::format("  run dir     {} (recorded as {}, which no longer exists: the campaign "
                       "folder was moved with the database; the next launch of the campaign "
                       "records the new place)\n",
                       moved->string(), run.run_dir);
  } else if (run.attempts == 0) {
    out << fmt::format("  run dir     {} (created when the run first starts)\n", run.run_dir);
  } else {
    out << fmt::format("  run dir     {} (not found: deleted, or moved somewhere other than "
                       "jslds-runs/{}/ beside the database)\n",
                       run.run_dir, campaign.name);
  }
  if (run.error) out << fmt::format("  error       {}\n", *run.error);

  constexpr const char* kNone = "  (none recorded)\n";
  auto params = store.run_params(run.id);
  out << "\nswept parameters\n";
  if (params.empty()) out << "  (none: the campaign sweeps no parameter)\n";
  {
    std::sort(params.begin(), params.end(),
              [](const auto& a, const auto& b) { return store::NaturalLess{}(a.name, b.name); });
    for (const auto& p : params) {
      std::string v = std::holds_alternative<double>(p.value)
                          ? fmt::format("{}", std::get<double>(p.value))
                          : nlohmann::json(std::get<std::string>(p.value)).dump();  // quoted, escaped as below
      out << fmt::format("  {} = {}\n", p.name, v);
    }
  }

  out << "\nconfiguration\n";
  try {
    std::vector<std::pair<std::string, std::string>> keys;
    flatten(nlohmann::json::parse(run.config_json), "", keys);
    for (const auto& [key, value] : keys) out << fmt::format("  {} = {}\n", key, value);
    if (keys.empty()) out << kNone;
  } catch (const nlohmann::json::exception&) {
    out << "  " << run.config_json << "\n";
  }

  out << "\nstatus history\n";
  auto events = store.events(run.campaign_id, run.id, 50);
  for (const auto& e : events) {
    out << fmt::format("  {}  {:<7}  {}\n", e.at, e.level, e.message);
  }
  if (events.empty()) out << kNone;

  // 0 means none, as for --points and --modes (store.metrics reads every step for 0).
  auto curve = curve_steps > 0 ? store.metrics(run.id, curve_steps)
                               : std::vector<store::MetricPoint>{};
  if (curve_steps == 0) {
    out << "\ncurve\n  (not listed: --curve-steps 0)\n";
  } else if (curve.empty()) {
    out << "\ncurve\n" << kNone;
  } else {
    store::Table t;
    t.columns.push_back("step");
    store::NameSet names;
    for (const auto& p : curve) names.insert(p.name);
    for (const auto& n : names) t.columns.push_back(n);
    std::map<int64_t, std::map<std::string, double>> by_step;
    for (const auto& p : curve) by_step[p.step][p.name] = p.value;
    for (const auto& [step, values] : by_step) {
      std::vector<store::SqlValue> row = {step};
      for (const auto& n : names) {
        auto it = values.find(n);
        row.push_back(it == values.end() ? store::SqlValue(nullptr) : store::SqlValue(it->second));
      }
      t.rows.push_back(std::move(row));
    }
    out << fmt::format("\ncurve (last {} evaluations)\n", by_step.size());
    store::write_table(out, t, store::TableFormat::kTable);
  }

  out << "\nsummaries\n";
  if (summaries.empty()) out << kNone;
  std::map<std::string, double, store::NaturalLess> natural(summaries.begin(), summaries.end());
  for (const auto& [name, value] : natural) {
    out << fmt::format("  {:<24} {}\n", name, number_text(value));
  }

  auto points = store.fixed_points(run.id);
  if (points.empty()) {
    out << "\nanalysed points (fixed points and expansion points)\n" << kNone;
  } else {
    std::map<std::string, std::map<std::string, int>> classes;
    for (const auto& p : points) classes[p.source][p.stability] += 1;
    // Both kinds of point are analysed alike; only the numerical ones are fixed points
    // (summary n_fixed_points).
    out << fmt::format("\nanalysed points ({}): numerical = fixed points of the search (listed first), "
                       "expansion = the JSLDS expansion points\n",
                       points.size());
    for (const auto& [source, counts] : classes) {
      std::string line;
      for (const auto& [stability, n] : counts) {
        line += fmt::format("{}{} {}", line.empty() ? "" : ", ", n, stability);
      }
      out << fmt::format("  {:<10} {}\n", source, line);
    }
    // The fixed points first: a run has up to analysis.max_points (64) expansion points, which
    // would otherwise fill the table before the first fixed point.
    std::stable_partition(points.begin(), points.end(),
                          [](const store::FixedPointRecord& p) { return p.source == "numerical"; });
    if (max_points == 0) out << "  (not listed: --points 0)\n";
    store::Table t;
    // refined: "yes" for a fixed point polished by the Newton refinement, "no" for a slow
    // point, empty for expansion points and for databases written before schema version 2.
    t.columns = {"idx", "source", "stability", "n_unstable", "max_abs_eig", "q", "refined"};
    for (std::size_t i = 0; i < points.size() && static_cast<int>(i) < max_points; ++i) {
      const auto& p = points[i];
      t.rows.push_back({p.idx, p.source, p.stability, p.n_unstable, p.max_abs_eig, p.q,
                        std::string(p.refined ? (*p.refined ? "yes" : "no") : "")});
    }
    if (max_points > 0) store::write_table(out, t, store::TableFormat::kTable);
    if (max_points > 0 && static_cast<int>(points.size()) > max_points) {
      out << fmt::format("  ... {} more\n", points.size() - max_points);
    }
  }

  auto modes = store.modes(run.id);
  if (modes.empty()) {
    out << "\nslowest modes\n" << kNone;
  } else {
    // Slowest first: largest |λ| below or at 1 decays slowest (τ = −Δt / ln|λ|).
    std::sort(modes.begin(), modes.end(),
              [](const auto& a, const auto& b) { return a.abs > b.abs; });
    out << fmt::format("\nslowest modes (of {})\n", modes.size());
    store::Table t;
    t.columns = {"point", "mode", "abs", "freq_hz", "tau_s"};
    for (std::size_t i = 0; i < modes.size() && static_cast<int>(i) < max_modes; ++i) {
      const auto& m = modes[i];
      t.rows.push_back({m.point_idx, m.mode_idx, m.abs, m.freq_hz,
                        m.tau_s ? store::SqlValue(*m.tau_s) : store::SqlValue("inf")});
    }
    if (max_modes == 0) {
      out << "  (not listed: --modes 0)\n";
    } else {
      store::write_table(out, t, store::TableFormat::kTable);
      if (static_cast<int>(modes.size()) > max_modes)
        out << fmt::format("  ... {} more\n", modes.size() - max_modes);
    }
  }

  auto files = store.artifacts(run.id);
  out << "\nfiles\n";
  if (files.empty()) out << kNone;
  {
    for (const auto& f : files) {
      // In a moved run directory, the file where it is now (the next launch records it).
      std::string path = f.path;
      const std::string old_dir = run.run_dir + "/";
      if (moved && path.rfind(old_dir, 0) == 0) path = (*moved / path.substr(old_dir.size())).string();
      out << fmt::format("  {:<12} {}  ({}{})\n", f.kind, path, human_bytes(f.bytes),
                         f.step ? fmt::format(", step {}", *f.step) : "");
    }
  }
}

}  // namespace

void register_show(CLI::App& app) {
  struct ShowArgs {
    std::string db;
    std::string run;
    int curve_steps = 5;
    int max_points = 20;
    int max_modes = 10;
  };
  auto args = std::make_shared<ShowArgs>();
  auto* cmd = app.add_subcommand("show", "Everything recorded about one run");
  cmd->footer(
      "Prints state and times, swept params, full configuration, "
      "status history, the tail of the training curve, summaries, fixed points by source and "
      "stability, the slowest eigenmodes (|λ|, frequency in Hz, time constant τ in s) and its "
      "files with sizes.");
  add_db_option(*cmd, args->db);
  cmd->add_option("run", args->run, "CAMPAIGN/NUMBER (e.g. reach-v1/12) or a run id")
      ->required();
  cmd->add_option("--curve-steps", args->curve_steps, "evaluations of the curve to print, the last ones (0: none)")
      ->check(whole_number_at_least(0))
      ->default_val(5);
  cmd->add_option("--points", args->max_points, "analysed points to list: the fixed points of the search first, then the expansion points (0: none, the counts only)")
      ->check(whole_number_at_least(0))
      ->default_val(20);
  cmd->add_option("--modes", args->max_modes, "eigenmodes to list, slowest first (0: none)")
      ->check(whole_number_at_least(0))
      ->default_val(10);
  cmd->callback([args] {
    store::ExperimentStore store = open_reader(args->db);
    store::RunRow run = resolve_run(store, args->run);
    show(store, args->db, run, args->curve_steps, args->max_points, args->max_modes);
  });
}

}  // namespace jslds::cli
