// Tables of runs for `jslds query`, `jslds best` and `jslds export`: one row per run with
// chosen columns (run fields, swept params, summaries), filtered by the --where language
// (store/query.h), sorted, limited; the best run by an objective and the Pareto front of
// several.
//
// Rows are found in one SQL statement (filter + sort + limit over the runs table), then the
// param and summary columns are filled for the selected runs only, by primary-key probes for
// few rows or one index scan per column for many, so that a campaign of 100,000 runs answers
// in well under a second (bench/query).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/query.h"
#include "store/sqlite.h"

namespace jslds::store {

/// A rectangular result: column headers and rows of values (NULL for missing).
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<SqlValue>> rows;
};

/// What `jslds query` asks for.
struct RunQuery {
  /// Campaign names to include; empty = every campaign in the database. Unknown names are a
  /// QueryError listing the campaigns.
  std::vector<std::string> campaigns;
  /// --where text; empty = every run.
  std::string where;
  /// --sort field (store/query.h names) and direction; empty = campaign, then number.
  std::string sort;
  bool descending = false;
  /// At most this many rows; 0 = all.
  int64_t limit = 0;
  /// --columns: field names (query.h), the run columns below, or the wildcards `params.*`
  /// and `summary.*`. Empty = default_columns().
  std::vector<std::string> columns;
};

/// Run columns a table can show besides query.h fields: run_id, epoch, worker, device,
/// run_dir, error, started_at, finished_at, duration_s (seconds; a running run counts until
/// now), config_sha256.
const std::vector<std::string>& run_column_names();

/// The default columns of `jslds query`: [campaign,] number, status, every swept param, the
/// objective (as summary.<metric> when the campaigns share one), then every summary named by
/// `where` or `sort` that is not already shown.
std::vector<std::string> default_columns(Database& db, const std::vector<int64_t>& campaign_ids,
                                         const std::string& where, const std::string& sort);

/// Campaign names → ids. Throws QueryError listing the known campaigns for an unknown name.
std::vector<int64_t> resolve_campaigns(Database& db, const std::vector<std::string>& names);

/// Runs the query. Throws QueryError for syntax errors and unknown names (with the column of
/// the offending text), StoreError for database failures.
Table query_runs(Database& db, const RunQuery& query);

/// The wide table of `jslds export`: run fields, one column per swept param (params.KEY) and
/// per summary (summary.NAME), every run of the campaign ordered by number.
Table export_campaign(Database& db, const std::string& campaign);

/// One objective of `jslds best`: summary name and direction.
struct Objective {
  std::string metric;
  bool maximize = true;
};

/// Parses "val_bps:max,rel_state_error:min" (also maximize/minimize). Throws QueryError
/// (source "--pareto") on an empty item, a missing goal or an unknown goal.
std::vector<Objective> parse_objectives(std::string_view text);

/// Indices of the non-dominated points (the Pareto front) among `points` (each of
/// objectives.size() values), in input order. Point a dominates b when a is at least as good
/// in every objective and strictly better in one; equal points do not dominate each other, so
/// ties are all kept. Points with a NaN value are never on the front. O(n log n + n·f·k) for
/// n points, front size f, k objectives.
std::vector<std::size_t> pareto_front(const std::vector<std::vector<double>>& points,
                                      const std::vector<Objective>& objectives);

/// Result of best_runs.
struct BestRuns {
  Table table;              // the best run (one objective) or the front, best first by the
                            // first objective
  int64_t considered = 0;   // `done` runs with every objective present
  int64_t missing = 0;      // `done` runs lacking at least one objective (skipped)
};

/// `jslds best`: among the campaign's `done` runs, the run with the best value of the single
/// objective (ties: every run sharing the best value), or the Pareto front of several. The
/// table shows number, status, the swept params and one column per objective
/// (summary.NAME). Throws QueryError for an unknown campaign or an objective no run has.
BestRuns best_runs(Database& db, const std::string& campaign,
                   const std::vector<Objective>& objectives);

}  // namespace jslds::store
