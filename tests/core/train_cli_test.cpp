// `jslds train` end to end: the report-fd events and result.json (docs/report-format.md),
// graceful stop with exit status 143 and --resume, and usage errors with exit status 2.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/blas_core.h"
#include "core/build_id.h"
#include "core/checkpoint_receipt.h"
#include "core/config.h"
#include "core/summary_names.h"

namespace jslds {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("jslds_train_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "run.toml") << "[data]\nsimulate = \"flipflop\"\nsim_trials = 40\n"
                                        "[model]\nmode = \"task\"\nlatent_dim = 8\n"
                                        "[train]\nsteps = 20\nbatch_size = 8\neval_every = 10\ncheckpoint_every = 10\n"
                                        "[runtime]\nthreads = 1\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs a shell command line; returns the exit status.
  static int run(const std::string& command) {
    const int raw = std::system(command.c_str());
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  }
  std::string train(const std::string& args) const {
    return std::string(JSLDS_EXE) + " train " + (dir_ / "run.toml").string() + " --run-dir " + (dir_ / "run").string() +
           " " + args;
  }
  static std::string slurp(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  static std::vector<json> read_events(const fs::path& file) {
    std::vector<json> events;
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) events.push_back(json::parse(line));
    return events;
  }

  fs::path dir_;
};

TEST_F(TrainCli, ReportStreamAndResultJsonFollowTheReportFormat) {
  const fs::path events_file = dir_ / "events.jsonl";
  ASSERT_EQ(run(train("--report-fd 3 3>" + events_file.string() + " 2>" + (dir_ / "stderr.txt").string())), 0);
  const std::vector<json> events = read_events(events_file);
  std::vector<int64_t> progress_steps, checkpoint_steps;
  for (const json& e : events) {
    if (e["event"] == "progress") {
      progress_steps.push_back(e["step"]);
      for (const char* key : {"train_loss", "loss_rnn", "loss_jslds", "loss_approx", "loss_fp", "val_mse",
                              "val_mse_jslds", "rel_state_error", "fp_residual", "lr", "steps_per_s"}) {
        EXPECT_TRUE(e["metrics"].contains(key)) << key;
      }
    } else if (e["event"] == "checkpoint") {
      checkpoint_steps.push_back(e["step"]);
      EXPECT_EQ(e["path"], (dir_ / "run" / "checkpoint.pt").string());
    }
  }
  EXPECT_EQ(progress_steps, (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(checkpoint_steps, (std::vector<int64_t>{10, 20}));
  // The last checkpoint event describes the file on disk.
  const json& last_checkpoint = events[events.size() - 2];
  ASSERT_EQ(last_checkpoint["event"], "checkpoint");
  EXPECT_EQ(last_checkpoint["sha256"], file_sha256(dir_ / "run" / "checkpoint.pt"));
  EXPECT_EQ(last_checkpoint["bytes"], static_cast<int64_t>(fs::file_size(dir_ / "run" / "checkpoint.pt")));
  // … and so does its receipt, which a resumed campaign may adopt it by.
  auto receipt = read_checkpoint_receipt(dir_ / "run");
  ASSERT_TRUE(receipt);
  EXPECT_EQ(receipt->step, 20);
  EXPECT_EQ(receipt->path, "checkpoint.pt");
  EXPECT_EQ(receipt->sha256, last_checkpoint["sha256"]);
  EXPECT_EQ(receipt->bytes, last_checkpoint["bytes"]);
  const json& result = events.back();
  EXPECT_EQ(result["event"], "result");
  EXPECT_EQ(result["status"], "done");
  EXPECT_EQ(result["step"], 20);
  // The build that trained it, and the OpenBLAS kernel set when there is one.
  EXPECT_EQ(result["jslds_build"].get<std::string>().rfind(build_id(), 0), 0u) << result["jslds_build"];
  EXPECT_TRUE(result["summary"]["val_mse"].is_number());
  for (const auto& [name, value] : result["summary"].items())  // what a sweep objective may name
    EXPECT_TRUE(is_summary_name(name)) << name << " is missing from core/summary_names.h";
  EXPECT_TRUE(result["fixed_points"].is_array());
  EXPECT_TRUE(result["modes"].is_array());
  std::ifstream result_file(dir_ / "run" / "result.json");
  EXPECT_EQ(json::parse(result_file), result);
  // The canonical config reproduces the run configuration.
  EXPECT_EQ(load_config(dir_ / "run" / "config.toml"), load_config(dir_ / "run.toml"));
  EXPECT_EQ(read_events(dir_ / "run" / "metrics.jsonl").size(), 2u);
  // The analysis summary in the log carries its "analysis: " label once.
  const std::string log = slurp(dir_ / "stderr.txt");
  EXPECT_NE(log.find("\nanalysis: latent dimension 8, bin "), std::string::npos) << log;
  EXPECT_EQ(log.find("analysis: Analysis:"), std::string::npos) << log;
}

TEST_F(TrainCli, SigtermCheckpointsAndExits143ThenResumeFinishes) {
  const fs::path status_file = dir_ / "status";
  // A long run, stopped by SIGTERM once its first progress line appeared.
  const std::string command = train("--set train.steps=1000000 --set train.eval_every=5 2>" +
                                    (dir_ / "stderr.txt").string() + " & pid=$!; " +
                                    "for i in $(seq 600); do grep -q '^step' " + (dir_ / "stderr.txt").string() +
                                    " 2>/dev/null && break; sleep 0.1; done; kill -TERM $pid; wait $pid; echo $? > " +
                                    status_file.string());
  ASSERT_EQ(run(command), 0);
  std::ifstream status_in(status_file);
  int status = -1;
  status_in >> status;
  EXPECT_EQ(status, 143);
  ASSERT_TRUE(fs::exists(dir_ / "run" / "train_state.pt"));
  const std::string log = slurp(dir_ / "stderr.txt");
  const auto at = log.find("stopped by SIGTERM after step ");
  ASSERT_NE(at, std::string::npos) << log;
  const int64_t stopped_at = std::stoll(log.substr(at + std::string("stopped by SIGTERM after step ").size()));
  EXPECT_GE(stopped_at, 5);
  // Without --resume the run directory is protected; with it the training completes (a few
  // steps past the stop: how far it got depends on the machine's load).
  EXPECT_EQ(run(train("2>/dev/null")), 2);
  ASSERT_EQ(run(train("--resume --set train.steps=" + std::to_string(stopped_at + 5) + " 2>/dev/null")), 0);
  std::ifstream result_file(dir_ / "run" / "result.json");
  const json result = json::parse(result_file);
  EXPECT_EQ(result["status"], "done");
  EXPECT_EQ(result["step"].get<int64_t>(), stopped_at + 5);
}

// A signal during the analysis at the end of training stops it within a search iteration
// (it used to be ignored for as long as the search ran, and the exit status was 0).
TEST_F(TrainCli, SigtermDuringTheAnalysisStopsAndResumeRedoesIt) {
  const fs::path err = dir_ / "err.txt", status_file = dir_ / "status";
  const std::string never_converging =
      "--set train.steps=10 --set analysis.enabled=true --set analysis.n_inits=2048 "
      "--set analysis.max_iters=1000000 --set analysis.fp_tol=1e-30";
  const std::string command = train(never_converging + " 2>" + err.string() + " & pid=$!; " +
                                    "for i in $(seq 600); do grep -q 'fixed points: iteration' " +
                                    err.string() + " 2>/dev/null && break; sleep 0.1; done; " +
                                    "kill -TERM $pid; wait $pid; echo $? > " + status_file.string());
  ASSERT_EQ(run(command), 0);
  std::ifstream status_in(status_file);
  int status = -1;
  status_in >> status;
  const std::string log = slurp(err);
  EXPECT_EQ(status, 143) << log;
  EXPECT_NE(log.find("stopped by SIGTERM during the analysis"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir_ / "run" / "result.json"));
  ASSERT_EQ(run(train("--resume --set train.steps=10 --set analysis.enabled=false 2>/dev/null")), 0);
  EXPECT_EQ(json::parse(std::ifstream(dir_ / "run" / "result.json"))["step"], 10);
}

// Resuming with fewer train.steps than were done, or with a changed model, is a usage error
// (exit status 2) that leaves config.toml as it was.
TEST_F(TrainCli, ResumeRefusesFewerStepsThanDoneAndAChangedModelWithStatus2) {
  ASSERT_EQ(run(train("2>/dev/null")), 0);
  const fs::path config = dir_ / "run" / "config.toml";
  const RunConfig before = load_config(config);
  const fs::path err = dir_ / "err.txt";
  EXPECT_EQ(run(train("--resume --set train.steps=15 2>" + err.string())), 2);
  const std::string text = slurp(err);
  EXPECT_NE(text.find("the run has done 20 steps, more than train.steps = 15"), std::string::npos) << text;
  EXPECT_EQ(load_config(config), before);
  EXPECT_EQ(run(train("--resume --set train.steps=30 --set model.latent_dim=9 2>" + err.string())), 2);
  EXPECT_EQ(load_config(config), before);
  // The refusal names the key that changed (train.steps may change and is not listed).
  const std::string changed = slurp(err);
  EXPECT_NE(changed.find("was written for a different run configuration (changed: model.latent_dim: " +
                         std::to_string(before.model.latent_dim) + " -> 9; only train.steps"),
            std::string::npos)
      << changed;
  const std::string log = slurp(dir_ / "run" / "log.txt");
  EXPECT_NE(log.find("error: "), std::string::npos) << "a refused resume says why in log.txt: " << log;
  EXPECT_EQ(run(std::string(JSLDS_EXE) + " train " + (dir_ / "run.toml").string() + " --run-dir " +
                (dir_ / "zero").string() + " --set train.steps=0 2>" + err.string()),
            2);
  const std::string zero = slurp(err);
  EXPECT_NE(zero.find("train.steps"), std::string::npos) << zero;
  EXPECT_FALSE(fs::exists(dir_ / "zero" / "checkpoint.pt"));
}

// A SIGKILL can fall anywhere in the publication of a checkpoint (core/checkpoint_receipt.h):
// after its receipt was written, resume completes it; before, resume undoes it and continues
// from the previous checkpoint. Either way the run continues, never from step 0.
TEST_F(TrainCli, ResumeCompletesOrUndoesACheckpointInterruptedByACrash) {
  const fs::path rd = dir_ / "run";
  const fs::path err = dir_ / "err.txt";
  auto stderr_text = [&] { return slurp(err); };
  ASSERT_EQ(run(train("--set train.steps=10 2>/dev/null")), 0);
  for (const char* name : {"checkpoint.pt", "train_state.pt"}) fs::copy_file(rd / name, dir_ / name);
  ASSERT_EQ(run(train("--resume --set train.steps=20 2>/dev/null")), 0);
  ASSERT_EQ(read_checkpoint_receipt(rd)->step, 20);
  EXPECT_FALSE(fs::exists(rd / "checkpoint.pt.next"));
  EXPECT_EQ(read_checkpoint_receipt(rd)->state_sha256, file_sha256(rd / "train_state.pt"));

  // Killed after the step-20 receipt, before the renames: the step-10 pair is still in place.
  for (const char* name : {"checkpoint.pt", "train_state.pt"}) {
    fs::rename(rd / name, staged_checkpoint_path(rd / name));
    fs::copy_file(dir_ / name, rd / name);
  }
  ASSERT_EQ(run(train("--resume --set train.steps=30 2>" + err.string())), 0) << stderr_text();
  EXPECT_NE(stderr_text().find("completed the publication of the step-20 checkpoint"), std::string::npos)
      << stderr_text();
  EXPECT_NE(stderr_text().find("at step 20/30"), std::string::npos) << stderr_text();
  // A resume that changes a resumable key says so, against checkpoint.pt's configuration.
  EXPECT_NE(stderr_text().find("resumed with changed settings"), std::string::npos) << stderr_text();
  EXPECT_NE(stderr_text().find("train.steps: 20 -> 30"), std::string::npos) << stderr_text();
  EXPECT_FALSE(fs::exists(staged_checkpoint_path(rd / "checkpoint.pt")));
  EXPECT_FALSE(fs::exists(staged_checkpoint_path(rd / "train_state.pt")));

  // Killed while writing the next pair, before its receipt: the half-written files go, the
  // step-30 pair stays, and a dead writer's temporary file is removed.
  std::ofstream(staged_checkpoint_path(rd / "checkpoint.pt")) << "half a checkpoint";
  std::ofstream(rd / "train_state.pt.next.tmp.2147483000") << "half a train state";
  ASSERT_EQ(run(train("--resume --set train.steps=40 2>" + err.string())), 0) << stderr_text();
  EXPECT_NE(stderr_text().find("removed an unfinished checkpoint (checkpoint.pt.next)"), std::string::npos)
      << stderr_text();
  EXPECT_NE(stderr_text().find("at step 30/40"), std::string::npos) << stderr_text();
  EXPECT_FALSE(fs::exists(rd / "train_state.pt.next.tmp.2147483000"));
  EXPECT_EQ(json::parse(std::ifstream(rd / "result.json"))["step"], 40);
}

// Two trainings of one run directory would write one checkpoint, one metrics.jsonl and one
// log at once: a `jslds train` of a directory whose run.lock another live process holds (a
// second --resume by hand, or a sweep's child) is refused with status 2 before it touches
// anything (core/run_lock.h); once the holder is gone the same command trains.
TEST_F(TrainCli, ASecondTrainingOfARunDirectoryIsRefusedWhileTheFirstHoldsRunLock) {
  const fs::path rd = dir_ / "run";
  ASSERT_EQ(run(train("--set train.steps=10 2>/dev/null")), 0);
  // jslds train leaves its own pid in run.lock (informational) and releases the lock on exit.
  EXPECT_GT(std::atol(slurp(rd / "run.lock").c_str()), 0);
  EXPECT_NE(slurp(rd / "run.lock").find(" by-hand\n"), std::string::npos) << slurp(rd / "run.lock");
  const std::string log_before = slurp(rd / "log.txt");
  const std::string receipt_before = slurp(rd / "checkpoint.json");

  // The other training: a process holding the flock, its pid written as jslds train writes it.
  // O_CLOEXEC: an inherited descriptor of run.lock at fd 4 is how a supervisor hands the lock to its child.
  const int fd = ::open((rd / "run.lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(::ftruncate(fd, 0), 0);
  const std::string holder = "4242\n";
  ASSERT_EQ(::pwrite(fd, holder.data(), holder.size(), 0), static_cast<ssize_t>(holder.size()));
  const fs::path err = dir_ / "err.txt";
  EXPECT_EQ(run(train("--resume --set train.steps=20 2>" + err.string())), 2);
  const std::string message = slurp(err);
  EXPECT_NE(message.find("is in use: another training process (pid 4242) holds run.lock"), std::string::npos)
      << message;
  EXPECT_EQ(slurp(rd / "log.txt"), log_before) << "the refused training wrote to the log";
  EXPECT_EQ(slurp(rd / "checkpoint.json"), receipt_before);
  EXPECT_EQ(slurp(rd / "run.lock"), holder) << "the refused training overwrote the holder's pid";
  ::close(fd);  // the holder ends: the kernel releases its lock

  ASSERT_EQ(run(train("--resume --set train.steps=20 2>" + err.string())), 0) << slurp(err);
  EXPECT_NE(slurp(err).find("at step 10/20"), std::string::npos) << slurp(err);
  EXPECT_EQ(read_checkpoint_receipt(rd)->step, 20);

  // A supervisor holds the lock and hands it to its child as descriptor 4: that child trains.
  const int saved4 = ::fcntl(4, F_DUPFD_CLOEXEC, 10);  // whatever this process had at 4
  const int opened = ::open((rd / "run.lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(opened, 0);
  const int held = ::fcntl(opened, F_DUPFD_CLOEXEC, 10);  // above 4, so dup2 below really copies
  ::close(opened);
  ASSERT_GE(held, 10);
  ASSERT_EQ(::flock(held, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(::dup2(held, 4), 4);  // dup2 clears FD_CLOEXEC: the child inherits descriptor 4
  const int status = run(train("--resume --set train.steps=30 2>" + err.string()));
  ::close(4);
  if (saved4 >= 0) {
    ::dup2(saved4, 4);
    ::close(saved4);
  }
  ::close(held);
  EXPECT_EQ(status, 0) << slurp(err);
  EXPECT_EQ(read_checkpoint_receipt(rd)->step, 30);
}

// A run killed after its last checkpoint resumes with no step left: its result still carries
// the training-side figures of the last evaluation (from metrics.jsonl), like any done run.
TEST_F(TrainCli, AResumeWithNoStepLeftKeepsTheLastTrainingFigures) {
  ASSERT_EQ(run(train("2>/dev/null")), 0);
  const fs::path rd = dir_ / "run";
  const json first = json::parse(std::ifstream(rd / "result.json"))["summary"];
  ASSERT_TRUE(first["train_loss"].is_number());
  ASSERT_EQ(run(train("--resume 2>/dev/null")), 0);
  const json again = json::parse(std::ifstream(rd / "result.json"))["summary"];
  for (const char* key : {"train_loss", "loss_rnn", "lr", "steps_per_s", "val_mse"})
    EXPECT_EQ(again[key], first[key]) << key;
  EXPECT_EQ(again["steps_done"], 20);
}

// The sweep spec accepts as objective only the names of core/summary_names.h: every name a
// run reports must be there (task mode: ReportStreamAndResultJsonFollowTheReportFormat).
TEST_F(TrainCli, EverySummaryOfAPoissonRunIsAKnownSummaryName) {
  std::ofstream(dir_ / "poisson.toml") << "[data]\nsimulate = \"oscillator\"\nsim_trials = 12\nheldout_neurons = 0.2\n"
                                          "[model]\nlatent_dim = 8\nfactors_dim = 4\nencoder_dim = 8\n"
                                          "inferred_input_dim = 2\ncontroller_dim = 8\n"
                                          "[train]\nsteps = 2\nbatch_size = 4\neval_every = 2\n"
                                          "[analysis]\nn_inits = 16\nmax_iters = 50\n[runtime]\nthreads = 1\n";
  ASSERT_EQ(run(std::string(JSLDS_EXE) + " train " + (dir_ / "poisson.toml").string() + " --run-dir " +
                (dir_ / "poisson").string() + " 2>/dev/null"),
            0);
  const json summary = json::parse(std::ifstream(dir_ / "poisson" / "result.json"))["summary"];
  for (const auto& [name, value] : summary.items())
    EXPECT_TRUE(is_summary_name(name)) << name << " is missing from core/summary_names.h";
  for (const char* name : {"val_bps", "val_bps_jslds", "val_cobps", "val_nll", "loss_kl_ic", "loss_kl_ii",
                           "train_seconds", "n_stable_clusters", "ring_score"})
    EXPECT_TRUE(summary.contains(name)) << name;
}

// `jslds train --help` describes the progress line: every metric it prints, in either mode.
TEST_F(TrainCli, HelpNamesEveryMetricOfTheProgressLine) {
  ASSERT_EQ(run(std::string(JSLDS_EXE) + " train --help > " + (dir_ / "help.txt").string()), 0);
  const std::string help = slurp(dir_ / "help.txt");
  std::ofstream(dir_ / "poisson.toml") << "[data]\nsimulate = \"oscillator\"\nsim_trials = 12\nheldout_neurons = 0.2\n"
                                          "[model]\nlatent_dim = 8\nfactors_dim = 4\nencoder_dim = 8\n"
                                          "[train]\nsteps = 2\nbatch_size = 4\neval_every = 2\n"
                                          "[analysis]\nenabled = false\n[runtime]\nthreads = 1\n";
  std::set<std::string> printed;
  for (const std::string config : {"run.toml", "poisson.toml"}) {  // task mode, Poisson mode
    const fs::path log = dir_ / (config + ".log");
    ASSERT_EQ(run(std::string(JSLDS_EXE) + " train " + (dir_ / config).string() + " --run-dir " +
                  (dir_ / (config + ".run")).string() + " --set analysis.enabled=false 2>" + log.string()),
              0);
    std::istringstream lines(slurp(log));
    for (std::string line; std::getline(lines, line);) {
      if (!line.starts_with("step ")) continue;
      // "step 10/20  loss 0.5  val_mse 0.1  …  rel_state_error 0.2  812.3 steps/s  ETA 0s"
      static const std::regex kNamedValue(R"(  ([a-z_]+) \S+)");
      for (std::sregex_iterator it(line.begin(), line.end(), kNamedValue), end; it != end; ++it)
        printed.insert((*it)[1]);
    }
  }
  for (const char* name : {"loss", "val_mse", "val_mse_jslds", "val_bps", "val_bps_jslds", "val_cobps",
                           "rel_state_error"})
    EXPECT_TRUE(printed.count(name)) << name << " was not printed";
  for (const std::string& name : printed)
    EXPECT_NE(help.find(name), std::string::npos) << "`jslds train --help` does not mention " << name;
}

TEST_F(TrainCli, BadInputExitsWithStatus2AndSaysWhere) {
  std::ofstream(dir_ / "bad.toml") << "[model]\nlatnt_dim = 3\n";
  const fs::path err = dir_ / "err.txt";
  EXPECT_EQ(run(std::string(JSLDS_EXE) + " train " + (dir_ / "bad.toml").string() + " --run-dir " +
                (dir_ / "bad").string() + " 2>" + err.string()),
            2);
  const std::string message = slurp(err);
  EXPECT_NE(message.find("bad.toml:2:1"), std::string::npos) << message;
  // Task data in poisson mode is refused with a hint.
  EXPECT_EQ(run(train("--set model.mode=\\\"poisson\\\" 2>" + err.string())), 2);
  const std::string message2 = slurp(err);
  EXPECT_NE(message2.find("set model.mode = \"task\""), std::string::npos) << message2;
  // No data source, or a data file that does not exist: refused before any run directory.
  std::ofstream(dir_ / "nodata.toml") << "[model]\nlatent_dim = 8\n";
  for (const std::string extra : {"", " --set data.path=/no/such/recording.nwb"}) {
    EXPECT_EQ(run(std::string(JSLDS_EXE) + " train " + (dir_ / "nodata.toml").string() + " --run-dir " +
                  (dir_ / "nodata").string() + extra + " 2>" + err.string()),
              2);
    EXPECT_NE(slurp(err).find(extra.empty() ? "no data: set data.path" : "no such file"), std::string::npos)
        << slurp(err);
    EXPECT_FALSE(fs::exists(dir_ / "nodata")) << "a half-made run directory was left behind";
  }
  // Refused after loading the configuration, by the data, the mode or the device: no run
  // directory either (it used to be left with log.txt and run.lock).
  for (const std::string extra : {"--set model.mode=\\\"poisson\\\"", "--set data.freq_hz=30 --set data.simulate=oscillator",
                                  "--set runtime.device=\\\"cuda:7\\\"", "--report-fd 97"}) {
    SCOPED_TRACE(extra);
    EXPECT_EQ(run(std::string(JSLDS_EXE) + " train " + (dir_ / "run.toml").string() + " --run-dir " +
                  (dir_ / "refused").string() + " " + extra + " 2>" + err.string()),
              2)
        << slurp(err);
    EXPECT_FALSE(fs::exists(dir_ / "refused")) << "a half-made run directory was left behind: " << slurp(err);
  }
}

// A --run-dir that holds files jslds did not write (a mistyped path, a data folder, a user's own
// config.toml or result.json) is refused before anything in it changes; a run directory jslds
// made (an earlier attempt's leftovers included) is not.
TEST_F(TrainCli, AFolderThatIsNotARunDirectoryIsRefusedUntouched) {
  const fs::path err = dir_ / "err.txt";
  const fs::path mine = dir_ / "mine";
  fs::create_directories(mine);
  std::ofstream(mine / "config.toml") << "my notes\n";
  std::ofstream(mine / "result.json") << "{\"mine\": 1}\n";
  const auto train_into = [&](const fs::path& run_dir, const std::string& extra = "") {
    return run(std::string(JSLDS_EXE) + " train " + (dir_ / "run.toml").string() + " --run-dir " + run_dir.string() +
               " " + extra + " 2>" + err.string());
  };
  EXPECT_EQ(train_into(mine), 2);
  EXPECT_NE(slurp(err).find("--run-dir " + mine.string() + ": holds config.toml, result.json, which a training "
                            "does not write, and no training yet"),
            std::string::npos)
      << slurp(err);
  EXPECT_EQ(slurp(mine / "config.toml"), "my notes\n");
  EXPECT_EQ(slurp(mine / "result.json"), "{\"mine\": 1}\n");
  EXPECT_FALSE(fs::exists(mine / "log.txt"));
  EXPECT_FALSE(fs::exists(mine / "run.lock"));
  // A hand-written run configuration (comments, another run) is the user's too: a training
  // writes its canonical text there.
  const fs::path own = dir_ / "own";
  fs::create_directories(own);
  const std::string hand_written = "# my settings for session 7\n" + slurp(dir_ / "run.toml");
  std::ofstream(own / "config.toml") << hand_written;
  EXPECT_EQ(train_into(own), 2);
  EXPECT_NE(slurp(err).find("holds config.toml, which a training does not write"), std::string::npos) << slurp(err);
  EXPECT_EQ(slurp(own / "config.toml"), hand_written);
  // Any other file: a recording, notes.
  const fs::path data = dir_ / "data";
  fs::create_directories(data);
  std::ofstream(data / "session.nwb") << "x";
  EXPECT_EQ(train_into(data, "--resume"), 2);
  EXPECT_NE(slurp(err).find("holds session.nwb, which a training does not write, and no training yet"),
            std::string::npos)
      << slurp(err);
  EXPECT_EQ(fs::directory_iterator(data)->path().filename(), "session.nwb");
  // A file where the directory should be.
  EXPECT_EQ(train_into(data / "session.nwb"), 2);
  EXPECT_NE(slurp(err).find("exists and is not a directory"), std::string::npos) << slurp(err);

  // A run directory of an earlier attempt (no checkpoint yet, a kept-aside pair, a leftover
  // temporary file) trains; its old history is not appended to.
  const fs::path earlier = dir_ / "earlier";
  fs::create_directories(earlier);
  std::ofstream(earlier / "config.toml") << to_toml(load_config(dir_ / "run.toml"));  // as jslds writes it
  std::ofstream(earlier / "metrics.jsonl") << R"({"step":999,"metrics":{"train_loss":1}})" << "\n";
  std::ofstream(earlier / "checkpoint.pt.previous") << "old";
  std::ofstream(earlier / "result.json.tmp.12345") << "";
  std::ofstream(earlier / "log.txt") << "attempt 1\n";
  std::ofstream(earlier / "result.json");                            // empty: a crash before it reached the disk
  std::ofstream(earlier / ".nfs000000000000abcd00000001") << "x";  // system and editor files are not
  std::ofstream(earlier / "Thumbs.db") << "x";                      // looked at
  std::ofstream(earlier / "config.toml~") << "x";
  ASSERT_EQ(train_into(earlier, "--set train.batch_size=1000"), 0) << slurp(err);
  EXPECT_EQ(slurp(earlier / "metrics.jsonl").find("\"step\":999"), std::string::npos) << slurp(earlier / "metrics.jsonl");
  EXPECT_TRUE(fs::exists(earlier / "checkpoint.pt"));
  // A batch larger than the training set is said, not silently cut.
  EXPECT_NE(slurp(earlier / "log.txt").find("note: train.batch_size = 1000 is more than the 32 training trials"),
            std::string::npos) << slurp(earlier / "log.txt");
}

// A folder that holds a training is a run directory, whatever else is in it (an analysis
// written beside it with --output, an editor's file): --resume continues it. (The first
// version of the check refused such folders, and with them a sweep's interrupted runs.)
TEST_F(TrainCli, ARunDirectoryWithATrainingResumesWhateverElseItHolds) {
  ASSERT_EQ(run(train("--set train.steps=10 2>/dev/null")), 0);
  const fs::path run_dir = dir_ / "run";
  std::ofstream(run_dir / "analysis-more.h5") << "another analysis";
  std::ofstream(run_dir / "notes.txt") << "my notes\n";
  {
    // A torn last line, as a full disk leaves.
    std::ofstream(run_dir / "metrics.jsonl", std::ios::app) << R"({"step": 10, "metr)";
  }
  const fs::path err = dir_ / "err.txt";
  ASSERT_EQ(run(train("--resume 2>" + err.string())), 0) << slurp(err);
  EXPECT_NE(slurp(err).find("resumed from"), std::string::npos) << slurp(err);
  EXPECT_EQ(slurp(run_dir / "notes.txt"), "my notes\n");
}

// --resume without train_state.pt beside checkpoint.pt cannot continue; it used to start again
// from step 0 and replace the trained model.
TEST_F(TrainCli, ResumeWithoutTheTrainingStateKeepsTheModelAndRefuses) {
  ASSERT_EQ(run(train("2>/dev/null")), 0);
  const fs::path run_dir = dir_ / "run";
  const std::string checkpoint = slurp(run_dir / "checkpoint.pt");
  const std::string result = slurp(run_dir / "result.json");
  fs::remove(run_dir / "train_state.pt");
  const fs::path err = dir_ / "err.txt";
  EXPECT_EQ(run(train("--resume --set train.steps=30 2>" + err.string())), 2);
  EXPECT_NE(slurp(err).find("--resume needs train_state.pt (the optimiser state written with checkpoint.pt), which "
                            "is missing; the training cannot be continued. Its model is kept"),
            std::string::npos)
      << slurp(err);
  EXPECT_EQ(slurp(run_dir / "checkpoint.pt"), checkpoint);
  EXPECT_EQ(slurp(run_dir / "result.json"), result);
}

TEST_F(TrainCli, RelativeDataPathIsTakenFromTheConfigFilesDirectory) {
  // A recording beside its configuration, trained from another current directory.
  const fs::path data = dir_ / "data";
  fs::create_directories(data);
  ASSERT_EQ(run(std::string(JSLDS_EXE) + " simulate oscillator -o " + (data / "osc.h5").string() +
                " --set data.sim_trials=12 > /dev/null"),
            0);
  std::ofstream(data / "osc.toml") << "[data]\npath = \"osc.h5\"\n[model]\nlatent_dim = 8\n"
                                      "factors_dim = 4\nencoder_dim = 8\n"
                                      "[train]\nsteps = 2\nbatch_size = 4\neval_every = 2\n"
                                      "[analysis]\nenabled = false\n[runtime]\nthreads = 1\n";
  const fs::path run_dir = dir_ / "osc_run";
  EXPECT_EQ(run("cd / && " + std::string(JSLDS_EXE) + " train " + (data / "osc.toml").string() +
                " --run-dir " + run_dir.string() + " > /dev/null 2>&1"),
            0);
  // The run directory's copy names the file absolutely, so it reproduces the run anywhere.
  EXPECT_EQ(load_config(run_dir / "config.toml").data.path, (data / "osc.h5").string());
  // A --set path is taken from the current directory.
  EXPECT_EQ(run("cd " + data.string() + " && " + std::string(JSLDS_EXE) + " train " +
                (data / "osc.toml").string() + " --run-dir " + (dir_ / "osc_set").string() +
                " --set data.path=osc.h5 > /dev/null 2>&1"),
            0);
  EXPECT_EQ(load_config(dir_ / "osc_set" / "config.toml").data.path, (data / "osc.h5").string());

  // The recording replaced by another of the same shape (another seed): --resume refuses
  // with exit status 2, analyze warns that it will not reproduce the training's analysis.
  ASSERT_EQ(run(std::string(JSLDS_EXE) + " simulate oscillator -o " + (data / "osc.h5").string() +
                " --set data.sim_trials=12 --seed 5 > /dev/null 2>&1"),
            0);
  const fs::path err = dir_ / "err.txt";
  EXPECT_EQ(run(std::string(JSLDS_EXE) + " train " + (run_dir / "config.toml").string() + " --run-dir " +
                run_dir.string() + " --resume --set train.steps=4 2>" + err.string()),
            2);
  auto text = [&] { return slurp(err); };
  EXPECT_NE(text().find("was written for other data"), std::string::npos) << text();
  EXPECT_EQ(run(std::string(JSLDS_EXE) + " analyze " + run_dir.string() + " -o " + (dir_ / "a.h5").string() +
                " > /dev/null 2>" + err.string()),
            0)
      << text();
  EXPECT_NE(text().find("warning: the data the checkpoint's configuration names have changed"), std::string::npos)
      << text();
}

// Found by a tester: a configuration written straight into its run directory lost its
// comments when the training replaced it with the canonical form. Its text is kept beside it.
TEST_F(TrainCli, AConfigurationGivenAsTheRunDirectorysOwnIsKeptAsABackup) {
  const fs::path run_dir = dir_ / "own";
  fs::create_directories(run_dir);
  const std::string mine =
      "# my notes: short run\n[data]\nsimulate = \"oscillator\"\nsim_trials = 12\n[model]\nlatent_dim = 8\n"
      "factors_dim = 4\nencoder_dim = 8\n[train]\nsteps = 2\nbatch_size = 4\neval_every = 2\n"
      "[analysis]\nenabled = false\n[runtime]\nthreads = 1\n";
  std::ofstream(run_dir / "config.toml") << mine;
  const fs::path err = dir_ / "own_err.txt";
  ASSERT_EQ(run(std::string(JSLDS_EXE) + " train " + (run_dir / "config.toml").string() + " --run-dir " +
                run_dir.string() + " > /dev/null 2>" + err.string()),
            0)
      << slurp(err);
  EXPECT_EQ(slurp(run_dir / "config.toml~"), mine);
  const RunConfig trained = load_config(run_dir / "config.toml");
  EXPECT_EQ(slurp(run_dir / "config.toml"), to_toml(trained));
  EXPECT_EQ(trained.train.steps, 2);
  EXPECT_NE(slurp(err).find("your text is kept as config.toml~"), std::string::npos) << slurp(err);
  // Resuming from the canonical file leaves the backup alone.
  ASSERT_EQ(run(std::string(JSLDS_EXE) + " train " + (run_dir / "config.toml").string() + " --run-dir " +
                run_dir.string() + " --resume --set train.steps=4 > /dev/null 2>" + err.string()),
            0)
      << slurp(err);
  EXPECT_EQ(load_config(run_dir / "config.toml").train.steps, 4);
  EXPECT_EQ(slurp(run_dir / "config.toml~"), mine);
}

// Debian 12's OpenBLAS falls back to its slow SSE3 kernels ("Prescott") on CPUs newer than it;
// `jslds` then sets OPENBLAS_CORETYPE for jslds-full (core/blas_core.h). The log names the
// kernel set either way, and a user's own OPENBLAS_CORETYPE is kept.
TEST_F(TrainCli, TheLogNamesOpenBlasKernelsWhichTheFrontEndChoosesForCpusOpenBlasDoesNotKnow) {
  ::unsetenv("OPENBLAS_CORETYPE");
  const BlasCoreChoice choice = choose_blas_core();
  if (choice.detected.empty()) GTEST_SKIP() << "the BLAS LibTorch uses here is not OpenBLAS";
  ASSERT_EQ(run("env -u OPENBLAS_CORETYPE " + train("--set train.steps=2 --set analysis.enabled=false > /dev/null 2>&1")),
            0);
  const std::string log = slurp(dir_ / "run" / "log.txt");
  if (choice.forced.empty())
    EXPECT_NE(log.find(", core " + choice.detected + ", malloc"), std::string::npos) << log;
  else
    EXPECT_NE(log.find(", core " + choice.forced + " (set by OPENBLAS_CORETYPE), malloc"), std::string::npos) << log;

  // The user's choice wins; then nothing is advised.
  fs::remove_all(dir_ / "run");
  ASSERT_EQ(run("OPENBLAS_CORETYPE=Prescott " +
                train("--set train.steps=2 --set analysis.enabled=false > /dev/null 2>&1")),
            0);
  const std::string own = slurp(dir_ / "run" / "log.txt");
  EXPECT_NE(own.find(", core Prescott (set by OPENBLAS_CORETYPE), malloc"), std::string::npos) << own;
  // A value OpenBLAS does not know is shown beside the set it chose instead.
  fs::remove_all(dir_ / "run");
  ASSERT_EQ(run("OPENBLAS_CORETYPE=Banana " + train("--set train.steps=2 --set analysis.enabled=false > /dev/null 2>&1")),
            0);
  const std::string banana = slurp(dir_ / "run" / "log.txt");
  EXPECT_NE(banana.find(" (OPENBLAS_CORETYPE=Banana), malloc"), std::string::npos) << banana;

  // With the variable set, choose_blas_core leaves OpenBLAS's choice alone.
  ::setenv("OPENBLAS_CORETYPE", "Prescott", 1);
  EXPECT_EQ(choose_blas_core().forced, "");
  ::unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace
}  // namespace jslds
