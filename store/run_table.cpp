#include "store/run_table.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "store/experiment_store.h"

namespace jslds::store {
namespace {

// `v` without the spaces and tabs around it: the layout of comma-separated lists
// (--columns, --pareto).
std::string_view trim_blanks(std::string_view v) {
  const std::size_t first = v.find_first_not_of(" \t");
  if (first == std::string_view::npos) return std::string_view();
  return v.substr(first, v.find_last_not_of(" \t") - first + 1);
}

// Below this many rows, param/summary cells are filled by primary-key probes; above it by one
// index scan per column (cheaper than 100,000 probes).
constexpr std::size_t kProbeLimit = 2000;

constexpr std::string_view kDurationSql =
    "CASE WHEN r.started_at IS NULL THEN NULL "
    "WHEN r.status = 'running' THEN (julianday('now') - julianday(r.started_at)) * 86400.0 "
    "WHEN r.finished_at IS NULL THEN NULL "
    "ELSE (julianday(r.finished_at) - julianday(r.started_at)) * 86400.0 END";

struct RunColumn {
  std::string_view name;
  std::string_view sql;
};

const std::vector<RunColumn>& run_columns() {
  static const std::vector<RunColumn> columns = {
      {"run_id", "r.id"},
      {"epoch", "r.epoch"},
      {"worker", "r.worker"},
      {"device", "r.device"},
      {"run_dir", "r.run_dir"},
      {"error", "r.error"},
      {"started_at", "r.started_at"},
      {"finished_at", "r.finished_at"},
      {"duration_s", kDurationSql},
      {"config_sha256", "r.config_sha256"},
  };
  return columns;
}

std::optional<std::string_view> run_column_sql(std::string_view name) {
  for (const auto& c : run_columns()) {
    if (c.name == name) return c.sql;
  }
  return std::nullopt;
}

/// How one output column gets its values.
struct ColumnPlan {
  enum class Source { kDirect, kParam, kSummary, kObjective };
  std::string header;
  Source source = Source::kDirect;
  std::string sql;   // kDirect: SQL expression over r and c
  std::string name;  // kParam / kSummary: the KEY / NAME
};

struct SelectedRow {
  int64_t run_id = 0;
  std::string objective_metric;
  std::vector<SqlValue> values;
};

std::string placeholders(std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += i ? ", ?" : "?";
  return out;
}

std::vector<ColumnPlan> plan_columns(const std::vector<std::string>& requested,
                                     const KnownNames& known) {
  std::vector<ColumnPlan> plans;
  std::set<std::string> seen;
  auto add = [&](ColumnPlan plan) {
    if (seen.insert(plan.header).second) plans.push_back(std::move(plan));
  };
  for (const std::string& raw : requested) {
    const std::string name(trim_blanks(raw));
    if (name == "params.*") {
      for (const auto& p : known.params) add({"params." + p, ColumnPlan::Source::kParam, "", p});
      continue;
    }
    if (name == "summary.*") {
      for (const auto& s : known.summaries) {
        add({"summary." + s, ColumnPlan::Source::kSummary, "", s});
      }
      continue;
    }
    if (auto sql = run_column_sql(name)) {
      add({name, ColumnPlan::Source::kDirect, std::string(*sql), ""});
      continue;
    }
    Field f;
    try {
      f = parse_field(name, "--columns");
    } catch (const QueryError& e) {
      std::string extras;
      for (const auto& c : run_columns()) extras += fmt::format(", {}", c.name);
      throw QueryError("--columns", name, e.column(),
                       fmt::format("{} (also accepted: params.*, summary.*{})", e.detail(),
                                   extras));
    }
    check_field(f, known, "--columns", name);
    switch (f.kind) {
      case Field::Kind::kParam:
        add({f.text(), ColumnPlan::Source::kParam, "", f.name});
        break;
      case Field::Kind::kSummary:
        add({f.text(), ColumnPlan::Source::kSummary, "", f.name});
        break;
      case Field::Kind::kObjective:
        add({"objective", ColumnPlan::Source::kObjective, "", ""});
        break;
      default:
        add({f.text(), ColumnPlan::Source::kDirect, field_sql(f).sql, ""});
        break;
    }
  }
  return plans;
}

/// Fills the param/summary/objective cells of `rows` (already holding their direct columns).
void fill_lookups(Database& db, const std::vector<ColumnPlan>& plans,
                  std::vector<SelectedRow>& rows) {
  if (rows.empty()) return;
  if (rows.size() <= kProbeLimit) {
    Statement param(db,
                    "SELECT COALESCE(value_real, value_text) FROM params WHERE run_id = ? AND "
                    "name = ?");
    Statement summary(db, "SELECT value FROM summaries WHERE run_id = ? AND name = ?");
    for (std::size_t c = 0; c < plans.size(); ++c) {
      const ColumnPlan& plan = plans[c];
      if (plan.source == ColumnPlan::Source::kDirect) continue;
      Statement& st = plan.source == ColumnPlan::Source::kParam ? param : summary;
      for (SelectedRow& row : rows) {
        st.reset();
        st.bind(1, row.run_id)
            .bind(2, plan.source == ColumnPlan::Source::kObjective ? row.objective_metric
                                                                   : plan.name);
        row.values[c] = st.step() ? st.column_value(0) : SqlValue(nullptr);
      }
    }
    return;
  }
  std::unordered_map<int64_t, std::size_t> index;
  index.reserve(rows.size() * 2);
  for (std::size_t i = 0; i < rows.size(); ++i) index.emplace(rows[i].run_id, i);
  Statement param(db,
                  "SELECT run_id, COALESCE(value_real, value_text) FROM params WHERE name = ?");
  Statement summary(db, "SELECT run_id, value FROM summaries WHERE name = ?");
  for (std::size_t c = 0; c < plans.size(); ++c) {
    const ColumnPlan& plan = plans[c];
    if (plan.source == ColumnPlan::Source::kDirect) continue;
    std::set<std::string> names;
    if (plan.source == ColumnPlan::Source::kObjective) {
      for (const auto& row : rows) names.insert(row.objective_metric);
    } else {
      names.insert(plan.name);
    }
    Statement& st = plan.source == ColumnPlan::Source::kParam ? param : summary;
    for (const auto& name : names) {
      st.reset();
      st.bind(1, name);
      while (st.step()) {
        auto it = index.find(st.column_int64(0));
        if (it == index.end()) continue;
        SelectedRow& row = rows[it->second];
        if (plan.source == ColumnPlan::Source::kObjective && row.objective_metric != name) {
          continue;
        }
        row.values[c] = st.column_value(1);
      }
    }
  }
}

/// Selects runs (filter, order, limit) and fills the planned columns.
Table select_table(Database& db, const std::vector<ColumnPlan>& plans,
                   const std::vector<int64_t>& campaign_ids, const SqlFragment& filter,
                   const SqlFragment& order, int64_t limit) {
  std::string sql = "SELECT r.id, c.objective_metric";
  for (const auto& plan : plans) {
    sql += ", ";
    sql += plan.source == ColumnPlan::Source::kDirect ? plan.sql : std::string("NULL");
  }
  sql += " FROM runs r JOIN campaigns c ON c.id = r.campaign_id WHERE 1";
  std::vector<SqlValue> params;
  if (!campaign_ids.empty()) {
    sql += fmt::format(" AND r.campaign_id IN ({})", placeholders(campaign_ids.size()));
    for (int64_t id : campaign_ids) params.emplace_back(id);
  }
  if (!filter.sql.empty()) {
    sql += " AND " + filter.sql;
    params.insert(params.end(), filter.params.begin(), filter.params.end());
  }
  sql += " ORDER BY ";
  if (!order.sql.empty()) {
    sql += order.sql + ", ";
    params.insert(params.end(), order.params.begin(), order.params.end());
  }
  sql += "c.name, r.number";
  if (limit > 0) {
    sql += " LIMIT ?";
    params.emplace_back(limit);
  }
  Statement st(db, sql);
  st.bind_all(params);
  std::vector<SelectedRow> rows;
  while (st.step()) {
    SelectedRow row;
    row.run_id = st.column_int64(0);
    row.objective_metric = st.column_text(1);
    row.values.reserve(plans.size());
    for (std::size_t c = 0; c < plans.size(); ++c) {
      row.values.push_back(st.column_value(static_cast<int>(c) + 2));
    }
    rows.push_back(std::move(row));
  }
  fill_lookups(db, plans, rows);
  Table table;
  for (const auto& plan : plans) table.columns.push_back(plan.header);
  table.rows.reserve(rows.size());
  for (auto& row : rows) table.rows.push_back(std::move(row.values));
  return table;
}

/// The objective metrics of the campaigns (one entry when they share it).
std::set<std::string> objective_metrics(Database& db, const std::vector<int64_t>& campaign_ids) {
  std::string sql = "SELECT DISTINCT objective_metric FROM campaigns";
  if (!campaign_ids.empty()) sql += fmt::format(" WHERE id IN ({})", placeholders(campaign_ids.size()));
  Statement st(db, sql);
  for (std::size_t i = 0; i < campaign_ids.size(); ++i) {
    st.bind(static_cast<int>(i) + 1, campaign_ids[i]);
  }
  std::set<std::string> out;
  while (st.step()) out.insert(st.column_text(0));
  return out;
}

int64_t campaign_count(Database& db) {
  Statement st(db, "SELECT count(*) FROM campaigns");
  st.step();
  return st.column_int64(0);
}

}  // namespace

const std::vector<std::string>& run_column_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& c : run_columns()) out.emplace_back(c.name);
    return out;
  }();
  return names;
}

