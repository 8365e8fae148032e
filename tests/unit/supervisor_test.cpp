// The supervisor against a stand-in child (tests/sweep/fake_train.cpp): results, crashes
// turned into failed runs with the signal in the message, graceful stop with a checkpoint,
// resume from a verified checkpoint only, and the pure outcome classification.
#include "worker/supervisor.h"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <unistd.h>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/checkpoint_receipt.h"
#include "core/config.h"
#include "worker/child_process.h"

namespace jslds {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("jslds_supervisor_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    ::unsetenv("FAKE_TRAIN_FAIL");
    ::unsetenv("FAKE_TRAIN_STEP_MS");
  }
  void TearDown() override {
    ::unsetenv("FAKE_TRAIN_FAIL");
    ::unsetenv("FAKE_TRAIN_STEP_MS");
    fs::remove_all(root_);
  }

  // A run directory named `number` with a config of `steps` steps.
  Task make_task(int number, int64_t steps) {
    fs::path dir = root_ / std::to_string(number);
    fs::create_directories(dir);
    RunConfig c;
    c.data.simulate = "oscillator";
    c.train.steps = steps;
    c.train.eval_every = 10;
    c.train.checkpoint_every = 20;
    std::ofstream(dir / "config.toml") << to_toml(c);
    Task t;
    t.run_id = 100 + number;
    t.run_number = number;
    t.run_dir = dir.string();
    t.device = "cpu";
    return t;
  }

  Supervisor make_supervisor(std::string exe = JSLDS_FAKE_TRAIN_EXE) {
    SupervisorOptions o;
    o.train_exe = exe;
    o.stop_grace = std::chrono::seconds(20);
    return Supervisor(o);
  }

  // Polls until the result; collects every update.
  Result run_to_end(Supervisor& s, std::vector<MetricPoint>* points = nullptr,
                    std::optional<CheckpointInfo>* checkpoint = nullptr) {
    for (int i = 0; i < 6000; ++i) {  // at most ~60 s
      auto u = s.poll(std::chrono::milliseconds(10));
      if (points)
        for (auto& p : u.points) points->push_back(p);
      if (checkpoint && u.checkpoint) *checkpoint = u.checkpoint;
      if (u.result) return *u.result;
    }
    ADD_FAILURE() << "no result within 60 s";
    return {};
  }

  fs::path root_;
};

TEST_F(SupervisorTest, CompletedRunReportsMetricsCheckpointsAndResult) {
  Supervisor s = make_supervisor();
  Task t = make_task(1, 40);
  s.start(t);
  EXPECT_TRUE(s.busy());
  std::vector<MetricPoint> points;
  std::optional<CheckpointInfo> checkpoint;
  Result r = run_to_end(s, &points, &checkpoint);
  EXPECT_FALSE(s.busy());
  EXPECT_EQ(r.outcome, RunOutcome::kDone) << r.message;
  EXPECT_EQ(r.run_id, 101);
  EXPECT_EQ(r.step, 40);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_GT(r.child_seconds, 0.0);
  ASSERT_EQ(points.size(), 4u);  // steps 10, 20, 30, 40
  EXPECT_EQ(points[0].step, 10);
  EXPECT_EQ(points[3].step, 40);
  EXPECT_TRUE(points[3].metrics.count("val_bps"));
  ASSERT_TRUE(checkpoint);
  EXPECT_EQ(checkpoint->step, 40);
  EXPECT_EQ(checkpoint->sha256, file_sha256(fs::path(t.run_dir) / "checkpoint.pt"));
  auto report = nlohmann::json::parse(r.report_json);
  EXPECT_EQ(report["status"], "done");
  EXPECT_TRUE(report["summary"].contains("val_bps"));
  EXPECT_NE(slurp(fs::path(t.run_dir) / "log.txt").find("attempt 1 of run 1 (from step 0)"),
            std::string::npos);
}

