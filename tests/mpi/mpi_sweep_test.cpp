// `mpirun -np 3 jslds sweep` (rank 0 coordinates, ranks 1 and 2 run children): a 4-run sweep
// ends with every run's metrics, summaries and checkpoint in the database; a crashing child
// fails its run only. The real-training variant runs tiny `jslds train` children.
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/sweep/job.h"

namespace jslds {
namespace {

using namespace jslds::test;
using store::RunStatus;

struct Expect {
  int done;
  int failed;
};

// Runs the spec under mpirun -np 3 and checks every done run's records.
// Writes the launch's --stats to dir/stats.json.
void run_and_check(const fs::path& dir, const std::string& spec,
                   std::map<std::string, std::string> env, Expect expect, int timeout_s) {
  std::ofstream(dir / "spec.toml") << spec;
  const fs::path db = dir / "jslds.sqlite";
  ChildProcess job =
      start(sweep_command(3, {(dir / "spec.toml").string(), "--db", db.string(), "--stats",
                              (dir / "stats.json").string()}),
            dir / "job.log", env);
  auto status = wait_for(job, std::chrono::seconds(timeout_s));
  ASSERT_TRUE(status) << "not finished in " << timeout_s << " s:\n" << slurp(dir / "job.log");
  ASSERT_EQ(exit_code(*status), 0) << slurp(dir / "job.log");
  read_db(db, [&](store::ExperimentStore& s) {
    auto c = s.find_campaign("mpi");
    EXPECT_TRUE(c.has_value());
    if (!c) return 0;
    auto runs = s.list_runs(c->id);
    EXPECT_EQ(runs.size(), static_cast<size_t>(expect.done + expect.failed));
    int done = 0, failed = 0;
    std::set<std::string> workers;
    for (const auto& r : runs) {
      SCOPED_TRACE("run " + std::to_string(r.number) + ": " + r.error.value_or("") + "\n" +
                   slurp(fs::path(r.run_dir) / "log.txt"));
      workers.insert(r.worker.value_or(""));
      if (r.status == RunStatus::kFailed) {
        ++failed;
        EXPECT_NE(r.error.value_or("").find("SIGSEGV"), std::string::npos);
        continue;
      }
      EXPECT_EQ(r.status, RunStatus::kDone);
      EXPECT_EQ(r.attempts, 1);
      ++done;
      store::Statement metrics(s.database(), "SELECT count(*) FROM metrics WHERE run_id = ?");
      metrics.bind(1, r.id);
      EXPECT_TRUE(metrics.step());
      EXPECT_GT(metrics.column_int64(0), 0) << "metrics";
      EXPECT_TRUE(s.run_summaries(r.id).count("val_bps")) << "summaries";
      int checkpoints = 0;
      for (const auto& a : s.artifacts(r.id)) {
        if (a.kind != "checkpoint") continue;
        ++checkpoints;
        EXPECT_EQ(a.sha256.size(), 64u);
        EXPECT_TRUE(fs::exists(a.path)) << a.path;
      }
      EXPECT_EQ(checkpoints, 1);
    }
    EXPECT_EQ(done, expect.done);
    EXPECT_EQ(failed, expect.failed);
    EXPECT_EQ(workers.size(), 2u) << "both worker ranks ran runs";
    return 0;
  });
}

// A campaign "mpi" for the stand-in trainer: `steps` steps, evaluations every 10, a
// checkpoint every `checkpoint_every`, and the given [parameters] lines.
std::string fake_spec(int steps, int checkpoint_every, const std::string& parameters) {
  return "[campaign]\nname = \"mpi\"\n[base]\ndata.simulate = \"oscillator\"\ntrain.steps = " +
         std::to_string(steps) + "\ntrain.eval_every = 10\ntrain.checkpoint_every = " +
         std::to_string(checkpoint_every) + "\n[parameters]\n" + parameters + "\n";
}

TEST(MpiSweep, FourRunsOverTwoWorkerRanksAndACrashFailsOnlyItsRun) {
  fs::path dir = test_directory("mpi_fake");
  run_and_check(dir, fake_spec(60, 30, R"("model.latent_dim" = { values = [8, 16, 24, 32] })"),
                {{"JSLDS_TRAIN_EXE", JSLDS_FAKE_TRAIN_EXE}, {"FAKE_TRAIN_STEP_MS", "10"},
                 {"FAKE_TRAIN_FAIL", "3:segv"}},
                {3, 1}, 120);
  fs::remove_all(dir);
}

TEST(MpiSweep, ShortRunsAreQueuedOnBusyWorkerRanksAndEachRunsOnce) {
  // Runs of a few tens of ms: once one has finished, each busy worker rank is also handed the
  // run it starts next (coordinator.h, queue_runs_shorter_than).
  fs::path dir = test_directory("mpi_queue");
  run_and_check(dir,
                fake_spec(20, 20,
                          R"("model.latent_dim" = { values = [8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96] }
"loss.w_approx" = { values = [1.0, 10.0] })"),
                {{"JSLDS_TRAIN_EXE", JSLDS_FAKE_TRAIN_EXE}}, {24, 0}, 120);
  nlohmann::json stats = nlohmann::json::parse(slurp(dir / "stats.json"));
  EXPECT_EQ(stats["runs_finished"], 24);
  EXPECT_GT(stats["runs_queued"].get<int>(), 0) << stats.dump();
  fs::remove_all(dir);
}

TEST(MpiSweep, FourTinyRealTrainings) {
  if (std::system((std::string(JSLDS_EXE) + " --help | grep -q '^  train '").c_str()) != 0)
    GTEST_SKIP() << "`jslds train` is not part of this build yet";
  fs::path dir = test_directory("mpi_real");
  run_and_check(dir, R"([campaign]
name = "mpi"
[base]
data.simulate = "oscillator"
data.sim_trials = 24
data.sim_bins = 20
data.sim_neurons = 12
model.latent_dim = 8
model.factors_dim = 4
model.encoder_dim = 8
train.steps = 20
train.batch_size = 8
train.eval_every = 10
train.checkpoint_every = 10
analysis.n_inits = 16
analysis.max_iters = 200
analysis.max_points = 4
runtime.device = "cpu"
runtime.threads = 1
[parameters]
"loss.w_approx" = { values = [1.0, 10.0] }
"model.cell" = { values = ["gru", "tanh"] }
)",
                {{"JSLDS_TRAIN_EXE", ""}}, {4, 0}, 240);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace jslds
