// `jslds query`, `jslds best` and `jslds export`: tables of runs from the experiment database
// (issue 7; the language is documented in store/query.h and docs/database.md).
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/db_access.h"
#include "core/atomic_file.h"
#include "store/run_table.h"
#include "store/table_format.h"

namespace jslds::cli {
namespace {

constexpr const char* kFormatHelp =
    "output format: table (aligned, for terminals), csv (RFC 4180, full precision) or json "
    "(array of objects; NaN as null)";

struct QueryArgs {
  std::string db;
  std::vector<std::string> campaigns;
  std::string where;
  std::vector<std::string> sort;
  int64_t limit = 0;
  std::vector<std::string> columns;
  std::string format = "table";
};

/// `jslds export --out F` must never destroy a database or a file the user did not mean to
/// replace: refuses F when it is the --db file or one of its companion files (-wal, -shm,
/// -journal), any other SQLite database (even with --force), a directory, a symbolic link, a
/// device, FIFO or socket (even with --force: the rename would replace them), or any other
/// existing file unless `force`. Checked before anything is written.
void check_export_target(const std::string& out, const std::string& db, bool force) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(out, ec)) {
    throw UsageError(fmt::format("--out '{}' is a directory; give a file name", out));
  }
  const fs::path parent = fs::absolute(out, ec).parent_path();
  if (!fs::is_directory(parent, ec)) {
    throw UsageError(
        fmt::format("--out '{}': the directory {} does not exist", out, parent.string()));
  }
  std::error_code target_ec;
  const fs::path target = fs::weakly_canonical(out, target_ec);
  // SQLite names the companions after the resolved path when --db is a symbolic link.
  std::vector<std::pair<std::string, std::string>> protected_files;  // (path, what it is)
  for (const std::string& base : {db, fs::weakly_canonical(db, ec).string()}) {
    protected_files.emplace_back(base, "the same file as");
    for (const char* suffix : {"-wal", "-shm", "-journal"}) {
      protected_files.emplace_back(base + suffix, fmt::format("the {} file of", suffix + 1));
    }
  }
  for (const auto& [path, what] : protected_files) {
    std::error_code ec2;
    bool same = !target_ec && fs::weakly_canonical(path, ec2) == target && !ec2;
    if (!same && fs::exists(out, ec2) && fs::exists(path, ec2)) {
      same = fs::equivalent(out, path, ec2) && !ec2;  // hard links, bind mounts
    }
    if (same) {
      throw UsageError(fmt::format(
          "--out '{}' is {} the database being exported ('{}'); refusing to overwrite it", out,
          what, db));
    }
  }
  // The export is renamed into place: that would replace a symbolic link itself (leaving its
  // target stale) or a device or FIFO (/dev/null, /dev/stdout) with a regular file.
  const auto link_status = fs::symlink_status(out, ec);
  if (link_status.type() == fs::file_type::symlink) {
    std::error_code link_ec;
    const fs::path to = fs::read_symlink(out, link_ec);
    throw UsageError(fmt::format(
        "--out '{}' is a symbolic link (to '{}'); refusing to replace it: give the path of the "
        "file itself",
        out, to.string()));
  }
  if (fs::exists(link_status) && link_status.type() != fs::file_type::regular) {
    throw UsageError(fmt::format(
        "--out '{}' is not a regular file (a device, FIFO or socket); refusing to replace it "
        "(to write to standard output, leave --out out)",
        out));
  }
  if (store::is_sqlite_file(out)) {
    throw UsageError(fmt::format(
        "--out '{}' is an SQLite database; refusing to overwrite it with an export "
        "(choose another file, e.g. runs.csv)",
        out));
  }
  if (!force && fs::exists(link_status)) {
    throw UsageError(fmt::format(
        "--out '{}' already exists; refusing to overwrite it (give --force to replace it, or "
        "choose another file)",
        out));
  }
}

}  // namespace

