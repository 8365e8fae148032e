// Tiny trainings (poisson on the `oscillator` simulator, task on `flipflop`), determinism,
// resume equivalence, divergence, and checkpoint round trips and corruption.
// Legend: B trials, T bins, N neurons.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/build_id.h"
#include "core/train/checkpoint.h"
#include "core/train/trainer.h"
#include "core/data/loaders.h"

namespace jslds {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("jslds_train_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

RunConfig tiny_poisson_config() {
  RunConfig c;
  c.model.latent_dim = 16;
  c.model.factors_dim = 8;
  c.model.encoder_dim = 16;
  c.train.batch_size = 16;
  c.train.lr = 0.02;
  c.train.adam_eps = 1e-3;
  c.train.eval_every = 50;
  c.train.checkpoint_every = 1000;
  c.loss.kl_warmup_steps = {0, 100};
  return c;
}

DataOptions simulation(int64_t trials, int64_t bins, int64_t neurons) {
  DataOptions o;
  o.sim_trials = trials;
  o.sim_bins = bins;
  o.sim_neurons = neurons;
  o.sim_seed = 7;
  o.valid_fraction = 0.2;
  return o;
}

// The `oscillator` simulator at 8 Hz (docs/data.md), 80 trials × 25 bins × 20 neurons.
struct TinyPoisson {
  DataOptions options = simulation(80, 25, 20);
  Dataset data = simulate("oscillator", options);
  Split split = make_split(data, options);
};

TEST(Training, TinyPoissonModelOnOscillatorBeatsTheNullModel) {
  at::set_num_threads(1);
  TinyPoisson d;
  RunConfig c = tiny_poisson_config();
  c.train.steps = 300;
  Trainer trainer(c, d.data, d.split);
  const TrainOutcome outcome = trainer.run({});
  ASSERT_EQ(outcome.status, "done") << outcome.message;
  EXPECT_EQ(outcome.step, 300);
  const double bps = outcome.final_metrics.at("val_bps");
  EXPECT_GT(bps, 0.0);
  EXPECT_TRUE(outcome.final_metrics.count("val_bps_jslds"));
  EXPECT_TRUE(outcome.final_metrics.count("rel_state_error"));
  EXPECT_TRUE(outcome.final_metrics.count("loss_approx"));
}

TEST(Training, TinyTaskModelOnFlipFlopReducesValidationMseTenfold) {
  at::set_num_threads(1);
  const DataOptions options = simulation(/*trials=*/96, /*bins=*/40, /*neurons=*/0);
  const Dataset data = simulate("flipflop", options);
  const Split split = make_split(data, options);
  RunConfig c;
  c.model.mode = "task";
  c.model.latent_dim = 24;
  c.loss.w_rnn = 3.0;
  c.loss.l2 = 0.0;
  c.train.lr = 0.02;
  c.train.adam_eps = 1e-3;
  c.train.batch_size = 32;
  c.train.steps = 400;
  c.train.eval_every = 400;
  Trainer trainer(c, data, split);
  const double before = trainer.evaluate().at("val_mse");
  const TrainOutcome outcome = trainer.run({});
  ASSERT_EQ(outcome.status, "done") << outcome.message;
  const double after = outcome.final_metrics.at("val_mse");
  EXPECT_LT(after, before / 10.0) << "val_mse before " << before << ", after " << after;
}

std::vector<double> losses(Trainer& trainer, int64_t steps) {
  std::vector<double> out;
  for (int64_t i = 0; i < steps; ++i) out.push_back(trainer.train_step().loss);
  return out;
}

TEST(Training, SameConfigAndSeedGiveABitIdenticalLossSequence) {
  at::set_num_threads(1);
  TinyPoisson d;
  RunConfig c = tiny_poisson_config();
  c.model.inferred_input_dim = 2;
  c.model.controller_dim = 8;
  // Trainers share Torch's global generator, so each one runs before the next is built.
  const std::vector<double> la = losses(*std::make_unique<Trainer>(c, d.data, d.split), 12);
  const std::vector<double> lb = losses(*std::make_unique<Trainer>(c, d.data, d.split), 12);
  EXPECT_EQ(la, lb);
  c.train.seed = 1;
  EXPECT_NE(losses(*std::make_unique<Trainer>(c, d.data, d.split), 12), la);
}

TEST(Training, ResumedRunReproducesTheUninterruptedLosses) {
  at::set_num_threads(1);
  TinyPoisson d;
  TempDir dir;
  RunConfig c = tiny_poisson_config();
  c.model.inferred_input_dim = 1;
  c.model.controller_dim = 8;
  c.train.steps = 10;
  c.train.eval_every = 10;
  {
    Trainer first(c, d.data, d.split);
    ASSERT_EQ(first.run(dir.path()).status, "done");
    ASSERT_TRUE(fs::exists(dir.path() / "train_state.pt"));
  }
  c.train.steps = 20;  // the step budget may grow on resume
  Trainer uninterrupted(c, d.data, d.split);
  const std::vector<double> full = losses(uninterrupted, 20);
  Trainer resumed(c, d.data, d.split);
  resumed.resume(dir.path());
  EXPECT_EQ(resumed.step(), 10);
  const std::vector<double> tail = losses(resumed, 10);
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_NEAR(tail[i], full[10 + i], 1e-6 * std::abs(full[10 + i])) << i;
  // A different configuration is refused.
  c.loss.w_fp = 1.0;
  Trainer mismatched(c, d.data, d.split);
  EXPECT_THROW(mismatched.resume(dir.path()), CheckpointError);
}

// Found by a tester: a run trained partly by one build and resumed by another gave figures
// that neither build reproduces, and nothing said so. train_state.pt keeps the builds.
TEST(Training, TheBuildsThatTrainedARunAreKeptAcrossResumes) {
  at::set_num_threads(1);
  // The build and the OpenBLAS kernel set that compute the numbers.
  const std::string here = numerics_id();
  EXPECT_EQ(here.rfind(build_id(), 0), 0u) << here;
  TinyPoisson d;
  TempDir dir;
  RunConfig c = tiny_poisson_config();
  c.train.steps = 4;
  c.train.eval_every = 4;
  {
    Trainer first(c, d.data, d.split);
    EXPECT_EQ(first.builds(), here);
    ASSERT_EQ(first.run(dir.path()).status, "done");
  }
  EXPECT_EQ(load_train_state(dir.path() / "train_state.pt").builds, here);
  c.train.steps = 8;
  {
    Trainer same(c, d.data, d.split);  // the same build: nothing to say, the list unchanged
    same.resume(dir.path());
    EXPECT_EQ(same.builds(), here);
    EXPECT_EQ(same.resumed_from_other_build(), "");
  }
  // As if an older build had written the pair.
  TrainState state = load_train_state(dir.path() / "train_state.pt");
  state.builds = "0.0.9 (git 0123456789ab)";
  save_train_state(dir.path() / "train_state.pt", state);
  Trainer other(c, d.data, d.split);
  other.resume(dir.path());
  EXPECT_EQ(other.resumed_from_other_build(), "0.0.9 (git 0123456789ab)");
  EXPECT_EQ(other.builds(), "0.0.9 (git 0123456789ab); from step 4: " + here);
  ASSERT_EQ(other.run(dir.path()).status, "done");
  EXPECT_EQ(load_train_state(dir.path() / "train_state.pt").builds, other.builds());
  // A finished run resumed (for its analysis) by another build trains nothing: no note.
  state = load_train_state(dir.path() / "train_state.pt");
  state.builds = "0.0.9 (git 0123456789ab)";
  save_train_state(dir.path() / "train_state.pt", state);
  Trainer analysis_only(c, d.data, d.split);
  analysis_only.resume(dir.path());
  EXPECT_EQ(analysis_only.resumed_from_other_build(), "");
  EXPECT_EQ(analysis_only.builds(), "0.0.9 (git 0123456789ab)");
  // A file from before builds were kept.
  state.builds.clear();
  save_train_state(dir.path() / "train_state.pt", state);
  c.train.steps = 12;
  Trainer unknown(c, d.data, d.split);
  unknown.resume(dir.path());
  EXPECT_EQ(unknown.resumed_from_other_build(), "not recorded");
  EXPECT_EQ(unknown.builds(), "not recorded; from step 8: " + here);
}

TEST(Training, HugeLearningRateEndsDivergedWithTheStep) {
  at::set_num_threads(1);
  TinyPoisson d;
  RunConfig c = tiny_poisson_config();
  c.train.lr = 1e6;
  c.train.steps = 200;
  Trainer trainer(c, d.data, d.split);
  const TrainOutcome outcome = trainer.run({});
  EXPECT_EQ(outcome.status, "diverged");
  EXPECT_GT(outcome.step, 1);
  EXPECT_LT(outcome.step, 200);
  EXPECT_NE(outcome.message.find("non-finite"), std::string::npos) << outcome.message;
  EXPECT_NE(outcome.message.find("at step " + std::to_string(outcome.step)), std::string::npos) << outcome.message;
}

TEST(Training, StopRequestWritesACheckpointAndReportsInterrupted) {
  TinyPoisson d;
  TempDir dir;
  RunConfig c = tiny_poisson_config();
  c.train.steps = 50;
  Trainer trainer(c, d.data, d.split);
  int64_t checkpoint_step = -1;
  TrainHooks hooks;
  hooks.stop_requested = [&] { return trainer.step() >= 3; };
  hooks.on_checkpoint = [&](int64_t step, const fs::path& path, const FileDigest& digest) {
    checkpoint_step = step;
    EXPECT_EQ(digest.bytes, static_cast<int64_t>(fs::file_size(path)));
    EXPECT_EQ(digest.sha256.size(), 64u);
  };
  const TrainOutcome outcome = trainer.run(dir.path(), hooks);
  EXPECT_EQ(outcome.status, "interrupted");
  EXPECT_EQ(outcome.step, 3);
  EXPECT_EQ(checkpoint_step, 3);
  EXPECT_EQ(load_checkpoint(dir.path() / "checkpoint.pt").step, 3);
  // The time of those 3 steps is kept with them, and a resumed run's train_seconds adds to it.
  const double first = load_train_state(dir.path() / "train_state.pt").train_seconds;
  EXPECT_GT(first, 0.0);
  EXPECT_NEAR(first, outcome.train_seconds, 1e-6);
  c.train.steps = 6;
  Trainer resumed(c, d.data, d.split);
  resumed.resume(dir.path());
  EXPECT_TRUE(load_train_state(dir.path() / "train_state.pt").has_train_seconds);
  EXPECT_FALSE(resumed.resumed_without_train_seconds());
  const TrainOutcome rest = resumed.run(dir.path(), {});
  EXPECT_EQ(rest.status, "done");
  EXPECT_GT(rest.train_seconds, first);
  EXPECT_NEAR(load_train_state(dir.path() / "train_state.pt").train_seconds, rest.train_seconds, 1e-6);
}

// --- checkpoints ---------------------------------------------------------------------

std::vector<char> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const std::vector<char>& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct SavedModel {
  TempDir dir;
  RunConfig config = tiny_poisson_config();
  TinyPoisson data;
  fs::path file;
  at::Tensor reference_rates;
  std::unique_ptr<Trainer> trainer;

  SavedModel() {
    config.model.inferred_input_dim = 1;
    config.model.controller_dim = 8;
    trainer = std::make_unique<Trainer>(config, data.data, data.split);
    losses(*trainer, 3);
    file = dir.path() / "checkpoint.pt";
    save_checkpoint(file, *trainer->model(), config, trainer->step());
    torch::NoGradGuard no_grad;
    trainer->model()->eval();
    reference_rates = trainer->model()->forward(trainer->validation().encoder_spikes_btn, {}).log_rates_a_btn;
  }
};

TEST(Checkpoint, RoundTripGivesIdenticalOutputs) {
  SavedModel saved;
  LoadedModel loaded = load_checkpoint(saved.file);
  EXPECT_EQ(loaded.step, 3);
  EXPECT_EQ(loaded.config, saved.config);
  EXPECT_EQ(loaded.dims.neurons, 20);
  torch::NoGradGuard no_grad;
  loaded.model->eval();
  const at::Tensor rates = loaded.model->forward(saved.trainer->validation().encoder_spikes_btn, {}).log_rates_a_btn;
  EXPECT_TRUE(torch::equal(rates, saved.reference_rates));
}

void expect_refused(const fs::path& file, const std::string& expected_fragment) {
  try {
    load_checkpoint(file);
    ADD_FAILURE() << "a corrupted checkpoint was loaded";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(expected_fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, TruncatedFileIsRefused) {
  SavedModel saved;
  std::vector<char> bytes = read_bytes(saved.file);
  for (const size_t keep : {bytes.size() / 2, bytes.size() - 10, size_t{100}}) {
    write_bytes(saved.file, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep)));
    expect_refused(saved.file, "truncated or corrupted");
  }
}

TEST(Checkpoint, FlippedBytesAreRefused) {
  SavedModel saved;
  const std::vector<char> original = read_bytes(saved.file);
  // A byte inside a parameter's data: locate the float bytes of cell.w_rzh in the file.
  const at::Tensor w = saved.trainer->model()->cell->w_rzh.detach().contiguous();
  const char* needle = static_cast<const char*>(w.data_ptr());
  auto hit = std::search(original.begin(), original.end(), needle, needle + 64);
  ASSERT_NE(hit, original.end());
  std::vector<char> bytes = original;
  bytes[static_cast<size_t>(hit - original.begin()) + 17] ^= 0x10;
  write_bytes(saved.file, bytes);
  expect_refused(saved.file, "content hash mismatch");
  // A byte of the stored configuration text.
  const std::string key = "latent_dim = 16";
  hit = std::search(original.begin(), original.end(), key.begin(), key.end());
  ASSERT_NE(hit, original.end());
  bytes = original;
  bytes[static_cast<size_t>(hit - original.begin()) + key.size() - 1] = '7';
  write_bytes(saved.file, bytes);
  expect_refused(saved.file, "");
  // Every 997th byte flipped: never loads.
  bytes = original;
  for (size_t i = 0; i < bytes.size(); i += 997) bytes[i] = static_cast<char>(~bytes[i]);
  write_bytes(saved.file, bytes);
  expect_refused(saved.file, "");
  // A missing file says so.
  expect_refused(saved.dir.path() / "absent.pt", "cannot open");
}

TEST(Checkpoint, IsReadableByPythonTorchLoad) {
  if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no /usr/bin/python3 with torch here; cannot check torch.load compatibility";
  }
  SavedModel saved;
  const std::string cmd = "/usr/bin/python3 -c \"import torch,sys; d=torch.load(sys.argv[1]); "
                          "assert tuple(d['cell.w_rzh'].shape)==(32,16); assert 'latent_dim = 16' in d['config']; "
                          "assert d['step']==3\" " + saved.file.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

}  // namespace
}  // namespace jslds
