// The coordinator loop with local workers and the stand-in child (no MPI, no Torch):
// a whole campaign into the database, resume without re-running, --retry-failed, a crash
// failing one run only, a graceful stop resumed from checkpoints, the spec check and the
// time limit.
#include "coordinator/coordinator.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "coordinator/artifacts_owner.h"
#include "coordinator/launch_lock.h"
#include "coordinator/worker_pool.h"
#include "coordinator/signals.h"
#include "worker/local_pool.h"

namespace jslds {
namespace {

namespace fs = std::filesystem;
using store::RunStatus;

std::string slurp(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A run that ended done at its first attempt after `steps` steps, with the val_bps the
// stand-in trainer reports for its configuration (tests/sweep/fake_train.cpp).
void expect_done_at_first_attempt(store::ExperimentStore& db, const store::RunRow& r, const ExpandedRun& run,
                                  int64_t steps) {
  EXPECT_EQ(r.status, RunStatus::kDone);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.steps_done, steps);
  EXPECT_NEAR(db.run_summaries(r.id).at("val_bps"),
              0.05 + 0.001 * run.config.model.latent_dim + 0.01 * std::log10(1.0 + run.config.loss.w_approx),
              1e-12);
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("jslds_coordinator_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    ::setenv("JSLDS_TRAIN_EXE", JSLDS_FAKE_TRAIN_EXE, 1);
    ::unsetenv("FAKE_TRAIN_FAIL");
    ::unsetenv("FAKE_TRAIN_STEP_MS");
    StopSignals::reset();
  }
  void TearDown() override {
    ::unsetenv("FAKE_TRAIN_FAIL");
    ::unsetenv("FAKE_TRAIN_STEP_MS");
    ::unsetenv("FAKE_TRAIN_STOP_CHECKPOINT_MS");
    StopSignals::reset();
    fs::remove_all(root_);
  }

  SweepSpec spec(const std::string& latent_values = "[8, 16, 32]", int64_t steps = 40) {
    return parse_sweep_spec(
        "[campaign]\nname = \"unit\"\n[base]\ndata.simulate = \"oscillator\"\n"
        "train.steps = " + std::to_string(steps) +
            "\ntrain.eval_every = 10\ntrain.checkpoint_every = 20\n[parameters]\n"
            "\"model.latent_dim\" = { values = " + latent_values +
            " }\n\"loss.w_approx\" = { values = [1.0, 10.0] }\n",
        "unit.toml", root_);
  }

  CoordinatorOptions options() {
    CoordinatorOptions o;
    o.artifacts = root_ / "runs";
    return o;
  }

  // options() with every run's data fingerprint given as `fingerprint` (as jslds sweep does).
  CoordinatorOptions options_with_data(const std::vector<ExpandedRun>& runs, const std::string& fingerprint) {
    CoordinatorOptions o = options();
    for (const auto& r : runs) o.data_sha256[r.config_sha256] = fingerprint;
    return o;
  }

  LaunchSummary launch(store::ExperimentStore& db, const SweepSpec& s, CoordinatorOptions o,
                       int jobs = 2, WorkerLoopOptions worker = {}) {
    LocalPool pool(jobs, worker);
    return Coordinator(db, pool, s, o).run();
  }

  // A launch in which the fake trainer ends runs as `failures` says ("2:abort,5:segv",
  // "2:diverge": run number, then how), for this launch only.
  LaunchSummary launch_failing(store::ExperimentStore& db, const SweepSpec& s,
                               const std::string& failures,
                               std::optional<CoordinatorOptions> o = std::nullopt) {
    ::setenv("FAKE_TRAIN_FAIL", failures.c_str(), 1);
    LaunchSummary sum = launch(db, s, o ? *o : options());
    ::unsetenv("FAKE_TRAIN_FAIL");
    return sum;
  }

  // A launch that a stop request (as a signal handler would make) ends after `delay`.
  LaunchSummary launch_stopped_after(std::chrono::milliseconds delay, store::ExperimentStore& db,
                                     const SweepSpec& s, CoordinatorOptions o,
                                     WorkerLoopOptions worker = {}) {
    std::thread stopper([delay] {
      std::this_thread::sleep_for(delay);
      StopSignals::request();
    });
    LaunchSummary sum = launch(db, s, o, 2, worker);
    stopper.join();
    return sum;
  }

  fs::path root_;
};

TEST_F(CoordinatorTest, CampaignEndsWithEveryRunDoneAndItsResultsRecorded) {
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec();
  LaunchSummary sum = launch(db, s, options());
  EXPECT_EQ(sum.runs_total, 6);
  EXPECT_EQ(sum.runs_finished, 6);
  EXPECT_EQ(sum.counts[RunStatus::kDone], 6);
  EXPECT_FALSE(sum.stopped);
  auto campaign = db.find_campaign("unit");
  ASSERT_TRUE(campaign);
  EXPECT_EQ(campaign->status, "finished");
  EXPECT_EQ(campaign->spec_sha256, s.sha256);
  auto runs = db.list_runs(campaign->id);
  ASSERT_EQ(runs.size(), 6u);
  auto expanded = expand(s);
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    SCOPED_TRACE(r.number);
    expect_done_at_first_attempt(db, r, expanded[i], 40);
    EXPECT_EQ(r.config_sha256, expanded[i].config_sha256);
    EXPECT_EQ(r.run_dir, (fs::weakly_canonical(root_ / "runs") / "unit" /
                          std::to_string(r.number)).string());
    // config.toml is the canonical text of the expanded config.
    EXPECT_EQ(slurp(fs::path(r.run_dir) / "config.toml"), to_toml(expanded[i].config));
    EXPECT_EQ(db.fixed_points(r.id).size(), 1u);
    EXPECT_EQ(db.modes(r.id).size(), 1u);
    bool checkpoint = false;
    for (const auto& a : db.artifacts(r.id))
      if (a.kind == "checkpoint") {
        checkpoint = true;
        EXPECT_EQ(a.step, 40);
        EXPECT_EQ(a.sha256, sha256_hex(slurp(fs::path(r.run_dir) / "checkpoint.pt")));
      }
    EXPECT_TRUE(checkpoint);
    auto params = db.run_params(r.id);
    ASSERT_EQ(params.size(), 2u);
  }
  store::Statement metrics(db.database(), "SELECT count(*) FROM metrics");
  ASSERT_TRUE(metrics.step());
  EXPECT_EQ(metrics.column_int64(0), 6 * 4 * 2);  // 4 evaluations x 2 metrics per run

