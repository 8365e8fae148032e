// `jslds train` with the analysis enabled and `jslds analyze` on its run directory and its
// checkpoint, end to end: result.json carries the analysis (docs/report-format.md),
// analysis.h5 is written, `jslds analyze` reproduces the training's analysis from the
// checkpoint, and bad input exits 2.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// One tiny training shared by the tests (a few seconds): flip-flop task, latent 8.
class AnalyzeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("jslds_analyze_cli_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    std::ofstream(*dir_ / "run.toml") << "[data]\nsimulate = \"flipflop\"\nsim_trials = 40\n"
                                         "[model]\nmode = \"task\"\nlatent_dim = 8\n"
                                         "[train]\nsteps = 20\nbatch_size = 8\neval_every = 10\n"
                                         "checkpoint_every = 20\n"
                                         "[analysis]\nenabled = true\nn_inits = 64\nmax_iters = 2000\n"
                                         "[runtime]\nthreads = 1\n";
    train_status_ = run(std::string(JSLDS_EXE) + " train " + (*dir_ / "run.toml").string() + " --run-dir " +
                        run_dir().string() + " 2>" + (*dir_ / "train.log").string());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }

  static int run(const std::string& command) {
    const int raw = std::system(command.c_str());
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  }
  static fs::path run_dir() { return *dir_ / "run"; }
  static std::string slurp(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  // `jslds analyze ARGS`, stdout to out.txt, stderr to err.txt; returns the exit status.
  static int analyze(const std::string& args) {
    return run(std::string(JSLDS_EXE) + " analyze " + args + " >" + (*dir_ / "out.txt").string() + " 2>" +
               (*dir_ / "err.txt").string());
  }
  static std::string out() { return slurp(*dir_ / "out.txt"); }
  static std::string err() { return slurp(*dir_ / "err.txt"); }

  static fs::path* dir_;
  static int train_status_;
};

fs::path* AnalyzeCli::dir_ = nullptr;
int AnalyzeCli::train_status_ = -1;

constexpr const char* kSummaries[] = {"n_fixed_points", "n_stable",     "n_saddle",    "n_marginal",
                                      "spectral_radius", "n_slow_modes", "theta_mode",  "n_stable_clusters",
                                      "ring_score"};

TEST_F(AnalyzeCli, TrainRunsTheAnalysisIntoResultJsonAndAnalysisH5) {
  ASSERT_EQ(train_status_, 0) << slurp(*dir_ / "train.log");
  const json result = json::parse(slurp(run_dir() / "result.json"));
  for (const char* name : kSummaries) EXPECT_TRUE(result["summary"][name].is_number()) << name;
  EXPECT_TRUE(result["summary"].contains("dominant_freq_hz"));
  // Expansion points are always analysed; each entry has the report-format fields.
  ASSERT_FALSE(result["fixed_points"].empty());
  const json& p = result["fixed_points"][0];
  for (const char* key : {"idx", "source", "q", "stability", "n_unstable", "max_abs_eig", "coords"}) {
    EXPECT_TRUE(p.contains(key)) << key;
  }
  EXPECT_EQ(p["coords"].size(), 8u);
  ASSERT_FALSE(result["modes"].empty());
  for (const char* key : {"point_idx", "mode_idx", "eig_re", "eig_im", "abs", "freq_hz", "tau_s"}) {
    EXPECT_TRUE(result["modes"][0].contains(key)) << key;
  }
  EXPECT_TRUE(fs::exists(run_dir() / "analysis.h5"));
  const std::string log = slurp(*dir_ / "train.log");
  EXPECT_NE(log.find("analysis: fixed points: iteration"), std::string::npos) << log;
  EXPECT_NE(log.find("wrote " + (run_dir() / "analysis.h5").string()), std::string::npos) << log;
}