TEST_F(SupervisorTest, CrashesFailOnlyThatRunWithTheSignalInTheMessage) {
  ::setenv("FAKE_TRAIN_FAIL", "2:abort,3:segv,4:exit7,5:diverge", 1);
  Supervisor s = make_supervisor();
  struct Case {
    int number;
    RunOutcome outcome;
    const char* needle;
  } cases[] = {{2, RunOutcome::kFailed, "killed by SIGABRT (Aborted)"},
               {3, RunOutcome::kFailed, "killed by SIGSEGV (Segmentation fault)"},
               {4, RunOutcome::kFailed, "exited with status 7"},
               {5, RunOutcome::kDiverged, "train_loss is nan"},
               {6, RunOutcome::kDone, ""}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.number);
    s.start(make_task(c.number, 40));
    Result r = run_to_end(s);
    EXPECT_EQ(r.outcome, c.outcome) << r.message;
    EXPECT_NE(r.message.find(c.needle), std::string::npos) << r.message;
    if (c.outcome == RunOutcome::kFailed) {  // the log tail explains the failure
      EXPECT_NE(r.message.find("failing on purpose"), std::string::npos) << r.message;
    }
  }
}

TEST_F(SupervisorTest, StopCheckpointsAndResumeContinuesFromTheVerifiedCheckpoint) {
  ::setenv("FAKE_TRAIN_STEP_MS", "20", 1);
  Supervisor s = make_supervisor();
  Task t = make_task(7, 100000);
  s.start(t);
  std::optional<CheckpointInfo> checkpoint;
  // Wait for the first periodic checkpoint, then stop.
  for (int i = 0; i < 3000 && !checkpoint; ++i) {
    auto u = s.poll(std::chrono::milliseconds(10));
    if (u.checkpoint) checkpoint = u.checkpoint;
    ASSERT_FALSE(u.result) << u.result->message;
  }
  ASSERT_TRUE(checkpoint);
  s.stop();
  Result r = run_to_end(s, nullptr, &checkpoint);
  EXPECT_EQ(r.outcome, RunOutcome::kInterrupted) << r.message;
  EXPECT_EQ(r.exit_status, 143);
  EXPECT_GE(r.step, 20);
  EXPECT_EQ(r.step, checkpoint->step) << "interrupted at the step of its last checkpoint";

  // Resume with the recorded sha256: the child starts at that step, not at 0.
  t.resume = true;
  t.checkpoint_sha256 = checkpoint->sha256;
  t.checkpoint_step = checkpoint->step;
  s.start(t);
  for (int i = 0; i < 50; ++i) s.poll(std::chrono::milliseconds(10));
  s.stop();
  Result again = run_to_end(s);
  EXPECT_EQ(again.outcome, RunOutcome::kInterrupted) << again.message;
  EXPECT_GE(again.step, checkpoint->step);
  std::string history = slurp(fs::path(t.run_dir) / "fake_history.txt");
  EXPECT_EQ(history, "start 0\nstart " + std::to_string(checkpoint->step) + "\n");
}

TEST_F(SupervisorTest, CheckpointWithAnotherHashIsNeverLoaded) {
  Supervisor s = make_supervisor();
  Task t = make_task(8, 40);
  std::ofstream(fs::path(t.run_dir) / "checkpoint.pt") << "fake-checkpoint step=20\n";
  t.resume = true;
  t.checkpoint_step = 20;
  t.checkpoint_sha256 = std::string(64, '0');
  s.start(t);
  Result r = run_to_end(s);
  EXPECT_EQ(r.outcome, RunOutcome::kDone);
  EXPECT_NE(r.message.find("does not match the recorded checkpoint"), std::string::npos)
      << r.message;
  EXPECT_EQ(slurp(fs::path(t.run_dir) / "fake_history.txt"), "start 0\n");
  EXPECT_TRUE(fs::exists(fs::path(t.run_dir) / "checkpoint.pt.unverified"));
}

// A fresh start in a directory that holds an earlier attempt's checkpoint pair (a failed