  // The same command again resumes: nothing re-runs and finished_at stays.
  LaunchSummary again = launch(db, s, options());
  EXPECT_TRUE(again.resumed);
  EXPECT_EQ(again.epoch, 2);
  EXPECT_EQ(again.runs_finished, 0);
  auto runs2 = db.list_runs(campaign->id);
  for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs2[i].finished_at, runs[i].finished_at);
}

TEST_F(CoordinatorTest, StringParamsAreStoredAsPlainValues) {
  store::ExperimentStore db(":memory:");
  SweepSpec s = parse_sweep_spec(
      "[campaign]\nname = \"cells\"\n[base]\ndata.simulate = \"oscillator\"\n"
      "train.steps = 10\ntrain.eval_every = 10\ntrain.checkpoint_every = 10\n[parameters]\n"
      "\"model.cell\" = { values = [\"gru\", \"tanh\"] }\n",
      "cells.toml", root_);
  launch(db, s, options());
  auto runs = db.list_runs(db.find_campaign("cells")->id);
  ASSERT_EQ(runs.size(), 2u);
  std::set<std::string> cells;
  for (const auto& r : runs) {
    auto params = db.run_params(r.id);
    ASSERT_EQ(params.size(), 1u);
    ASSERT_TRUE(std::holds_alternative<std::string>(params[0].value));
    cells.insert(std::get<std::string>(params[0].value));
  }
  EXPECT_EQ(cells, (std::set<std::string>{"gru", "tanh"}));  // not "\"gru\""
}

TEST_F(CoordinatorTest, ACrashingChildFailsOnlyItsRunAndRetryFailedReRunsIt) {
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec();
  LaunchSummary sum = launch_failing(db, s, "2:abort,5:segv");
  EXPECT_EQ(sum.counts[RunStatus::kDone], 4);
  EXPECT_EQ(sum.counts[RunStatus::kFailed], 2);
  auto id = db.find_campaign("unit")->id;
  auto r2 = *db.find_run(id, 2), r5 = *db.find_run(id, 5);
  EXPECT_EQ(r2.status, RunStatus::kFailed);
  EXPECT_NE(r2.error.value_or("").find("SIGABRT"), std::string::npos) << r2.error.value_or("");
  EXPECT_NE(r5.error.value_or("").find("SIGSEGV"), std::string::npos) << r5.error.value_or("");

  // Without --retry-failed nothing runs; with it, the two failed runs run again.
  EXPECT_EQ(launch(db, s, options()).runs_finished, 0);
  auto o = options();
  o.retry_failed = true;
  LaunchSummary retry = launch(db, s, o);
  EXPECT_EQ(retry.runs_finished, 2);
  EXPECT_EQ(retry.counts[RunStatus::kDone], 6);
  EXPECT_EQ(db.find_run(id, 2)->attempts, 2);
  EXPECT_EQ(db.find_run(id, 1)->attempts, 1);
}

TEST_F(CoordinatorTest, ARetriedFailedRunContinuesFromItsLastVerifiedCheckpoint) {
  // Attempt 1 of run 2 checkpoints at steps 20 and 40, then aborts at step 50 (a crash, as
  // an out-of-memory kill): --retry-failed continues it from step 40 instead of throwing the
  // 40 steps away.
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec("[8, 16, 32]", /*steps=*/100);
  launch_failing(db, s, "2:abort");
  auto id = db.find_campaign("unit")->id;
  const auto failed = *db.find_run(id, 2);
  ASSERT_EQ(failed.status, RunStatus::kFailed);
  ASSERT_FALSE(db.artifacts(failed.id).empty()) << "attempt 1 recorded a checkpoint";
  const std::string error = failed.error.value_or("");
  EXPECT_NE(error.find("killed by SIGABRT (Aborted) at step 40; --retry-failed continues it "
                       "from its checkpoint of step 40; end of log.txt:"),
            std::string::npos) << error;

  // Attempt 2 (--retry-failed) resumes from step 40, is stopped and killed before the
  // checkpoint it would write on SIGTERM: it leaves no checkpoint of its own.
  ::setenv("FAKE_TRAIN_STEP_MS", "100", 1);
  ::setenv("FAKE_TRAIN_STOP_CHECKPOINT_MS", "60000", 1);
  WorkerLoopOptions quick_kill;
  quick_kill.supervisor.stop_grace = std::chrono::milliseconds(300);
  auto o = options();
  o.retry_failed = true;
  LaunchSummary stopped =
      launch_stopped_after(std::chrono::milliseconds(500), db, s, o, quick_kill);
  ASSERT_TRUE(stopped.stopped);
  auto second = *db.find_run(id, 2);
  EXPECT_EQ(second.status, RunStatus::kInterrupted);
  EXPECT_EQ(second.attempts, 2);
  bool step40_on_record = false;
  for (const auto& a : db.artifacts(second.id))
    step40_on_record = step40_on_record || (a.kind == "checkpoint" && a.step.value_or(-1) == 40);
  EXPECT_TRUE(step40_on_record) << "the failed attempt's checkpoint was forgotten";

  // Attempt 3 (a plain launch) resumes the interrupted retry: again from step 40.
  StopSignals::reset();
  ::unsetenv("FAKE_TRAIN_STEP_MS");
  ::unsetenv("FAKE_TRAIN_STOP_CHECKPOINT_MS");
  launch(db, s, options());
  auto third = *db.find_run(id, 2);
  EXPECT_EQ(third.status, RunStatus::kDone);
  EXPECT_EQ(third.attempts, 3);
  EXPECT_EQ(third.steps_done, 100);
  EXPECT_EQ(slurp(fs::path(third.run_dir) / "fake_history.txt"), "start 0\nstart 40\nstart 40\n");
  EXPECT_FALSE(fs::exists(fs::path(third.run_dir) / "checkpoint.pt.previous"));
  const std::string log = slurp(fs::path(third.run_dir) / "log.txt");
  EXPECT_NE(log.find("attempt 2 of run 2 (resuming from step 40)"), std::string::npos) << log;
}

