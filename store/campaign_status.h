// What `jslds status` reports about a campaign (DESIGN §6, issue 6 item 8): runs per state,
// throughput, an ETA, which workers run what, and the latest failures. Reads only, so it works
// on a read-only connection while the sweep writes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/experiment_store.h"

namespace jslds::store {

struct CampaignStatus {
  CampaignRow campaign;
  /// Runs per state; every state of all_run_statuses() is present (0 when none).
  std::map<RunStatus, int64_t> counts;
  int64_t total = 0;
  /// Runs that reached done, failed, diverged or pruned.
  int64_t finished = 0;
  /// Finished runs per hour over the recent window: the hour up to now while runs are
  /// running (up to the last finish otherwise), cut at the campaign's creation; and over the
  /// whole campaign (creation to now, or to the last finish). 0 when nothing finished or the
  /// window is shorter than a minute (too short for a rate).
  double runs_per_hour_recent = 0;
  double runs_per_hour_overall = 0;
  double recent_window_h = 0;          // the recent window's length (≤ 1 h)
  bool recent_window_ends_now = true;  // false: it ends at the last finish (nothing running)
  int64_t recent_finished = 0;         // runs finished in the recent window
  /// Seconds until pending + running + interrupted runs are finished at the recent rate (the
  /// overall rate when nothing finished in the last hour); empty without a rate or with
  /// nothing left.
  std::optional<double> eta_s;
  /// Runs in state running, by worker, with their progress.
  struct Running {
    RunRow run;
    std::optional<int64_t> total_steps;  // train.steps of its config, when readable
    double elapsed_s = 0;                // since started_at
  };
  std::vector<Running> running;
  /// The newest failed or diverged runs (at most `max_failures`), newest first.
  std::vector<RunRow> failures;
  /// The time of the newest event (a sign of life of the coordinator).
  std::optional<std::string> last_event_at;
};

/// Gathers the status of one campaign. `max_failures` bounds `failures`.
/// Throws StoreError for an unknown id.
CampaignStatus campaign_status(ExperimentStore& store, int64_t campaign_id,
                               int max_failures = 5);

}  // namespace jslds::store