// The quoted end of log.txt starts at a line boundary; a line longer than the quote is
// marked as cut with "…" rather than shown from the middle of a word as if whole.
TEST_F(SupervisorTest, ALogTailInsideOneLongLineStartsWithAnEllipsis) {
  ::setenv("FAKE_TRAIN_FAIL", "11:longline", 1);
  Supervisor s = make_supervisor();
  s.start(make_task(11, 40));
  Result r = run_to_end(s);
  ::unsetenv("FAKE_TRAIN_FAIL");
  EXPECT_EQ(r.outcome, RunOutcome::kFailed) << r.message;
  const size_t marker = r.message.find("; end of log.txt:\n");
  ASSERT_NE(marker, std::string::npos) << r.message;
  const std::string tail = r.message.substr(marker + std::string("; end of log.txt:\n").size());
  EXPECT_EQ(tail.rfind("…xxx", 0), 0u) << tail;
  EXPECT_TRUE(tail.ends_with("xxx end of the long line")) << tail;
  EXPECT_EQ(tail.find("start of a long line"), std::string::npos);
}
// attempt before --retry-failed, or a resume whose checkpoint.pt could not be verified, as
// when a kill fell between the checkpoint and its receipt): `jslds train` refuses to start
// afresh over them, so the supervisor keeps both under another name and the run starts.
TEST_F(SupervisorTest, AFreshStartMovesAnEarlierCheckpointPairAside) {
  Supervisor s = make_supervisor();
  Task t = make_task(9, 40);
  const fs::path dir(t.run_dir);
  std::ofstream(dir / "checkpoint.pt") << "fake-checkpoint step=20\n";
  std::ofstream(dir / "train_state.pt") << "state of step 20\n";
  s.start(t);  // not a resume: a retry
  Result r = run_to_end(s);
  EXPECT_EQ(r.outcome, RunOutcome::kDone) << r.message;
  EXPECT_EQ(slurp(dir / "checkpoint.pt.previous"), "fake-checkpoint step=20\n");
  EXPECT_EQ(slurp(dir / "train_state.pt.previous"), "state of step 20\n");
  EXPECT_NE(r.message.find("kept as checkpoint.pt.previous and train_state.pt.previous"),
            std::string::npos) << r.message;
  EXPECT_EQ(slurp(dir / "train_state.pt"), "fake-state step=40\n");  // this attempt's pair

  // A failure leads with its cause; the note follows.
  ::setenv("FAKE_TRAIN_FAIL", "9:exit7", 1);
  s.start(t);
  r = run_to_end(s);
  ::unsetenv("FAKE_TRAIN_FAIL");
  EXPECT_EQ(r.outcome, RunOutcome::kFailed) << r.message;
  EXPECT_EQ(r.message.rfind("exited with status 7", 0), 0u) << r.message;
  EXPECT_NE(r.message.find("; an earlier attempt's files were kept as checkpoint.pt.previous "
                           "and train_state.pt.previous; end of log.txt:"),
            std::string::npos) << r.message;

  // Unverifiable on resume: the pair becomes .unverified.
  std::ofstream(dir / "checkpoint.pt") << "fake-checkpoint step=30\n";
  std::ofstream(dir / "train_state.pt") << "state of step 30\n";
  t.resume = true;
  t.checkpoint_step = 20;
  t.checkpoint_sha256 = std::string(64, '0');
  t.attempt = 2;
  s.start(t);
  r = run_to_end(s);
  EXPECT_EQ(r.outcome, RunOutcome::kDone) << r.message;
  EXPECT_EQ(slurp(dir / "checkpoint.pt.unverified"), "fake-checkpoint step=30\n");
  EXPECT_EQ(slurp(dir / "train_state.pt.unverified"), "state of step 30\n");
}