TEST_F(CoordinatorTest, AFailureOrDivergenceOnTheLastAttemptSaysSoInsteadOfPromisingARetry) {
  for (const auto& [how, status] : {std::pair{"abort", RunStatus::kFailed},
                                    std::pair{"diverge", RunStatus::kDiverged}}) {
    SCOPED_TRACE(how);
    fs::remove_all(root_ / "runs");  // the first case's runs belong to its own database
    store::ExperimentStore db(":memory:");
    SweepSpec s = spec("[8]", /*steps=*/100);
    s.max_attempts = 1;
    launch_failing(db, s, std::string("2:") + how);
    const auto run = *db.find_run(db.find_campaign("unit")->id, 2);
    ASSERT_EQ(run.status, status);
    const std::string error = run.error.value_or("");
    // A failed run's error goes on with the end of its log; a diverged one's ends there.
    EXPECT_NE(error.find(status == RunStatus::kFailed
                             ? "; that was its last attempt ([campaign] max_attempts = 1); end of "
                               "log.txt:"
                             : "; that was its last attempt ([campaign] max_attempts = 1)"),
              std::string::npos) << error;
    EXPECT_EQ(error.find("--retry-failed"), std::string::npos) << error;
  }
}

TEST_F(CoordinatorTest, ARetriedDivergedRunStartsFromScratch) {
  // Attempt 1 of run 2 checkpoints at steps 20 and 40, then diverges at step 50: continuing
  // from step 40 would only repeat the divergence, so the retry starts again from step 0 and
  // keeps the diverged attempt's files aside.
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec("[8, 16, 32]", /*steps=*/100);
  launch_failing(db, s, "2:diverge");
  auto id = db.find_campaign("unit")->id;
  ASSERT_EQ(db.find_run(id, 2)->status, RunStatus::kDiverged);
  // Its error says that a retry would repeat the same training, and what helps instead.
  EXPECT_NE(db.find_run(id, 2)->error.value_or("").find(
                "; a --retry-failed start repeats the same configuration and seed, which diverge "
                "again at the same step on the same kind of machine: sweep a smaller train.lr"),
            std::string::npos)
      << db.find_run(id, 2)->error.value_or("");

  auto o = options();
  o.retry_failed = true;
  launch(db, s, o);
  auto run = *db.find_run(id, 2);
  EXPECT_EQ(run.status, RunStatus::kDone);
  EXPECT_EQ(run.attempts, 2);
  EXPECT_EQ(slurp(fs::path(run.run_dir) / "fake_history.txt"), "start 0\nstart 0\n");
  EXPECT_EQ(slurp(fs::path(run.run_dir) / "checkpoint.pt.previous").rfind("fake-checkpoint step=40", 0), 0u);
  int start_notes = 0;
  for (const auto& e : db.events(id, run.id))
    if (e.message.find("attempt 2: an earlier attempt's files were kept as checkpoint.pt.previous") !=
        std::string::npos)
      ++start_notes;
  EXPECT_EQ(start_notes, 1);
}

// One worker that says hello and then never answers: its tasks neither start nor end, as
// when a job is killed while a task waits in a worker's queue.
class SilentPool : public WorkerPool {
 public:
  int size() const override { return 1; }
  void send(int, const Message& message) override { tasks += std::holds_alternative<Task>(message) ? 1 : 0; }
  std::optional<WorkerMessage> receive(std::chrono::milliseconds timeout) override {
    if (!hello_sent_) {
      hello_sent_ = true;
      return WorkerMessage{0, Hello{"silent", 0, 1, 1, "cpu"}};
    }
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(10)));
    return std::nullopt;
  }
  std::string name(int) const override { return "silent worker"; }
  int tasks = 0;

 private:
  bool hello_sent_ = false;
};

TEST_F(CoordinatorTest, ARetryThatNeverStartedDoesNotAdoptTheDivergedAttemptsCheckpoint) {
  // Attempt 1 of run 2 checkpoints at steps 20 and 40 (with its receipt), then diverges: its
  // retry starts from scratch (a failed run's would continue from step 40).
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec("[8, 16, 32]", /*steps=*/100);
  launch_failing(db, s, "2:diverge");
  auto id = db.find_campaign("unit")->id;
  const fs::path run_dir = db.find_run(id, 2)->run_dir;
  ASSERT_TRUE(fs::exists(run_dir / "checkpoint.json"));

  // Attempt 2 (--retry-failed) is handed out but never starts; the stop marks it interrupted.
  auto o = options();
  o.retry_failed = true;
  o.stop_timeout = std::chrono::seconds(1);
  SilentPool silent;
  std::thread stopper([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    StopSignals::request();
  });
  Coordinator(db, silent, s, o).run();
  stopper.join();
  EXPECT_EQ(silent.tasks, 1);
  EXPECT_EQ(db.find_run(id, 2)->status, RunStatus::kInterrupted);
  EXPECT_FALSE(fs::exists(run_dir / "checkpoint.json"))
      << "the diverged attempt's receipt still vouches for its checkpoint";

  // The next launch continues attempt 2, which has nothing to continue: step 0, not 40.
  StopSignals::reset();
  launch(db, s, options());
  EXPECT_EQ(db.find_run(id, 2)->status, RunStatus::kDone);
  EXPECT_EQ(slurp(run_dir / "fake_history.txt"), "start 0\nstart 0\n");
}

TEST_F(CoordinatorTest, ResumedRunsKeepTheirRunDirectoriesWhateverArtifactsSays) {
  ::setenv("FAKE_TRAIN_STEP_MS", "10", 1);
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec("[8, 16, 32]", /*steps=*/200);
  launch_stopped_after(std::chrono::milliseconds(1500), db, s, options());
  auto id = db.find_campaign("unit")->id;
  ASSERT_FALSE(db.list_runs(id, RunStatus::kInterrupted).empty());

  StopSignals::reset();
  auto o = options();
  o.artifacts = root_ / "elsewhere";
  LaunchSummary resumed = launch(db, s, o);
  EXPECT_EQ(resumed.counts[RunStatus::kDone], 6);
  for (const auto& r : db.list_runs(id)) {
    EXPECT_EQ(fs::path(r.run_dir).parent_path(), root_ / "runs" / "unit") << r.run_dir;
    EXPECT_TRUE(fs::exists(fs::path(r.run_dir) / "result.json")) << r.run_dir;
    if (r.attempts > 1) {  // continued from its checkpoint, in its own directory
      std::string history = slurp(fs::path(r.run_dir) / "fake_history.txt");
      EXPECT_EQ(history.find("start 0\n", 1), std::string::npos) << history;
    }
  }
  EXPECT_FALSE(fs::exists(root_ / "elsewhere" / "unit"));
}

