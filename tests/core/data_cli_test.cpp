// `jslds simulate` and `jslds data inspect` as a user runs them: exit codes, files, output.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

struct Result {
  int code;
  std::string output;  // stdout and stderr
};

Result run(const std::string& args) {
  const std::string command = std::string(JSLDS_EXE) + " " + args + " 2>&1";
  Result r{-1, {}};
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST(DataCli, SimulateWritesReproducibleFilesThatInspectReads) {
  const fs::path dir = fs::temp_directory_path() / ("jslds_data_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string a = (dir / "a.h5").string(), b = (dir / "b.h5").string();
  auto r = run("simulate ring-theta --out " + a + " --seed 4 --set data.sim_trials=10");
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(run("simulate ring-theta --out " + b + " --seed 4 --set data.sim_trials=10").code, 0);
  EXPECT_EQ(bytes(a), bytes(b));
  r = run("data inspect " + a);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("format:   hdf5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/truth/theta_phase (10×100)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("binned:   10 trials × 100 bins × 60 neurons at 20 ms"),
            std::string::npos)
      << r.output;
  fs::remove_all(dir);
}

TEST(DataCli, InputErrorsExitWithStatusTwo) {
  auto r = run("data inspect /nonexistent/session.nwb");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("/nonexistent/session.nwb: no such file"), std::string::npos) << r.output;
  r = run("simulate oscillator --out /tmp/never.h5 --set data.freq_hz=40");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("Nyquist"), std::string::npos) << r.output;
  EXPECT_EQ(run("simulate pendulum --out /tmp/never.h5").code, 2);
}

// Scratch directory of one test, removed afterwards.
struct ScratchDir {
  fs::path dir = fs::temp_directory_path() /
                 ("jslds_data_cli_" + std::to_string(::getpid()) + "_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
  ScratchDir() { fs::create_directories(dir); }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Findings of a fresh-user tester (B5, B6, A4, B9 and the simulate/inspect polish list).
TEST(DataCli, InspectExitsTwoWhenTheFileOrTheOptionsFail) {
  ScratchDir d;
  std::ofstream(d / "fake.mat") << "hello\n";
  std::ofstream{d / "empty.mat"};
  auto r = run("data inspect " + (d / "fake.mat"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "not a MATLAB .mat file")) << r.output;
  r = run("data inspect " + (d / "empty.mat"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "is empty (0 bytes)")) << r.output;
  // A readable file the options cannot bin: the summary still prints, the exit status is 2
  // and the reason is on stderr.
  ASSERT_EQ(run("simulate oscillator -o " + (d / "osc.h5") + " --set data.sim_trials=3").code, 0);
  r = run("data inspect " + (d / "osc.h5") + " --set data.format=nwb");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "binned:   not possible with these options")) << r.output;
  EXPECT_TRUE(contains(r.output, "error: " + (d / "osc.h5") + ": /units/spike_times: not found"))
      << r.output;
  // The split `jslds train` would refuse (a held-out fraction that rounds to no neuron) fails
  // the pre-flight check too.
  r = run("data inspect " + (d / "osc.h5") + " --set data.heldout_neurons=0.001");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "rounds to no held-out neuron")) << r.output;
  // Keys inspect would ignore are rejected.
  EXPECT_EQ(run("data inspect " + (d / "osc.h5") + " --set model.latent_dim=4").code, 2);
  EXPECT_EQ(run("data inspect " + (d / "osc.h5") + " --set data.path=x.nwb").code, 2);
}

