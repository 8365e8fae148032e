// The --where language, run tables, best/Pareto and output formats (issue 7).
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "store/experiment_store.h"
#include "store/query.h"
#include "store/run_table.h"
#include "store/table_format.h"

namespace jslds::store {
namespace {

// ---- parser ----------------------------------------------------------------------------

TEST(WhereParser, NotBindsTighterThanAndTighterThanOr) {
  EXPECT_EQ(parse_where("number = 1 OR number = 2 AND NOT number = 3").to_string(),
            "((number = 1) OR ((number = 2) AND (NOT (number = 3))))");
  EXPECT_EQ(parse_where("NOT number = 1 AND number = 2").to_string(),
            "((NOT (number = 1)) AND (number = 2))");
  EXPECT_EQ(parse_where("number = 1 or number = 2 and not number = 3").to_string(),
            "((number = 1) OR ((number = 2) AND (NOT (number = 3))))");
}

TEST(WhereParser, ParenthesesOverridePrecedence) {
  EXPECT_EQ(parse_where("(number = 1 OR number = 2) AND status = 'done'").to_string(),
            "(((number = 1) OR (number = 2)) AND (status = \"done\"))");
  EXPECT_EQ(parse_where("not (summary.val_bps >= 0.1 or params.model.cell != \"gru\")")
                .to_string(),
            "(NOT ((summary.val_bps >= 0.1) OR (params.model.cell != \"gru\")))");
}

TEST(WhereParser, LiteralsAndFields) {
  WhereExpr e = parse_where("params.loss.w_fp <= -1.5e-3");
  const Field& f = std::get<Field>(e.lhs);
  EXPECT_EQ(f.kind, Field::Kind::kParam);
  EXPECT_EQ(f.name, "loss.w_fp");
  EXPECT_EQ(f.column, 1);
  EXPECT_DOUBLE_EQ(std::get<double>(std::get<Literal>(e.rhs).value), -1.5e-3);
  EXPECT_EQ(e.op, CompareOp::kLe);
  WhereExpr s = parse_where("campaign = 'it''s \"x\"'");
  EXPECT_EQ(std::get<std::string>(std::get<Literal>(s.rhs).value), "it's \"x\"");
}

int error_column(const std::string& text) {
  try {
    parse_where(text);
  } catch (const QueryError& e) {
    return e.column();
  }
  return -1;
}

TEST(WhereParser, ErrorsPointAtTheColumn) {
  EXPECT_EQ(error_column("summary.val_bps >"), 18);            // missing value at the end
  EXPECT_EQ(error_column("number = 1 AND AND number = 2"), 16);  // second AND
  EXPECT_EQ(error_column("(number = 1"), 12);                  // unclosed parenthesis
  EXPECT_EQ(error_column("number = 1 number = 2"), 12);        // missing AND/OR
  EXPECT_EQ(error_column("number 1"), 8);                      // missing operator
  EXPECT_EQ(error_column("status = 'done"), 10);               // unclosed string
  EXPECT_EQ(error_column("number ! 1"), 8);                    // '!' alone
  EXPECT_EQ(error_column("latent_dim = 1"), 1);                // not a field
  EXPECT_EQ(error_column("number = 1 # x"), 12);               // stray character
  EXPECT_EQ(error_column(""), 1);
  try {
    parse_where("summary.val_bps >");
  } catch (const QueryError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("column 18"), std::string::npos) << what;
    EXPECT_NE(what.find("end of input"), std::string::npos) << what;
    EXPECT_NE(what.find("\n  summary.val_bps >\n                   ^"), std::string::npos) << what;
  }
}

TEST(WhereParser, AnUnquotedWordAsAValueSaysToQuoteIt) {
  for (const char* text : {"status = done", "campaign = reach"}) {
    try {
      parse_where(text);
      FAIL() << text;
    } catch (const QueryError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find("text values are quoted"), std::string::npos) << what;
      EXPECT_EQ(what.find("did you mean"), std::string::npos) << what;
    }
  }
}

