// End to end on a real recording (issue 8): `mpirun -np 3 jslds sweep` runs a small campaign
// of real `jslds train` children on the premotor reaching recording
// (../shared/data/reach_delay_pmd.mat, 210 trials x 61 neurons, 20 ms bins), then the same
// campaign is SIGKILLed mid-way and resumed with the same command.
//
// The data path reaches the spec through `--set base.data.path=…`, as a user points a shipped
// spec at their own file (docs/real-data.md). Trainings are tiny (latent 8-12, 400 steps,
// small fixed-point search) so both tests together take a couple of minutes on 2 cores.
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "core/build_id.h"
#include "tests/sweep/job.h"

namespace jslds {
namespace {

using namespace jslds::test;
using store::RunStatus;

const fs::path kRecording =
    (fs::path(JSLDS_SHARED_DATA_DIR) / "reach_delay_pmd.mat").lexically_normal();
constexpr const char* kCampaign = "e2e-reach";
constexpr int kSteps = 400;

// A 2 x 2 grid over the co-training weight and the latent dimension. No data.path: the test
// gives it with --set, relative paths of a user being resolved like this absolute one.
const char* kSpec = R"([campaign]
name = "e2e-reach"
method = "grid"
objective = { metric = "val_bps", goal = "maximize" }

[base]
data.variable = "D"
data.field = "data"
data.condition_field = "condition"
data.source_bin_ms = 1.0
data.bin_ms = 20.0
data.valid_fraction = 0.2
model.factors_dim = 4
model.encoder_dim = 8
train.steps = 400
train.batch_size = 16
train.eval_every = 40
train.checkpoint_every = 40
analysis.n_inits = 32
analysis.max_iters = 300
analysis.max_points = 8
runtime.device = "cpu"
runtime.threads = 1

[parameters]
"loss.w_approx" = { values = [1.0, 10.0] }
"model.latent_dim" = { values = [8, 12] }
)";

// Hex sha256 of a file's bytes, computed here (OpenSSL EVP) independently of the worker's
// own hashing, so a checkpoint recorded with a stale hash is caught.
std::string sha256_of_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

class ReachCampaign : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kRecording))
      GTEST_SKIP() << kRecording << " is absent: the end-to-end campaign on a real recording "
                   << "needs ../shared/data (see its README.md); skipped";
  }

  // `mpirun -np 3 … jslds sweep SPEC --db DB --set base.data.path=RECORDING`.
  std::vector<std::string> command(const fs::path& dir) const {
    return sweep_command(3, {(dir / "spec.toml").string(), "--db", (dir / "jslds.sqlite").string(),
                             "--set", "base.data.path=" + kRecording.string()});
  }

  fs::path prepare(const std::string& name) const {
    fs::path dir = test_directory(name);
    std::ofstream(dir / "spec.toml") << kSpec;
    return dir;
  }

  // Real `jslds train` children, not the stand-in trainer.
  const std::map<std::string, std::string> env_ = {{"JSLDS_TRAIN_EXE", ""}};
};