// The stop checkpoint's report is lost (as when mpirun SIGKILLs the worker rank a second
// after SIGTERM): the next start adopts it because its sha256 matches the trainer's receipt,
// hands it over for the database, and continues from its step; a receipt that does not match
// the file vouches for nothing.
TEST_F(SupervisorTest, ResumeAdoptsACheckpointVouchedForByItsReceiptOnly) {
  ::setenv("FAKE_TRAIN_STEP_MS", "20", 1);
  Supervisor s = make_supervisor();
  Task t = make_task(10, 100000);
  s.start(t);
  std::optional<CheckpointInfo> recorded;  // what the database would hold
  for (int i = 0; i < 3000 && !recorded; ++i) {
    auto u = s.poll(std::chrono::milliseconds(10));
    if (u.checkpoint) recorded = u.checkpoint;
    ASSERT_FALSE(u.result) << u.result->message;
  }
  ASSERT_TRUE(recorded);
  // Train on past the periodic checkpoint before the stop.
  int64_t step = 0;
  for (int i = 0; i < 3000 && step <= recorded->step; ++i)
    for (const auto& p : s.poll(std::chrono::milliseconds(10)).points)
      step = std::max(step, p.step);
  s.stop();
  std::optional<CheckpointInfo> lost;  // the stop checkpoint: never reaches the database
  Result r = run_to_end(s, nullptr, &lost);
  ASSERT_EQ(r.outcome, RunOutcome::kInterrupted) << r.message;
  ASSERT_TRUE(lost);
  ASSERT_GT(lost->step, recorded->step) << "the stop came after the periodic checkpoint";
  auto receipt = read_checkpoint_receipt(t.run_dir);
  ASSERT_TRUE(receipt);
  EXPECT_EQ(receipt->step, lost->step);
  EXPECT_EQ(receipt->sha256, lost->sha256);

  t.resume = true;
  t.checkpoint_sha256 = recorded->sha256;
  t.checkpoint_step = recorded->step;
  ::setenv("FAKE_TRAIN_STEP_MS", "0", 1);
  {
    // Shorten the run so it finishes: the config's steps are read by the child.
    RunConfig c = load_config(fs::path(t.run_dir) / "config.toml");
    c.train.steps = lost->step + 30;
    std::ofstream(fs::path(t.run_dir) / "config.toml") << to_toml(c);
  }
  s.start(t);
  std::optional<CheckpointInfo> handed;
  auto first = s.poll(std::chrono::milliseconds(0));
  handed = first.checkpoint;
  ASSERT_TRUE(handed) << "the adopted checkpoint is handed over at the first poll";
  EXPECT_EQ(handed->step, lost->step);
  EXPECT_EQ(handed->sha256, lost->sha256);
  EXPECT_EQ(handed->path, fs::absolute(fs::path(t.run_dir) / "checkpoint.pt").string());
  Result done = run_to_end(s);
  EXPECT_EQ(done.outcome, RunOutcome::kDone) << done.message;
  EXPECT_NE(done.message.find("adopted checkpoint.pt of step " + std::to_string(lost->step)),
            std::string::npos)
      << done.message;
  EXPECT_EQ(slurp(fs::path(t.run_dir) / "fake_history.txt"),
            "start 0\nstart " + std::to_string(lost->step) + "\n");

  // A receipt whose sha256 is not the file's: not adopted, the file is set aside, step 0.
  receipt = read_checkpoint_receipt(t.run_dir);
  ASSERT_TRUE(receipt);
  receipt->sha256 = std::string(64, 'a');
  write_checkpoint_receipt(t.run_dir, *receipt);
  t.checkpoint_sha256.clear();
  t.checkpoint_step = 0;
  s.start(t);
  Result fresh = run_to_end(s);
  EXPECT_EQ(fresh.outcome, RunOutcome::kDone) << fresh.message;
  EXPECT_NE(fresh.message.find("not loaded, kept as checkpoint.pt.unverified"), std::string::npos)
      << fresh.message;
  EXPECT_EQ(slurp(fs::path(t.run_dir) / "fake_history.txt"),
            "start 0\nstart " + std::to_string(lost->step) + "\nstart 0\n");
}