std::vector<int64_t> resolve_campaigns(Database& db, const std::vector<std::string>& names,
                                       std::string_view source) {
  std::vector<int64_t> ids;
  for (const auto& name : names) {
    Statement st(db, "SELECT id FROM campaigns WHERE name = ?");
    st.bind(1, name);
    if (st.step()) {
      ids.push_back(st.column_int64(0));
      continue;
    }
    std::string known;
    Statement all(db, "SELECT name FROM campaigns ORDER BY name");
    while (all.step()) known += (known.empty() ? "" : ", ") + all.column_text(0);
    throw QueryError(source, name, 1,
                     fmt::format("no campaign '{}' in the database; campaigns: {}", name,
                                 known.empty() ? "(none yet)" : known));
  }
  return ids;
}

std::vector<std::string> default_columns(Database& db, const std::vector<int64_t>& campaign_ids,
                                         const std::string& where, const std::string& sort) {
  std::vector<std::string> columns;
  bool several = campaign_ids.size() > 1 || (campaign_ids.empty() && campaign_count(db) > 1);
  if (several) columns.push_back("campaign");
  columns.push_back("number");
  columns.push_back("status");
  KnownNames known = known_names(db, campaign_ids);
  for (const auto& p : known.params) columns.push_back("params." + p);
  std::set<std::string> objectives = objective_metrics(db, campaign_ids);
  std::set<std::string> shown;
  // One objective metric: its summary column (empty until a run finishes; known_names counts
  // a campaign's objective metric as known from the start). Several: the objective column.
  if (objectives.size() == 1 && known.summaries.count(*objectives.begin())) {
    columns.push_back("summary." + *objectives.begin());
    shown.insert(*objectives.begin());
  } else if (!objectives.empty()) {
    columns.push_back("objective");
  }
  // Summaries the user filtered or sorted by are worth seeing.
  std::vector<Field> mentioned;
  auto collect = [&](const WhereExpr& e, auto&& self) -> void {
    for (const auto* side : {&e.lhs, &e.rhs}) {
      if (e.kind != WhereExpr::Kind::kCompare) break;
      if (const Field* f = std::get_if<Field>(side)) mentioned.push_back(*f);
    }
    for (const auto& child : e.children) self(child, self);
  };
  if (!where.empty()) collect(parse_where(where), collect);
  if (!sort.empty() && !run_column_sql(sort)) mentioned.push_back(parse_field(sort));
  for (const Field& f : mentioned) {
    if (f.kind == Field::Kind::kSummary && shown.insert(f.name).second) {
      columns.push_back("summary." + f.name);
    }
  }
  return columns;
}

