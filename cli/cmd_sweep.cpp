// `jslds sweep SPEC.toml`: run or resume a campaign, distributed under mpirun (rank 0
// coordinates, ranks > 0 run children) or with --jobs J local workers (DESIGN §2, §3).
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "coordinator/artifacts_owner.h"
#include "coordinator/coordinator.h"
#include "coordinator/launch_lock.h"
#include "coordinator/mpi.h"
#include "coordinator/mpi_pool.h"
#include "coordinator/signals.h"
#include "coordinator/sweep_spec.h"
#include "core/data/data_check.h"
#include "core/train/checkpoint.h"
#include "store/experiment_store.h"
#include "worker/local_pool.h"
#include "worker/mpi_worker.h"

namespace jslds::cli {

namespace {

namespace fs = std::filesystem;

struct SweepArgs {
  std::string spec;
  std::string db = "jslds.sqlite";
  std::string artifacts;  // default: jslds-runs/ beside the database
  int jobs = 1;
  bool retry_failed = false;
  bool force_spec = false;
  std::string time_limit;
  bool dry_run = false;
  std::string journal = "auto";
  std::string stats;
  std::vector<std::string> overrides;  // --set base.section.key=value
};

// The spec with the command line's --set overrides of its [base] applied.
SweepSpec load_spec(const SweepArgs& a) {
  SweepSpec spec = load_sweep_spec(a.spec);
  apply_base_overrides(spec, a.overrides);
  return spec;
}

// Every run's data work: a wrong data.path, a missing trial table, a variable that is not in
// the file or a split that cannot be made is refused before anything runs (and by --dry-run),
// not found once per run by failing trainings. Each distinct [data] section is loaded and
// split once, as `jslds train` would (core/data/data_check.h). Returns the fingerprint of each
// run's data (dataset_sha256) by config_sha256, for CoordinatorOptions::data_sha256. Throws
// UsageError.
std::map<std::string, std::string> check_data(const SweepSpec& spec, const std::vector<ExpandedRun>& runs) {
  auto run_list = [](const std::vector<int64_t>& numbers) {
    return fmt::format("run{} {}{}", numbers.size() > 1 ? "s" : "", numbers.front(),
                       numbers.size() > 1 ? fmt::format(" and {} more", numbers.size() - 1) : "");
  };
  std::map<std::string, std::vector<int64_t>> users;  // path → run numbers
  for (const auto& r : runs)
    if (!r.config.data.path.empty()) users[r.config.data.path].push_back(r.number);
  for (const auto& [path, numbers] : users) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) continue;
    throw UsageError(fmt::format(
        "{}: data.path '{}' of {} {} (a relative path in the spec is taken from the "
        "spec's directory, one given with --set base.data.path from the current directory)",
        spec.source, path, run_list(numbers),
        fs::exists(path, ec) ? "is not a regular file" : "does not exist"));
  }
  // [data] section and model.mode (as JSON) → the run configuration that first uses them and
  // the runs that do, in run order.
  std::map<std::string, std::pair<const RunConfig*, std::vector<int64_t>>> sections;
  std::map<std::string, std::vector<std::string>> section_configs;  // key → config_sha256 of its runs
  std::vector<std::string> order;
  for (const auto& r : runs) {
    const nlohmann::json j = nlohmann::json::parse(to_json(r.config));
    const std::string key = j["data"].dump() + j["model"]["mode"].dump();
    auto [it, added] = sections.try_emplace(key, &r.config, std::vector<int64_t>{});
    if (added) order.push_back(key);
    it->second.second.push_back(r.number);
    section_configs[key].push_back(r.config_sha256);
  }
  std::map<std::string, std::string> fingerprints;
  // Many sections (a sweep over data.split_seed, say) get one summary line, not one each.
  constexpr size_t kListedSections = 8;
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& [config, numbers] = sections.at(order[i]);
    std::string summary;
    try {
      DataCheck checked = check_data_options(config->data, config->model);
      summary = std::move(checked.summary);
      for (const auto& sha : section_configs.at(order[i])) fingerprints[sha] = checked.data_sha256;
    } catch (const DataCheckError& e) {
      throw UsageError(fmt::format(
          "{}: the data of {} cannot be used: {} ({}fix the data keys or model.mode in the spec's "
          "[base] or [parameters], or the --set base.… overrides)",
          spec.source, run_list(numbers), e.what(),
          config->data.simulate.empty() ? "`jslds data inspect FILE` shows what the file holds; "
                                        : ""));
    }
    if (StopSignals::requested())
      throw UsageError("stopped by a signal while the data were checked; nothing was created");
    if (order.size() <= kListedSections)
      std::cerr << fmt::format("data {}/{} ({}): {}\n", i + 1, order.size(), run_list(numbers),
                               summary);
  }
  if (order.size() > kListedSections)
    std::cerr << fmt::format("data: {} distinct data sections loaded and split, all usable\n",
                             order.size());
  return fingerprints;
}