// Everything a finished run must have left in the database and its run directory.
void expect_complete_run(store::ExperimentStore& s, const store::RunRow& r) {
  SCOPED_TRACE("run " + std::to_string(r.number) + ": " + r.error.value_or("") + "\n" +
               slurp(fs::path(r.run_dir) / "log.txt"));
  ASSERT_EQ(r.status, RunStatus::kDone);
  EXPECT_EQ(r.steps_done, kSteps);

  // Final metrics of both chains: the nonlinear model and the JSLDS.
  const auto summaries = s.run_summaries(r.id);
  for (const char* name : {"val_bps", "val_bps_jslds"}) {
    ASSERT_TRUE(summaries.count(name)) << name << " missing from the summaries";
    EXPECT_TRUE(std::isfinite(summaries.at(name))) << name << " = " << summaries.at(name);
  }

  // The checkpoint artifact: present, and its recorded sha256 is the file's.
  int checkpoints = 0;
  for (const auto& a : s.artifacts(r.id)) {
    if (a.kind != "checkpoint") continue;
    ++checkpoints;
    ASSERT_TRUE(fs::exists(a.path)) << a.path;
    EXPECT_EQ(a.sha256, sha256_of_file(a.path)) << a.path;
    EXPECT_EQ(a.bytes, static_cast<int64_t>(fs::file_size(a.path))) << a.path;
    EXPECT_EQ(a.step.value_or(-1), kSteps) << "the last checkpoint is the final step's";
  }
  EXPECT_EQ(checkpoints, 1);

  // The analysis (MODEL.md §7): structure scalars, fixed points with their coordinates, and
  // eigenmodes, recorded by the coordinator from the child's result; analysis.h5 on disk.
  for (const char* name : {"n_fixed_points", "n_stable", "n_saddle", "spectral_radius",
                           "n_slow_modes", "n_stable_clusters", "ring_score", "theta_mode"}) {
    EXPECT_TRUE(summaries.count(name) && std::isfinite(summaries.at(name)))
        << "analysis summary " << name << " missing or not finite";
  }
  const double ring = summaries.count("ring_score") ? summaries.at("ring_score") : -1;
  EXPECT_GE(ring, 0.0);
  EXPECT_LE(ring, 1.0);
  const auto points = s.fixed_points(r.id);
  ASSERT_FALSE(points.empty()) << "no fixed or expansion points recorded";
  const auto latent = nlohmann::json::parse(r.config_json)["model"]["latent_dim"].get<size_t>();
  int numerical = 0;
  for (const auto& p : points) {
    EXPECT_EQ(p.coords.size(), latent) << "point " << p.idx;
    EXPECT_TRUE(p.source == "expansion" || p.source == "numerical") << p.source;
    EXPECT_TRUE(std::isfinite(p.max_abs_eig));
    numerical += p.source == "numerical";
    // The Newton refinement's verdict is recorded for numerical points only (schema v2).
    EXPECT_EQ(p.refined.has_value(), p.source == "numerical") << "point " << p.idx;
  }
  EXPECT_EQ(numerical, static_cast<int>(summaries.count("n_fixed_points")
                                            ? summaries.at("n_fixed_points") : -1))
      << "numerical fixed points in the database vs the n_fixed_points summary";
  EXPECT_FALSE(s.modes(r.id).empty()) << "no eigenmodes recorded";
  EXPECT_TRUE(fs::exists(fs::path(r.run_dir) / "analysis.h5"));
}

TEST_F(ReachCampaign, FourRealTrainingsUnderMpirunAreRecordedWithAnalysisAndCheckpoints) {
  fs::path dir = prepare("reach_campaign");
  ChildProcess job = start(command(dir), dir / "job.log", env_);
  auto status = wait_for(job, std::chrono::seconds(300));
  if (!status) kill_job(job.pid());
  ASSERT_TRUE(status) << "not finished in 300 s:\n" << slurp(dir / "job.log");
  ASSERT_EQ(exit_code(*status), 0) << slurp(dir / "job.log");

  read_db(dir / "jslds.sqlite", [&](store::ExperimentStore& s) {
    auto c = s.find_campaign(kCampaign);
    EXPECT_TRUE(c.has_value()) << slurp(dir / "job.log");
    if (!c) return 0;
    auto runs = s.list_runs(c->id);
    EXPECT_EQ(runs.size(), 4u);
    std::set<std::string> workers, configs;
    for (const auto& r : runs) {
      workers.insert(r.worker.value_or(""));
      configs.insert(r.config_sha256);
      expect_complete_run(s, r);
      // The run's configuration is the recording given with --set, not a default.
      EXPECT_EQ(nlohmann::json::parse(r.config_json)["data"]["path"], kRecording.string());
      // The build that trained it and the data's fingerprint are recorded with it.
      EXPECT_EQ(s.run_build(r.id).value_or("").rfind(build_id(), 0), 0u) << s.run_build(r.id).value_or("");
      EXPECT_EQ(s.data_fingerprints(c->id).count(r.number), 1u);
    }
    EXPECT_EQ(configs.size(), 4u);
    EXPECT_EQ(workers.size(), 2u) << "both worker ranks ran trainings";
    return 0;
  });
  fs::remove_all(dir);
}