// The whole job was SIGKILLed while the trainer published its step-40 checkpoint, after the
// receipt and before the rename (core/checkpoint_receipt.h); the database knows step 20. The
// next start completes the publication, adopts step 40 and continues from there.
TEST_F(SupervisorTest, ResumeCompletesACheckpointPublicationACrashInterrupted) {
  Supervisor s = make_supervisor();
  Task t = make_task(13, 60);
  const fs::path dir(t.run_dir);
  const std::string old_bytes = "fake-checkpoint step=20\n", new_bytes = "fake-checkpoint step=40\n";
  const std::string new_state = "fake-state step=40\n";
  std::ofstream(dir / "checkpoint.pt") << old_bytes;
  std::ofstream(dir / "train_state.pt") << "fake-state step=20\n";
  std::ofstream(dir / "checkpoint.pt.next") << new_bytes;
  std::ofstream(dir / "train_state.pt.next") << new_state;
  write_checkpoint_receipt(dir, {40, "checkpoint.pt", static_cast<int64_t>(new_bytes.size()),
                                 sha256_hex(new_bytes), sha256_hex(new_state)});
  t.resume = true;
  t.checkpoint_step = 20;
  t.checkpoint_sha256 = sha256_hex(old_bytes);
  s.start(t);
  std::optional<CheckpointInfo> adopted;
  Result r = run_to_end(s, nullptr, &adopted);
  EXPECT_EQ(r.outcome, RunOutcome::kDone) << r.message;
  EXPECT_NE(r.message.find("completed the publication of the step-40 checkpoint"), std::string::npos)
      << r.message;
  EXPECT_NE(r.message.find("adopted checkpoint.pt of step 40"), std::string::npos) << r.message;
  EXPECT_EQ(slurp(dir / "fake_history.txt"), "start 40\n");
  EXPECT_FALSE(fs::exists(dir / "checkpoint.pt.next"));
}

// The optimiser state written with a verified checkpoint is missing or altered: the trainer
// would start from step 0 over the checkpoint, or refuse it at every attempt. Both files are
// set aside and the run starts from step 0, and says so.
TEST_F(SupervisorTest, ResumeNeedsTheTrainStateWrittenWithTheCheckpoint) {
  for (const bool missing : {true, false}) {
    SCOPED_TRACE(missing ? "missing" : "altered");
    Supervisor s = make_supervisor();
    Task t = make_task(missing ? 14 : 15, 40);
    const fs::path dir(t.run_dir);
    const std::string bytes = "fake-checkpoint step=20\n", state = "fake-state step=20\n";
    std::ofstream(dir / "checkpoint.pt") << bytes;
    if (!missing) std::ofstream(dir / "train_state.pt") << "fake-state step=2O\n";  // one byte off
    write_checkpoint_receipt(dir, {20, "checkpoint.pt", static_cast<int64_t>(bytes.size()),
                                   sha256_hex(bytes), sha256_hex(state)});
    t.resume = true;
    t.checkpoint_step = 20;
    t.checkpoint_sha256 = sha256_hex(bytes);
    s.start(t);
    Result r = run_to_end(s);
    EXPECT_EQ(r.outcome, RunOutcome::kDone) << r.message;
    EXPECT_NE(r.message.find(missing ? "train_state.pt, written with checkpoint.pt, is missing"
                                     : "does not match the one written with checkpoint.pt"),
              std::string::npos)
        << r.message;
    EXPECT_NE(r.message.find(missing ? "the checkpoint of step 20 is not loaded, kept as "
                                       "checkpoint.pt.unverified; restarted from step 0"
                                     : "the checkpoint of step 20 is not loaded, kept as "
                                       "checkpoint.pt.unverified (train_state.pt likewise); "
                                       "restarted from step 0"),
              std::string::npos)
        << r.message;
    EXPECT_EQ(slurp(dir / "fake_history.txt"), "start 0\n");
    EXPECT_EQ(slurp(dir / "checkpoint.pt.unverified"), bytes);
    EXPECT_EQ(fs::exists(dir / "train_state.pt.unverified"), !missing);
    EXPECT_NE(slurp(dir / "log.txt").find("attempt 1 of run " + std::to_string(t.run_number) +
                                          " (from step 0)"),
              std::string::npos);
  }
}