TEST(SortKey, FieldAndDirectionInAnyCaseAsOneOrTwoWords) {
  SortKey k = parse_sort("summary.val_bps desc");
  EXPECT_EQ(k.field, "summary.val_bps");
  EXPECT_TRUE(k.descending);
  EXPECT_TRUE(parse_sort("  summary.val_bps   DESC ").descending);
  EXPECT_FALSE(parse_sort("number Asc").descending);
  k = parse_sort("number");
  EXPECT_EQ(k.field, "number");
  EXPECT_FALSE(k.descending);
  auto column = [](const char* text) {
    try {
      parse_sort(text);
    } catch (const QueryError& e) {
      return e.column();
    }
    return -1;
  };
  EXPECT_EQ(column("number down"), 8);
  EXPECT_EQ(column("number desc x"), 13);
  EXPECT_EQ(column("  "), 1);
}

TEST(NaturalOrder, NumbersInNamesCountUp) {
  NameSet names = {"s10", "s2", "s1", "s0", "layer10.w", "layer9.w", "s01", "a", "s"};
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.end()),
            (std::vector<std::string>{"a", "layer9.w", "layer10.w", "s", "s0", "s01", "s1",
                                      "s2", "s10"}));
  NaturalLess less;
  EXPECT_FALSE(less("s1", "s1"));
  EXPECT_TRUE(less("s01", "s1") != less("s1", "s01"));  // distinct names are ordered
}

// ---- compiled SQL on a small campaign ---------------------------------------------------

class SmallCampaign : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = store_.create_or_load_campaign(
        {"demo", "spec", "sha", "grid", "val_bps", "maximize"});
    std::vector<NewRun> runs;
    for (int i = 1; i <= 6; ++i) {
      NewRun r;
      r.number = i;
      r.config_json = "{}";
      r.config_sha256 = "sha" + std::to_string(i);
      r.params = {{"model.latent_dim", 16.0 * ((i - 1) % 3 + 1)},
                  {"model.cell", std::string(i <= 3 ? "gru" : "tanh")}};
      runs.push_back(r);
    }
    auto inserted = store_.insert_runs(c.id, runs);
    for (int i = 0; i < 6; ++i) {
      int64_t id = inserted[i].id;
      store_.transition_run(id, RunStatus::kRunning);
      if (i == 5) {
        store_.transition_run(id, RunStatus::kFailed, {.error = "boom, with a comma"});
        continue;
      }
      store_.transition_run(id, RunStatus::kDone);
      std::map<std::string, double> s = {{"val_bps", 0.1 * (i + 1)},
                                         {"rel_state_error", 0.5 - 0.05 * i}};
      if (i == 4) s.erase("rel_state_error");  // a run lacking a metric
      store_.record_summaries(id, s);
    }
  }
  std::vector<int64_t> numbers(const Table& t) {
    std::vector<int64_t> out;
    auto col = std::find(t.columns.begin(), t.columns.end(), "number") - t.columns.begin();
    for (const auto& row : t.rows) out.push_back(std::get<int64_t>(row.at(col)));
    return out;
  }
  ExperimentStore store_{":memory:"};
};

TEST_F(SmallCampaign, FilterSortLimit) {
  Database& db = store_.database();
  RunQuery q;
  q.where = "params.model.latent_dim >= 32 AND summary.val_bps > 0.15";
  q.sort = "summary.val_bps";
  q.descending = true;
  EXPECT_EQ(numbers(query_runs(db, q)), (std::vector<int64_t>{5, 3, 2}));
  q.limit = 2;
  EXPECT_EQ(numbers(query_runs(db, q)), (std::vector<int64_t>{5, 3}));
  q = {};
  q.where = "params.model.cell = 'tanh' OR NOT status = 'done'";
  EXPECT_EQ(numbers(query_runs(db, q)), (std::vector<int64_t>{4, 5, 6}));
  // Missing values are never selected, not even through NOT.
  q.where = "NOT summary.rel_state_error < 1";
  EXPECT_TRUE(query_runs(db, q).rows.empty());
  q.where = "summary.rel_state_error < 1";
  EXPECT_EQ(numbers(query_runs(db, q)), (std::vector<int64_t>{1, 2, 3, 4}));
}