TEST_F(CoordinatorTest, AFolderMovedWithItsDatabaseResumesItsRunsWhereTheyAreNow) {
  // The project folder (database and run directories) moved elsewhere between two launches:
  // the interrupted runs continue from their checkpoints in the new place, not from step 0
  // in a re-created old folder.
  ::setenv("FAKE_TRAIN_STEP_MS", "10", 1);
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec("[8, 16, 32]", /*steps=*/200);
  launch_stopped_after(std::chrono::milliseconds(1500), db, s, options());
  auto id = db.find_campaign("unit")->id;
  std::map<int64_t, int64_t> steps_before;  // number → steps done, of the interrupted runs
  for (const auto& r : db.list_runs(id, RunStatus::kInterrupted)) steps_before[r.number] = r.steps_done;
  ASSERT_FALSE(steps_before.empty());
  const fs::path old_root = root_ / "runs" / "unit";
  fs::rename(root_ / "runs", root_ / "moved");
  const fs::path new_root = root_ / "moved" / "unit";

  StopSignals::reset();
  ::unsetenv("FAKE_TRAIN_STEP_MS");
  auto o = options();
  o.artifacts = root_ / "moved";
  LaunchSummary resumed = launch(db, s, o);
  EXPECT_EQ(resumed.counts[RunStatus::kDone], 6);
  EXPECT_FALSE(fs::exists(old_root)) << "the old folder was made again";
  for (const auto& r : db.list_runs(id)) {
    EXPECT_EQ(fs::path(r.run_dir), new_root / std::to_string(r.number));
    EXPECT_TRUE(fs::exists(fs::path(r.run_dir) / "result.json")) << r.run_dir;
    for (const auto& a : db.artifacts(r.id))
      EXPECT_EQ(a.path.rfind(new_root.string() + "/", 0), 0u) << a.path;
    auto before = steps_before.find(r.number);
    if (before != steps_before.end() && before->second > 0) {  // continued, not restarted
      const std::string history = slurp(fs::path(r.run_dir) / "fake_history.txt");
      EXPECT_EQ(history.find("start 0\n", 1), std::string::npos) << history;
    }
  }
  bool event = false;
  for (const auto& e : db.events(id, std::nullopt))
    event = event || e.message.find("run directories moved: " + old_root.string() +
                                    " no longer exists") != std::string::npos;
  EXPECT_TRUE(event);
}

TEST_F(CoordinatorTest, RunsWhoseFolderIsGoneAreNeverRestartedFromStepZeroUnasked) {
  // Runs 1-2 are done in runs/; runs 3-4, added later with --artifacts extra, are interrupted
  // with steps done. Then both folders move (runs/ → moved_runs/, extra/ → moved_extra/).
  store::ExperimentStore db(":memory:");
  SweepSpec small = spec("[8]", /*steps=*/200);
  launch(db, small, options());
  SweepSpec grown = spec("[8, 16]", /*steps=*/200);
  ::setenv("FAKE_TRAIN_STEP_MS", "10", 1);
  auto extra = options();
  extra.artifacts = root_ / "extra";
  extra.force_spec = true;
  launch_stopped_after(std::chrono::milliseconds(1500), db, grown, extra);
  StopSignals::reset();
  ::unsetenv("FAKE_TRAIN_STEP_MS");
  auto id = db.find_campaign("unit")->id;
  ASSERT_EQ(db.find_run(id, 3)->status, RunStatus::kInterrupted);
  ASSERT_GT(db.find_run(id, 3)->steps_done, 0);
  fs::rename(root_ / "runs", root_ / "moved_runs");
  fs::rename(root_ / "extra", root_ / "moved_extra");
  const int64_t epoch = db.get_campaign(id).epoch;

  // The default folder holds runs 1-2 only: runs 3-4 are not sent there, nor restarted in a
  // re-created extra/; the launch is refused before the database changes.
  auto o = options();
  o.artifacts = root_ / "moved_runs";
  try {
    launch(db, grown, o);
    ADD_FAILURE() << "the launch was not refused";
  } catch (const ArtifactsConflict& e) {
    const std::string why = e.what();
    EXPECT_NE(why.find("the run directories of campaign 'unit' with training to continue are "
                       "gone: " + (root_ / "extra" / "unit").string() + " (run 3 at step"),
              std::string::npos) << why;
    EXPECT_NE(why.find("launch with --artifacts set to the folder that now holds unit/"),
              std::string::npos) << why;
  }
  EXPECT_FALSE(fs::exists(root_ / "extra"));
  EXPECT_EQ(db.get_campaign(id).epoch, epoch);
  EXPECT_EQ(db.find_run(id, 1)->run_dir, (root_ / "runs" / "unit" / "1").string());
  // The preview says the same.
  std::string preview;
  for (const auto& line : preview_launch(&db, grown, expand(grown), o)) preview += line + "\n";
  EXPECT_NE(preview.find("a launch would be refused: the run directories of campaign 'unit'"),
            std::string::npos) << preview;

  // Pointed at the folder that holds runs 3-4, the launch records them there and continues
  // them; runs 1-2 (done, in the other folder) keep their records.
  o.artifacts = root_ / "moved_extra";
  LaunchSummary resumed = launch(db, grown, o);
  EXPECT_EQ(resumed.counts[RunStatus::kDone], 4);
  EXPECT_EQ(db.find_run(id, 1)->run_dir, (root_ / "runs" / "unit" / "1").string());
  for (int64_t n : {3, 4}) {
    const auto run = *db.find_run(id, n);
    EXPECT_EQ(run.run_dir, (root_ / "moved_extra" / "unit" / std::to_string(n)).string());
    const std::string history = slurp(fs::path(run.run_dir) / "fake_history.txt");
    if (run.attempts > 1 && history.rfind("start 0\n", 0) == 0) {
      EXPECT_EQ(history.find("start 0\n", 1), std::string::npos) << "restarted: " << history;
    }
  }
  EXPECT_FALSE(fs::exists(root_ / "extra"));
  // A later launch from the first folder records runs 1-2 there.
  o.artifacts = root_ / "moved_runs";
  launch(db, grown, o);
  EXPECT_EQ(db.find_run(id, 1)->run_dir, (root_ / "moved_runs" / "unit" / "1").string());
  EXPECT_EQ(db.find_run(id, 3)->run_dir, (root_ / "moved_extra" / "unit" / "3").string());
}