void print_dry_run(const SweepSpec& spec, const std::vector<ExpandedRun>& runs) {
  std::vector<std::string> header = {"run", "repeat"};
  for (const auto& p : spec.parameters) header.push_back(p.key);
  header.push_back("config_sha256");
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : runs) {
    std::vector<std::string> row = {std::to_string(r.number), std::to_string(r.repeat)};
    for (const auto& p : r.params) row.push_back(p.text);
    row.push_back(r.config_sha256.substr(0, 12));
    rows.push_back(std::move(row));
  }
  std::vector<size_t> width(header.size());
  for (size_t j = 0; j < header.size(); ++j) {
    width[j] = header[j].size();
    for (const auto& row : rows) width[j] = std::max(width[j], row[j].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t j = 0; j + 1 < cells.size(); ++j) out += fmt::format("{:<{}}  ", cells[j], width[j]);
    out += cells.back();
    std::cout << out << "\n";
  };
  std::cout << fmt::format("campaign {} ({} sweep, spec sha256 {}): {} configurations x {} "
                           "repeats = {} runs\n",
                           spec.name, to_string(spec.method), spec.sha256.substr(0, 12),
                           configuration_count(spec), spec.repeats, runs.size());
  line(header);
  for (const auto& row : rows) line(row);
}

void write_stats(const std::string& file, const LaunchSummary& s) {
  nlohmann::json j = {{"campaign_id", s.campaign_id},   {"epoch", s.epoch},
                      {"resumed", s.resumed},           {"runs_total", s.runs_total},
                      {"runs_finished", s.runs_finished}, {"runs_queued", s.runs_queued},
                      {"withdraw_requests", s.withdraw_requests},
                      {"stopped", s.stopped},
                      {"stop_reason", s.stop_reason},   {"workers", s.workers},
                      {"wall_seconds", s.wall_seconds}, {"busy_seconds", s.busy_seconds},
                      {"child_seconds", s.child_seconds}, {"cpu_seconds", s.cpu_seconds}};
  for (const auto& [status, n] : s.counts) j["counts"][std::string(store::to_string(status))] = n;
  std::ofstream(file) << j.dump(2) << "\n";
}

store::JournalMode journal_mode(const std::string& text) {
  if (text == "auto") return store::JournalMode::kAuto;
  if (text == "wal") return store::JournalMode::kWal;
  if (text == "delete") return store::JournalMode::kRollback;
  throw UsageError(fmt::format("--journal {}: expected auto, wal or delete", text));
}