Table query_runs(Database& db, const RunQuery& query) {
  std::vector<int64_t> campaign_ids = resolve_campaigns(db, query.campaigns);
  KnownNames known = known_names(db, campaign_ids);
  SqlFragment filter;
  if (!query.where.empty()) {
    filter = compile_where(parse_where(query.where), known, query.where);
  }
  SqlFragment order;
  if (!query.sort.empty()) {
    if (auto sql = run_column_sql(query.sort)) {
      order.sql = std::string(*sql);
    } else {
      Field f = parse_field(query.sort, "--sort");
      check_field(f, known, "--sort", query.sort);
      order = field_sql(f);
    }
    order.sql += query.descending ? " DESC NULLS LAST" : " ASC NULLS LAST";
  }
  std::vector<std::string> columns =
      query.columns.empty() ? default_columns(db, campaign_ids, query.where, query.sort)
                            : query.columns;
  return select_table(db, plan_columns(columns, known), campaign_ids, filter, order,
                      query.limit);
}

Table export_campaign(Database& db, const std::string& campaign) {
  std::vector<int64_t> ids = resolve_campaigns(db, {campaign}, "CAMPAIGN");
  KnownNames known = known_names(db, ids);
  std::vector<std::string> columns = {
      "campaign", "number",      "repeat",  "run_id", "status", "attempts",      "steps_done",
      "duration_s", "worker",    "device",  "started_at", "finished_at", "run_dir", "error",
      "config_sha256", "objective", "params.*", "summary.*"};
  return select_table(db, plan_columns(columns, known), ids, {}, {}, 0);
}