TEST_F(CoordinatorTest, ThePreviewSaysWhatALaunchWouldDoAndChangesNothing) {
  auto joined = [](const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  };
  SweepSpec s = spec("[8, 16, 32]", /*steps=*/40);
  auto o = options();
  o.database = (root_ / "db.sqlite").string();
  std::string p = joined(preview_launch(nullptr, s, expand(s), o));
  EXPECT_NE(p.find("a launch creates campaign 'unit' in " + o.database + " with 6 runs; run "
                   "directories under " + (root_ / "runs" / "unit").string()),
            std::string::npos) << p;
  EXPECT_FALSE(fs::exists(root_ / "runs")) << "the preview made the folder";

  // Run 2 fails: the preview counts it, and says --retry-failed would run it again.
  store::ExperimentStore db(":memory:");
  launch_failing(db, s, "2:abort", o);
  p = joined(preview_launch(&db, s, expand(s), o));
  EXPECT_NE(p.find("a launch resumes campaign 'unit' of " + o.database), std::string::npos) << p;
  EXPECT_NE(p.find("5 done, 1 failed; 0 run(s) would start (1 failed or diverged could run again "
                   "with --retry-failed)"), std::string::npos) << p;
  o.retry_failed = true;
  EXPECT_NE(joined(preview_launch(&db, s, expand(s), o)).find("1 run(s) would start"),
            std::string::npos);
  o.retry_failed = false;
  // A grown spec is refused without --force-spec, and adds runs with it.
  SweepSpec grown = spec("[8, 16, 32, 64]", /*steps=*/40);
  p = joined(preview_launch(&db, grown, expand(grown), o));
  EXPECT_NE(p.find("a launch would be refused: campaign 'unit' exists in " + o.database +
                   " with another spec"), std::string::npos) << p;
  o.force_spec = true;
  p = joined(preview_launch(&db, grown, expand(grown), o));
  EXPECT_NE(p.find("--force-spec: a launch replaces the stored spec and adds 2 run(s)"),
            std::string::npos) << p;
  EXPECT_NE(p.find("2 run(s) would start"), std::string::npos) << p;
  o.force_spec = false;
  // Another database's launch would meet this campaign's marker.
  store::ExperimentStore other(":memory:");
  auto o2 = o;
  o2.database = (root_ / "other.sqlite").string();
  std::ofstream(o.database) << "the first database";  // still exists
  p = joined(preview_launch(&other, s, expand(s), o2));
  EXPECT_NE(p.find("a launch would be refused: run directories " +
                   (root_ / "runs" / "unit").string() + " belong to campaign 'unit' created at"),
            std::string::npos) << p;
  // The folder moved: the preview says where the runs would be recorded.
  fs::rename(root_ / "runs", root_ / "moved");
  o.artifacts = root_ / "moved";
  p = joined(preview_launch(&db, s, expand(s), o));
  EXPECT_NE(p.find((root_ / "runs" / "unit").string() + " no longer exists and " +
                   (root_ / "moved" / "unit").string() + " holds this campaign's runs"),
            std::string::npos) << p;
  EXPECT_EQ(db.find_run(db.find_campaign("unit")->id, 1)->run_dir,
            (root_ / "runs" / "unit" / "1").string()) << "the preview changed the database";
}

TEST_F(CoordinatorTest, TwoDatabasesNeverShareACampaignsRunDirectories) {
  // Two databases in one folder, each with a campaign "unit", and the default artifacts root
  // beside them: the second launch must not overwrite the first one's runs.
  store::ExperimentStore first(":memory:");
  SweepSpec s = spec("[8]");
  auto o = options();
  o.database = "first.sqlite";
  launch(first, s, o);
  const fs::path dir = root_ / "runs" / "unit";
  const std::string marker = slurp(dir / "campaign.json");
  EXPECT_NE(marker.find("\"campaign\": \"unit\""), std::string::npos) << marker;
  EXPECT_NE(marker.find(first.find_campaign("unit")->created_at), std::string::npos) << marker;
  const std::string result = slurp(dir / "1" / "result.json");
  ASSERT_FALSE(result.empty());

  store::ExperimentStore second(":memory:");
  o.database = "second.sqlite";
  try {
    launch(second, s, o);
    FAIL() << "expected ArtifactsConflict";
  } catch (const ArtifactsConflict& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(dir.string()), std::string::npos) << what;
    EXPECT_NE(what.find("first.sqlite"), std::string::npos) << what;
    EXPECT_NE(what.find("second.sqlite"), std::string::npos) << what;
    EXPECT_NE(what.find("--artifacts"), std::string::npos) << what;
  }
  EXPECT_FALSE(second.find_campaign("unit")) << "refused before the database changed";
  EXPECT_EQ(slurp(dir / "1" / "result.json"), result) << "the first database's run is untouched";
  EXPECT_EQ(slurp(dir / "campaign.json"), marker);

  // Its own folder is fine, and the first database resumes its campaign as before.
  o.artifacts = root_ / "second-runs";
  EXPECT_EQ(launch(second, s, o).counts[RunStatus::kDone], 2);
  o.artifacts = root_ / "runs";
  EXPECT_EQ(launch(first, s, o).runs_finished, 0) << "complete: nothing re-run";
}

TEST_F(CoordinatorTest, RunDirectoriesWithoutAMarkerAreAdoptedOnlyByTheirOwnCampaign) {
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec("[8]");
  launch(db, s, options());
  const fs::path dir = root_ / "runs" / "unit";
  // Made before markers existed: the campaign that has runs there adopts the folder.
  fs::remove(dir / "campaign.json");
  EXPECT_EQ(launch(db, s, options()).runs_finished, 0);
  EXPECT_TRUE(fs::exists(dir / "campaign.json"));
  // A campaign with no runs yet does not take over a folder that already holds files.
  fs::remove(dir / "campaign.json");
  store::ExperimentStore other(":memory:");
  EXPECT_THROW(launch(other, s, options()), ArtifactsConflict);
  EXPECT_FALSE(other.find_campaign("unit"));
  // Nor does anyone take a folder whose marker cannot be read.
  std::ofstream(dir / "campaign.json") << "{\"campaign\": 3";
  EXPECT_THROW(launch(db, s, options()), ArtifactsConflict);
  EXPECT_THROW(launch(other, s, options()), ArtifactsConflict);
  EXPECT_FALSE(other.find_campaign("unit"));
}