void register_query(CLI::App& app) {
  auto args = std::make_shared<QueryArgs>();
  auto* cmd = app.add_subcommand(
      "query", "List runs with their swept params and summaries, filtered and sorted");
  cmd->footer(
      "Examples:\n"
      "  jslds query --campaign reach-v1 --where 'summary.val_bps > 0.1 AND "
      "params.model.latent_dim <= 32' --sort summary.rel_state_error asc --limit 10\n"
      "  jslds query --where 'status = \"failed\"' --columns number,error\n"
      "Fields: params.KEY (a dotted run-config key that the campaign sweeps, e.g. "
      "params.model.latent_dim; keys the sweep does not vary are not stored per run and are "
      "rejected with the list of swept ones), summary.NAME, status, campaign, number, "
      "repeat, attempts, steps_done, objective. Operators = != < <= > >=, AND, OR, NOT, "
      "parentheses; strings in '...' or \"...\". A run lacking a value never matches.");
  add_db_option(*cmd, args->db);
  cmd->add_option("--campaign", args->campaigns,
                  "only runs of this campaign (repeatable; default: every campaign)");
  cmd->add_option("--where", args->where,
                  "filter expression, e.g. 'summary.val_bps > 0.1 AND status = \"done\"' "
                  "(fields and operators: at the end of this help)");
  cmd->add_option("--sort", args->sort,
                  "sort by a field, optionally followed by asc or desc (--sort summary.val_bps "
                  "desc, or quoted as one word; default asc; runs without the value come "
                  "last). Default order: campaign, number")
      ->expected(1, 2);
  cmd->add_option("--limit", args->limit, "print at most N runs (0 = all)")
      ->check(whole_number_at_least(0))
      ->default_val(0);
  cmd->add_option("--columns", args->columns,
                  "comma-separated columns: fields (listed at the end of this help), params.*, summary.*, or run_id, "
                  "epoch, worker, device, run_dir, error, started_at, finished_at, duration_s (wall "
                  "seconds of the last attempt only; summary.train_seconds sums a resumed run's "
                  "attempts), "
                  "config_sha256. Default: number, status, swept params, objective, and the "
                  "summaries used in --where/--sort")
      ->delimiter(',');
  cmd->add_option("--format", args->format, kFormatHelp)
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->default_val("table");
  cmd->callback([args] {
    store::ExperimentStore store = open_reader(args->db);
    with_query_errors_as_usage([&] {
      store::RunQuery q;
      q.campaigns = args->campaigns;
      q.where = args->where;
      if (!args->sort.empty()) {
        std::string text = args->sort[0];
        if (args->sort.size() == 2) text += " " + args->sort[1];
        store::SortKey key = store::parse_sort(text);
        q.sort = key.field;
        q.descending = key.descending;
      }
      q.limit = args->limit;
      q.columns = args->columns;
      store::Table t = store::query_runs(store.database(), q);
      store::write_table(std::cout, t, store::parse_table_format(args->format));
    });
  });
}