SortKey parse_sort(std::string_view text) {
  std::vector<std::pair<std::string, int>> words;  // word, 1-based column
  for (std::size_t i = 0; i < text.size();) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    words.emplace_back(std::string(text.substr(i, end - i)), static_cast<int>(i) + 1);
    i = end;
  }
  if (words.empty()) {
    throw QueryError("--sort", text, 1, "expected a field, optionally followed by asc or desc");
  }
  if (words.size() > 2) {
    throw QueryError("--sort", text, words[2].second,
                     fmt::format("unexpected '{}': --sort takes one field and an optional asc "
                                 "or desc",
                                 words[2].first));
  }
  SortKey key{words[0].first, false};
  if (words.size() == 2) {
    std::string direction = words[1].first;
    for (char& ch : direction) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (direction != "asc" && direction != "desc") {
      throw QueryError("--sort", text, words[1].second,
                       fmt::format("the direction '{}' is not asc or desc", words[1].first));
    }
    key.descending = direction == "desc";
  }
  return key;
}

std::string bare_metric(std::string_view metric) {
  constexpr std::string_view kPrefix = "summary.";
  if (metric.size() > kPrefix.size()) {
    bool prefixed = true;
    for (std::size_t i = 0; i < kPrefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(metric[i])) != kPrefix[i]) prefixed = false;
    }
    if (prefixed) return std::string(metric.substr(kPrefix.size()));
  }
  return std::string(metric);
}

std::vector<Objective> parse_objectives(std::string_view text) {
  if (text.find_first_not_of(" \t") == std::string_view::npos) {
    throw QueryError("--pareto", text, 1,
                     "the list is empty: expected METRIC:max|min items separated by commas, "
                     "e.g. val_bps:max,rel_state_error:min");
  }
  std::vector<Objective> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    // Spaces around an item or its parts are the list's layout ("val_bps:max, x:min").
    const std::size_t lead = item.find_first_not_of(" \t");
    item = trim_blanks(item);
    int column = static_cast<int>(start + (lead == std::string_view::npos ? 0 : lead)) + 1;
    std::size_t colon = item.find(':');
    if (item.empty() || colon == std::string_view::npos || colon == 0) {
      throw QueryError("--pareto", text, column,
                       fmt::format("expected METRIC:max or METRIC:min, found '{}'", item));
    }
    std::string goal(trim_blanks(item.substr(colon + 1)));
    std::transform(goal.begin(), goal.end(), goal.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    Objective o;
    o.metric = bare_metric(trim_blanks(item.substr(0, colon)));
    o.source = "--pareto";
    o.source_text = std::string(text);
    o.column = column;
    for (const auto& earlier : out) {
      if (earlier.metric == o.metric) {
        throw QueryError("--pareto", text, column,
                         fmt::format("{} is listed twice (at columns {} and {}); list each "
                                     "metric once",
                                     o.metric, earlier.column, column));
      }
    }
    if (goal == "max" || goal == "maximize") {
      o.maximize = true;
    } else if (goal == "min" || goal == "minimize") {
      o.maximize = false;
    } else {
      throw QueryError("--pareto", text, column + static_cast<int>(colon) + 1,
                       fmt::format("goal '{}' of {} is not max or min", goal, o.metric));
    }
    out.push_back(std::move(o));
    start = end + 1;
  }
  return out;
}

std::vector<std::size_t> pareto_front(const std::vector<std::vector<double>>& points,
                                      const std::vector<Objective>& objectives) {
  const std::size_t k = objectives.size();
  // Oriented values: larger is better in every coordinate.
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (points[i].size() != k) {
      throw StoreError(fmt::format("pareto_front: point {} has {} values for {} objectives", i,
                                   points[i].size(), k));
    }
    bool finite = std::none_of(points[i].begin(), points[i].end(),
                               [](double v) { return std::isnan(v); });
    if (finite) order.push_back(i);
  }
  auto oriented = [&](std::size_t i, std::size_t j) {
    return objectives[j].maximize ? points[i][j] : -points[i][j];
  };
  // Lexicographically best first: a dominator always precedes what it dominates, so one pass
  // comparing against the front so far suffices.
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    for (std::size_t j = 0; j < k; ++j) {
      double va = oriented(a, j), vb = oriented(b, j);
      if (va != vb) return va > vb;
    }
    return a < b;
  });
  std::vector<std::size_t> front;
  for (std::size_t candidate : order) {
    bool dominated = std::any_of(front.begin(), front.end(), [&](std::size_t f) {
      bool strictly_better = false;
      for (std::size_t j = 0; j < k; ++j) {
        double vf = oriented(f, j), vc = oriented(candidate, j);
        if (vf < vc) return false;
        if (vf > vc) strictly_better = true;
      }
      return strictly_better;
    });
    if (!dominated) front.push_back(candidate);
  }
  std::sort(front.begin(), front.end());
  return front;
}