TEST_F(CoordinatorTest, AnObjectiveNoRunReportsIsWarnedAboutOnce) {
  store::ExperimentStore db(":memory:");
  // A summary name, but one that runs of this mode do not report: the spec parser cannot know
  // (model.mode may be swept), so the launch warns. A name no run reports is refused earlier.
  SweepSpec s = parse_sweep_spec(
      "[campaign]\nname = \"typo\"\nobjective = { metric = \"val_mse\", goal = \"minimize\" }\n"
      "[base]\ndata.simulate = \"oscillator\"\ntrain.steps = 10\n"
      "[parameters]\n\"loss.w_approx\" = { values = [1.0, 10.0, 100.0] }\n",
      "typo.toml", root_);
  std::ostringstream log;
  auto o = options();
  o.log = &log;
  EXPECT_EQ(launch(db, s, o).counts[RunStatus::kDone], 3);
  std::vector<std::string> warnings;
  for (const auto& e : db.events(db.find_campaign("typo")->id))
    if (e.level == "warning") warnings.push_back(e.message);
  ASSERT_EQ(warnings.size(), 1u) << log.str();
  EXPECT_NE(warnings[0].find("reported no 'val_mse', the campaign's objective metric"),
            std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("val_bps"), std::string::npos) << warnings[0];
  EXPECT_NE(log.str().find("warning: run "), std::string::npos) << log.str();
}