// Filters at the limits run; beyond them a QueryError says so (30000 parentheses crashed the
// program, 100 NOTs or 1500 terms failed inside SQLite with the generated SQL as the message).
TEST_F(SmallCampaign, DeepOrLongFiltersWorkUpToTheLimitsAndAreRefusedBeyond) {
  Database& db = store_.database();
  auto nested = [](int n, const std::string& open, const std::string& close) {
    std::string text;
    for (int i = 0; i < n; ++i) text += open;
    text += "number = 1";
    for (int i = 0; i < n; ++i) text += close;
    return text;
  };
  auto terms = [](int n) {
    std::string text = "number = 1";
    for (int i = 1; i < n; ++i) text += (i % 2 ? " OR number = " : " AND number != ") + std::to_string(i + 1);
    return text;
  };
  RunQuery q;
  q.where = nested(32, "(", ")");
  EXPECT_EQ(numbers(query_runs(db, q)), (std::vector<int64_t>{1}));
  q.where = terms(200);  // number = 1 OR number = 2 AND number != 3 OR …
  EXPECT_FALSE(query_runs(db, q).rows.empty());
  q.where = nested(16, "NOT NOT ", "");  // 32 NOTs
  EXPECT_EQ(numbers(query_runs(db, q)), (std::vector<int64_t>{1}));
  for (const auto& [text, message] :
       {std::pair{nested(30000, "(", ")"), "nests parentheses and NOT more than 32 deep"},
        std::pair{nested(33, "NOT ", ""), "nests parentheses and NOT more than 32 deep"},
        std::pair{nested(3, "(", ")") + " OR " + nested(17, "NOT (", ")"),
                  "nests parentheses and NOT more than 32 deep"},
        std::pair{terms(1500), "has more than 200 comparisons"}}) {
    q.where = text;
    try {
      query_runs(db, q);
      ADD_FAILURE() << "accepted " << text.substr(0, 60);
    } catch (const QueryError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

TEST_F(SmallCampaign, DefaultColumnsShowParamsObjectiveAndFilteredSummaries) {
  RunQuery q;
  q.where = "summary.rel_state_error < 0.45";
  Table t = query_runs(store_.database(), q);
  EXPECT_EQ(t.columns, (std::vector<std::string>{"number", "status", "params.model.cell",
                                                 "params.model.latent_dim", "summary.val_bps",
                                                 "summary.rel_state_error"}));
  ASSERT_EQ(numbers(t), (std::vector<int64_t>{3, 4}));  // 0.40 and 0.35
  EXPECT_EQ(std::get<std::string>(t.rows[0][2]), "gru");
  EXPECT_DOUBLE_EQ(std::get<double>(t.rows[0][3]), 48.0);
  EXPECT_DOUBLE_EQ(std::get<double>(t.rows[0][4]), 0.3);
  EXPECT_DOUBLE_EQ(std::get<double>(t.rows[1][5]), 0.35);
}

TEST(DefaultColumns, ACampaignWithNoFinishedRunShowsAnEmptyObjectiveMetricColumn) {
  ExperimentStore store(":memory:");
  auto c = store.create_or_load_campaign({"young", "spec", "sha", "grid", "val_bps", "maximize"});
  NewRun r;
  r.number = 1;
  r.config_json = "{}";
  r.config_sha256 = "sha1";
  r.params = {{"loss.w_approx", 10.0}};
  auto id = store.insert_runs(c.id, std::vector<NewRun>{r})[0].id;
  store.transition_run(id, RunStatus::kRunning);  // nothing recorded any summary yet
  Table t = query_runs(store.database(), RunQuery{});
  EXPECT_EQ(t.columns,
            (std::vector<std::string>{"number", "status", "params.loss.w_approx", "summary.val_bps"}));
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<std::nullptr_t>(t.rows[0][3]));
  // The objective metric is a known summary from the start: filtering and sorting on it
  // select nothing yet rather than fail; a misspelt summary still fails.
  RunQuery q;
  q.where = "summary.val_bps > 0.5";
  q.sort = "summary.val_bps";
  EXPECT_TRUE(query_runs(store.database(), q).rows.empty());
  q.where = "NOT summary.val_bps > 0.5";
  EXPECT_TRUE(query_runs(store.database(), q).rows.empty());
  q.where = "summary.val_bsp > 0.5";
  EXPECT_THROW(query_runs(store.database(), q), QueryError);
}

TEST_F(SmallCampaign, UnknownNamesListTheKnownOnes) {
  RunQuery q;
  q.where = "params.model.latnt_dim = 16";
  try {
    query_runs(store_.database(), q);
    FAIL();
  } catch (const QueryError& e) {
    std::string what = e.what();
    EXPECT_EQ(e.column(), 1);
    EXPECT_NE(what.find("did you mean 'params.model.latent_dim'"), std::string::npos) << what;
    EXPECT_NE(what.find("swept params: params.model.cell, params.model.latent_dim"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("known summaries: summary.rel_state_error, summary.val_bps"),
              std::string::npos)
        << what;
  }
  q.where = "status = 'finished'";
  EXPECT_THROW(query_runs(store_.database(), q), QueryError);
  q.where = "";
  q.sort = "summary.val_bsp";
  EXPECT_THROW(query_runs(store_.database(), q), QueryError);
  q.sort = "";
  q.campaigns = {"nope"};
  EXPECT_THROW(query_runs(store_.database(), q), QueryError);
}

int where_error_column(Database& db, const std::string& where, std::string* what = nullptr) {
  RunQuery q;
  q.where = where;
  try {
    query_runs(db, q);
  } catch (const QueryError& e) {
    if (what) *what = e.what();
    return e.column();
  }
  return -1;
}

TEST_F(SmallCampaign, ComparingWithALiteralOfTheWrongTypeIsAnError) {
  Database& db = store_.database();
  std::string what;
  EXPECT_EQ(where_error_column(db, "summary.val_bps > \"abc\"", &what), 19);
  EXPECT_NE(what.find("is a number but is compared with the string"), std::string::npos) << what;
  EXPECT_EQ(where_error_column(db, "number = '3'"), 10);
  EXPECT_EQ(where_error_column(db, "campaign = 3"), 12);
  EXPECT_EQ(where_error_column(db, "params.model.latent_dim < 'x'"), 27);
  EXPECT_EQ(where_error_column(db, "params.model.cell = 1", &what), 21);
  EXPECT_NE(what.find("only text values"), std::string::npos) << what;
  // Well-typed comparisons (also literal first) still work.
  EXPECT_EQ(where_error_column(db, "0.2 < summary.val_bps AND params.model.cell = 'gru'"), -1);
  KnownNames known = known_names(db, {});
  EXPECT_EQ(known.numeric_params, (NameSet{"model.latent_dim"}));
  EXPECT_EQ(known.text_params, (NameSet{"model.cell"}));
}

TEST_F(SmallCampaign, StringLiteralsAreDataNotSql) {
  Database& db = store_.database();
  RunQuery q;
  q.where = "params.model.cell = \"x'; DROP TABLE runs; --\" OR campaign = 'demo''; DELETE FROM "
            "summaries; --'";
  EXPECT_TRUE(query_runs(db, q).rows.empty());
  Statement runs(db, "SELECT count(*) FROM runs");
  ASSERT_TRUE(runs.step());
  EXPECT_EQ(runs.column_int64(0), 6);
  Statement summaries(db, "SELECT count(*) FROM summaries");
  ASSERT_TRUE(summaries.step());
  EXPECT_EQ(summaries.column_int64(0), 9);
  // Names are bound too: a param "named" like SQL is just an unknown name.
  q.where = "params.x = 1";
  EXPECT_THROW(query_runs(db, q), QueryError);
  SqlFragment f = compile_where(parse_where("campaign = \"a') OR 1=1 --\""), {}, "");
  EXPECT_EQ(f.sql, "(c.name = ?)");
  ASSERT_EQ(f.params.size(), 1u);
  EXPECT_EQ(std::get<std::string>(f.params[0]), "a') OR 1=1 --");
}

TEST_F(SmallCampaign, BestAndParetoFront) {
  Database& db = store_.database();
  BestRuns best = best_runs(db, "demo", {{"val_bps", true}});
  EXPECT_EQ(numbers(best.table), (std::vector<int64_t>{5}));
  EXPECT_EQ(best.considered, 5);
  // val_bps rises with i while rel_state_error falls: runs 1-4 all lie on the front; run 5
  // lacks rel_state_error and is skipped, run 6 failed.
  BestRuns front = best_runs(db, "demo", parse_objectives("val_bps:max,rel_state_error:max"));
  EXPECT_EQ(numbers(front.table), (std::vector<int64_t>{4, 3, 2, 1}));
  EXPECT_EQ(front.considered, 4);
  EXPECT_EQ(front.missing, 1);
  BestRuns one = best_runs(db, "demo", parse_objectives("val_bps:max,rel_state_error:min"));
  EXPECT_EQ(numbers(one.table), (std::vector<int64_t>{4}));
  EXPECT_THROW(best_runs(db, "demo", {{"val_bsp", true}}), QueryError);
  // The --where spelling of a summary is accepted.
  EXPECT_EQ(numbers(best_runs(db, "demo", {{"summary.val_bps", true}}).table),
            (std::vector<int64_t>{5}));
}

TEST_F(SmallCampaign, BestErrorsNameWhereTheBadTextWasGiven) {
  Database& db = store_.database();
  try {
    best_runs(db, "demo", parse_objectives("val_bps:max,nope:min"));
    FAIL();
  } catch (const QueryError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--pareto, column 13: unknown summary 'nope'", 0), 0u)
        << e.what();
  }
  try {
    best_runs(db, "other", {{"val_bps", true}});
    FAIL();
  } catch (const QueryError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("CAMPAIGN, column 1: no campaign 'other'", 0), 0u)
        << e.what();
  }
  // A campaign with nothing done yet has nothing to rank, whatever the metric.
  store_.create_or_load_campaign({"empty", "spec", "sha", "grid", "val_bps", "maximize"});
  BestRuns none = best_runs(db, "empty", {{"not_yet_recorded", true}});
  EXPECT_EQ(none.considered + none.missing, 0);
  EXPECT_TRUE(none.table.rows.empty());
}

TEST_F(SmallCampaign, ExportHasRunFieldsObjectiveParamsAndSummaries) {
  Table t = export_campaign(store_.database(), "demo");
  for (const char* column : {"config_sha256", "objective", "params.model.cell",
                             "summary.rel_state_error", "summary.val_bps"}) {
    EXPECT_NE(std::find(t.columns.begin(), t.columns.end(), column), t.columns.end()) << column;
  }
  ASSERT_EQ(t.rows.size(), 6u);
  auto at = [&](const char* column) {
    return std::find(t.columns.begin(), t.columns.end(), column) - t.columns.begin();
  };
  EXPECT_EQ(std::get<std::string>(t.rows[1][at("config_sha256")]), "sha2");
  EXPECT_DOUBLE_EQ(std::get<double>(t.rows[1][at("objective")]), 0.2);  // val_bps of run 2
}

// ---- Pareto ----------------------------------------------------------------------------

std::vector<std::size_t> brute_force_front(const std::vector<std::vector<double>>& pts,
                                           const std::vector<Objective>& obj) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    bool has_nan = false;
    for (double v : pts[i]) has_nan |= std::isnan(v);
    if (has_nan) continue;
    bool dominated = false;
    for (std::size_t j = 0; j < pts.size() && !dominated; ++j) {
      bool j_nan = false;
      for (double v : pts[j]) j_nan |= std::isnan(v);
      if (j == i || j_nan) continue;
      bool all_ge = true, one_gt = false;
      for (std::size_t k = 0; k < obj.size(); ++k) {
        double a = obj[k].maximize ? pts[j][k] : -pts[j][k];
        double b = obj[k].maximize ? pts[i][k] : -pts[i][k];
        all_ge &= a >= b;
        one_gt |= a > b;
      }
      dominated = all_ge && one_gt;
    }
    if (!dominated) out.push_back(i);
  }
  return out;
}