// A trainer of an earlier launch still runs in the run directory (its worker was killed and
// nobody stopped it): the next start stops it with SIGTERM, waits for it to checkpoint and
// exit, and continues from that checkpoint; the two never train in the directory together.
TEST_F(SupervisorTest, StartStopsAnOrphanedTrainerOfTheRunAndContinuesFromItsCheckpoint) {
  ::setenv("FAKE_TRAIN_STEP_MS", "20", 1);
  Task t = make_task(11, 100000);
  const fs::path dir(t.run_dir);
  // The orphan: started the way a supervisor starts a child, holding run.lock.
  FileDescriptor lock(::open((dir / "run.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(lock);
  ASSERT_EQ(::flock(lock.get(), LOCK_EX | LOCK_NB), 0);
  int moved = ::fcntl(lock.get(), F_DUPFD_CLOEXEC, 10);
  ASSERT_GE(moved, 10);
  lock.reset(moved);
  SpawnOptions o;
  o.executable = JSLDS_FAKE_TRAIN_EXE;
  o.argv = {JSLDS_FAKE_TRAIN_EXE, "train", (dir / "config.toml").string(), "--run-dir",
            dir.string(), "--report-fd", "3"};
  o.log_file = dir / "orphan.log";
  o.inherit_fds = {{lock.get(), 4}};
  ChildProcess orphan = ChildProcess::spawn(o);
  const pid_t orphan_pid = orphan.pid();
  const std::string pid = std::to_string(orphan_pid) + "\n";
  ASSERT_EQ(::pwrite(lock.get(), pid.data(), pid.size(), 0), static_cast<ssize_t>(pid.size()));
  lock.reset();  // only the orphan holds the lock now
  // Let it train a little: its first checkpoint comes at step 20.
  for (int i = 0; i < 3000 && !read_checkpoint_receipt(dir); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(read_checkpoint_receipt(dir)) << slurp(dir / "orphan.log");

  Supervisor s = make_supervisor();
  t.resume = true;  // nothing recorded: the database never heard of the orphan's checkpoints
  s.start(t);
  auto orphan_status = orphan.try_wait();
  ASSERT_TRUE(orphan_status) << "start returned while the orphan still held the lock";
  EXPECT_TRUE(WIFEXITED(*orphan_status));
  EXPECT_EQ(WEXITSTATUS(*orphan_status), 143) << "the orphan checkpointed on SIGTERM";
  auto receipt = read_checkpoint_receipt(dir);
  ASSERT_TRUE(receipt);
  auto u = s.poll(std::chrono::milliseconds(0));
  ASSERT_TRUE(u.checkpoint);
  EXPECT_EQ(u.checkpoint->step, receipt->step);
  // Let the new child start training (its first progress report) before stopping it.
  for (int i = 0; i < 3000; ++i)
    if (!s.poll(std::chrono::milliseconds(10)).points.empty()) break;
  s.stop();
  Result r = run_to_end(s);
  EXPECT_EQ(r.outcome, RunOutcome::kInterrupted) << r.message;
  EXPECT_NE(r.message.find("a training process of an earlier launch (pid " +
                           std::to_string(orphan_pid) + ") still ran in the run directory"),
            std::string::npos)
      << r.message;
  const std::string history = slurp(dir / "fake_history.txt");
  EXPECT_EQ(history, "start 0\nstart " + std::to_string(receipt->step) + "\n") << history;
}

// A trainer someone started by hand holds the lock (its pid and "by-hand" in run.lock,
// core/run_lock.h). It need not lead a process group (started from a script, nohup, a Python
// subprocess), so the start signals that process alone: a group signal would fail (ESRCH)
// and the run would fail 55 s later with the trainer still running.
TEST_F(SupervisorTest, StartStopsATrainerStartedByHandThatLeadsNoProcessGroup) {
  Task t = make_task(12, 10);
  const fs::path dir(t.run_dir);
  const int fd = ::open((dir / "run.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  // The child must have become `sleep` before the supervisor signals it: until exec it runs
  // this test's signal handlers, which would swallow the SIGTERM (seen on a loaded machine).
  // The close-on-exec pipe reads end-of-file exactly when the exec has happened.
  int exec_pipe[2];
  ASSERT_EQ(::pipe2(exec_pipe, O_CLOEXEC), 0);
  const pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    // Descriptor 4 without FD_CLOEXEC: the lock lives on in sleep. When open() returned 4
    // itself (it does under ctest), dup2(4, 4) would keep FD_CLOEXEC and exec would drop it.
    if (fd == 4) ::fcntl(fd, F_SETFD, 0);
    else ::dup2(fd, 4);
    ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(exec_pipe[1]);
  char byte = 0;
  ASSERT_EQ(::read(exec_pipe[0], &byte, 1), 0) << "the holder did not exec";
  ::close(exec_pipe[0]);
  const std::string text = std::to_string(holder) + " by-hand\n";
  ASSERT_EQ(::pwrite(fd, text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
  ::close(fd);  // only the holder holds the lock now
  ASSERT_NE(::getpgid(holder), holder) << "the holder must not lead a process group";

  Supervisor s = make_supervisor();
  const auto t0 = std::chrono::steady_clock::now();
  s.start(t);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15)) << "waited for the grace period";
  int status = 0;
  ASSERT_EQ(::waitpid(holder, &status, 0), holder);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "status " << status;
  Result r = run_to_end(s);
  EXPECT_EQ(r.outcome, RunOutcome::kDone) << r.message;
  EXPECT_NE(r.message.find("a training process started by hand (pid " + std::to_string(holder) +
                           ") still ran in the run directory: sent it SIGTERM and waited"),
            std::string::npos)
      << r.message;
}

TEST_F(SupervisorTest, MissingExecutableFailsTheRun) {
  Supervisor s = make_supervisor("/nonexistent/jslds");
  s.start(make_task(9, 10));
  Result r = run_to_end(s);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_NE(r.message.find("cannot start the training process"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("/nonexistent/jslds"), std::string::npos) << r.message;
  EXPECT_FALSE(s.busy());
}

// A run.lock that is a dangling symbolic link (open(2) follows it): the run fails with a
// message that names the link and its target instead of a bare "No such file or directory".
TEST_F(SupervisorTest, ADanglingRunLockLinkFailsTheRunWithAMessageThatSaysSo) {
  Task task = make_task(11, 10);
  const fs::path lock = fs::path(task.run_dir) / "run.lock";
  fs::remove(lock);
  fs::create_symlink(root_ / "gone" / "run.lock", lock);
  Supervisor s = make_supervisor();
  s.start(task);
  Result r = run_to_end(s);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_NE(r.message.find("cannot open " + lock.string() + ": No such file or directory (it is "
                           "a symbolic link to " + (root_ / "gone" / "run.lock").string() +
                           "; run.lock holds no data: remove the link"),
            std::string::npos)
      << r.message;
  EXPECT_FALSE(s.busy());
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(lock)));  // nothing changed
}

// W_EXITCODE / signal statuses as waitpid reports them.
int exited(int code) { return code << 8; }
int signalled(int sig) { return sig; }

TEST(ClassifyChildEnd, EveryEnding) {
  ChildEnd e;
  e.last_step = 130;
  e.checkpoint_step = 100;
  e.log_tail = "RuntimeError: CUDA out of memory";

  e.wait_status = exited(0);
  e.result_event = R"({"event":"result","status":"done","step":200,"summary":{}})";
  Result r = classify_child_end(e);
  EXPECT_EQ(r.outcome, RunOutcome::kDone);
  EXPECT_EQ(r.step, 200);
  EXPECT_EQ(r.report_json, *e.result_event);

  e.result_event = R"({"event":"result","status":"diverged","step":50,"message":"loss is inf"})";
  r = classify_child_end(e);
  EXPECT_EQ(r.outcome, RunOutcome::kDiverged);
  EXPECT_EQ(r.message, "loss is inf");

  e.result_event = R"({"event":"result","status":"great"})";
  EXPECT_THROW(classify_child_end(e), ProtocolError);

  e.result_event.reset();
  r = classify_child_end(e);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_NE(r.message.find("without a result event"), std::string::npos);

  e.wait_status = exited(143);
  r = classify_child_end(e);
  EXPECT_EQ(r.outcome, RunOutcome::kInterrupted);
  EXPECT_EQ(r.step, 100);
  EXPECT_NE(r.message.find("resumes from the checkpoint of step 100"), std::string::npos) << r.message;
  {
    // Stopped before any checkpoint after step 0: the message does not promise one.
    ChildEnd early = e;
    early.checkpoint_step = 0;
    early.last_step = 0;
    Result stopped = classify_child_end(early);
    EXPECT_EQ(stopped.outcome, RunOutcome::kInterrupted);
    EXPECT_NE(stopped.message.find("no checkpoint after step 0 yet: resumes from step 0"),
              std::string::npos)
        << stopped.message;
    early.wait_status = signalled(SIGTERM);
    stopped = classify_child_end(early);
    EXPECT_EQ(stopped.message, "SIGTERM at step 0; no checkpoint after step 0 yet: resumes from step 0");
  }

  e.wait_status = exited(1);
  r = classify_child_end(e);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_NE(r.message.find("exited with status 1"), std::string::npos);
  EXPECT_NE(r.message.find("CUDA out of memory"), std::string::npos);

  // The trainer's own "error:" line comes first, so one-line views show the cause.
  e.log_tail = "=== 2026-12-07T03:11:19Z attempt 1 of run 12 (from step 0)\n"
               "jslds train 0.1.0: run directory /r/12\nerror: /data/nope.mat: no such file";
  r = classify_child_end(e);
  EXPECT_EQ(r.message.substr(0, r.message.find('\n')),
            "exited with status 1: error: /data/nope.mat: no such file; end of log.txt:");
  e.log_tail = "RuntimeError: CUDA out of memory";

  e.wait_status = signalled(SIGTERM);  // a SIGTERM from anyone is a stop
  r = classify_child_end(e);
  EXPECT_EQ(r.outcome, RunOutcome::kInterrupted);
  EXPECT_EQ(r.term_signal, SIGTERM);

  e.wait_status = signalled(SIGKILL);
  r = classify_child_end(e);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_NE(r.message.find("out-of-memory killer"), std::string::npos);
  e.stop_requested = true;
  e.killed_after_grace = true;
  r = classify_child_end(e);
  EXPECT_EQ(r.outcome, RunOutcome::kInterrupted);
  EXPECT_NE(r.message.find("did not stop within the grace period"), std::string::npos);

  e.wait_status = signalled(SIGSEGV);
  r = classify_child_end(e);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_NE(r.message.find("SIGSEGV"), std::string::npos);
  EXPECT_EQ(r.step, 130);
}

// A child that closes its report stream early and keeps running: the end of the stream says
// nothing, and the supervisor learns of the exit from the child's pidfd (it turns readable
// only once the child has ended), not from a waitpid timer.
TEST(ChildProcessTest, ExitDescriptorTurnsReadableOnlyWhenTheChildEnds) {
  const fs::path log = fs::temp_directory_path() / ("jslds_child_exit_" + std::to_string(::getpid()));
  SpawnOptions o;
  o.executable = "/bin/sh";
  o.argv = {"/bin/sh", "-c", "exec 3>&-; kill -STOP $$; exit 5"};  // stops itself first
  o.log_file = log;
  ChildProcess child = ChildProcess::spawn(o);
  ASSERT_GE(child.exit_fd(), 0) << "pidfd_open is missing: kernel older than 5.3?";
  // Wait until the child has stopped itself, then check its pidfd is not readable.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child.pid()), &info, WSTOPPED | WNOWAIT), 0);
  pollfd p{child.exit_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "a stopped, living child must not read as ended";
  EXPECT_FALSE(child.try_wait().has_value());
  ::kill(child.pid(), SIGCONT);
  ASSERT_EQ(::poll(&p, 1, 30000), 1) << "the pidfd never turned readable after the exit";
  EXPECT_TRUE(p.revents & POLLIN);
  auto status = child.try_wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 5);
  EXPECT_EQ(child.exit_fd(), -1) << "the pidfd is closed once the child is reaped";
  fs::remove(log);
}

}  // namespace
}  // namespace jslds
