// `jslds simulate` and `jslds data inspect` as a user runs them: exit codes, files, output.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
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