TEST(DataCli, SimulateRejectsWhatItWouldIgnoreAndNamesWhatItWrote) {
  ScratchDir d;
  const std::string out = d / "s.h5";
  auto r = run("simulate lorenz -o " + out + " --seed -1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--seed -1: expected a non-negative integer")) << r.output;
  r = run("simulate lorenz -o " + out + " --seed 1 --set data.sim_seed=2");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "disagree")) << r.output;
  for (const char* key : {"data.simulate=flipflop", "data.path=x.nwb", "model.latent_dim=4"}) {
    r = run("simulate lorenz -o " + out + " --set " + key);
    EXPECT_EQ(r.code, 2) << key << ": " << r.output;
    EXPECT_TRUE(contains(r.output, "simulate reads only")) << r.output;
  }
  r = run("simulate lorenz -o " + out + " --set data.sim_trials=1 --set data.sim_bins=1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "error: simulate lorenz: ")) << r.output;
  EXPECT_FALSE(contains(r.output, "Exception raised")) << r.output;
  r = run("simulate lorenz -o " + d.dir.string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "is a directory")) << r.output;
  r = run("simulate lorenz -o ''");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "error: --out is empty: give the path of a file")) << r.output;
  EXPECT_FALSE(fs::exists(out));
  // A seed beyond 64 bits is an error, never silently another seed.
  for (const char* seed : {"18446744073709551615", "9223372036854775808"}) {
    r = run("simulate lorenz -o " + out + " --seed " + seed);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_TRUE(contains(r.output, "out of range")) << r.output;
  }
  r = run("simulate lorenz -o " + out + " --set data.sim_seed=9223372036854775808");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "out of range of a 64-bit integer")) << r.output;
  // A file that is not an earlier simulation (here, anything else) is never replaced.
  const std::string other = d / "experiments.sqlite";
  std::ofstream(other) << "SQLite format 3";
  r = run("simulate lorenz -o " + other);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "exists and is not a simulation written by `jslds simulate`"))
      << r.output;
  EXPECT_EQ(bytes(other), "SQLite format 3");

  r = run("simulate flipflop -o " + out + " --seed 3 --set data.sim_trials=20");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "20 trials × 25 bins of task data, 6 inputs, 3 targets"))
      << r.output;
  r = run("simulate flipflop -o " + out + " --seed 4 --set data.sim_trials=20");
  ASSERT_EQ(r.code, 0) << "an earlier simulation is replaced: " << r.output;
  r = run("simulate flipflop -o " + out + " --seed 3 --set data.sim_trials=20");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run("data inspect " + out);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "written:  by simulate flipflop seed=3")) << r.output;
  EXPECT_TRUE(contains(r.output, "binned:   20 trials × 25 bins at 20 ms: task data, 6 inputs, "
                                 "3 targets"))
      << r.output;
}

// The shared recordings (skipped when absent): a 0.001 ms bin width used to die in Torch's
// allocator (A3), and the intervals-table hint must be something data.trials accepts (B7).
TEST(DataCli, InspectOnTheSharedNwbFile) {
  const fs::path nwb = fs::path(JSLDS_SHARED_DATA_DIR) / "human_mtl_zheng2022_sub4.nwb";
  if (!fs::exists(nwb)) GTEST_SKIP() << nwb << " is absent (see ../shared/data/README.md)";
  auto r = run("data inspect " + nwb.string() +
               " --set data.trials=intervals/encoding_table --set data.bin_ms=0.001");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "of memory: expected a larger data.bin_ms")) << r.output;
  r = run("data inspect " + nwb.string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "intervals/encoding_table")) << r.output;
  r = run("data inspect " + nwb.string() + " --set data.trials=encoding_table");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "binned:   90 trials × 343 bins × 35 neurons at 20 ms")) << r.output;
}

// Found by a tester: `data inspect` at a fine bin width was killed by the kernel's OOM killer
// although the binned counts were under the loader's limit (half of the memory): it summed
// them through a float64 copy of the whole tensor, three times their size at the peak.
TEST(DataCli, InspectNeedsLittleMoreMemoryThanTheBinnedCounts) {
  const fs::path nwb = fs::path(JSLDS_SHARED_DATA_DIR) / "human_mtl_zheng2022_sub4.nwb";
  if (!fs::exists(nwb)) GTEST_SKIP() << nwb << " is absent (see ../shared/data/README.md)";
  auto r = run("data inspect " + nwb.string() + " --set data.trials=encoding_table --set data.bin_ms=0.08");
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_TRUE(contains(r.output, "binned:   90 trials × 85888 bins × 35 neurons at 0.08 ms")) << r.output;
  const double counts_bytes = 90.0 * 85888 * 35 * 4;  // float32: 1.08 GB
  struct rusage usage {};
  ASSERT_EQ(::getrusage(RUSAGE_CHILDREN, &usage), 0);
  const double peak_bytes = static_cast<double>(usage.ru_maxrss) * 1024;  // the largest child's
  // LibTorch and the rest of the program take a few hundred MB besides the counts.
  EXPECT_LT(peak_bytes, counts_bytes + 700e6) << "peak resident " << peak_bytes / 1e9 << " GB";
}

