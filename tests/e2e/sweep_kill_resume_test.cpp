// Kill and resume at the CLI level (issue 6): SIGKILL to every process of an
// `mpirun -np 3 jslds sweep` job in the middle of a 6-run campaign, then the same command
// again. Children are the stand-in trainer (tests/sweep/fake_train.cpp).
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "tests/sweep/job.h"

namespace jslds {
namespace {

using namespace jslds::test;
using store::RunStatus;

const char* kSpec = R"([campaign]
name = "kill"
[base]
data.simulate = "oscillator"
train.steps = 120
train.eval_every = 10
train.checkpoint_every = 30
[parameters]
"model.latent_dim" = { values = [8, 16, 32] }
"loss.w_approx" = { values = [1.0, 10.0] }
)";

TEST(SweepKillResume, EveryRunEndsDoneOnceAndInterruptedRunsContinueFromTheirCheckpoint) {
  fs::path dir = test_directory("kill_resume");
  std::ofstream(dir / "spec.toml") << kSpec;
  const fs::path db = dir / "jslds.sqlite";
  auto argv = sweep_command(3, {(dir / "spec.toml").string(), "--db", db.string()});
  std::map<std::string, std::string> env = {{"JSLDS_TRAIN_EXE", JSLDS_FAKE_TRAIN_EXE},
                                            {"FAKE_TRAIN_STEP_MS", "25"}};  // 3 s per run

  // 1. Start, wait until two runs are done and a running one has a recorded checkpoint.
  ChildProcess job = start(argv, dir / "first.log", env);
  bool middle = false;
  for (int i = 0; i < 1200 && !middle; ++i) {  // ≤ 120 s
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    middle = read_db(db, [](store::ExperimentStore& s) {
               auto c = s.find_campaign("kill");
               if (!c) return false;
               int done = 0;
               bool checkpointed_running = false;
               for (const auto& r : s.list_runs(c->id)) {
                 done += r.status == RunStatus::kDone;
                 if (r.status == RunStatus::kRunning)
                   for (const auto& a : s.artifacts(r.id))
                     checkpointed_running |= a.kind == "checkpoint" && a.step.value_or(0) > 0;
               }
               return done >= 2 && checkpointed_running;
             }).value_or(false);
    ASSERT_FALSE(job.try_wait()) << "the job ended before it could be killed:\n"
                                 << slurp(dir / "first.log");
  }
  ASSERT_TRUE(middle) << slurp(dir / "first.log");
  size_t killed = kill_job(job.pid());
  EXPECT_GE(killed, 4u) << "mpirun, 3 ranks and at least one child";
  wait_for(job, std::chrono::seconds(10));

  // What the database says at the moment of the kill.
  struct Before {
    std::map<int64_t, std::string> done_finished_at;
    std::map<int64_t, int64_t> running_checkpoint_step;
  };
  auto before = read_db(db, [](store::ExperimentStore& s) {
    Before b;
    for (const auto& r : s.list_runs(s.find_campaign("kill")->id)) {
      if (r.status == RunStatus::kDone) b.done_finished_at[r.number] = *r.finished_at;
      if (r.status == RunStatus::kRunning)
        for (const auto& a : s.artifacts(r.id))
          if (a.kind == "checkpoint") {
            b.running_checkpoint_step[r.number] = a.step.value_or(0);
            break;
          }
    }
    return b;
  });
  ASSERT_TRUE(before);
  ASSERT_GE(before->done_finished_at.size(), 2u);
  ASSERT_FALSE(before->running_checkpoint_step.empty());

  // 2. The same command again finishes the campaign.
  env["FAKE_TRAIN_STEP_MS"] = "5";
  ChildProcess resume = start(argv, dir / "second.log", env);
  auto status = wait_for(resume, std::chrono::seconds(180));
  ASSERT_TRUE(status) << "resume did not finish:\n" << slurp(dir / "second.log");
  EXPECT_EQ(exit_code(*status), 0) << slurp(dir / "second.log");

  read_db(db, [&](store::ExperimentStore& s) {
    auto c = s.find_campaign("kill");
    EXPECT_EQ(c->epoch, 2);
    auto runs = s.list_runs(c->id);
    EXPECT_EQ(runs.size(), 6u);
    std::set<std::string> configs;
    for (const auto& r : runs) {
      SCOPED_TRACE(r.number);
      configs.insert(r.config_sha256);
      EXPECT_EQ(r.status, RunStatus::kDone);
      EXPECT_EQ(r.steps_done, 120);
      std::string history = slurp(fs::path(r.run_dir) / "fake_history.txt");
      if (before->done_finished_at.count(r.number)) {
        EXPECT_EQ(r.finished_at, before->done_finished_at.at(r.number)) << "a done run re-ran";
        EXPECT_EQ(history, "start 0\n");
      }
      if (auto it = before->running_checkpoint_step.find(r.number);
          it != before->running_checkpoint_step.end()) {
        // Continued from its recorded checkpoint (or a later one), not from step 0.
        EXPECT_EQ(history.find("start 0\n", 1), std::string::npos) << history;
        EXPECT_NE(history.find("start " + std::to_string(it->second)), std::string::npos)
            << history;
      }
    }
    EXPECT_EQ(configs.size(), 6u);
    store::Statement check(s.database(), "PRAGMA integrity_check");
    if (check.step()) {
      EXPECT_EQ(check.column_text(0), "ok");
    } else {
      ADD_FAILURE() << "PRAGMA integrity_check returned no row";
    }
    return 0;
  });
  fs::remove_all(dir);
}

// A second launch of a campaign that is still running is refused (exit 2, nothing changed);
// the first one finishes every run exactly once.
TEST(SweepKillResume, ASecondLaunchOfALiveCampaignIsRefused) {
  fs::path dir = test_directory("second_launch");
  std::string spec = kSpec;
  spec.replace(spec.find("name = \"kill\""), 13, "name = \"twice\"");
  std::ofstream(dir / "spec.toml") << spec;
  const fs::path db = dir / "jslds.sqlite";
  auto argv = sweep_command(0, {(dir / "spec.toml").string(), "--db", db.string(), "--jobs", "1"});
  std::map<std::string, std::string> env = {{"JSLDS_TRAIN_EXE", JSLDS_FAKE_TRAIN_EXE},
                                            {"FAKE_TRAIN_STEP_MS", "10"}};  // 1.2 s per run
  ChildProcess first = start(argv, dir / "first.log", env);
  bool running = false;
  for (int i = 0; i < 600 && !running; ++i) {  // ≤ 60 s
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    running = read_db(db, [](store::ExperimentStore& s) {
                auto c = s.find_campaign("twice");
                return c && !s.list_runs(c->id, RunStatus::kRunning).empty();
              }).value_or(false);
  }
  ASSERT_TRUE(running) << slurp(dir / "first.log");

  ChildProcess second = start(argv, dir / "second.log", env);
  auto refused = wait_for(second, std::chrono::seconds(60));
  ASSERT_TRUE(refused) << slurp(dir / "second.log");
  EXPECT_EQ(exit_code(*refused), 2) << slurp(dir / "second.log");
  EXPECT_NE(slurp(dir / "second.log").find("campaign 'twice' in " + db.string() +
                                           " is being run by another `jslds sweep`"),
            std::string::npos)
      << slurp(dir / "second.log");
  // A dry run says the same, with the same exit status, and no "would start".
  std::vector<std::string> dry_argv = argv;
  dry_argv.push_back("--dry-run");
  ChildProcess dry = start(dry_argv, dir / "dry.log", env);
  auto dry_end = wait_for(dry, std::chrono::seconds(60));
  ASSERT_TRUE(dry_end) << slurp(dir / "dry.log");
  EXPECT_EQ(exit_code(*dry_end), 2) << slurp(dir / "dry.log");
  EXPECT_NE(slurp(dir / "dry.log").find("a launch would be refused: campaign 'twice' in " +
                                        db.string() + " is being run by another `jslds sweep`"),
            std::string::npos)
      << slurp(dir / "dry.log");
  EXPECT_EQ(slurp(dir / "dry.log").find("would start"), std::string::npos) << slurp(dir / "dry.log");

  auto finished = wait_for(first, std::chrono::seconds(120));
  ASSERT_TRUE(finished) << slurp(dir / "first.log");
  EXPECT_EQ(exit_code(*finished), 0) << slurp(dir / "first.log");
  read_db(db, [&](store::ExperimentStore& s) {
    auto c = s.find_campaign("twice");
    EXPECT_EQ(c->epoch, 1) << "the refused launch bumped the epoch";
    for (const auto& r : s.list_runs(c->id)) {
      EXPECT_EQ(r.status, RunStatus::kDone) << "run " << r.number;
      EXPECT_EQ(r.attempts, 1) << "run " << r.number;
    }
    return 0;
  });
  fs::remove_all(dir);
}

// A second database beside the first, with a campaign of the same name: its launch is refused
// for the run directories (they are the first one's) and leaves no empty database behind.
TEST(SweepKillResume, ALaunchRefusedForItsRunDirectoriesCreatesNoDatabase) {
  fs::path dir = test_directory("refused_no_db");
  std::ofstream(dir / "spec.toml") << kSpec;
  std::map<std::string, std::string> env = {{"JSLDS_TRAIN_EXE", JSLDS_FAKE_TRAIN_EXE}};
  for (const char* name : {"first.sqlite", "second.sqlite"}) {
    const fs::path db = dir / name;
    const fs::path log = dir / (std::string(name) + ".log");
    ChildProcess p = start(sweep_command(0, {(dir / "spec.toml").string(), "--db", db.string(),
                                             "--jobs", "1"}),
                           log, env);
    auto status = wait_for(p, std::chrono::seconds(120));
    ASSERT_TRUE(status) << slurp(log);
    if (std::string(name) == "first.sqlite") {
      ASSERT_EQ(exit_code(*status), 0) << slurp(log);
      continue;
    }
    EXPECT_EQ(exit_code(*status), 2) << slurp(log);
    EXPECT_NE(slurp(log).find("run directories " + (dir / "jslds-runs" / "kill").string() +
                              " belong to campaign 'kill' created at"),
              std::string::npos)
        << slurp(log);
    EXPECT_FALSE(fs::exists(db)) << "the refused launch created its database";
    EXPECT_FALSE(fs::exists(dir / "second.sqlite.lock"));
  }
  fs::remove_all(dir);
}

TEST(SweepDataCheck, DataThatCannotBeLoadedIsRefusedBeforeAnyRunAndByDryRun) {
  // The flip-flop task's mask starts at bin 5: 4-bin trials are refused by the simulator, as
  // `jslds train` would refuse them. Before the check every run failed, one after another.
  fs::path dir = test_directory("data_check");
  std::string spec = kSpec;
  spec.replace(spec.find("name = \"kill\""), 13, "name = \"data\"");
  spec.replace(spec.find("data.simulate = \"oscillator\""), 28,
               "data.simulate = \"flipflop\"\nmodel.mode = \"task\"\ndata.sim_bins = 4");
  std::ofstream(dir / "spec.toml") << spec;
  const fs::path db = dir / "jslds.sqlite";
  std::map<std::string, std::string> env = {{"JSLDS_TRAIN_EXE", JSLDS_FAKE_TRAIN_EXE}};
  for (const bool dry : {true, false}) {
    std::vector<std::string> args = {(dir / "spec.toml").string(), "--db", db.string(), "--jobs", "1"};
    if (dry) args.push_back("--dry-run");
    const fs::path log = dir / (dry ? "dry.log" : "launch.log");
    ChildProcess p = start(sweep_command(0, args), log, env);
    auto status = wait_for(p, std::chrono::seconds(60));
    ASSERT_TRUE(status) << slurp(log);
    EXPECT_EQ(exit_code(*status), 2) << slurp(log);
    const std::string text = slurp(log);
    EXPECT_NE(text.find("the data of runs 1 and 5 more cannot be used: simulate flipflop: "
                        "data.sim_bins: is 4, expected more than 5 bins"),
              std::string::npos)
        << text;
  }
  EXPECT_FALSE(read_db(db, [](store::ExperimentStore& s) { return s.find_campaign("data").has_value(); })
                   .value_or(false))
      << "no campaign was created";
  EXPECT_FALSE(fs::exists(dir / "jslds-runs")) << "no run directory was made";

  // A model.mode that does not fit the data failed every run the same way.
  std::string task = kSpec;
  task.replace(task.find("train.steps = 120"), 17, "train.steps = 120\nmodel.mode = \"task\"");
  std::ofstream(dir / "task.toml") << task;
  ChildProcess p = start(sweep_command(0, {(dir / "task.toml").string(), "--db", db.string(),
                                           "--dry-run"}),
                         dir / "task.log", env);
  auto status = wait_for(p, std::chrono::seconds(60));
  ASSERT_TRUE(status) << slurp(dir / "task.log");
  EXPECT_EQ(exit_code(*status), 2) << slurp(dir / "task.log");
  EXPECT_NE(slurp(dir / "task.log").find("model.mode = \"task\" needs inputs and targets"),
            std::string::npos)
      << slurp(dir / "task.log");
  fs::remove_all(dir);
}

// Found by a tester: another recording copied to a campaign's data.path between two launches
// was trained on by the pending runs, and `jslds best` ranked them with the runs trained on
// the first one. The resume is refused (exit status 2, nothing started) until the data the
// runs were launched with are back; a dry run says so too.
TEST(SweepKillResume, AResumeAfterTheRecordingWasReplacedIsRefused) {
  fs::path dir = test_directory("data_changed");
  auto simulate = [&](int seed) {
    const std::string command = std::string(JSLDS_EXE) + " simulate oscillator -o " + (dir / "session.h5").string() +
                                " --set data.sim_trials=12 --seed " + std::to_string(seed) + " > /dev/null 2>&1";
    return std::system(command.c_str());
  };
  ASSERT_EQ(simulate(1), 0);
  std::ofstream(dir / "spec.toml") << "[campaign]\nname = \"swap\"\n[base]\ndata.path = \"session.h5\"\n"
                                      "train.steps = 20\ntrain.eval_every = 10\ntrain.checkpoint_every = 10\n"
                                      "[parameters]\n\"model.latent_dim\" = { values = [8, 16] }\n";
  const fs::path db = dir / "jslds.sqlite";
  auto argv = sweep_command(0, {(dir / "spec.toml").string(), "--db", db.string(), "--jobs", "1"});
  std::map<std::string, std::string> env = {{"JSLDS_TRAIN_EXE", JSLDS_FAKE_TRAIN_EXE}};
  auto launch = [&](const std::vector<std::string>& command, const std::string& log) {
    ChildProcess job = start(command, dir / log, env);
    auto end = wait_for(job, std::chrono::seconds(120));
    return end ? exit_code(*end) : -1;
  };
  ASSERT_EQ(launch(argv, "first.log"), 0) << slurp(dir / "first.log");

  ASSERT_EQ(simulate(2), 0);  // another session at the same path
  EXPECT_EQ(launch(argv, "second.log"), 2) << slurp(dir / "second.log");
  const std::string expected = "campaign 'swap': the data changed since its runs were launched: runs 1, 2 (data.path " +
                               (dir / "session.h5").string() + ") were launched with data of fingerprint ";
  EXPECT_NE(slurp(dir / "second.log").find(expected), std::string::npos) << slurp(dir / "second.log");
  std::vector<std::string> dry = argv;
  dry.push_back("--dry-run");
  EXPECT_EQ(launch(dry, "dry.log"), 2) << slurp(dir / "dry.log");
  EXPECT_NE(slurp(dir / "dry.log").find("a launch would be refused: " + expected), std::string::npos)
      << slurp(dir / "dry.log");
  read_db(db, [](store::ExperimentStore& s) {
    EXPECT_EQ(s.get_campaign(s.find_campaign("swap")->id).epoch, 1);  // the refusals changed nothing
    return true;
  });

  ASSERT_EQ(simulate(1), 0);  // the original data back: the campaign resumes
  EXPECT_EQ(launch(argv, "third.log"), 0) << slurp(dir / "third.log");
}

}  // namespace
}  // namespace jslds
