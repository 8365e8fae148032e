// `jslds status [CAMPAIGN]`: progress of a (live) campaign, read-only while the sweep writes.
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/db_access.h"
#include "coordinator/launch_lock.h"
#include "store/campaign_status.h"
#include "store/table_format.h"

namespace jslds::cli {
namespace {

std::string duration_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  auto s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

/// An error message on one line of the failures list: lines joined with " | ", at most
/// `max_chars` characters (the full text: `jslds show CAMPAIGN/NUMBER`).
std::string one_line(const std::string& message, std::size_t max_chars = 160) {
  std::string out;
  std::size_t start = 0;
  while (start <= message.size()) {
    std::size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    std::string line = message.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    line.erase(0, line.find_first_not_of(" \t"));
    line.erase(line.find_last_not_of(" \t") + 1);
    if (!line.empty()) out += (out.empty() ? "" : " | ") + line;
    start = end + 1;
  }
  if (out.size() > max_chars) out = out.substr(0, max_chars - 3) + "...";
  return out;
}

// `launch_alive`: whether a `jslds sweep` holds the campaign's launch lock (nullopt: unknown).
void print_status(const store::CampaignStatus& s, std::optional<bool> launch_alive) {
  std::ostream& out = std::cout;
  out << fmt::format("campaign {} ({}, launch {}, {}), objective {} {}\n", s.campaign.name,
                     s.campaign.method, s.campaign.epoch, s.campaign.status,
                     s.campaign.objective_goal, s.campaign.objective_metric);
  if (s.campaign.status == "running" && launch_alive == false)
    out << "  warning     no `jslds sweep` holds this campaign's launch lock: its coordinator ended "
           "without finishing (killed, crashed, or its node was lost), so the `running` runs below "
           "are not being watched. Run the same `jslds sweep` command again to resume: it takes "
           "over their checkpoints\n";
  std::string counts;
  for (const auto& [state, n] : s.counts) {
    counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", n, store::to_string(state));
  }
  out << fmt::format("  runs        {} total: {}\n", s.total, counts);
  // The window named as it is: a young campaign's is shorter than an hour, a finished
  // campaign's ends at its last finish, and under a minute there is no rate yet.
  const std::string length = s.recent_window_h >= 1.0 - 1e-9
                                 ? std::string("hour")
                                 : fmt::format("{:.0f} min", std::floor(s.recent_window_h * 60.0));
  const int64_t left = s.counts.at(store::RunStatus::kPending) + s.counts.at(store::RunStatus::kRunning) +
                       s.counts.at(store::RunStatus::kInterrupted);
  if (s.recent_window_h < 1.0 / 60.0) {
    out << (s.total > 0 && left == 0
                ? fmt::format("  throughput  {} finished within {:.0f} s of the campaign's creation: too short for a "
                              "rate\n",
                              s.recent_finished, s.recent_window_h * 3600.0)
                : fmt::format("  throughput  {} finished in the campaign's first {:.0f} s: too early for a rate\n",
                              s.recent_finished, s.recent_window_h * 3600.0));
  } else {
    out << fmt::format("  throughput  {:.1f} runs/h over {}, {:.1f} runs/h since the campaign was created\n",
                       s.runs_per_hour_recent,
                       s.recent_window_ends_now ? "the last " + length : "the " + length + " before the last finish",
                       s.runs_per_hour_overall);
  }
  if (s.total == 0) {
    out << "  remaining   nothing: the campaign has no runs yet\n";
  } else if (left == 0) {
    out << fmt::format("  remaining   none: complete, all {} runs finished ({} done)\n",
                       s.total, s.counts.at(store::RunStatus::kDone));
  } else if (!launch_alive.value_or(s.campaign.status == "running")) {
    // Stopped, or its coordinator died: the runs left wait for a relaunch, so the time until
    // they finish is not a property of the campaign. (Without a lock file to ask, the campaign
    // status decides.)
    out << fmt::format("  remaining   {} run{}, no ETA: no `jslds sweep` is running this campaign "
                       "(run the same `jslds sweep` command again to resume it)\n",
                       left, left == 1 ? "" : "s");
  } else {
    out << fmt::format("  remaining   {} run{}, ETA {}\n", left, left == 1 ? "" : "s",
                       s.eta_s ? duration_text(*s.eta_s)
                       : s.finished == 0 ? std::string("unknown (no run finished yet)")
                                         : std::string("unknown (too early for a rate)"));
  }
  if (s.last_event_at) out << fmt::format("  last event  {}\n", *s.last_event_at);

  if (!s.running.empty()) {
    out << fmt::format("\nrunning ({})\n", s.running.size());
    store::Table t;
    t.columns = {"worker", "device", "run", "step", "of", "elapsed", "attempt"};
    for (const auto& r : s.running) {
      t.rows.push_back({r.run.worker ? store::SqlValue(*r.run.worker) : store::SqlValue(nullptr),
                        r.run.device ? store::SqlValue(*r.run.device) : store::SqlValue(nullptr),
                        r.run.number, r.run.steps_done,
                        r.total_steps ? store::SqlValue(*r.total_steps) : store::SqlValue(nullptr),
                        duration_text(r.elapsed_s), r.run.attempts});
    }
    store::write_table(out, t, store::TableFormat::kTable);
    std::set<std::string> workers;
    bool twice = false;
    for (const auto& r : s.running)
      if (r.run.worker) twice |= !workers.insert(*r.run.worker).second;
    if (twice)
      out << "(a worker listed twice also holds the run it starts next: short runs are handed out one "
             "ahead, docs/sweeps.md)\n";
  }
  if (!s.failures.empty()) {
    out << fmt::format("\nlast failures\n");
    for (const auto& r : s.failures) {
      out << fmt::format("  run {:<5} {:<9} {}  {}\n", r.number, store::to_string(r.status),
                         r.finished_at.value_or("-"),
                         r.error ? one_line(*r.error) : std::string("(no message)"));
    }
  }
}

}  // namespace

void register_status(CLI::App& app) {
  struct StatusArgs {
    std::string db;
    std::string campaign;
    int failures = 5;
  };
  auto args = std::make_shared<StatusArgs>();
  auto* cmd = app.add_subcommand("status", "Progress of campaigns, also while a sweep runs");
  cmd->footer(
      "Prints runs per state, runs finished per hour, ETA (only while a `jslds sweep` runs the "
      "campaign), which worker runs "
      "what (step reached), and the latest failures with their messages. Opens the database "
      "read-only: run it from another shell while a sweep writes.");
  add_db_option(*cmd, args->db);
  cmd->add_option("campaign", args->campaign, "campaign name (default: every campaign)");
  cmd->add_option("--failures", args->failures,
                  "how many of the latest failures to list (each message on one line, cut at "
                  "160 characters; `jslds show CAMPAIGN/NUMBER` prints it whole)")
      ->check(whole_number_at_least(0))
      ->default_val(5);
  cmd->callback([args] {
    store::ExperimentStore store = open_reader(args->db);
    std::vector<int64_t> ids;
    if (!args->campaign.empty()) {
      auto c = store.find_campaign(args->campaign);
      if (!c) {
        std::string known;
        for (const auto& k : store.list_campaigns()) known += (known.empty() ? "" : ", ") + k.name;
        throw UsageError(fmt::format("no campaign '{}' in {}; campaigns: {}", args->campaign,
                                     args->db, known.empty() ? "(none yet)" : known));
      }
      ids.push_back(c->id);
    } else {
      for (const auto& c : store.list_campaigns()) ids.push_back(c.id);
      if (ids.empty()) std::cout << fmt::format("no campaigns in {} yet\n", args->db);
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i) std::cout << "\n";
      // One read transaction per campaign: a consistent snapshot while the sweep writes.
      store.database().exec("BEGIN");
      store::CampaignStatus s;
      try {
        s = store::campaign_status(store, ids[i], args->failures);
      } catch (...) {
        store.database().exec("ROLLBACK");
        throw;
      }
      store.database().exec("COMMIT");
      print_status(s, CampaignLaunchLock::held_by_a_launch(args->db, s.campaign.name));
    }
  });
}

}  // namespace jslds::cli
