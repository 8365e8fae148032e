// Query performance on a synthetic campaign (issue 7): 100,000 runs × 20 summaries × 10
// params. Measures, each on a fresh read-only connection as the CLI opens it:
//   query_s   `jslds query --where "<two clauses>" --sort summary.s0 desc --limit 50` (rendered)
//   query_all_s  the same without --limit (all matching rows, rendered as CSV)
//   pareto_s  `jslds best --pareto s0:max,s1:min`
// Goal: query_s and pareto_s under 0.5 s. Prints one JSON object.
//
// Usage: bench_query [RUNS=100000] [DB=/tmp/jslds-bench-query.sqlite] [--keep]
// --keep leaves the database (campaign "bench", params section.p0..p9, summaries s0..s19)
// for trying the CLI on, e.g. `jslds query --db DB --where 'summary.s0 > 0.99'`.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "store/experiment_store.h"
#include "store/run_table.h"
#include "store/table_format.h"

using namespace jslds::store;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kParams = 10;
constexpr int kSummaries = 20;

void build(const std::string& path, int n_runs) {
  ExperimentStore store(path);
  auto campaign = store.create_or_load_campaign(
      {"bench", "[campaign]\nname = \"bench\"\n", "0", "random", "s0", "maximize"});
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  store.batch([&] {
    constexpr int kChunk = 5000;
    for (int start = 0; start < n_runs; start += kChunk) {
      std::vector<NewRun> runs;
      for (int i = start; i < std::min(n_runs, start + kChunk); ++i) {
        NewRun r;
        r.number = i + 1;
        r.config_json = "{}";
        r.config_sha256 = std::to_string(i);
        r.run_dir = "runs/bench/" + std::to_string(i + 1);
        for (int p = 0; p < kParams; ++p) {
          r.params.push_back({fmt::format("section.p{}", p), unit(rng)});
        }
        runs.push_back(std::move(r));
      }
      auto inserted = store.insert_runs(campaign.id, runs);
      Statement done(store.database(),
                     "UPDATE runs SET status = 'done', attempts = 1, steps_done = 2000 WHERE id = ?");
      for (const auto& r : inserted) {
        done.reset();
        done.bind(1, r.id).run();
        std::map<std::string, double> s;
        for (int k = 0; k < kSummaries; ++k) s[fmt::format("s{}", k)] = unit(rng);
        store.record_summaries(r.id, s);
      }
    }
  });
  store.database().exec("ANALYZE");
}

template <class F>
double median_seconds(F&& f, int repeats = 5) {
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    auto start = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times jslds query/best/export on a synthetic campaign; prints one JSON object"};
  int n_runs = 100000;
  std::string path = "/tmp/jslds-bench-query.sqlite";
  bool keep = false;
  app.add_option("runs", n_runs, "runs in the synthetic campaign")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("db", path, "database file to create (replaced if it exists)")
      ->capture_default_str();
  app.add_flag("--keep", keep, "keep the database afterwards (to try the CLI on it)");
  CLI11_PARSE(app, argc, argv);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);

  auto start = Clock::now();
  build(path, n_runs);
  double build_s = std::chrono::duration<double>(Clock::now() - start).count();

  RunQuery query;
  query.campaigns = {"bench"};
  query.where = "params.section.p0 >= 0.5 AND summary.s1 < 0.3";
  query.sort = "summary.s0";
  query.descending = true;
  query.limit = 50;
  std::size_t rows = 0, all_rows = 0, front = 0;
  double query_s = median_seconds([&] {
    ExperimentStore reader(path, {.read_only = true});
    Table t = query_runs(reader.database(), query);
    std::ostringstream out;
    write_table(out, t, TableFormat::kTable);
    rows = t.rows.size();
  });
  RunQuery all = query;
  all.limit = 0;
  double query_all_s = median_seconds([&] {
    ExperimentStore reader(path, {.read_only = true});
    Table t = query_runs(reader.database(), all);
    std::ostringstream out;
    write_table(out, t, TableFormat::kCsv);
    all_rows = t.rows.size();
  }, 3);
  double pareto_s = median_seconds([&] {
    ExperimentStore reader(path, {.read_only = true});
    BestRuns b = best_runs(reader.database(), "bench", parse_objectives("s0:max,s1:min"));
    front = b.table.rows.size();
  });
  double export_s = median_seconds([&] {
    ExperimentStore reader(path, {.read_only = true});
    Table t = export_campaign(reader.database(), "bench");
    std::ostringstream out;
    write_table(out, t, TableFormat::kCsv);
  }, 1);

  nlohmann::json j = {
      {"bench", "query"},
      {"runs", n_runs},
      {"params_per_run", kParams},
      {"summaries_per_run", kSummaries},
      {"sqlite", sqlite_version()},
      {"build_db_s", build_s},
      {"db_bytes", std::filesystem::file_size(path)},
      {"query_where", query.where},
      {"query_sort", "summary.s0 desc"},
      {"query_limit", query.limit},
      {"query_rows", rows},
      {"query_s", query_s},
      {"query_all_rows", all_rows},
      {"query_all_s", query_all_s},
      {"pareto", "s0:max,s1:min"},
      {"pareto_front_size", front},
      {"pareto_s", pareto_s},
      {"export_all_columns_s", export_s},
      {"goal_s", 0.5},
      {"meets_goal", query_s < 0.5 && pareto_s < 0.5},
  };
  std::cout << j.dump() << std::endl;
  if (keep) {
    std::cerr << fmt::format("kept {} (campaign \"bench\")\n", path);
  } else {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  }
  return 0;
}