TEST(Pareto, EqualsBruteForceOnRandomPointsWithTiesAndMissingValues) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> grid(0, 9);  // coarse values: many ties
  for (int k : {2, 3}) {
    std::vector<Objective> obj = {{"a", true}, {"b", false}, {"c", true}};
    obj.resize(k);
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<std::vector<double>> pts(200, std::vector<double>(k));
      for (auto& p : pts) {
        for (auto& v : p) v = grid(rng);
        if (grid(rng) == 0) p[grid(rng) % k] = std::nan("");
      }
      pts.push_back(pts[0]);  // an exact duplicate
      EXPECT_EQ(pareto_front(pts, obj), brute_force_front(pts, obj)) << "k=" << k;
    }
  }
}

TEST(Pareto, HandMadePoints) {
  std::vector<Objective> obj = {{"val_bps", true}, {"rel_state_error", false}};
  std::vector<std::vector<double>> pts = {
      {0.30, 0.10},  // 0: front
      {0.20, 0.05},  // 1: front
      {0.20, 0.20},  // 2: dominated by 0 and 1
      {0.30, 0.10},  // 3: tie with 0, kept
      {0.35, std::nan("")},  // 4: missing, skipped
      {0.10, 0.05},  // 5: dominated by 1
  };
  EXPECT_EQ(pareto_front(pts, obj), (std::vector<std::size_t>{0, 1, 3}));
  EXPECT_THROW(parse_objectives("val_bps:maxx"), QueryError);
  EXPECT_THROW(parse_objectives("val_bps"), QueryError);
  EXPECT_THROW(parse_objectives("val_bps:max,"), QueryError);
  auto parsed = parse_objectives("val_bps:max,rel_state_error:minimize");
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_FALSE(parsed[1].maximize);
  EXPECT_EQ(parsed[1].column, 13);
  EXPECT_EQ(parsed[1].source, "--pareto");
  EXPECT_EQ(parse_objectives("summary.val_bps:max,s1:min")[0].metric, "val_bps");
  // Spaces in the list's layout and the goal's case do not matter (as in --columns, --sort).
  auto spaced = parse_objectives("val_bps : MAX,  rel_state_error:Min ");
  ASSERT_EQ(spaced.size(), 2u);
  EXPECT_EQ(spaced[0].metric, "val_bps");
  EXPECT_TRUE(spaced[0].maximize);
  EXPECT_EQ(spaced[1].metric, "rel_state_error");
  EXPECT_FALSE(spaced[1].maximize);
  EXPECT_EQ(spaced[1].column, 17);
  EXPECT_THROW(parse_objectives(""), QueryError);
  try {
    parse_objectives("val_bps:max,summary.val_bps:min");
    FAIL() << "a duplicate metric was accepted";
  } catch (const QueryError& e) {
    EXPECT_EQ(e.column(), 13);
    EXPECT_NE(std::string(e.what()).find("listed twice"), std::string::npos) << e.what();
  }
}

