// Signals at the CLI level (DESIGN §2, issue 6): SIGUSR1 to mpirun and SIGTERM to the ranks
// directly both end the job within 60 s with no run left `running`, and the same command
// resumes the rest; plain SIGTERM to mpirun (ranks SIGKILLed a second later) loses no
// checkpoint; readers polling the database during a campaign never fail and never make
// the writer fail.
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/sweep/job.h"

namespace jslds {
namespace {

using namespace jslds::test;
using store::RunStatus;

const char* kSpec = R"([campaign]
name = "signals"
[base]
data.simulate = "oscillator"
train.steps = 200
train.eval_every = 10
train.checkpoint_every = 50
[parameters]
"model.latent_dim" = { values = [8, 16, 32] }
"loss.w_approx" = { values = [1.0, 10.0] }
)";

class SweepSignals : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_directory(::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::ofstream(dir_ / "spec.toml") << kSpec;
    db_ = dir_ / "jslds.sqlite";
    argv_ = sweep_command(3, {(dir_ / "spec.toml").string(), "--db", db_.string()});
    env_ = {{"JSLDS_TRAIN_EXE", JSLDS_FAKE_TRAIN_EXE}, {"FAKE_TRAIN_STEP_MS", "20"}};
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Waits until a running run has a checkpoint recorded (the campaign is under way).
  void wait_for_running_checkpoint(ChildProcess& job) {
    for (int i = 0; i < 1200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      bool ready = read_db(db_, [](store::ExperimentStore& s) {
                     auto c = s.find_campaign("signals");
                     if (!c) return false;
                     for (const auto& r : s.list_runs(c->id, RunStatus::kRunning))
                       for (const auto& a : s.artifacts(r.id))
                         if (a.kind == "checkpoint" && a.step.value_or(0) > 0) return true;
                     return false;
                   }).value_or(false);
      if (ready) return;
      ASSERT_FALSE(job.try_wait()) << slurp(dir_ / "first.log");
    }
    FAIL() << "no checkpoint within 120 s:\n" << slurp(dir_ / "first.log");
  }

  // The same command again, with fast steps: it must finish and exit 0.
  void resume_to_completion() {
    env_["FAKE_TRAIN_STEP_MS"] = "2";
    ChildProcess resume = start(argv_, dir_ / "second.log", env_);
    auto status = wait_for(resume, std::chrono::seconds(180));
    ASSERT_TRUE(status) << slurp(dir_ / "second.log");
    EXPECT_EQ(exit_code(*status), 0) << slurp(dir_ / "second.log");
  }

  // After a graceful stop: nothing running, some runs interrupted at a step > 0; then the
  // same command completes every run.
  void expect_clean_stop_then_resume() {
    auto counts = read_db(db_, [](store::ExperimentStore& s) {
      std::map<RunStatus, int> c;
      for (const auto& r : s.list_runs(s.find_campaign("signals")->id)) {
        ++c[r.status];
        if (r.status == RunStatus::kInterrupted) {
          EXPECT_GT(r.steps_done, 0) << r.number;
        }
      }
      return c;
    });
    ASSERT_TRUE(counts);
    EXPECT_EQ((*counts)[RunStatus::kRunning], 0);
    EXPECT_GE((*counts)[RunStatus::kInterrupted], 1);
    EXPECT_LT((*counts)[RunStatus::kDone], 6);

    ASSERT_NO_FATAL_FAILURE(resume_to_completion());
    auto done = read_db(db_, [](store::ExperimentStore& s) {
      return s.list_runs(s.find_campaign("signals")->id, RunStatus::kDone).size();
    });
    EXPECT_EQ(done.value_or(0), 6u) << slurp(dir_ / "second.log");
  }

  fs::path dir_, db_;
  std::vector<std::string> argv_;
  std::map<std::string, std::string> env_;
};

TEST_F(SweepSignals, SigUsr1ToMpirunStopsGracefullyWithin60Seconds) {
  ChildProcess job = start(argv_, dir_ / "first.log", env_);
  wait_for_running_checkpoint(job);
  ASSERT_EQ(::kill(job.pid(), SIGUSR1), 0);
  auto status = wait_for(job, std::chrono::seconds(60));
  ASSERT_TRUE(status) << "still running 60 s after SIGUSR1:\n" << slurp(dir_ / "first.log");
  EXPECT_EQ(exit_code(*status), 0) << slurp(dir_ / "first.log");
  EXPECT_NE(slurp(dir_ / "first.log").find("SIGUSR1"), std::string::npos);
  expect_clean_stop_then_resume();
}

TEST_F(SweepSignals, SigTermToTheRanksStopsGracefullyWithin60Seconds) {
  ChildProcess job = start(argv_, dir_ / "first.log", env_);
  wait_for_running_checkpoint(job);
  // A rank starts as jslds and execs jslds-full for the sweep (cli/db_main.cpp).
  auto ranks = children_named(job.pid(), "jslds-full");
  ASSERT_EQ(ranks.size(), 3u);
  for (pid_t rank : ranks) ::kill(rank, SIGTERM);
  auto status = wait_for(job, std::chrono::seconds(60));
  ASSERT_TRUE(status) << "still running 60 s after SIGTERM:\n" << slurp(dir_ / "first.log");
  EXPECT_EQ(exit_code(*status), 0) << slurp(dir_ / "first.log");
  expect_clean_stop_then_resume();
}

// Found by a tester: a second Ctrl-C ended the sweep without a word after "stopping: …".
// It says what happened and how to go on, and the campaign resumes.
TEST_F(SweepSignals, ASecondSignalExitsAtOnceAndSaysHowToResume) {
  argv_ = sweep_command(0, {(dir_ / "spec.toml").string(), "--db", db_.string(), "--jobs", "2"});
  env_["FAKE_TRAIN_STOP_CHECKPOINT_MS"] = "10000";  // a slow stop, for the second signal to cut short
  ChildProcess job = start(argv_, dir_ / "first.log", env_);
  wait_for_running_checkpoint(job);
  ASSERT_EQ(::kill(job.pid(), SIGINT), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(job.pid(), SIGINT);
  auto status = wait_for(job, std::chrono::seconds(30));
  ASSERT_TRUE(status) << slurp(dir_ / "first.log");
  EXPECT_EQ(exit_code(*status), 130) << slurp(dir_ / "first.log");
  EXPECT_NE(slurp(dir_ / "first.log").find("jslds: a second stop signal: exiting now; the running trainings were killed. "
                                           "Run the same command again to resume"),
            std::string::npos)
      << slurp(dir_ / "first.log");
  env_["FAKE_TRAIN_STEP_MS"] = "0";
  env_.erase("FAKE_TRAIN_STOP_CHECKPOINT_MS");
  ChildProcess resume = start(argv_, dir_ / "second.log", env_);
  auto resumed = wait_for(resume, std::chrono::seconds(120));
  ASSERT_TRUE(resumed) << slurp(dir_ / "second.log");
  EXPECT_EQ(exit_code(*resumed), 0) << slurp(dir_ / "second.log");
}

// Plain SIGTERM to mpirun: Open MPI forwards it to the ranks and SIGKILLs them about a second
// later, before a slow stop checkpoint (3 s here, like a large model's) is written, so the
// database never hears of it. Resumed at once, the supervisors stop any trainer still running
// in its run directory, adopt each stop checkpoint through the trainer's receipt, and the runs
// continue from it instead of from step 0 (there are no periodic checkpoints to fall back on).
TEST_F(SweepSignals, SigTermToMpirunLosesNoCheckpointWrittenAfterTheRanksDie) {
  std::string spec = kSpec;
  spec.replace(spec.find("train.checkpoint_every = 50"), 27, "train.checkpoint_every = 100000");
  std::ofstream(dir_ / "spec.toml") << spec;
  env_["FAKE_TRAIN_STOP_CHECKPOINT_MS"] = "3000";
  ChildProcess job = start(argv_, dir_ / "first.log", env_);
  // Wait until a run has trained a little (progress recorded).
  bool under_way = false;
  for (int i = 0; i < 1200 && !under_way; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    under_way = read_db(db_, [](store::ExperimentStore& s) {
                  auto c = s.find_campaign("signals");
                  if (!c) return false;
                  for (const auto& r : s.list_runs(c->id, RunStatus::kRunning))
                    if (r.steps_done >= 20) return true;
                  return false;
                }).value_or(false);
    ASSERT_FALSE(job.try_wait()) << slurp(dir_ / "first.log");
  }
  ASSERT_TRUE(under_way) << slurp(dir_ / "first.log");
  ASSERT_EQ(::kill(job.pid(), SIGTERM), 0);
  auto status = wait_for(job, std::chrono::seconds(60));
  ASSERT_TRUE(status) << "mpirun still running 60 s after SIGTERM:\n" << slurp(dir_ / "first.log");

  ASSERT_NO_FATAL_FAILURE(resume_to_completion());
  auto runs = read_db(db_, [](store::ExperimentStore& s) {
    return s.list_runs(s.find_campaign("signals")->id);
  });
  ASSERT_TRUE(runs);
  int continued = 0, adopted = 0;
  for (const auto& r : *runs) {
    SCOPED_TRACE(r.number);
    EXPECT_EQ(r.status, RunStatus::kDone);
    std::istringstream history(slurp(fs::path(r.run_dir) / "fake_history.txt"));
    std::vector<long> starts;
    for (std::string word; history >> word;) {
      long step = -1;
      history >> step;
      starts.push_back(step);
    }
    ASSERT_FALSE(starts.empty());
    EXPECT_EQ(starts.front(), 0);
    if (starts.size() >= 2) {
      EXPECT_GT(starts[1], 0) << "an interrupted run restarted from step 0";
      ++continued;
    }
    if (slurp(fs::path(r.run_dir) / "log.txt").find("adopted checkpoint.pt of step") !=
        std::string::npos)
      ++adopted;
  }
  EXPECT_GE(continued, 1) << "no run was under way at the SIGTERM";
  EXPECT_EQ(adopted, continued) << "each continued run used a checkpoint the database never "
                                   "recorded, vouched for by its receipt";
}

TEST_F(SweepSignals, ReadersDuringACampaignNeverFailAndNeverDisturbTheWriter) {
  env_["FAKE_TRAIN_STEP_MS"] = "10";  // 2 s per run, 6 s in all
  ChildProcess job = start(argv_, dir_ / "first.log", env_);
  const bool cli_status =
      std::system((std::string(JSLDS_EXE) + " --help | grep -q '^  status '").c_str()) == 0;
  int reads = 0, reads_of_the_campaign = 0;
  std::optional<int> status;
  while (!(status = job.try_wait())) {
    // An in-process reader and, where `jslds status` exists, the CLI reader.
    read_db(db_, [&](store::ExperimentStore& s) {
      if (auto c = s.find_campaign("signals")) {
        s.list_runs(c->id);
        s.events(c->id);
        ++reads_of_the_campaign;
      }
      return 0;
    });
    if (cli_status) {
      // Before the campaign exists, status may report that; once it exists (checked before
      // the call, or the check would race with its creation) status must succeed.
      bool exists = read_db(db_, [](store::ExperimentStore& s) {
                      return s.find_campaign("signals").has_value();
                    }).value_or(false);
      int rc = std::system((std::string(JSLDS_EXE) + " status signals --db " + db_.string() +
                            " >/dev/null 2>" + (dir_ / "status.err").string())
                               .c_str());
      if (exists) {
        EXPECT_EQ(rc, 0) << slurp(dir_ / "status.err");
      }
    }
    ++reads;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Counted in reads of the live campaign, not in time: on a loaded machine one `jslds
  // status` (which loads LibTorch) can take seconds.
  EXPECT_GE(reads_of_the_campaign, 2) << "the readers must overlap the campaign (" << reads
                                      << " reads in all)";
  EXPECT_EQ(exit_code(*status), 0) << slurp(dir_ / "first.log");
  auto done = read_db(db_, [](store::ExperimentStore& s) {
    return s.list_runs(s.find_campaign("signals")->id, RunStatus::kDone).size();
  });
  EXPECT_EQ(done.value_or(0), 6u);
  if (!cli_status) std::cerr << "note: `jslds status` is not built yet; only in-process readers ran\n";
}

}  // namespace
}  // namespace jslds