TEST_F(ReachCampaign, KilledMidwayAndResumedEveryRunEndsDoneOnceAndDoneRunsAreKept) {
  fs::path dir = prepare("reach_kill_resume");
  const fs::path db = dir / "jslds.sqlite";

  // 1. Start, wait until a run is done while another trains past its first checkpoint.
  ChildProcess job = start(command(dir), dir / "first.log", env_);
  bool middle = false;
  for (int i = 0; i < 3000 && !middle; ++i) {  // ≤ 300 s
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    middle = read_db(db, [](store::ExperimentStore& s) {
               auto c = s.find_campaign(kCampaign);
               if (!c) return false;
               int done = 0;
               bool checkpointed_running = false;
               for (const auto& r : s.list_runs(c->id)) {
                 done += r.status == RunStatus::kDone;
                 if (r.status == RunStatus::kRunning)
                   for (const auto& a : s.artifacts(r.id))
                     checkpointed_running |= a.kind == "checkpoint" && a.step.value_or(0) > 0 &&
                                             a.step.value_or(0) < kSteps;
               }
               return done >= 1 && checkpointed_running;
             }).value_or(false);
    if (job.try_wait()) break;
  }
  if (!middle) kill_job(job.pid());
  ASSERT_TRUE(middle) << "the campaign never had a done run beside a checkpointed running one "
                         "(it ended or stalled before it could be killed):\n"
                      << slurp(dir / "first.log");
  const size_t killed = kill_job(job.pid());
  EXPECT_GE(killed, 4u) << "mpirun, 3 ranks and at least one `jslds train` child";
  wait_for(job, std::chrono::seconds(10));

  struct Before {
    std::map<int64_t, std::string> done_finished_at;
    std::set<int64_t> running;
  };
  auto before = read_db(db, [](store::ExperimentStore& s) {
    Before b;
    for (const auto& r : s.list_runs(s.find_campaign(kCampaign)->id)) {
      if (r.status == RunStatus::kDone) b.done_finished_at[r.number] = *r.finished_at;
      if (r.status == RunStatus::kRunning) b.running.insert(r.number);
    }
    return b;
  });
  ASSERT_TRUE(before);
  ASSERT_GE(before->done_finished_at.size(), 1u);
  ASSERT_FALSE(before->running.empty());

  // 2. The same command again finishes the campaign.
  ChildProcess resume = start(command(dir), dir / "second.log", env_);
  auto status = wait_for(resume, std::chrono::seconds(300));
  if (!status) kill_job(resume.pid());
  ASSERT_TRUE(status) << "resume did not finish in 300 s:\n" << slurp(dir / "second.log");
  EXPECT_EQ(exit_code(*status), 0) << slurp(dir / "second.log");

  read_db(db, [&](store::ExperimentStore& s) {
    auto c = s.find_campaign(kCampaign);
    EXPECT_EQ(c->epoch, 2) << "two launches";
    auto runs = s.list_runs(c->id);
    EXPECT_EQ(runs.size(), 4u) << "the resumed campaign has the same runs";
    std::set<std::string> configs;
    for (const auto& r : runs) {
      SCOPED_TRACE("run " + std::to_string(r.number));
      configs.insert(r.config_sha256);
      expect_complete_run(s, r);
      if (before->done_finished_at.count(r.number)) {
        EXPECT_EQ(r.finished_at, before->done_finished_at.at(r.number)) << "a done run re-ran";
        EXPECT_EQ(r.attempts, 1) << "a done run re-ran";
      }
      if (before->running.count(r.number)) {
        EXPECT_EQ(r.attempts, 2) << "an interrupted run is started once more, no more";
      }
    }
    EXPECT_EQ(configs.size(), 4u);
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

}  // namespace
}  // namespace jslds
