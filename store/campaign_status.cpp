#include "store/campaign_status.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace jslds::store {

CampaignStatus campaign_status(ExperimentStore& store, int64_t campaign_id, int max_failures) {
  Database& db = store.database();
  CampaignStatus s;
  s.campaign = store.get_campaign(campaign_id);
  for (RunStatus st : all_run_statuses()) s.counts[st] = 0;
  {
    Statement st(db, "SELECT status, count(*) FROM runs WHERE campaign_id = ? GROUP BY status");
    st.bind(1, campaign_id);
    while (st.step()) {
      int64_t n = st.column_int64(1);
      s.counts[parse_run_status(st.column_text(0))] = n;
      s.total += n;
    }
  }
  s.finished = s.counts[RunStatus::kDone] + s.counts[RunStatus::kFailed] +
               s.counts[RunStatus::kDiverged] + s.counts[RunStatus::kPruned];
  {
    // Rates from the run times; julianday() differences are in days.
    Statement st(db,
                 "SELECT "
                 " sum(finished_at IS NOT NULL AND julianday(finished_at) >= julianday('now') - "
                 "     1.0 / 24),"
                 " (julianday(CASE WHEN sum(status = 'running') > 0 THEN strftime('%Y-%m-%dT%H:"
                 "%M:%fZ', 'now') ELSE max(finished_at) END) - julianday(min(started_at))) * 24"
                 " FROM runs WHERE campaign_id = ?");
    st.bind(1, campaign_id);
    if (st.step()) {
      double hours = st.is_null(1) ? 0.0 : st.column_double(1);
      // Runs finished in the last hour, per hour of that window: a campaign younger than an
      // hour has only been running for `hours` (at least a minute, so that the first
      // seconds do not give absurd rates).
      double window_h = std::clamp(hours, 1.0 / 60.0, 1.0);
      s.recent_window_h = window_h;
      s.runs_per_hour_recent =
          st.is_null(0) ? 0.0 : static_cast<double>(st.column_int64(0)) / window_h;
      if (hours > 0 && s.finished > 0) s.runs_per_hour_overall = s.finished / hours;
    }
  }
  int64_t remaining = s.counts[RunStatus::kPending] + s.counts[RunStatus::kRunning] +
                      s.counts[RunStatus::kInterrupted];
  double rate = s.runs_per_hour_recent > 0 ? s.runs_per_hour_recent : s.runs_per_hour_overall;
  if (remaining > 0 && rate > 0) s.eta_s = remaining / rate * 3600.0;

  for (RunRow& run : store.list_runs(campaign_id, RunStatus::kRunning)) {
    CampaignStatus::Running r;
    try {
      auto config = nlohmann::json::parse(run.config_json);
      if (config.contains("train") && config["train"].contains("steps")) {
        r.total_steps = config["train"]["steps"].get<int64_t>();
      }
    } catch (const nlohmann::json::exception&) {
      // A config without train.steps only loses the "of N" in the report.
    }
    if (run.started_at) {
      Statement st(db, "SELECT (julianday('now') - julianday(?)) * 86400.0");
      st.bind(1, *run.started_at);
      if (st.step()) r.elapsed_s = st.column_double(0);
    }
    r.run = std::move(run);
    s.running.push_back(std::move(r));
  }
  std::sort(s.running.begin(), s.running.end(), [](const auto& a, const auto& b) {
    return a.run.worker.value_or("") < b.run.worker.value_or("");
  });
  {
    Statement st(db,
                 "SELECT id FROM runs WHERE campaign_id = ? AND status IN ('failed', 'diverged') "
                 "ORDER BY finished_at DESC, number DESC LIMIT ?");
    st.bind(1, campaign_id).bind(2, static_cast<int64_t>(max_failures));
    std::vector<int64_t> ids;
    while (st.step()) ids.push_back(st.column_int64(0));
    for (int64_t id : ids) s.failures.push_back(store.get_run(id));
  }
  {
    Statement st(db, "SELECT max(at) FROM events WHERE campaign_id = ?");
    st.bind(1, campaign_id);
    if (st.step()) s.last_event_at = st.column_optional_text(0);
  }
  return s;
}

}  // namespace jslds::store