TEST_F(AnalyzeCli, AnalyzeOnTheRunDirectoryReproducesTheTrainingsAnalysis) {
  ASSERT_EQ(train_status_, 0);
  fs::remove(run_dir() / "analysis.h5");
  ASSERT_EQ(analyze(run_dir().string() + " --json"), 0) << err();
  EXPECT_TRUE(fs::exists(run_dir() / "analysis.h5"));
  const json report = json::parse(out());
  const json result = json::parse(slurp(run_dir() / "result.json"));
  // Same checkpoint, validation trials and seed: the same analysis.
  for (const char* name : kSummaries) {
    EXPECT_NEAR(report["summary"][name].get<double>(), result["summary"][name].get<double>(), 1e-6) << name;
  }
  EXPECT_EQ(report["fixed_points"].size(), result["fixed_points"].size());
}

TEST_F(AnalyzeCli, AnalyzeOnTheCheckpointPrintsTheReadableSummary) {
  ASSERT_EQ(train_status_, 0);
  const fs::path h5 = *dir_ / "elsewhere.h5";
  ASSERT_EQ(analyze((run_dir() / "checkpoint.pt").string() + " --set analysis.n_inits=32 --set analysis.fp_reduction=sum"
                    " --output " + h5.string()),
            0)
      << err();
  EXPECT_TRUE(fs::exists(h5));
  const std::string text = out();
  for (const char* part : {"Fixed points:", "Slowest modes at the expansion points", "freq Hz", "n_stable_clusters",
                           "ring_score", "32 starts"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << " in\n" << text;
  }
  EXPECT_NE(err().find("step 20"), std::string::npos) << err();
  EXPECT_NE(err().find("1 thread(s)"), std::string::npos) << "the checkpoint's runtime.threads: " << err();
  // The thread count belongs to the machine, not the model: --threads overrides it.
  ASSERT_EQ(analyze((run_dir() / "checkpoint.pt").string() + " --threads 2 --output " + h5.string()), 0) << err();
  EXPECT_NE(err().find("2 thread(s)"), std::string::npos) << err();
  EXPECT_EQ(analyze(run_dir().string() + " --threads -1 --output " + h5.string()), 2);
  // As runtime.threads: at most 4096 (100000 threads ran for minutes without a result).
  EXPECT_EQ(analyze(run_dir().string() + " --threads 4097 --output " + h5.string()), 2);
  EXPECT_NE(err().find("must be a whole number from 0 to 4096, got '4097'"), std::string::npos) << err();
}

TEST_F(AnalyzeCli, NeverReplacesTheAnalysisOfATrainingInProgress) {
  ASSERT_EQ(train_status_, 0);
  ASSERT_TRUE(fs::exists(run_dir() / "analysis.h5"));
  const std::string before = slurp(run_dir() / "analysis.h5");
  // A trainer holds run.lock (as `jslds train` does for its whole life).
  const int fd = ::open((run_dir() / "run.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(::ftruncate(fd, 0), 0);
  ASSERT_EQ(::pwrite(fd, "12345 by-hand\n", 14, 0), 14);
  EXPECT_EQ(analyze(run_dir().string()), 2);
  EXPECT_NE(err().find("is the analysis.h5 of a training in progress (pid 12345 holds"), std::string::npos)
      << err();
  EXPECT_EQ(slurp(run_dir() / "analysis.h5"), before) << "refused: nothing written";
  // Reading the checkpoint of a training in progress is fine; the analysis goes elsewhere.
  const fs::path elsewhere = *dir_ / "while_training.h5";
  EXPECT_EQ(analyze(run_dir().string() + " --output " + elsewhere.string()), 0) << err();
  EXPECT_TRUE(fs::exists(elsewhere));
  ::close(fd);  // the training ended
  EXPECT_EQ(analyze(run_dir().string()), 0) << err();
  EXPECT_NE(err().find("note: this replaced the analysis.h5 written at the end of training"), std::string::npos)
      << err();
}

TEST_F(AnalyzeCli, BadInputExitsTwo) {
  ASSERT_EQ(train_status_, 0);
  // Only [analysis] may change.
  EXPECT_EQ(analyze(run_dir().string() + " --set model.latent_dim=4"), 2);
  EXPECT_NE(err().find("[analysis] keys only"), std::string::npos) << err();
  EXPECT_EQ(analyze(run_dir().string() + " --set analysis.fp_reduction=median"), 2);
  EXPECT_NE(err().find("fp_reduction"), std::string::npos) << err();
  // Turning the analysis off is not an analysis.
  EXPECT_EQ(analyze(run_dir().string() + " --set analysis.enabled=false"), 2);
  EXPECT_NE(err().find("analysis.enabled = false turns off the analysis"), std::string::npos) << err();
  // The training state beside the checkpoint is named as such (the message said "'String'").
  EXPECT_EQ(analyze((run_dir() / "train_state.pt").string()), 2);
  EXPECT_NE(err().find("(entry 'format' is 'jslds-train-state/1'): this is a training state (train_state.pt"),
            std::string::npos) << err();
  // No checkpoint there.
  EXPECT_EQ(analyze((*dir_).string()), 2);
  EXPECT_NE(err().find("no checkpoint.pt"), std::string::npos) << err();
  EXPECT_EQ(analyze((*dir_ / "missing.pt").string()), 2);
  // A corrupted copy (bytes flipped in the middle) is refused.
  std::string bytes = slurp(run_dir() / "checkpoint.pt");
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 16; ++i) bytes[i] = static_cast<char>(~bytes[i]);
  const fs::path bad = *dir_ / "corrupted.pt";
  std::ofstream(bad, std::ios::binary) << bytes;
  EXPECT_EQ(analyze(bad.string()), 2);
  EXPECT_NE(err().find("cannot analyse"), std::string::npos) << err();
}

// --output must never replace the checkpoint, its training state, a recording or any file
// that is not an earlier analysis.h5; refused before the work, nothing changes.
TEST_F(AnalyzeCli, OutputNeverReplacesTheCheckpointOrAnyForeignFile) {
  ASSERT_EQ(train_status_, 0);
  const std::string checkpoint_bytes = slurp(run_dir() / "checkpoint.pt");
  const std::string state_bytes = slurp(run_dir() / "train_state.pt");
  EXPECT_EQ(analyze(run_dir().string() + " -o " + (run_dir() / "checkpoint.pt").string()), 2);
  EXPECT_NE(err().find("is the checkpoint being analysed"), std::string::npos) << err();
  // Another spelling of the same file counts too.
  EXPECT_EQ(analyze(run_dir().string() + " -o " + (run_dir() / "." / "train_state.pt").string()), 2);
  EXPECT_NE(err().find("is the training state beside the checkpoint"), std::string::npos) << err();
  const fs::path notes = *dir_ / "notes.txt";
  std::ofstream(notes) << "my notes\n";
  EXPECT_EQ(analyze(run_dir().string() + " -o " + notes.string()), 2);
  EXPECT_NE(err().find("exists and is not an analysis.h5 written by jslds"), std::string::npos) << err();
  EXPECT_EQ(analyze(run_dir().string() + " -o " + dir_->string()), 2);
  EXPECT_NE(err().find("is a directory"), std::string::npos) << err();
  const fs::path link = *dir_ / "latest.h5";
  fs::create_symlink(notes, link);
  EXPECT_EQ(analyze(run_dir().string() + " -o " + link.string()), 2);
  EXPECT_NE(err().find("is a symbolic link (to " + notes.string() + ")"), std::string::npos) << err();
  const fs::path fifo = *dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(analyze(run_dir().string() + " -o " + fifo.string()), 2) << "opening a FIFO would block";
  EXPECT_NE(err().find("is not a regular file"), std::string::npos) << err();
  EXPECT_EQ(analyze(run_dir().string() + " -o " + (*dir_ / "no" / "such" / "a.h5").string()), 2);
  EXPECT_NE(err().find("does not exist"), std::string::npos) << err();
  EXPECT_EQ(err().find("HDF5-DIAG"), std::string::npos) << err();
  EXPECT_EQ(slurp(run_dir() / "checkpoint.pt"), checkpoint_bytes);
  EXPECT_EQ(slurp(run_dir() / "train_state.pt"), state_bytes);
  EXPECT_EQ(slurp(notes), "my notes\n");
  // An earlier analysis.h5 is replaced, as documented.
  const fs::path copy = *dir_ / "copy.h5";
  fs::copy_file(run_dir() / "analysis.h5", copy);
  EXPECT_EQ(analyze(run_dir().string() + " -o " + copy.string()), 0) << err();
}

}  // namespace
