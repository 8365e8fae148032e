// `jslds query/best/show/export/status` end to end on a small database, including `status`
// from another process while a writer commits (issue 6 item 8, issue 7); and the top level:
// `jslds --help` and unknown commands.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "coordinator/launch_lock.h"
#include "store/experiment_store.h"

namespace jslds::store {
namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs the jslds executable with `args` (single-quoted for the shell, no user input here).
Result jslds(const std::string& args, const fs::path& dir) {
  std::string err_file = (dir / "stderr.txt").string();
  std::string command = std::string(JSLDS_EXE) + " " + args + " 2>" + err_file;
  Result r;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  return r;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt_name();
    fs::create_directories(dir_);
    db_ = (dir_ / "jslds.sqlite").string();
    ExperimentStore store(db_);
    auto c = store.create_or_load_campaign(
        {"reach-v1", "spec", "sha", "grid", "val_bps", "maximize"});
    std::vector<NewRun> runs;
    for (int i = 1; i <= 4; ++i) {
      NewRun r;
      r.number = i;
      r.config_json = R"({"model":{"latent_dim":)" + std::to_string(16 * i) +
                      R"(},"train":{"steps":100}})";
      r.config_sha256 = "sha" + std::to_string(i);
      r.run_dir = (dir_ / std::to_string(i)).string();
      r.params = {{"model.latent_dim", 16.0 * i}};
      runs.push_back(r);
    }
    auto ids = store.insert_runs(c.id, runs);
    for (int i = 0; i < 3; ++i) {
      store.transition_run(ids[i].id, RunStatus::kRunning, {.worker = "rank 1", .device = "cpu"});
      store.record_metrics(ids[i].id, 100, {{"train_loss", 2.0 - i}, {"val_bps", 0.1 * i}});
      store.transition_run(ids[i].id, RunStatus::kDone, {.steps_done = 100});
      store.record_summaries(ids[i].id, {{"val_bps", 0.1 * (i + 1)},
                                         {"rel_state_error", 0.01 * (i + 1) * (i + 1)}});
    }
    store.transition_run(ids[3].id, RunStatus::kRunning, {.worker = "rank 2"});
    store.transition_run(ids[3].id, RunStatus::kFailed,
                         {.error = "child killed by signal 9 (SIGKILL)"});
    // Expansion points come first in the analysis (idx 0, 1), the fixed point after them.
    store.record_fixed_points(ids[0].id, std::vector<FixedPointRecord>{
                                             {0, "expansion", 1e-3, "marginal", 0, 1.0, {0, 1}, {}},
                                             {1, "expansion", 2e-3, "marginal", 0, 1.0, {1, 1}, {}},
                                             {2, "numerical", 1e-9, "stable", 0, 0.9, {1, 2}, true}});
    store.record_modes(ids[0].id, std::vector<ModeRecord>{{0, 0, 0.8, 0.3, 0.854, 7.5, 0.13}});
    store.record_artifact(ids[0].id, {"checkpoint", r_dir(1) + "/checkpoint.pt", 100, 3 << 20,
                                      "ab", ""});
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string fmt_name() const {
    return "jslds-cli-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  std::string r_dir(int n) const { return (dir_ / std::to_string(n)).string(); }
  std::string db() const { return " --db '" + db_ + "'"; }

  fs::path dir_;
  std::string db_;
};

TEST_F(Cli, QueryFiltersSortsAndFormats) {
  Result r = jslds("query" + db() +
                       " --where 'summary.val_bps >= 0.2 AND params.model.latent_dim < 64'"
                       " --sort summary.val_bps desc --format json",
                   dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["number"], 3);
  EXPECT_EQ(j[1]["number"], 2);
  EXPECT_DOUBLE_EQ(j[0]["params.model.latent_dim"].get<double>(), 48.0);

  r = jslds("query" + db() + " --where 'status = \"failed\"' --columns number,error --format csv",
            dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "number,error\r\n4,child killed by signal 9 (SIGKILL)\r\n");
}

TEST_F(Cli, BadFilterIsAUsageErrorWithTheColumn) {
  Result r = jslds("query" + db() + " --where 'summary.val_bps >'", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("column 18"), std::string::npos) << r.err;
  r = jslds("query" + db() + " --where 'summary.val_bsp > 1'", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("did you mean 'summary.val_bps'"), std::string::npos) << r.err;
  r = jslds("query --db '" + (dir_ / "absent.sqlite").string() + "'", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no experiment database"), std::string::npos) << r.err;
}

TEST_F(Cli, ANonSweptConfigKeyIsRejectedWithTheSweptOnes) {
  // train.steps is in every run's configuration but the campaign does not sweep it.
  for (const std::string option : {"--where 'params.train.steps > 10'",
                                   "--columns number,params.train.steps",
                                   "--sort params.train.steps"}) {
    Result r = jslds("query" + db() + " " + option, dir_);
    EXPECT_EQ(r.exit_code, 2) << option;
    EXPECT_TRUE(r.out.empty()) << option;
    EXPECT_NE(r.err.find("no swept parameter 'train.steps'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("params.KEY takes only a run-config key that the sweep varies"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("; swept params: params.model.latent_dim;"), std::string::npos) << r.err;
  }
  Result r = jslds("query --help", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("params.KEY (a dotted run-config key that the campaign sweeps"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("params.KEY (dotted run-config key)"), std::string::npos) << r.out;
}

// `jslds --help` lists every command on one line; a command's details are in its own --help.
TEST_F(Cli, TopLevelHelpListsEveryCommandOnOneLine) {
  Result r = jslds("--help", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream help(r.out.substr(r.out.find("\nSubcommands:\n") + 14));
  std::vector<std::string> commands;
  for (std::string line; std::getline(help, line) && !line.empty();) {
    ASSERT_TRUE(line.starts_with("  ") && line[2] != ' ') << "not a command's first line:\n" << line;
    const std::size_t gap = line.find(' ', 2);
    commands.push_back(line.substr(2, gap - 2));
    const std::size_t description = line.find_first_not_of(' ', gap);
    ASSERT_NE(description, std::string::npos) << line;
    EXPECT_LE(line.size() - description, 100u) << line;
  }
  EXPECT_EQ(commands, (std::vector<std::string>{"config", "simulate", "data", "sweep", "status",
                                                "query", "best", "show", "export", "train",
                                                "analyze"}));
  // The long descriptions moved to the command's own help.
  r = jslds("train --help", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("Train one model, then analyse its fixed points and eigenmodes\n"))
      << r.out;
  EXPECT_NE(r.out.find("Exit status: 0 when the run ended done or diverged"), std::string::npos)
      << r.out;
  r = jslds("simulate --help", dir_);
  EXPECT_NE(r.out.find("seed give a byte-identical file"), std::string::npos) << r.out;
}

// A word that is no command is named, with the commands (not "A subcommand is required").
TEST_F(Cli, AnUnknownCommandIsNamedWithTheCommands) {
  const std::string commands =
      "config, simulate, data, sweep, status, query, best, show, export, train, analyze";
  Result r = jslds("bogus", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "error: unknown command 'bogus'; jslds takes one of " + commands +
                       " (`jslds --help` describes them)\n");
  r = jslds("sweeep spec.toml", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "error: unknown command 'sweeep' (did you mean 'sweep'?); jslds takes one of " +
                       commands + " (`jslds --help` describes them)\n");
  r = jslds("", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "error: jslds needs a command: one of " + commands +
                       " (`jslds --help` describes them)\n");
  r = jslds("config chek x.toml", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "error: unknown command 'chek' (did you mean 'check'?); jslds config takes one "
                   "of defaults, check (`jslds config --help` describes them)\n");
  // A command missing its own argument still says which.
  r = jslds("train", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("config is required"), std::string::npos) << r.err;
}

TEST_F(Cli, BestAndPareto) {
  Result r = jslds("best reach-v1 --format csv" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "number,status,params.model.latent_dim,summary.val_bps\r\n3,done,48,0.30000000000000004\r\n");
  r = jslds("best reach-v1 --pareto val_bps:max,rel_state_error:min --format json" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 3u);  // a pure trade-off: all three
  EXPECT_NE(r.err.find("Pareto front of 3 runs"), std::string::npos) << r.err;
}

TEST_F(Cli, ShowPrintsEverySection) {
  Result r = jslds("show reach-v1/1" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* section :
       {"run reach-v1/1 (id 1): done", "model.latent_dim = 16", "train.steps = 100",
        "running -> done", "train_loss", "rel_state_error", "1 stable", "7.5", "0.13",
        "checkpoint.pt  (3.0 MiB, step 100)"}) {
    EXPECT_NE(r.out.find(section), std::string::npos) << "missing '" << section << "' in\n"
                                                      << r.out;
  }
  // The fixed point is listed before the expansion points, with its refinement verdict, so a
  // short --points still shows it.
  r = jslds("show reach-v1/1 --points 1" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("  2  numerical  stable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("yes"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("  0  expansion"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("... 2 more"), std::string::npos) << r.out;
  r = jslds("show reach-v1/9" + db(), dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("has no run number 9"), std::string::npos) << r.err;
}

// A campaign folder moved together with its database: until the next launch records the new
// place, `show` names the run directory where it is now (jslds-runs/CAMPAIGN/ beside the
// database, its campaign.json naming this campaign) and its files there; a run directory found
// nowhere is said to be missing instead of listed as if present.
TEST_F(Cli, ShowNamesARunDirectoryMovedWithTheDatabase) {
  std::string created_at;
  {
    ExperimentStore store(db_);
    created_at = store.find_campaign("reach-v1")->created_at;
  }
  const fs::path project = dir_ / "project";
  const fs::path root = project / "jslds-runs" / "reach-v1";
  fs::create_directories(root / "1");
  fs::copy_file(db_, project / "jslds.sqlite");
  const std::string moved_db = " --db '" + (project / "jslds.sqlite").string() + "'";

  // No marker yet: the stored directory is gone and nothing says where it went.
  Result r = jslds("show reach-v1/1" + moved_db, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("run dir     " + r_dir(1) + " (not found: deleted, or moved"),
            std::string::npos) << r.out;

  // Another campaign's marker is not this one's.
  std::ofstream(root / "campaign.json")
      << nlohmann::json{{"campaign", "reach-v1"}, {"created_at", "1999-01-01T00:00:00Z"}}.dump();
  r = jslds("show reach-v1/1" + moved_db, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(not found: deleted, or moved"), std::string::npos) << r.out;

  std::ofstream(root / "campaign.json")
      << nlohmann::json{{"campaign", "reach-v1"}, {"created_at", created_at}}.dump();
  r = jslds("show reach-v1/1" + moved_db, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("run dir     " + (root / "1").string() + " (recorded as " + r_dir(1) +
                       ", which no longer exists"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find((root / "1" / "checkpoint.pt").string() + "  (3.0 MiB, step 100)"),
            std::string::npos) << r.out;
  // Read-only: the database still records the old place.
  ExperimentStore store((project / "jslds.sqlite").string());
  EXPECT_EQ(store.get_run(1).run_dir, r_dir(1));

  // A run directory that exists is printed as stored, without a note.
  fs::create_directories(r_dir(1));
  r = jslds("show reach-v1/1" + moved_db, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("run dir     " + r_dir(1) + "\n"), std::string::npos) << r.out;
}

// A table that cannot be written whole (a full disk; /dev/full) is an error, not a success
// with a truncated file behind it.
TEST_F(Cli, AFailedWriteToStandardOutputIsAnError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this machine";
  for (const std::string command : {"query --campaign reach-v1", "export reach-v1", "show reach-v1/1",
                                    "status", "best reach-v1"}) {
    SCOPED_TRACE(command);
    Result r = jslds(command + db() + " >/dev/full", dir_);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("error: writing to standard output failed (No space left on device); "
                         "what was printed is incomplete"),
              std::string::npos) << r.err;
  }
  Result r = jslds("query --campaign reach-v1" + db(), dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // A dry run's plan is its result too (a sweep's progress lines only get a warning).
  std::ofstream(dir_ / "spec.toml") << "[campaign]\nname = \"plan\"\n[base.data]\nsimulate = \"oscillator\"\n"
                                       "[parameters]\n\"model.latent_dim\" = { values = [4, 8] }\n";
  r = jslds("sweep '" + (dir_ / "spec.toml").string() + "' --dry-run --db '" + (dir_ / "plan.sqlite").string() +
                "' >/dev/full",
            dir_);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("error: writing to standard output failed"), std::string::npos) << r.err;
}

// Found by a tester: a sweep's data check printed the loader's window note twice, once on its
// own "data:" line and again inside the summary of the data section.
TEST_F(Cli, ASweepsDataCheckGivesEachDataSectionOneLine) {
  const fs::path nwb = fs::path(JSLDS_SHARED_DATA_DIR) / "human_mtl_zheng2022_sub4.nwb";
  if (!fs::exists(nwb)) GTEST_SKIP() << nwb << " is absent (see ../shared/data/README.md)";
  std::ofstream(dir_ / "windows.toml") << "[campaign]\nname = \"windows\"\n[base.data]\npath = \"" << nwb.string()
                                       << "\"\ntrials = \"encoding_table\"\nbin_ms = 25.0\nwindow_bins = 80\n"
                                          "[parameters]\n\"model.latent_dim\" = { values = [4, 8] }\n";
  Result r = jslds("sweep '" + (dir_ / "windows.toml").string() + "' --dry-run --db '" +
                       (dir_ / "windows.sqlite").string() + "'",
                   dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string note = "90 trial(s) split into 325 window(s) of 80 bins (2000 ms)";
  const size_t first = r.err.find(note);
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(note, first + 1), std::string::npos) << r.err;
  EXPECT_EQ(r.err.rfind("data 1/1 (runs 1 and 1 more): nwb ", first), 0u) << r.err;
}

// Found by a tester: a dry run took the campaign's launch lock, creating DB.lock beside the
// database, so it failed where that folder is read-only. It only tests the lock now.
TEST_F(Cli, ADryRunCreatesNoLockFile) {
  std::ofstream(dir_ / "plan.toml") << "[campaign]\nname = \"plan\"\n[base.data]\nsimulate = \"oscillator\"\n"
                                       "[parameters]\n\"model.latent_dim\" = { values = [4, 8] }\n";
  Result r = jslds("sweep '" + (dir_ / "plan.toml").string() + "' --dry-run" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("a launch creates campaign 'plan'"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(db_ + ".lock"));
}

// --curve-steps, --points and --modes 0 list none (the curve used to be printed whole), and a
// run that never started says so instead of calling its directory missing.
TEST_F(Cli, ShowListsNoneForZeroAndSaysWhenARunHasNotStarted) {
  Result r = jslds("show reach-v1/1 --curve-steps 0 --points 0 --modes 0" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line : {"\ncurve\n  (not listed: --curve-steps 0)\n",
                           "  (not listed: --points 0)\n", "  (not listed: --modes 0)\n"})
    EXPECT_NE(r.out.find(line), std::string::npos) << "missing '" << line << "' in\n" << r.out;
  EXPECT_EQ(r.out.find("max_abs_eig"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("freq_hz"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("more"), std::string::npos) << r.out;

  {
    ExperimentStore store(db_);
    NewRun pending;
    pending.number = 5;
    pending.config_json = R"({"model":{"latent_dim":80}})";
    pending.config_sha256 = "sha5";
    pending.run_dir = r_dir(5);
    pending.params = {{"model.latent_dim", 80.0}, {"data.path", std::string("q\"uo'te\nline.h5")}};
    store.insert_runs(store.find_campaign("reach-v1")->id, std::vector<NewRun>{pending});
  }
  r = jslds("show reach-v1/5" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("  attempts    0 (not started yet)\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  run dir     " + r_dir(5) + " (created when the run first starts)\n"),
            std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("not found"), std::string::npos) << r.out;
  // A text value is quoted and escaped as in the configuration section (a raw line break and
  // an unescaped quote used to be printed).
  EXPECT_NE(r.out.find("  data.path = \"q\\\"uo'te\\nline.h5\"\n"), std::string::npos) << r.out;
}

// `jslds` runs the database commands without LibTorch (whose initialisation costs ~0.6 s of
// CPU per command) and hands the others to jslds-full beside it (cli/db_main.cpp).
TEST_F(Cli, DatabaseCommandsRunWithoutLibTorchAndTheOthersInJsldsFull) {
  Result r = jslds("--version >/dev/null; ldd " + std::string(JSLDS_EXE) + " | grep -c libtorch", dir_);
  EXPECT_EQ(r.out, "0\n") << "jslds links LibTorch again";
  r = jslds("config defaults", dir_);  // handed over: jslds-full has the command
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[model]"), std::string::npos) << r.out;
  r = jslds("status" + db(), dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("campaign reach-v1"), std::string::npos) << r.out;
  // A copy of jslds alone runs the database commands and says what is missing for the others,
  // with the shell's status for a program that cannot be run (127), not a failure's 1.
  fs::create_directories(dir_ / "alone");
  fs::copy_file(JSLDS_EXE, dir_ / "alone" / "jslds");
  const std::string alone = (dir_ / "alone" / "jslds").string();
  {
    const std::string command = alone + " config defaults >/dev/null 2>'" + (dir_ / "e.txt").string() + "'";
    const int status = std::system(command.c_str());
    EXPECT_EQ(WEXITSTATUS(status), 127);
    std::ifstream e(dir_ / "e.txt");
    std::stringstream ss;
    ss << e.rdbuf();
    EXPECT_NE(ss.str().find("error: cannot run " + (dir_ / "alone" / "jslds-full").string() +
                            " (No such file or directory)"),
              std::string::npos) << ss.str();
    EXPECT_NE(ss.str().find("keep it beside " + alone), std::string::npos) << ss.str();
  }
  EXPECT_EQ(std::system((alone + " status" + db() + " >/dev/null").c_str()), 0);
}

TEST_F(Cli, ExportWritesTheWideTable) {
  std::string out = (dir_ / "runs.csv").string();
  Result r = jslds("export reach-v1 --out '" + out + "'" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream f(out);
  std::string header;
  std::getline(f, header);
  EXPECT_NE(header.find("params.model.latent_dim,summary.rel_state_error,summary.val_bps"),
            std::string::npos)
      << header;
  int lines = 0;
  for (std::string line; std::getline(f, line);) ++lines;
  EXPECT_EQ(lines, 4);
  // Found by a tester: --out - wrote a file named "-"; it means standard output.
  r = jslds("export reach-v1 --out -" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(header, 0), 0u) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "-"));
}

TEST_F(Cli, SortDirectionAsOneWordOrTwoInAnyCase) {
  for (const char* sort : {"--sort 'summary.val_bps desc'", "--sort summary.val_bps DESC"}) {
    Result r = jslds("query" + db() + " " + sort + " --columns number --format csv", dir_);
    ASSERT_EQ(r.exit_code, 0) << sort << ": " << r.err;
    EXPECT_EQ(r.out, "number\r\n3\r\n2\r\n1\r\n4\r\n") << sort;
  }
}

TEST_F(Cli, QueryJsonKeepsTheColumnOrder) {
  Result r = jslds("query" + db() + " --columns summary.val_bps,number --format json --limit 1",
                   dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(r.out.find("summary.val_bps"), r.out.find("number")) << r.out;
}

TEST_F(Cli, CountOptionsRejectNegativeNumbersBriefly) {
  Result r = jslds("query" + db() + " --limit -1", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--limit: must be a whole number >= 0, got '-1'"), std::string::npos)
      << r.err;
  EXPECT_LT(r.err.size(), 200u) << r.err;
}

TEST_F(Cli, BestErrorsNameTheOptionOrTheCampaign) {
  Result r = jslds("best reach-v1 --metric summary.rel_state_error --goal min --format csv" + db(),
                   dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\r\n1,done,16,0.01\r\n"), std::string::npos) << r.out;
  // Another metric than the objective needs its goal: the campaign's (max, for val_bps) would
  // pick the run with the largest rel_state_error.
  r = jslds("best reach-v1 --metric rel_state_error" + db(), dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--metric rel_state_error: give --goal max or min (the campaign's goal, "
                       "maximize, is for its objective val_bps)"),
            std::string::npos) << r.err;
  r = jslds("best reach-v1 --metric val_bps --format csv" + db(), dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = jslds("best reach-v1 --pareto val_bps:max,nope:min" + db(), dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--pareto, column 13: unknown summary 'nope'"), std::string::npos)
      << r.err;
  r = jslds("best nope" + db(), dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("CAMPAIGN, column 1: no campaign 'nope'"), std::string::npos) << r.err;
  r = jslds("best reach-v1 --pareto ''" + db(), dir_);
  EXPECT_EQ(r.exit_code, 2) << "an empty --pareto fell back to the objective";
  r = jslds("best reach-v1 --pareto val_bps:max,val_bps:min" + db(), dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("listed twice"), std::string::npos) << r.err;
  {
    ExperimentStore store(db_);
    auto c = store.create_or_load_campaign({"idle", "spec", "sha", "grid", "s1", "maximize"});
    NewRun run;
    run.number = 1;
    run.config_json = "{}";
    run.config_sha256 = "x";
    run.run_dir = r_dir(9);
    store.insert_runs(c.id, std::vector<NewRun>{run});
  }
  r = jslds("best idle" + db(), dir_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("campaign 'idle' has no done runs yet (1 pending)"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("--metric"), std::string::npos) << r.err;
}

TEST_F(Cli, ShowSaysDurationIsTheLastAttemptsOnly) {
  Result r = jslds("show reach-v1/1" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto line = r.out.find("\n  duration_s  ");  // a few milliseconds in the fixture
  ASSERT_NE(line, std::string::npos) << r.out;
  EXPECT_EQ(r.out.substr(r.out.find(' ', line + 15), 37), " (wall seconds from start to finish)\n")
      << r.out;
  {
    // Run 4 (failed) is retried, interrupted, resumed and finishes: 3 attempts, the last of
    // which took 90 s of wall time.
    ExperimentStore store(db_);
    const int64_t id = store.find_run(1, 4)->id;
    store.transition_run(id, RunStatus::kRunning);
    store.transition_run(id, RunStatus::kInterrupted, {.error = "stopped by SIGTERM"});
    store.transition_run(id, RunStatus::kRunning);
    store.transition_run(id, RunStatus::kDone, {.steps_done = 100});
    store.record_summaries(id, {{"train_seconds", 150.5}});
    store.database().exec(
        "UPDATE runs SET started_at = strftime('%Y-%m-%dT%H:%M:%fZ', julianday(finished_at) - "
        "90.0 / 86400.0) WHERE id = " + std::to_string(id));
  }
  r = jslds("show reach-v1/4" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\n  duration_s  90.0 (wall seconds of the last of 3 attempts only, start to "
                       "finish; training time of all attempts: summary train_seconds = 150.5)\n"),
            std::string::npos)
      << r.out;
  // The same value in `jslds query`.
  r = jslds("query" + db() + " --where 'number = 4' --columns duration_s --format json", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(nlohmann::json::parse(r.out)[0]["duration_s"].get<double>(), 90.0, 1e-3) << r.out;
}

TEST_F(Cli, ShowSaysWhatWasNotRecorded) {
  Result r = jslds("show reach-v1/2" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* section : {"\nanalysed points (fixed points and expansion points)\n  (none recorded)\n",
                              "\nslowest modes\n  (none recorded)\n",
                              "\nfiles\n  (none recorded)\n"}) {
    EXPECT_NE(r.out.find(section), std::string::npos) << "missing '" << section << "' in\n"
                                                      << r.out;
  }
}

TEST_F(Cli, StatusOfAFinishedCampaignWithAMultiLineError) {
  {
    ExperimentStore store(db_);
    auto runs = store.list_runs(1);
    store.transition_run(runs[3].id, RunStatus::kRunning);
    store.transition_run(runs[3].id, RunStatus::kFailed,
                         {.error = "child exited with status 1\nlast lines:\n  bad config"});
  }
  Result r = jslds("status reach-v1" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("remaining   none: complete, all 4 runs finished (3 done)"),
            std::string::npos)
      << r.out;
  // Found by a tester: a campaign finished within its first minute is not "too early" for a rate.
  EXPECT_NE(r.out.find("finished within "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" s of the campaign's creation: too short for a rate\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("too early"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("child exited with status 1 | last lines: | bad config\n"),
            std::string::npos)
      << r.out;
}

TEST_F(Cli, StatusExplainsAWorkerHoldingItsNextRun) {
  {
    ExperimentStore store(db_);
    auto c = store.create_or_load_campaign({"short", "spec", "sha", "grid", "s1", "maximize"});
    std::vector<NewRun> runs;
    for (int64_t i = 1; i <= 3; ++i) {
      NewRun run;
      run.number = i;
      run.config_json = "{}";
      run.config_sha256 = "x" + std::to_string(i);
      run.run_dir = r_dir(20 + i);
      runs.push_back(run);
    }
    store.insert_runs(c.id, runs);
    auto rows = store.list_runs(c.id);
    store.transition_run(rows[0].id, RunStatus::kRunning, {.worker = "rank 1 on vm", .device = "cpu"});
    store.transition_run(rows[1].id, RunStatus::kRunning, {.worker = "rank 2 on vm", .device = "cpu"});
  }
  Result r = jslds("status short" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("running (2)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("listed twice"), std::string::npos) << "one run per worker:\n" << r.out;
  {
    ExperimentStore store(db_);  // rank 1 is handed the run it starts next
    auto rows = store.list_runs(store.find_campaign("short")->id);
    store.transition_run(rows[2].id, RunStatus::kRunning, {.worker = "rank 1 on vm", .device = "cpu"});
  }
  r = jslds("status short" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("running (3)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(a worker listed twice also holds the run it starts next"), std::string::npos) << r.out;
}

TEST_F(Cli, StatusSaysWhenNoLaunchHoldsARunningCampaign) {
  {
    ExperimentStore store(db_);
    auto c = store.create_or_load_campaign({"orphan", "spec", "sha", "grid", "s1", "maximize"});
    store.set_campaign_status(c.id, "running");
  }
  const std::string warning = "no `jslds sweep` holds this campaign's launch lock";
  {
    jslds::CampaignLaunchLock live(db_, "orphan");  // a coordinator at work
    ASSERT_TRUE(live.held());
    Result r = jslds("status orphan" + db(), dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find(warning), std::string::npos) << r.out;
  }
  Result r = jslds("status orphan" + db(), dir_);  // the coordinator is gone, the status stayed
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(warning), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Run the same `jslds sweep` command again to resume"), std::string::npos) << r.out;
  {
    ExperimentStore store(db_);  // a finished campaign needs no launch
    store.set_campaign_status(store.find_campaign("orphan")->id, "finished");
  }
  r = jslds("status orphan" + db(), dir_);
  EXPECT_EQ(r.out.find(warning), std::string::npos) << r.out;
}

TEST_F(Cli, StatusGivesAnEtaOnlyWhileALaunchRunsTheCampaign) {
  {
    // One run left; the 4 finished runs (3 done, 1 failed) finished in the hour before the last
    // finish, in a campaign created 2 hours ago: 4 runs/h, so 15 minutes for the last one.
    ExperimentStore store(db_);
    NewRun run;
    run.number = 5;
    run.config_json = "{}";
    run.config_sha256 = "sha5";
    run.run_dir = r_dir(5);
    store.insert_runs(1, std::vector<NewRun>{run});
    store.database().exec(
        "UPDATE campaigns SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours')");
    store.set_campaign_status(1, "stopped");
  }
  const std::string no_eta =
      "remaining   1 run, no ETA: no `jslds sweep` is running this campaign (run the same "
      "`jslds sweep` command again to resume it)\n";
  Result r = jslds("status reach-v1" + db(), dir_);  // stopped, no lock file to ask
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(no_eta), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("ETA 15m00s"), std::string::npos) << r.out;
  {
    ExperimentStore(db_).set_campaign_status(1, "running");
    jslds::CampaignLaunchLock live(db_, "reach-v1");  // a coordinator at work
    ASSERT_TRUE(live.held());
    r = jslds("status reach-v1" + db(), dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("remaining   1 run, ETA 15m00s\n"), std::string::npos) << r.out;
  }
  r = jslds("status reach-v1" + db(), dir_);  // still `running`, but its launch is gone
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(no_eta), std::string::npos) << r.out;
}

TEST_F(Cli, ExportNeverOverwritesADatabase) {
  std::string other = (dir_ / "other.sqlite").string();
  { ExperimentStore store(other); }
  for (const std::string& out : {db_, db_ + "-wal", (dir_ / "." / "jslds.sqlite").string(), other,
                                 dir_.string()}) {
    Result r = jslds("export reach-v1 --out '" + out + "'" + db(), dir_);
    EXPECT_EQ(r.exit_code, 2) << out;
    EXPECT_NE(r.err.find("--out '" + out + "'"), std::string::npos) << r.err;
  }
  EXPECT_TRUE(is_sqlite_file(db_));
  EXPECT_TRUE(is_sqlite_file(other));
  Result r = jslds("query" + db(), dir_);
  EXPECT_EQ(r.exit_code, 0) << "the database was damaged: " << r.err;
}

TEST_F(Cli, ExportRefusesAnExistingFileUnlessForced) {
  const std::string notes = (dir_ / "notes.txt").string();
  { std::ofstream(notes) << "precious\n"; }
  auto read = [](const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  Result r = jslds("export reach-v1 --out '" + notes + "'" + db(), dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--out '" + notes + "' already exists; refusing to overwrite it (give "
                       "--force to replace it"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(read(notes), "precious\n");

  r = jslds("export reach-v1 --force --out '" + notes + "'" + db(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string table = read(notes);
  EXPECT_EQ(table.rfind("campaign,number,", 0), 0u) << table;
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 5) << table;  // header + 4 runs
  for (const auto& entry : fs::directory_iterator(dir_)) {  // the temporary file was renamed
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }

  r = jslds("export reach-v1 --out '" + (dir_ / "absent" / "runs.csv").string() + "'" + db(),
            dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("the directory " + (dir_ / "absent").string() + " does not exist"),
            std::string::npos)
      << r.err;

  // --force never extends to a database.
  const std::string other = (dir_ / "other.sqlite").string();
  { ExperimentStore store(other); }
  r = jslds("export reach-v1 --force --out '" + other + "'" + db(), dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is an SQLite database"), std::string::npos) << r.err;
  EXPECT_TRUE(is_sqlite_file(other));

  // Nor to what renaming over would destroy: a symbolic link (its target would go stale) or a
  // FIFO or device (/dev/null would become a regular file). The FIFO is never opened (the
  // command would block).
  const fs::path link = dir_ / "latest.csv";
  fs::create_symlink(notes, link);
  r = jslds("export reach-v1 --force --out '" + link.string() + "'" + db(), dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is a symbolic link (to '" + notes + "'); refusing to replace it"),
            std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_symlink(link));
  const fs::path fifo = dir_ / "pipe";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  r = jslds("export reach-v1 --force --out '" + fifo.string() + "'" + db(), dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is not a regular file (a device, FIFO or socket); refusing to replace it"),
            std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_fifo(fifo));
}

TEST_F(Cli, AFileThatIsNotADatabaseIsNamed) {
  std::string text = (dir_ / "notes.txt").string();
  { std::ofstream(text) << "hello\n"; }
  Result r = jslds("query --db '" + text + "'", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("'" + text + "': the file is not an SQLite database"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("PRAGMA"), std::string::npos) << r.err;
  r = jslds("status --db '" + dir_.string() + "'", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is a directory"), std::string::npos) << r.err;
}

TEST_F(Cli, StatusWorksWhileAnotherProcessWrites) {
  pid_t writer = fork();
  ASSERT_GE(writer, 0);
  if (writer == 0) {
    int code = 0;
    try {
      ExperimentStore store(db_);
      auto runs = store.list_runs(1);
      for (int step = 0; step < 3000; ++step) {
        store.record_metrics(runs[0].id, 1000 + step, {{"train_loss", 1.0 / (step + 1)}});
      }
    } catch (const std::exception& e) {
      fprintf(stderr, "writer failed: %s\n", e.what());
      code = 1;
    }
    _exit(code);
  }
  for (int i = 0; i < 5; ++i) {
    Result r = jslds("status reach-v1" + db(), dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("4 total: 0 pending, 0 running, 3 done, 1 failed"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("child killed by signal 9 (SIGKILL)"), std::string::npos) << r.out;
  }
  int status = 0;
  ASSERT_EQ(waitpid(writer, &status, 0), writer);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the writer failed";
}

}  // namespace
}  // namespace jslds::store