// ---- formats ---------------------------------------------------------------------------

Table tricky_table() {
  Table t;
  t.columns = {"number", "error", "value"};
  t.rows = {{int64_t{1}, std::string("a, b"), 0.1},
            {int64_t{2}, std::string("say \"hi\"\nthen leave"), nullptr},
            {int64_t{3}, nullptr, std::nan("")}};
  return t;
}

TEST(TableFormat, CsvQuotesCommasQuotesAndNewlines) {
  std::ostringstream out;
  write_table(out, tricky_table(), TableFormat::kCsv);
  EXPECT_EQ(out.str(),
            "number,error,value\r\n"
            "1,\"a, b\",0.1\r\n"
            "2,\"say \"\"hi\"\"\nthen leave\",\r\n"
            "3,,nan\r\n");
}

TEST(TableFormat, JsonParsesBack) {
  std::ostringstream out;
  write_table(out, tricky_table(), TableFormat::kJson);
  nlohmann::json j = nlohmann::json::parse(out.str());
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["error"], "a, b");
  EXPECT_DOUBLE_EQ(j[0]["value"].get<double>(), 0.1);
  EXPECT_EQ(j[1]["error"], "say \"hi\"\nthen leave");
  EXPECT_TRUE(j[1]["value"].is_null());
  EXPECT_TRUE(j[2]["value"].is_null());  // NaN is not JSON
  EXPECT_EQ(j[2]["number"], 3);
  // Keys keep the column order (--columns), not alphabetical order.
  Table reordered;
  reordered.columns = {"summary.s0", "number", "status"};
  reordered.rows = {{0.5, int64_t{7}, std::string("done")}};
  std::ostringstream ordered;
  write_table(ordered, reordered, TableFormat::kJson);
  std::string text = ordered.str();
  EXPECT_LT(text.find("summary.s0"), text.find("number")) << text;
  EXPECT_LT(text.find("number"), text.find("status")) << text;
}

TEST(TableFormat, AlignedTable) {
  std::ostringstream out;
  write_table(out, tricky_table(), TableFormat::kTable);
  EXPECT_EQ(out.str(),
            "number  error                value\n"
            "------  -------------------  -----\n"
            "     1  a, b                   0.1\n"
            "     2  say \"hi\" then leave      -\n"
            "     3  -                      nan\n");
  EXPECT_THROW(parse_table_format("xml"), std::invalid_argument);
}

}  // namespace
}  // namespace jslds::store
