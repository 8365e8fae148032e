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
    // Rates from the campaign's creation (its first launch), the runs' finish times and now;
    // julianday() values are in days. The recent window is the hour up to now while runs are
    // running, else up to the last finish, and never reaches back before the creation.
    Statement times(db,
                    "SELECT julianday(c.created_at), julianday('now'),"
                    " (SELECT count(*) FROM runs WHERE campaign_id = c.id AND status = 'running'),"
                    " (SELECT julianday(max(finished_at)) FROM runs WHERE campaign_id = c.id)"
                    " FROM campaigns c WHERE c.id = ?");
    times.bind(1, campaign_id);
    if (times.step() && !times.is_null(0)) {
      const double created = times.column_double(0), now = times.column_double(1);
      const bool running = times.column_int64(2) > 0;
      const double end = running || times.is_null(3) ? now : times.column_double(3);
      const double start = std::max(end - 1.0 / 24.0, created);
      s.recent_window_ends_now = running || times.is_null(3);
      s.recent_window_h = std::max(0.0, (end - start) * 24.0);
      Statement count(db,
                      "SELECT count(*) FROM runs WHERE campaign_id = ? AND finished_at IS NOT NULL"
                      " AND julianday(finished_at) >= ? AND julianday(finished_at) <= ?");
      count.bind(1, campaign_id).bind(2, start).bind(3, end + 1e-9);
      if (count.step()) s.recent_finished = count.column_int64(0);
      // Under a minute is too short for a rate: 1 run in the first 5 s is not 720 runs/h.
      constexpr double kMinimumWindowH = 1.0 / 60.0;
      if (s.recent_window_h >= kMinimumWindowH)
        s.runs_per_hour_recent = static_cast<double>(s.recent_finished) / s.recent_window_h;
      const double span_h = (end - created) * 24.0;
      if (span_h >= kMinimumWindowH && s.finished > 0) s.runs_per_hour_overall = s.finished / span_h;
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