TEST_F(CoordinatorTest, OneLaunchPerCampaignAtATime) {
  const fs::path db = root_ / "lock.sqlite";
  std::optional<CampaignLaunchLock> first(std::in_place, db, "unit");
  EXPECT_TRUE(first->held());
  try {
    CampaignLaunchLock second(db, "unit");
    ADD_FAILURE() << "a second launch of the campaign got the lock";
  } catch (const CampaignBusy& e) {
    EXPECT_NE(std::string(e.what()).find("campaign 'unit'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("lock.sqlite.lock"), std::string::npos) << e.what();
  }
  {  // the same database through a symlink is the same campaign
    fs::create_directories(root_ / "elsewhere");
    { std::ofstream(db) << ""; }
    fs::create_symlink(db, root_ / "elsewhere" / "link.sqlite");
    EXPECT_THROW(CampaignLaunchLock(root_ / "elsewhere" / "link.sqlite", "unit"), CampaignBusy);
  }
  CampaignLaunchLock other(db, "another");  // other campaigns of the database are free
  EXPECT_TRUE(other.held());
  first.reset();  // the first launch ends
  CampaignLaunchLock again(db, "unit");
  EXPECT_TRUE(again.held());
}

TEST_F(CoordinatorTest, GracefulStopInterruptsRunsAndResumeContinuesFromTheirCheckpoints) {
  ::setenv("FAKE_TRAIN_STEP_MS", "10", 1);
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec("[8, 16, 32]", /*steps=*/200);
  // Stop once the campaign is under way (as a signal handler would).
  LaunchSummary sum = launch_stopped_after(std::chrono::milliseconds(1500), db, s, options());
  EXPECT_TRUE(sum.stopped);
  EXPECT_EQ(sum.counts[RunStatus::kRunning], 0);
  EXPECT_GE(sum.counts[RunStatus::kInterrupted], 1);
  auto id = db.find_campaign("unit")->id;
  EXPECT_EQ(db.find_campaign("unit")->status, "stopped");
  std::vector<int64_t> interrupted;
  for (const auto& r : db.list_runs(id, RunStatus::kInterrupted)) {
    interrupted.push_back(r.number);
    EXPECT_GT(r.steps_done, 0) << "run " << r.number << " checkpointed when stopped";
  }

  StopSignals::reset();
  LaunchSummary resumed = launch(db, s, options());
  EXPECT_FALSE(resumed.stopped);
  EXPECT_EQ(resumed.counts[RunStatus::kDone], 6);
  for (int64_t number : interrupted) {
    auto r = *db.find_run(id, number);
    std::string history = slurp(fs::path(r.run_dir) / "fake_history.txt");
    EXPECT_EQ(history.rfind("start 0\n", 0), 0u) << history;
    EXPECT_EQ(history.find("start 0\n", 1), std::string::npos)
        << "run " << number << " restarted from step 0:\n" << history;
    EXPECT_EQ(r.attempts, 2);
  }
}

TEST_F(CoordinatorTest, ShortRunsAreQueuedOnBusyWorkersAndEachRunsExactlyOnce) {
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec("[8, 16, 24, 32, 40, 48, 56, 64]");  // 16 runs of 40 steps, ~20 ms each
  LaunchSummary sum = launch(db, s, options());
  EXPECT_EQ(sum.counts[RunStatus::kDone], 16);
  // No run is queued before one has finished (no duration estimate), nor once fewer runs wait
  // than there are workers.
  EXPECT_GT(sum.runs_queued, 0);
  EXPECT_LE(sum.runs_queued, 16 - 2 - 1);
  auto expanded = expand(s);
  auto runs = db.list_runs(db.find_campaign("unit")->id);
  ASSERT_EQ(runs.size(), 16u);
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto& r = runs[i];
    SCOPED_TRACE(r.number);
    // Each run's results reached its own row, not the row of the run queued behind it.
    expect_done_at_first_attempt(db, r, expanded[i], 40);
    EXPECT_EQ(slurp(fs::path(r.run_dir) / "fake_history.txt"), "start 0\n");
  }
  // Queueing can be turned off: every run then goes to an idle worker.
  store::ExperimentStore db2(":memory:");
  auto o = options();
  o.artifacts = root_ / "runs2";
  o.queue_runs_shorter_than = std::chrono::seconds(0);
  LaunchSummary plain = launch(db2, s, o);
  EXPECT_EQ(plain.counts[RunStatus::kDone], 16);
  EXPECT_EQ(plain.runs_queued, 0);
}

TEST_F(CoordinatorTest, AStopHandsBackQueuedRunsUnstartedAndResumeRunsThem) {
  ::setenv("FAKE_TRAIN_STEP_MS", "2", 1);  // runs of ~100 ms: short enough to queue
  store::ExperimentStore db(":memory:");
  SweepSpec s = spec("[8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128]");
  // 32 runs take ~1.6 s on two workers; the stop comes when a few have finished.
  LaunchSummary sum = launch_stopped_after(std::chrono::milliseconds(600), db, s, options());
  EXPECT_TRUE(sum.stopped);
  EXPECT_GT(sum.runs_queued, 0);
  EXPECT_EQ(sum.counts[RunStatus::kRunning], 0) << "every queued run was answered";
  auto id = db.find_campaign("unit")->id;
  // A queued run handed back before it started is pending again, its attempt undone; the
  // coordinator had written its config.toml when it handed it out.
  std::set<int64_t> handed_back;
  for (const auto& r : db.list_runs(id, RunStatus::kPending)) {
    if (!fs::exists(fs::path(r.run_dir) / "config.toml")) continue;  // never handed out
    handed_back.insert(r.number);
    EXPECT_EQ(r.attempts, 0) << "run " << r.number;
    EXPECT_FALSE(r.started_at) << "run " << r.number << " never started";
    EXPECT_FALSE(r.worker) << "run " << r.number;
    EXPECT_EQ(r.steps_done, 0);
    EXPECT_FALSE(fs::exists(fs::path(r.run_dir) / "fake_history.txt")) << "run " << r.number;
    bool event = false;
    for (const auto& e : db.events(id, r.id))
      event = event || e.message.find("running -> pending (handed back before it started) at step 0: the worker is "
                                      "stopping") != std::string::npos;
    EXPECT_TRUE(event) << "run " << r.number;
  }
  EXPECT_GE(handed_back.size(), 1u) << "a stop while runs are queued hands at least one back";

  StopSignals::reset();
  LaunchSummary resumed = launch(db, s, options());
  EXPECT_FALSE(resumed.stopped);
  EXPECT_EQ(resumed.counts[RunStatus::kDone], 32);
  for (const auto& r : db.list_runs(id)) {
    std::string history = slurp(fs::path(r.run_dir) / "fake_history.txt");
    EXPECT_EQ(history.rfind("start 0\n", 0), 0u) << "run " << r.number << ": " << history;
    if (handed_back.count(r.number)) {
      EXPECT_EQ(history, "start 0\n") << "run " << r.number;
      EXPECT_EQ(r.attempts, 1) << "run " << r.number << ": only the start that happened counts";
    }
  }
}

TEST_F(CoordinatorTest, AQueuedRunIsWithdrawnRatherThanWaitBehindALongRunWhileAWorkerIsIdle) {
  ::setenv("FAKE_TRAIN_STEP_MS", "1", 1);
  store::ExperimentStore db(":memory:");
  // Run 1 takes ~4 s, the 11 others ~0.1 s each. Once run 2 has finished, the worker on run 1
  // is handed a short run to start next; when run 1 has lasted 10 times the mean (or at the
  // latest when the other worker is idle with nothing left to hand out) that queued run is
  // asked back and runs on the other worker instead of waiting for run 1.
  SweepSpec s = parse_sweep_spec(
      "[campaign]\nname = \"unit\"\n[base]\ndata.simulate = \"oscillator\"\ntrain.eval_every = 10\n"
      "train.checkpoint_every = 1000\n[parameters]\n"
      "\"train.steps\" = { values = [4000, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50] }\n",
      "unit.toml", root_);
  LaunchSummary sum = launch(db, s, options());
  EXPECT_EQ(sum.counts[RunStatus::kDone], 12);
  EXPECT_EQ(sum.withdraw_requests, 1);
  auto id = db.find_campaign("unit")->id;
  const auto long_run = *db.find_run(id, 1);
  for (const auto& r : db.list_runs(id)) {
    SCOPED_TRACE(r.number);
    if (r.number != 1) {
      EXPECT_NE(r.worker, long_run.worker) << "a short run waited behind run 1";
    }
    EXPECT_EQ(r.attempts, 1);  // the withdrawn task's attempt is undone
    EXPECT_EQ(slurp(fs::path(r.run_dir) / "fake_history.txt"), "start 0\n");
  }
  bool event = false;
  for (const auto& e : db.events(id))
    event = event || e.message.find("(handed back before it started) at step 0: withdrawn by the coordinator: "
                                    "another worker can start it sooner") != std::string::npos;
  EXPECT_TRUE(event);
}

TEST_F(CoordinatorTest, ChangedSpecIsRefusedUnlessForcedAndMayOnlyGrow) {
  store::ExperimentStore db(":memory:");
  launch(db, spec(), options());
  try {
    launch(db, spec("[8, 16, 32, 64]", /*steps=*/50), options());
    ADD_FAILURE() << "a changed spec was accepted";
  } catch (const SpecMismatch& e) {  // the refusal names what changed
    const std::string what = e.what();
    EXPECT_NE(what.find("parameters.\"model.latent_dim\": { values = [8, 16, 32] } → "
                        "{ values = [8, 16, 32, 64] }"),
              std::string::npos) << what;
    EXPECT_NE(what.find("base.train.steps: 40 → 50"), std::string::npos) << what;
  }
  auto o = options();
  o.force_spec = true;
  LaunchSummary grown = launch(db, spec("[8, 16, 32, 64]"), o);
  EXPECT_EQ(grown.runs_finished, 2);  // the two new configurations only
  auto id = db.find_campaign("unit")->id;
  auto runs = db.list_runs(id);
  ASSERT_EQ(runs.size(), 8u);
  EXPECT_EQ(runs[6].number, 7);  // new runs numbered after the existing ones
  EXPECT_EQ(runs[6].epoch, 2);
  EXPECT_EQ(runs[0].epoch, 1);
  // Dropping configurations is refused even when forced.
  EXPECT_THROW(launch(db, spec("[8, 16]"), o), SpecMismatch);
}

// Found by a tester: a campaign resumed after another recording was copied to its data.path
// trained its pending runs on the new data, and `best` ranked them with the old ones. The
// launch records each run's data fingerprint; a resume with other data is refused, unchanged.
TEST_F(CoordinatorTest, AResumeWithOtherDataIsRefusedAndChangesNothing) {
  store::ExperimentStore db(":memory:");
  const SweepSpec s = spec("[8, 16]");
  const auto runs = expand(s);
  auto with = [&](const std::string& fingerprint) { return options_with_data(runs, fingerprint); };
  const std::string a(64, 'a'), b(64, 'b');
  StopSignals::request();  // created, then stopped before any run starts
  launch(db, s, with(a));
  StopSignals::reset();
  const auto id = db.find_campaign("unit")->id;
  const auto stored = db.data_fingerprints(id);
  ASSERT_EQ(stored.size(), 4u);
  EXPECT_EQ(stored.at(1), a);
  const int64_t epoch = db.get_campaign(id).epoch;

  try {
    launch(db, s, with(b));
    ADD_FAILURE() << "a resume with other data was accepted";
  } catch (const DataChanged& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("campaign 'unit': the data changed since its runs were launched: runs 1, 2, 3, 4 "
                        "(data.simulate = \"oscillator\") were launched with data of fingerprint aaaaaaaaaaaa, "
                        "which now gives bbbbbbbbbbbb"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("launch the new data as a new campaign"), std::string::npos) << what;
  }
  EXPECT_EQ(db.get_campaign(id).epoch, epoch);  // nothing changed
  for (const auto& row : db.list_runs(id)) EXPECT_NE(row.status, RunStatus::kDone);
  // The dry run says the same.
  const auto preview = preview_launch(&db, s, runs, with(b));
  ASSERT_FALSE(preview.empty());
  EXPECT_EQ(preview.back().rfind(std::string(kRefusedPrefix) + "campaign 'unit': the data changed", 0), 0u)
      << preview.back();

  // The same data resume; runs recorded without a fingerprint (before schema version 3) get one.
  db.database().exec("UPDATE runs SET data_sha256 = NULL WHERE number = 2");
  LaunchSummary resumed = launch(db, s, with(a));
  EXPECT_EQ(resumed.counts[RunStatus::kDone], 4);
  EXPECT_EQ(db.data_fingerprints(id).at(2), a);
  // Without fingerprints (a caller that loads no data) nothing is checked.
  EXPECT_NO_THROW(launch(db, s, options()));
}

// Found by testers: runs recorded before the database kept fingerprints (schema version < 3)
// were stamped with the current data's at the next launch, though they had been trained on
// other data. A started run is compared by what its own files record (result.json, then
// train_state.pt/checkpoint.pt through recorded_data_sha256); one that records none is named.
TEST_F(CoordinatorTest, RunsRecordedBeforeFingerprintsAreComparedByTheirOwnFiles) {
  store::ExperimentStore db(":memory:");
  const SweepSpec s = spec("[8, 16]");
  const auto runs = expand(s);
  auto with = [&](const std::string& fingerprint) { return options_with_data(runs, fingerprint); };
  const std::string a(64, 'a'), b(64, 'b');
  launch(db, s, with(a));
  const auto id = db.find_campaign("unit")->id;
  db.database().exec("UPDATE runs SET data_sha256 = NULL");  // as an older jslds left them
  {
    const fs::path result = fs::path(db.find_run(id, 1)->run_dir) / "result.json";
    nlohmann::json r = nlohmann::json::parse(slurp(result));
    r["data_sha256"] = a;  // what the trainer records
    std::ofstream(result) << r.dump();
  }
  EXPECT_THROW(launch(db, s, with(b)), DataChanged);  // run 1 was trained on a
  EXPECT_TRUE(db.data_fingerprints(id).empty());       // and nothing was stamped

  std::ostringstream log;
  CoordinatorOptions o = with(a);
  o.log = &log;
  launch(db, s, o);
  auto stored = db.data_fingerprints(id);
  EXPECT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored.at(1), a);
  EXPECT_NE(log.str().find("warning: runs 2, 3, 4 of campaign 'unit' started before jslds recorded data "
                           "fingerprints"),
            std::string::npos)
      << log.str();

  o.recorded_data_sha256 = [&](const fs::path&) { return std::optional<std::string>(a); };  // train_state.pt's
  launch(db, s, o);
  EXPECT_EQ(db.data_fingerprints(id).size(), 4u);
}