// The coordinator's options from the command line; throws UsageError on a bad --time-limit.
CoordinatorOptions coordinator_options(const SweepArgs& a) {
  CoordinatorOptions o;
  fs::path db(a.db);
  o.artifacts = a.artifacts.empty() ? fs::absolute(db).parent_path() / "jslds-runs"
                                    : fs::path(a.artifacts);
  o.database = fs::absolute(db).string();
  o.retry_failed = a.retry_failed;
  o.force_spec = a.force_spec;
  const auto now = std::chrono::system_clock::now();
  if (!a.time_limit.empty()) {
    try {
      o.deadline = parse_time_limit(a.time_limit, now);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    if (*o.deadline - now <= o.stop_margin)
      throw UsageError(fmt::format(
          "--time-limit {}: the sweep stops gracefully {} s before the end of its time, so a "
          "budget of {} s or less would run nothing; give more (e.g. 30m)",
          a.time_limit, o.stop_margin.count(), o.stop_margin.count()));
  }
  if (auto slurm = slurm_job_end_time(); slurm && (!o.deadline || *slurm < *o.deadline))
    o.deadline = slurm;
  o.log = &std::cerr;
  return o;
}

// The fingerprint of the data a started run was trained on, from its own files (train_state.pt,
// else checkpoint.pt); nullopt when neither can be read or records one.
std::optional<std::string> recorded_data_sha256(const fs::path& run_dir) {
  std::error_code ec;
  try {
    if (fs::exists(run_dir / "train_state.pt", ec))
      if (const TrainState s = load_train_state(run_dir / "train_state.pt"); !s.data_sha256.empty())
        return s.data_sha256;
  } catch (const std::exception&) {
  }
  try {
    if (fs::exists(run_dir / "checkpoint.pt", ec))
      if (const LoadedModel m = load_checkpoint(run_dir / "checkpoint.pt"); !m.data_sha256.empty())
        return m.data_sha256;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// What every launch (and --dry-run) starts from: the options (checked before the data are
// loaded, so that option errors come first), the spec and its runs, every distinct data
// section loaded and checked, and the fingerprints the coordinator stores and compares.
struct Launch {
  CoordinatorOptions options;
  SweepSpec spec;
  std::vector<ExpandedRun> runs;
};

Launch prepare_launch(const SweepArgs& a) {
  Launch l;
  l.options = coordinator_options(a);
  l.spec = load_spec(a);
  l.runs = expand(l.spec);
  l.options.data_sha256 = check_data(l.spec, l.runs);
  l.options.recorded_data_sha256 = recorded_data_sha256;
  return l;
}

// Rank 0 or the local process: the whole campaign. A changed spec is a usage error.
// `o` comes from coordinator_options(a), computed before the data check so that option errors
// come first; `runs` is the spec's expansion, already checked by check_data.
void coordinate(const SweepArgs& a, const CoordinatorOptions& o, const SweepSpec& spec,
                const std::vector<ExpandedRun>& runs, WorkerPool& pool) {
  // A launch that would be refused for its run-directory folder must not leave a new, empty
  // database behind: without a database yet, that check needs none, so it runs first.
  std::error_code ec;
  if (a.db != ":memory:" && !fs::exists(a.db, ec))
    for (const auto& line : preview_launch(nullptr, spec, runs, o))
      if (line.rfind(kRefusedPrefix, 0) == 0) throw UsageError(line.substr(std::string(kRefusedPrefix).size()));
  store::OpenOptions open;
  open.journal = journal_mode(a.journal);
  open.defer_migration = true;  // a refused launch leaves an older file readable by older jslds
  store::ExperimentStore store(a.db, open);
  // Before the coordinator bumps the epoch: a second live launch must be refused, not
  // allowed to take the first one's running runs for stale ones (coordinator/launch_lock.h).
  std::optional<CampaignLaunchLock> lock;
  try {
    lock.emplace(a.db, spec.name);
  } catch (const CampaignBusy& e) {
    throw UsageError(e.what());
  }
  if (!lock->warning().empty()) std::cerr << "warning: " << lock->warning() << "\n";
  Coordinator coordinator(store, pool, spec, o);
  LaunchSummary s;
  try {
    s = coordinator.run();
  } catch (const SpecMismatch& e) {
    throw UsageError(e.what());
  } catch (const DataChanged& e) {
    throw UsageError(e.what());
  } catch (const ArtifactsConflict& e) {
    throw UsageError(e.what());
  }
  if (!a.stats.empty()) write_stats(a.stats, s);
}

// Under mpirun: rank 0 coordinates, ranks > 0 work. Returns an input error (bad spec,
// changed spec, bad option) found before any run started, after telling the workers to leave;
// anything later is fatal for every rank (MPI_Abort), never a hang.
std::exception_ptr run_under_mpi(const SweepArgs& a) {
  MpiSession session(nullptr, nullptr);
  const NodeLayout layout = session.node_layout();
  if (session.rank() > 0) {
    try {
      run_mpi_worker(session, layout, WorkerLoopOptions{});
    } catch (const std::exception& e) {
      MpiSession::abort(1, fmt::format("worker failed: {}", e.what()));
    }
    return nullptr;
  }
  std::unique_ptr<WorkerPool> pool;
  MpiPool* mpi_pool = nullptr;
  if (session.size() == 1) {  // mpirun -np 1: local workers do the work
    pool = std::make_unique<LocalPool>(a.jobs, WorkerLoopOptions{});
  } else {
    auto p = std::make_unique<MpiPool>(session);
    mpi_pool = p.get();
    pool = std::move(p);
  }
  auto release_workers = [&] {
    if (!mpi_pool) return;
    for (int w = 0; w < mpi_pool->size(); ++w) mpi_pool->send(w, Shutdown{});
    mpi_pool->flush(5.0);
  };
  try {
    const Launch launch = prepare_launch(a);  // every run is valid before any worker starts
    coordinate(a, launch.options, launch.spec, launch.runs, *pool);
  } catch (const ConfigError&) {
    release_workers();
    return std::current_exception();
  } catch (const UsageError&) {  // refused before any run started
    release_workers();
    return std::current_exception();
  } catch (const std::exception& e) {
    MpiSession::abort(1, fmt::format("coordinator failed: {}", e.what()));
  }
  if (mpi_pool) mpi_pool->flush(5.0);
  return nullptr;
}

void run_sweep(const SweepArgs& a) {
  const bool mpi = launched_by_mpi();
  if (a.dry_run) {
    const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
    if (rank && std::string(rank) != "0") return;  // one table per mpirun, from rank 0
    if (a.jobs < 1) throw UsageError(fmt::format("--jobs {}: expected at least 1", a.jobs));
    const Launch launch = prepare_launch(a);  // the same checks as a launch
    const CoordinatorOptions& o = launch.options;
    const SweepSpec& spec = launch.spec;
    const std::vector<ExpandedRun>& runs = launch.runs;
    print_dry_run(spec, runs);
    // What a launch would find: the database read-only (never created here), the folders.
    // A predicted refusal ends the dry run with exit status 2, as the launch would.
    std::optional<store::ExperimentStore> store;
    std::vector<std::string> refusals;
    std::error_code ec;
    if (a.db != ":memory:" && fs::exists(a.db, ec)) {
      store::OpenOptions read_only;
      read_only.read_only = true;
      store.emplace(a.db, read_only);
      // Tested without taking it (nor creating DB.lock): a dry run writes nothing, and works
      // where the database's folder is read-only.
      if (CampaignLaunchLock::held_by_a_launch(a.db, spec.name).value_or(false))
        refusals.push_back(std::string(kRefusedPrefix) + CampaignLaunchLock::busy_message(a.db, spec.name));
    } else if (const fs::path folder = fs::absolute(a.db).parent_path();
               a.db != ":memory:" && !fs::is_directory(folder, ec)) {
      refusals.push_back(fmt::format("{}the database {} cannot be created: its folder {} does "
                                     "not exist",
                                     kRefusedPrefix, a.db, folder.string()));
    }
    for (std::string line : preview_launch(store ? &*store : nullptr, spec, runs, o)) {
      if (line.rfind(kRefusedPrefix, 0) == 0) {
        refusals.push_back(line);
        continue;
      }
      // Refused here (the launch lock, the database's folder): nothing would start.
      if (const size_t at = line.rfind(" run(s) would start"); !refusals.empty() && at != std::string::npos)
        line.erase(line.rfind("; ", at));
      std::cout << line << "\n";
    }
    if (!refusals.empty()) throw UsageError(fmt::format("{}", fmt::join(refusals, "\n")));
    return;
  }
  if (a.jobs < 1) throw UsageError(fmt::format("--jobs {}: expected at least 1", a.jobs));
  StopSignals signals;
  if (!mpi) {
    const Launch launch = prepare_launch(a);  // every run is valid before any worker starts
    LocalPool pool(a.jobs, WorkerLoopOptions{});
    coordinate(a, launch.options, launch.spec, launch.runs, pool);
    return;
  }

  // The session must finalise on every rank, so input errors are carried out of its scope
  // and rethrown after MPI_Finalize (exit status 2, no "exited without finalize" noise).
  if (std::exception_ptr input_error = run_under_mpi(a)) std::rethrow_exception(input_error);
}

}  // namespace

void register_sweep(CLI::App& app) {
  auto a = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand(
      "sweep", "Run or resume a campaign of training runs described by a sweep spec (docs/sweeps.md)");
  cmd->footer(
      "Under mpirun, rank 0 coordinates and ranks 1..N-1 each run one training at a time;\n"
      "without mpirun, --jobs J local workers do. Running the same command again resumes the\n"
      "campaign: done runs are kept, interrupted runs continue from their checkpoint.\n"
      "SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 stop gracefully (runs checkpoint, exit 0 within\n"
      "60 s); a second signal exits at once. Under Slurm use `#SBATCH --signal=B:USR1@180`\n"
      "and forward USR1 to mpirun (docs/sweeps.md has the script).\n"
      "Run directories go to ARTIFACTS/<campaign>/, which ARTIFACTS/<campaign>/campaign.json\n"
      "claims for the campaign: another database's campaign there is refused.");
  cmd->add_option("spec", a->spec, "sweep spec (TOML): [campaign], [base], [parameters]")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--db", a->db, "experiment database (SQLite); created if missing")
      ->capture_default_str();
  cmd->add_option("--artifacts", a->artifacts,
                  "root of the run directories ARTIFACTS/<campaign>/<run>/ (default: jslds-runs/ "
                  "beside the database); must be shared by all nodes");
  cmd->add_option("--jobs,-j", a->jobs,
                  "local workers (runs in parallel) when not started by mpirun")
      ->capture_default_str();
  cmd->add_option("--set", a->overrides,
                  "override a key of the spec's [base] run configuration, e.g. --set "
                  "base.data.path=my_session.nwb (repeatable; TOML values; a relative path is "
                  "taken from the current directory). Overrides are part of the campaign's "
                  "identity: resume with the same --set")
      ->allow_extra_args(false);
  cmd->add_flag("--retry-failed", a->retry_failed,
                "also re-run failed and diverged runs, up to [campaign] max_attempts starts: a failed "
                "run (crash, out-of-memory kill, full disk) continues from its last verified "
                "checkpoint, a diverged one starts again from step 0");
  cmd->add_flag("--force-spec", a->force_spec,
                "resume even though the spec changed; its runs may only grow (new runs are "
                "added, none removed)");
  cmd->add_option("--time-limit", a->time_limit,
                  "wall-time budget (45m, 2h, 1h30m, 1d; a number alone is seconds, e.g. 5400, "
                  "and one after a unit needs its own: 1h30 is refused, write 1h30m; more than "
                  "2m): runs that cannot finish are not started, and the sweep stops gracefully "
                  "2 minutes before the end. SLURM_JOB_END_TIME is used when set");
  cmd->add_flag("--dry-run", a->dry_run,
                "print the expanded runs as a table and exit, after validating every run and "
                "loading and splitting each distinct [data] section once (as jslds train would; "
                "a launch checks the same); then say what a launch would do with the database "
                "and run directories (create or resume, how many runs would start), changing "
                "neither; exit status 2 with the reason when a launch would be refused");
  cmd->add_option("--journal", a->journal,
                  "database journal: auto (WAL on local disks, rollback journal on NFS/Lustre/"
                  "GPFS), wal, or delete")
      ->check(CLI::IsMember({"auto", "wal", "delete"}))
      ->capture_default_str();
  cmd->add_option("--stats", a->stats,
                  "write this launch's statistics (runs, wall, child and coordinator CPU "
                  "seconds) as JSON to this file (benchmarks)");
  cmd->callback([a] { run_sweep(*a); });
}

}  // namespace jslds::cli