BestRuns best_runs(Database& db, const std::string& campaign,
                   const std::vector<Objective>& given) {
  if (given.empty()) throw StoreError("best_runs: no objective given");
  std::vector<Objective> objectives = given;
  for (auto& o : objectives) o.metric = bare_metric(o.metric);
  std::vector<int64_t> ids = resolve_campaigns(db, {campaign}, "CAMPAIGN");
  KnownNames known = known_names(db, ids);
  // Values of every objective for the campaign's done runs: one index scan per metric.
  std::vector<int64_t> run_ids;
  std::unordered_map<int64_t, std::size_t> index;
  {
    Statement st(db, "SELECT id FROM runs WHERE campaign_id = ? AND status = 'done'");
    st.bind(1, ids[0]);
    while (st.step()) {
      index.emplace(st.column_int64(0), run_ids.size());
      run_ids.push_back(st.column_int64(0));
    }
  }
  BestRuns result;
  if (run_ids.empty()) {
    // Nothing done yet: nothing to rank, and no summary name to check the objectives against.
    result.table.columns = {"number", "status"};
    for (const auto& p : known.params) result.table.columns.push_back("params." + p);
    for (const auto& o : objectives) result.table.columns.push_back("summary." + o.metric);
    return result;
  }
  for (const auto& o : objectives) {
    Field f{Field::Kind::kSummary, o.metric, o.column};
    check_field(f, known, o.source, o.source_text.empty() ? o.metric : o.source_text);
  }
  const double nan = std::nan("");
  std::vector<std::vector<double>> points(run_ids.size(),
                                          std::vector<double>(objectives.size(), nan));
  Statement values(db, "SELECT run_id, value FROM summaries WHERE name = ? AND value IS NOT NULL");
  for (std::size_t j = 0; j < objectives.size(); ++j) {
    values.reset();
    values.bind(1, objectives[j].metric);
    while (values.step()) {
      auto it = index.find(values.column_int64(0));
      if (it != index.end()) points[it->second][j] = values.column_double(1);
    }
  }
  std::vector<std::size_t> chosen;
  for (const auto& p : points) {
    bool complete = std::none_of(p.begin(), p.end(), [](double v) { return std::isnan(v); });
    (complete ? result.considered : result.missing) += 1;
  }
  if (objectives.size() == 1) {
    // The single best value; every run sharing it is reported.
    std::optional<double> best;
    for (std::size_t i = 0; i < points.size(); ++i) {
      double v = points[i][0];
      if (std::isnan(v)) continue;
      double oriented = objectives[0].maximize ? v : -v;
      if (!best || oriented > *best) {
        best = oriented;
        chosen = {i};
      } else if (oriented == *best) {
        chosen.push_back(i);
      }
    }
  } else {
    chosen = pareto_front(points, objectives);
  }
  // Best first by the first objective, then by run number.
  std::sort(chosen.begin(), chosen.end(), [&](std::size_t a, std::size_t b) {
    double va = points[a][0], vb = points[b][0];
    if (va != vb) return objectives[0].maximize ? va > vb : va < vb;
    return run_ids[a] < run_ids[b];
  });

  std::vector<std::string> columns = {"number", "status", "params.*"};
  for (const auto& o : objectives) columns.push_back("summary." + o.metric);
  std::vector<ColumnPlan> plans = plan_columns(columns, known);
  if (chosen.empty()) {
    for (const auto& plan : plans) result.table.columns.push_back(plan.header);
    return result;
  }
  // Select exactly the chosen runs, in the chosen order.
  SqlFragment filter;
  filter.sql = fmt::format("r.id IN ({})", placeholders(chosen.size()));
  SqlFragment order;
  order.sql = "CASE r.id";
  for (std::size_t rank = 0; rank < chosen.size(); ++rank) {
    filter.params.emplace_back(run_ids[chosen[rank]]);
    order.sql += fmt::format(" WHEN ? THEN {}", rank);
    order.params.emplace_back(run_ids[chosen[rank]]);
  }
  order.sql += " END";
  result.table = select_table(db, plans, ids, filter, order, 0);
  return result;
}

}  // namespace jslds::store