TEST_F(CoordinatorTest, NoRunStartsWhenTheTimeLimitLeavesNoRoom) {
  store::ExperimentStore db(":memory:");
  auto o = options();
  o.deadline = std::chrono::system_clock::now() + std::chrono::seconds(60);  // < the 2 min margin
  LaunchSummary sum = launch(db, spec(), o);
  EXPECT_TRUE(sum.stopped);
  EXPECT_EQ(sum.runs_finished, 0);
  EXPECT_EQ(sum.counts[RunStatus::kPending], 6);
  EXPECT_THROW(parse_time_limit("soon", std::chrono::system_clock::now()), std::invalid_argument);
  auto t0 = std::chrono::system_clock::time_point{};
  EXPECT_EQ(parse_time_limit("1h30m", t0) - t0, std::chrono::seconds(5400));
  EXPECT_EQ(parse_time_limit("90", t0) - t0, std::chrono::seconds(90));
  EXPECT_EQ(parse_time_limit("1d", t0) - t0, std::chrono::seconds(86400));
}

TEST(TimeLimit, ANumberAfterAUnitNeedsItsOwnUnit) {
  // "1h30" was read as 1 h 30 s: the sweep stopped half an hour early without a word.
  const auto t0 = std::chrono::system_clock::time_point{};
  auto refusal = [&](const char* text) -> std::string {
    try {
      parse_time_limit(text, t0);
      return "accepted";
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
  };
  EXPECT_EQ(refusal("1h30"),
            "--time-limit '1h30': the 30 after 1h has no unit: write 1h30m (only a number alone, "
            "such as 5400, means seconds)");
  EXPECT_NE(refusal("2m30").find("the 30 after 2m has no unit: write 2m30s"), std::string::npos);
  EXPECT_NE(refusal("1d 12").find("the 12 after 1d has no unit: write 1d 12h"), std::string::npos);
  EXPECT_NE(refusal("1d2h 5").find("write 1d2h 5m"), std::string::npos);
  // A number alone is seconds, and every number with its unit is read as written.
  EXPECT_EQ(parse_time_limit("5400", t0) - t0, std::chrono::seconds(5400));
  EXPECT_EQ(parse_time_limit("1h30m", t0) - t0, std::chrono::seconds(5400));
  EXPECT_EQ(parse_time_limit("1h30s", t0) - t0, std::chrono::seconds(3630));
  EXPECT_EQ(parse_time_limit(" 2m30s ", t0) - t0, std::chrono::seconds(150));
  EXPECT_EQ(parse_time_limit("1d12h", t0) - t0, std::chrono::seconds(129600));
}

}  // namespace
}  // namespace jslds
