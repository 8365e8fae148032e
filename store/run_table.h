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

/// A --sort argument split into its field and direction.
struct SortKey {
  std::string field;
  bool descending = false;
};

/// Parses "FIELD", "FIELD asc" or "FIELD desc" (the direction in any case: DESC works too),
/// as one argument or as the two words joined by a space. The field is checked later, by
/// query_runs. Throws QueryError (source "--sort") for an empty text, a direction other than
/// asc/desc, or more than two words.
SortKey parse_sort(std::string_view text);

/// Run columns a table can show besides query.h fields: run_id, epoch, worker, device,
/// run_dir, error, started_at, finished_at, duration_s (wall seconds of the last attempt only,
/// from its start to its finish; a running run counts until now; NULL before a finish), config_sha256.
const std::vector<std::string>& run_column_names();

/// The default columns of `jslds query`: [campaign,] number, status, every swept param, the
/// objective (as summary.<metric> when the campaigns share one), then every summary named by
/// `where` or `sort` that is not already shown.
std::vector<std::string> default_columns(Database& db, const std::vector<int64_t>& campaign_ids,
                                         const std::string& where, const std::string& sort);

/// Campaign names → ids. Throws QueryError listing the known campaigns for an unknown name;
/// `source` names where the name was given ("--campaign", or "CAMPAIGN" for a positional).
std::vector<int64_t> resolve_campaigns(Database& db, const std::vector<std::string>& names,
                                       std::string_view source = "--campaign");

/// Runs the query. Throws QueryError for syntax errors and unknown names (with the column of
/// the offending text), StoreError for database failures.
Table query_runs(Database& db, const RunQuery& query);

/// The wide table of `jslds export`: run fields (campaign, number, repeat, run_id, status,
/// attempts, steps_done, duration_s, worker, device, started_at, finished_at, run_dir, error,
/// config_sha256), the objective value, one column per swept param (params.KEY) and per
/// summary (summary.NAME, natural order), every run of the campaign ordered by number.
/// An unknown campaign is a QueryError with source "CAMPAIGN".
Table export_campaign(Database& db, const std::string& campaign);

/// One objective of `jslds best`: summary name and direction.
struct Objective {
  /// Summary name; a leading "summary." (as in --where) is accepted and ignored.
  std::string metric;
  bool maximize = true;
  /// Where the metric was written, for error messages: the option, its whole text and the
  /// 1-based column of the metric in it (empty text: the metric alone).
  std::string source = "--metric";
  std::string source_text{};
  int column = 1;
};

/// "summary.val_bps" → "val_bps" (the prefix in any case, as --where writes it); other text
/// is returned unchanged.
std::string bare_metric(std::string_view metric);

/// Parses "val_bps:max,rel_state_error:min" (also maximize/minimize, and summary.NAME).
/// Throws QueryError (source "--pareto") on an empty text or item, a missing or unknown goal,
/// or a metric listed twice.
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
  /// considered + missing = the campaign's done runs; 0 means there is nothing to rank yet
  /// (then the objective names are not checked and the table is empty).
};

/// `jslds best`: among the campaign's `done` runs, the run with the best value of the single
/// objective (ties: every run sharing the best value), or the Pareto front of several. The
/// table shows number, status, the swept params and one column per objective
/// (summary.NAME). Throws QueryError for an unknown campaign (source "CAMPAIGN") or, when the
/// campaign has done runs, an objective no run has (at the objective's source and column).
BestRuns best_runs(Database& db, const std::string& campaign,
                   const std::vector<Objective>& objectives);

}  // namespace jslds::store