void register_best(CLI::App& app) {
  struct BestArgs {
    std::string db;
    std::string campaign;
    std::string metric;
    std::string goal;
    std::string pareto;
    std::string format = "table";
  };
  auto args = std::make_shared<BestArgs>();
  auto* cmd = app.add_subcommand(
      "best", "The best run of a campaign by its objective, or the Pareto front of several metrics");
  cmd->footer(
      "Considers done runs. Without --pareto: the best by the campaign's objective (or "
      "--metric/--goal); ties are all printed. With --pareto: the runs no other run beats in "
      "every listed metric, e.g. prediction quality against how faithful the linear model is:\n"
      "  jslds best reach-v1 --pareto val_bps:max,rel_state_error:min\n"
      "Runs lacking one of the metrics are skipped (their count is printed on stderr).");
  add_db_option(*cmd, args->db);
  cmd->add_option("campaign", args->campaign, "campaign name")->required();
  auto* metric = cmd->add_option(
      "--metric", args->metric,
      "summary to rank by, NAME or summary.NAME (default: the campaign's objective metric); "
      "another metric needs --goal");
  cmd->add_option("--goal", args->goal,
                  "max or min (default: the campaign's objective goal; needed with a --metric other "
                  "than the objective's)")
      ->transform(CLI::IsMember({"max", "min", "maximize", "minimize"}, CLI::ignore_case));
  auto* pareto = cmd->add_option(
      "--pareto", args->pareto,
      "comma-separated METRIC:max|min list of two or more different summaries: print the "
      "Pareto front (non-dominated runs), best first by the first metric");
  pareto->excludes(metric);
  pareto->excludes(cmd->get_option("--goal"));
  cmd->add_option("--format", args->format, kFormatHelp)
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->default_val("table");
  cmd->callback([args, pareto, metric] {
    store::ExperimentStore store = open_reader(args->db);
    with_query_errors_as_usage([&] {
      auto campaign = store.find_campaign(args->campaign);
      if (!campaign) {
        store::resolve_campaigns(store.database(), {args->campaign}, "CAMPAIGN");  // throws
      }
      std::vector<store::Objective> objectives;
      if (pareto->count() > 0) {
        objectives = store::parse_objectives(args->pareto);
        if (objectives.size() < 2) {
          throw UsageError(fmt::format(
              "--pareto {}: a Pareto front needs two or more metrics; for one, use --metric "
              "{} --goal {}",
              args->pareto, objectives[0].metric, objectives[0].maximize ? "max" : "min"));
        }
      } else {
        store::Objective o;
        if (metric->count() > 0) {
          o.metric = store::bare_metric(args->metric);
        } else {
          o.metric = campaign->objective_metric;
          o.source = fmt::format("objective of campaign '{}'", campaign->name);
        }
        // The campaign's goal belongs to its objective metric: for another metric it would be
        // a guess (max for rel_state_error picks the least faithful run), so it is asked for.
        if (args->goal.empty() && o.metric != campaign->objective_metric)
          throw UsageError(fmt::format(
              "--metric {}: give --goal max or min (the campaign's goal, {}, is for its objective "
              "{})",
              args->metric, campaign->objective_goal, campaign->objective_metric));
        std::string goal = args->goal.empty() ? campaign->objective_goal : args->goal;
        o.maximize = goal == "max" || goal == "maximize";
        objectives.push_back(o);
      }
      store::BestRuns best = store::best_runs(store.database(), args->campaign, objectives);
      const int64_t done = best.considered + best.missing;
      if (done == 0) {
        std::string counts;
        std::map<std::string, int> by_state;
        auto runs = store.list_runs(campaign->id);
        for (const auto& r : runs) by_state[std::string(store::to_string(r.status))] += 1;
        for (const auto& [state, n] : by_state) {
          counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", n, state);
        }
        throw Exit{1, fmt::format("error: campaign '{}' has no done runs yet ({}); nothing to "
                                  "rank",
                                  args->campaign,
                                  runs.empty() ? std::string("it has no runs") : counts)};
      }
      std::string what;
      for (const auto& o : objectives) {
        what += fmt::format("{}{} ({})", what.empty() ? "" : ", ", o.metric,
                            o.maximize ? "max" : "min");
      }
      auto plural = [](int64_t n) { return n == 1 ? "" : "s"; };
      const auto front = static_cast<int64_t>(best.table.rows.size());
      std::cerr << fmt::format(
          "{}: {} of {} done run{} by {}{}\n", args->campaign,
          objectives.size() > 1 ? fmt::format("Pareto front of {} run{}", front, plural(front))
                                : std::string("best"),
          done, plural(done), what,
          best.missing ? fmt::format("; {} lacked a metric and {} skipped", best.missing,
                                     best.missing == 1 ? "was" : "were")
                       : "");
      if (best.table.rows.empty()) {
        throw Exit{1, fmt::format("no done run of '{}' has {}", args->campaign, what)};
      }
      store::write_table(std::cout, best.table, store::parse_table_format(args->format));
    });
  });
}

void register_export(CLI::App& app) {
  struct ExportArgs {
    std::string db;
    std::string campaign;
    std::string format = "csv";
    std::string out;
    bool force = false;
  };
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "Write a campaign as one wide table (CSV or JSON)");
  cmd->footer(
      "One row per run with its state and times, one "
      "column per swept param (params.KEY) and per summary (summary.NAME). Ready for "
      "pandas.read_csv or pandas.read_json.");
  add_db_option(*cmd, args->db);
  cmd->add_option("campaign", args->campaign, "campaign name")->required();
  cmd->add_option("--format", args->format, "csv (RFC 4180) or json (array of objects)")
      ->check(CLI::IsMember({"csv", "json"}))
      ->default_val("csv");
  auto* out = cmd->add_option("--out", args->out,
                              "output file (default, or -: standard output); must not exist unless "
                              "--force; never the database itself or another SQLite file. "
                              "Written to a temporary file beside it, then renamed into place");
  cmd->add_flag("--force", args->force,
                "replace an existing --out file (never a database)")
      ->needs(out);
  cmd->callback([args] {
    store::ExperimentStore store = open_reader(args->db);
    with_query_errors_as_usage([&] {
      store::Table t = store::export_campaign(store.database(), args->campaign);
      store::TableFormat format = store::parse_table_format(args->format);
      if (args->out.empty() || args->out == "-") {  // "-": standard output, as for other tools
        store::write_table(std::cout, t, format);
        return;
      }
      check_export_target(args->out, args->db, args->force);
      // Whole or not at all: an interrupted or failed write leaves F as it was.
      std::ostringstream text;
      store::write_table(text, t, format);
      try {
        write_file_atomically(args->out, text.str());
      } catch (const FileWriteError& e) {
        throw std::runtime_error(fmt::format("writing the export failed: {}", e.what()));
      }
      std::cerr << fmt::format("wrote {} runs × {} columns to {}\n", t.rows.size(),
                               t.columns.size(), args->out);
    });
  });
}

}  // namespace jslds::cli
