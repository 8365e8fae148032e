#include "worker/supervisor.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "coordinator/signals.h"
#include "core/checkpoint_receipt.h"
#include "core/run_lock.h"
#include "core/config.h"

namespace jslds {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int kReportFd = 3;
constexpr size_t kLogTailBytes = 600;

// The last `bytes` of a file but nothing before offset `start` (where this attempt's part of
// the log begins), starting at a line boundary when possible, else with "…".
std::string file_tail(const fs::path& file, size_t bytes, size_t start) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  auto size = static_cast<size_t>(in.tellg());
  start = std::min(start, size);
  size_t from = std::max(start, size > bytes ? size - bytes : 0);
  in.seekg(static_cast<std::streamoff>(from));
  std::string tail(size - from, '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  if (from > start) {
    // Cut at a line boundary; a line longer than the tail is shown from "…" on.
    auto nl = tail.find('\n');
    if (nl != std::string::npos && nl + 1 < tail.size())
      tail.erase(0, nl + 1);
    else if (in.seekg(static_cast<std::streamoff>(from - 1)); in.get() != '\n')
      tail.insert(0, "…");
  }
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  return tail;
}

// The message, then the trainer's last "error: …" line (what went wrong, on the first line
// that `jslds status` and the sweep's log show), then the end of this attempt's log.
std::string with_tail(std::string message, const std::string& tail) {
  if (tail.empty()) return message;
  const size_t at = tail.rfind("error: ");
  if (at != std::string::npos && (at == 0 || tail[at - 1] == '\n'))
    message += ": " + tail.substr(at, tail.find('\n', at) - at);
  return message + std::string(kLogTailMarker) + "\n" + tail;
}

// `message` with "; note" after its first part, before the quoted end of log.txt.
std::string insert_before_tail(const std::string& message, const std::string& note) {
  const size_t tail = message.find(kLogTailMarker);
  if (tail == std::string::npos) return message + "; " + note;
  return message.substr(0, tail) + "; " + note + message.substr(tail);
}

fs::path default_train_exe() {
  if (const char* e = std::getenv("JSLDS_TRAIN_EXE"); e && *e) return e;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot find this program's path (/proc/self/exe): " +
                                   ec.message());
  return self;
}

std::string utc_now() {
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::time(nullptr)));
}

// A file's sha256, or "" when it is missing or unreadable (then it vouches for nothing).
std::string sha256_or_empty(const fs::path& file) {
  try {
    return file_sha256(file);
  } catch (const std::exception&) {
    return "";
  }
}

// Where an interrupted run will continue, for its message: no checkpoint of a step after 0
// means it starts again from step 0.
std::string resume_point(int64_t checkpoint_step) {
  return checkpoint_step > 0 ? fmt::format("resumes from the checkpoint of step {}", checkpoint_step)
                             : std::string("no checkpoint after step 0 yet: resumes from step 0");
}

}  // namespace

Result classify_child_end(const ChildEnd& end) {
  Result r;
  r.step = end.last_step;
  const int st = end.wait_status;
  if (WIFEXITED(st)) {
    r.exit_status = WEXITSTATUS(st);
    if (r.exit_status == 0 && end.result_event) {
      json event = json::parse(*end.result_event, nullptr, /*allow_exceptions=*/false);
      if (!event.is_object() || !event.contains("status") || !event["status"].is_string())
        throw ProtocolError("result event without a \"status\" string: " + *end.result_event);
      std::string status = event["status"].get<std::string>();
      if (status == "done") {
        r.outcome = RunOutcome::kDone;
      } else if (status == "diverged") {
        r.outcome = RunOutcome::kDiverged;
        r.message = event.value("message", std::string("diverged (non-finite loss)"));
      } else {
        throw ProtocolError(fmt::format(
            "result event status \"{}\": expected \"done\" or \"diverged\"", status));
      }
      if (event.contains("step") && event["step"].is_number_integer())
        r.step = event["step"].get<int64_t>();
      r.report_json = *end.result_event;
      return r;
    }
    if (r.exit_status == 143 || r.exit_status == 130) {
      r.outcome = RunOutcome::kInterrupted;
      r.step = end.checkpoint_step;
      r.message = fmt::format("stopped at step {} (exit status {}); {}", end.last_step,
                              r.exit_status, resume_point(end.checkpoint_step));
      return r;
    }
    r.outcome = RunOutcome::kFailed;
    r.message = with_tail(r.exit_status == 0
                              ? std::string("exited with status 0 without a result event")
                              : fmt::format("exited with status {}", r.exit_status),
                          end.log_tail);
    return r;
  }
  if (WIFSIGNALED(st)) {
    r.term_signal = WTERMSIG(st);
    const int sig = r.term_signal;
    bool stopped = (end.stop_requested && (sig == SIGTERM || sig == SIGINT || sig == SIGKILL)) ||
                   sig == SIGTERM;
    if (stopped) {
      r.outcome = RunOutcome::kInterrupted;
      r.step = end.checkpoint_step;
      r.message = fmt::format("{} at step {}{}; {}", signal_name(sig), end.last_step,
                              end.killed_after_grace ? " (did not stop within the grace period)"
                                                     : "",
                              resume_point(end.checkpoint_step));
      return r;
    }
    r.outcome = RunOutcome::kFailed;
    std::string why = fmt::format("killed by {} ({}) at step {}", signal_name(sig),
                                  strsignal(sig), end.last_step);
    if (sig == SIGKILL) why += "; SIGKILL often comes from the kernel's out-of-memory killer";
    r.message = with_tail(why, end.log_tail);
    return r;
  }
  r.outcome = RunOutcome::kFailed;
  r.message = fmt::format("ended with wait status {:#x}", st);
  return r;
}

Supervisor::Supervisor(SupervisorOptions options) : options_(std::move(options)) {
  if (options_.train_exe.empty()) options_.train_exe = default_train_exe();
}

void Supervisor::start(const Task& task) {
  if (busy()) throw std::logic_error("Supervisor::start while a run is active");
  task_ = task;
  start_failure_.reset();
  note_.clear();
  note_sent_ = false;
  buffer_.clear();
  result_event_.reset();
  last_step_ = 0;
  log_start_ = 0;
  checkpoint_step_ = 0;
  malformed_lines_ = 0;
  stop_requested_ = false;
  killed_after_grace_ = false;
  started_ = std::chrono::steady_clock::now();

  const fs::path dir(task.run_dir);
  run_lock_.reset();
  adopted_.reset();
  {
    std::error_code ec;
    fs::create_directories(dir, ec);
  }
  auto fail_start = [&](std::string why) {
    Result r;
    r.run_id = task.run_id;
    r.attempt = task.attempt;
    r.outcome = RunOutcome::kFailed;
    r.message = std::move(why);
    start_failure_ = r;
  };
  if (std::string why = lock_run_directory(dir); !why.empty()) return fail_start(why);
  // A checkpoint whose publication a crash interrupted is completed or undone before anything
  // looks at checkpoint.pt (core/checkpoint_receipt.h).
  try {
    if (std::string recovered = recover_checkpoint_publication(dir); !recovered.empty())
      note_ += (note_.empty() ? "" : "; ") + recovered;
  } catch (const std::runtime_error& e) {
    return fail_start(e.what());
  }
  bool resume = task.resume;
  if (resume) {
    const fs::path checkpoint = dir / "checkpoint.pt";
    const std::string found = sha256_or_empty(checkpoint);
    const auto receipt = read_checkpoint_receipt(dir);
    const bool recorded = !task.checkpoint_sha256.empty() && found == task.checkpoint_sha256;
    if (!recorded && !found.empty() && receipt && receipt->path == "checkpoint.pt" &&
        receipt->sha256 == found && receipt->step >= task.checkpoint_step) {
      // Written after the database last heard from this run; the receipt vouches for it.
      CheckpointInfo c;
      c.step = receipt->step;
      c.path = fs::absolute(checkpoint).string();
      c.bytes = receipt->bytes;
      c.sha256 = receipt->sha256;
      adopted_ = c;
      checkpoint_step_ = c.step;
      last_step_ = c.step;
      if (!note_.empty()) note_ += "; ";
      note_ += fmt::format(
          "adopted checkpoint.pt of step {} (sha256 {}), written after the last recorded "
          "checkpoint (step {}); its sha256 matches the trainer's receipt checkpoint.json",
          c.step, c.sha256.substr(0, 12), task.checkpoint_step);
    } else if (!recorded) {
      resume = false;  // the files are moved aside below, as .unverified
      if (!note_.empty()) note_ += "; ";
      note_ += found.empty()
                  ? "no checkpoint.pt to resume from: restarted from step 0"
                  : fmt::format("checkpoint.pt (sha256 {}) does not match the recorded checkpoint "
                                "(step {}, sha256 {}): not loaded, kept as "
                                "checkpoint.pt.unverified (train_state.pt likewise); restarted "
                                "from step 0",
                                found.substr(0, 12), task.checkpoint_step,
                                task.checkpoint_sha256.empty()
                                    ? std::string("none")
                                    : task.checkpoint_sha256.substr(0, 12));
    } else {
      checkpoint_step_ = task.checkpoint_step;
      last_step_ = task.checkpoint_step;
    }
    // The optimiser state written with the checkpoint must be there and intact, or the
    // trainer would start from step 0 over the checkpoint (missing) or refuse to load it
    // (altered) at every attempt: both are set aside and the run starts again from step 0.
    if (resume) {
      const fs::path state = dir / "train_state.pt";
      std::string problem;
      std::error_code ec;
      if (!fs::is_regular_file(state, ec)) {
        problem = "train_state.pt, written with checkpoint.pt, is missing";
      } else if (receipt && receipt->path == "checkpoint.pt" && receipt->sha256 == found &&
                 !receipt->state_sha256.empty()) {
        const std::string state_sha = sha256_or_empty(state);
        if (state_sha != receipt->state_sha256)
          problem = fmt::format("train_state.pt (sha256 {}) does not match the one written with "
                                "checkpoint.pt (sha256 {} in checkpoint.json)",
                                state_sha.empty() ? std::string("unreadable") : state_sha.substr(0, 12),
                                receipt->state_sha256.substr(0, 12));
      }
      if (!problem.empty()) {
        resume = false;  // both files are moved aside below, as .unverified
        adopted_.reset();
        checkpoint_step_ = 0;
        last_step_ = 0;
        if (!note_.empty()) note_ += "; ";
        note_ += problem + ": the checkpoint of step " +
                 std::to_string(std::max(task.checkpoint_step, receipt ? receipt->step : 0)) +
                 " is not loaded, kept as checkpoint.pt.unverified" +
                 (fs::exists(state, ec) ? " (train_state.pt likewise)" : "") +
                 "; restarted from step 0";
      }
    }
  }

  if (!resume) {
    // A fresh start: a receipt left by an earlier attempt must never vouch for this one.
    std::error_code ec;
    fs::remove(checkpoint_receipt_path(dir), ec);
    // The trainer refuses to start afresh in a directory that holds a training, so an
    // earlier attempt's checkpoint pair (one that could not be verified, or a failed
    // attempt's before --retry-failed) is kept beside it under another name, never loaded.
    const std::string suffix = task.resume ? ".unverified" : ".previous";
    std::vector<std::string> moved;
    for (const char* name : {"checkpoint.pt", "train_state.pt"}) {
      const fs::path file = dir / name;
      const auto type = fs::symlink_status(file, ec).type();
      if (type == fs::file_type::not_found || type == fs::file_type::none) continue;
      if (type == fs::file_type::directory)
        return fail_start(fmt::format("{} is a directory: the training could not write its "
                                      "checkpoints there; move it away and resume",
                                      file.string()));
      fs::path aside = file;
      aside += suffix;
      fs::rename(file, aside, ec);
      if (ec)
        return fail_start(fmt::format("cannot move {} aside to {} before starting from step 0 "
                                      "({}): move it away and resume",
                                      file.string(), aside.filename().string(), ec.message()));
      moved.push_back(aside.filename().string());
    }
    if (!moved.empty() && !task.resume) {
      if (!note_.empty()) note_ += "; ";
      note_ += fmt::format("an earlier attempt's files were kept as {}",
                           fmt::join(moved, " and "));
    }
  }

  SpawnOptions spawn;
  spawn.executable = options_.train_exe;
  spawn.argv = {options_.train_exe.string(), "train", (dir / "config.toml").string(),
                "--run-dir", dir.string(), "--report-fd", std::to_string(kReportFd)};
  if (resume) spawn.argv.push_back("--resume");
  spawn.log_file = dir / "log.txt";
  spawn.report_fd = kReportFd;
  if (task.threads == 0 && options_.threads > 0)
    for (const char* v : {"OMP_NUM_THREADS", "MKL_NUM_THREADS"})
      spawn.environment[v] = std::to_string(options_.threads);
  if (task.device == "auto" && !options_.cuda_visible_devices.empty())
    spawn.environment["CUDA_VISIBLE_DEVICES"] = options_.cuda_visible_devices;
  // The child never calls MPI; keep the launcher's variables from making it try.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_SIZE",
                        "PMI_RANK"})
    spawn.unset_environment.emplace_back(v);

  spawn.inherit_fds.emplace_back(run_lock_.get(), kInheritedRunLockFd);
  try {
    {
      std::ofstream log(spawn.log_file, std::ios::app);
      log.seekp(0, std::ios::end);
      log_start_ = log ? static_cast<size_t>(log.tellp()) : 0;  // failure messages quote from here
      log << fmt::format("=== {} attempt {} of run {} ({}){}\n", utc_now(), task.attempt,
                         task.run_number,
                         resume ? fmt::format("resuming from step {}", checkpoint_step_)
                                : std::string("from step 0"),
                         note_.empty() ? "" : "; " + note_);
    }
    child_ = ChildProcess::spawn(spawn);
    // The holder's pid, for a later start that finds the lock still held.
    const std::string pid = std::to_string(child_->pid()) + "\n";
    if (::ftruncate(run_lock_.get(), 0) != 0 ||
        ::pwrite(run_lock_.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
      note_ += note_.empty() ? "could not write the pid into run.lock"
                             : "; could not write the pid into run.lock";
  } catch (const std::exception& e) {
    Result r;
    r.run_id = task.run_id;
    r.attempt = task.attempt;
    r.outcome = RunOutcome::kFailed;
    r.message = fmt::format("cannot start the training process: {}", e.what());
    start_failure_ = r;
  }
}

std::string Supervisor::lock_run_directory(const fs::path& dir) {
  const fs::path file = dir / "run.lock";
  FileDescriptor fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return run_lock_open_error(file, errno);
  // Above the child's fixed descriptors (0–4), so the dup2s that set them up never collide.
  if (fd.get() <= kInheritedRunLockFd) {
    int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 10);
    if (moved < 0) return fmt::format("cannot move the descriptor of {}: {}", file.string(),
                                      std::strerror(errno));
    fd.reset(moved);
  }
  auto try_lock = [&] { return ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0; };
  if (!try_lock()) {
    if (errno != EWOULDBLOCK)
      return fmt::format("cannot lock {}: {}", file.string(), std::strerror(errno));
    // Another training process of this run still holds it: one of an earlier launch whose
    // worker was killed before it ended, or one started by hand (core/run_lock.h). Ask it to
    // checkpoint and exit, as a stop would, then wait for the lock.
    const auto [holder, by_hand] = read_run_lock_holder(fd.get());
    // A supervisor's child leads its own process group (a wrapper script shares it); a trainer
    // started by hand may not lead one, or may lead the user's pipeline: signal it alone.
    auto signal_holder = [&](int sig) {
      if (holder <= 1) return false;
      if (!by_hand && ::kill(-holder, sig) == 0) return true;
      return ::kill(holder, sig) == 0;
    };
    const bool asked = signal_holder(SIGTERM);
    const std::string ask_error = asked || holder <= 1 ? std::string() : std::strerror(errno);
    const auto kill_at = std::chrono::steady_clock::now() + options_.stop_grace;
    const auto give_up = kill_at + std::chrono::seconds(10);
    bool kill_tried = false, killed = false;
    while (!try_lock()) {
      const auto now = std::chrono::steady_clock::now();
      if (!kill_tried && now >= kill_at && holder > 1) {
        killed = signal_holder(SIGKILL);
        kill_tried = true;
      }
      if (now >= give_up)
        return fmt::format("{} is still locked by another process (pid {}{}) {} s after {}: two trainings "
                           "must not share a run directory",
                           file.string(), holder > 1 ? std::to_string(holder) : "unknown",
                           by_hand ? ", started by hand" : "",
                           std::chrono::duration_cast<std::chrono::seconds>(
                               options_.stop_grace + std::chrono::seconds(10))
                               .count(),
                           asked ? "asking it to stop"
                                 : fmt::format("trying to ask it to stop ({})",
                                               ask_error.empty() ? "run.lock names no pid" : ask_error));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::string what = fmt::format(
        "{} (pid {}) still ran in the run directory: {}{} and waited for it to exit",
        by_hand ? "a training process started by hand" : "a training process of an earlier launch",
        holder > 1 ? std::to_string(holder) : "unknown",
        asked ? "sent it SIGTERM" : "could not signal it", killed ? " then SIGKILL" : "");
    note_ = note_.empty() ? what : note_ + "; " + what;
  }
  run_lock_ = std::move(fd);
  return "";
}

void Supervisor::stop() {
  if (!child_ || stop_requested_) return;
  stop_requested_ = true;
  child_->signal_group(SIGTERM);
  kill_at_ = std::chrono::steady_clock::now() + options_.stop_grace;
}

void Supervisor::handle_line(std::string_view line, SupervisorUpdate& update) {
  if (line.empty()) return;
  json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!event.is_object() || !event.contains("event") || !event["event"].is_string()) {
    ++malformed_lines_;
    return;
  }
  const std::string kind = event["event"].get<std::string>();
  try {
    if (kind == "progress") {
      MetricPoint p;
      p.step = event.at("step").get<int64_t>();
      for (const auto& [k, v] : event.at("metrics").items())
        if (v.is_number()) p.metrics[k] = v.get<double>();
      last_step_ = std::max(last_step_, p.step);
      update.points.push_back(std::move(p));
    } else if (kind == "checkpoint") {
      CheckpointInfo c;
      c.step = event.at("step").get<int64_t>();
      c.path = event.at("path").get<std::string>();
      c.bytes = event.value("bytes", int64_t{0});
      c.sha256 = event.value("sha256", std::string());
      last_step_ = std::max(last_step_, c.step);
      checkpoint_step_ = c.step;
      update.checkpoint = std::move(c);
    } else if (kind == "result") {
      result_event_ = std::string(line);
    } else {
      ++malformed_lines_;
    }
  } catch (const json::exception&) {
    ++malformed_lines_;
  }
}

void Supervisor::read_report(SupervisorUpdate& update) {
  const int fd = child_->report_fd();
  if (fd < 0) return;
  char chunk[65536];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) child_->close_report();  // EOF: the child (and its children) closed fd 3
    break;                               // n < 0: EAGAIN, nothing more for now
  }
  size_t start = 0;
  for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1)
    handle_line(std::string_view(buffer_).substr(start, nl - start), update);
  buffer_.erase(0, start);
}

Result Supervisor::finish(int wait_status) {
  ChildEnd end;
  end.wait_status = wait_status;
  end.stop_requested = stop_requested_;
  end.killed_after_grace = killed_after_grace_;
  end.result_event = result_event_;
  end.last_step = last_step_;
  end.checkpoint_step = checkpoint_step_;
  end.log_tail = file_tail(fs::path(task_->run_dir) / "log.txt", kLogTailBytes, log_start_);
  end.malformed_lines = malformed_lines_;
  Result r;
  try {
    r = classify_child_end(end);
  } catch (const ProtocolError& e) {
    r.outcome = RunOutcome::kFailed;
    r.message = fmt::format("bad report stream: {}", e.what());
  }
  // A done run's message is the note (e.g. an adopted checkpoint); any other ending leads
  // with its cause, so one-line views (status, the sweep's log) show what went wrong.
  if (!note_.empty())
    r.message = r.message.empty()                 ? note_
                : r.outcome == RunOutcome::kDone ? note_ + "; " + r.message
                                                 : insert_before_tail(r.message, note_);
  if (malformed_lines_ > 0)
    r.message += fmt::format("{}{} report line(s) were not valid events and were ignored",
                             r.message.empty() ? "" : "; ", malformed_lines_);
  return r;
}

SupervisorUpdate Supervisor::poll(std::chrono::milliseconds timeout) {
  SupervisorUpdate update;
  if (!task_) return update;
  auto seconds_since_start = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  };
  if (start_failure_) {
    update.result = *start_failure_;
    update.result->child_seconds = seconds_since_start();
    task_.reset();
    run_lock_.reset();
    return update;
  }
  if (adopted_) {
    update.checkpoint = std::move(*adopted_);
    adopted_.reset();
  }
  if (!note_sent_) {
    update.note = note_;
    note_sent_ = true;
  }
  // Sleep until the report stream has data or closes, or the child ends (its pidfd turns
  // readable), whichever comes first: a run's end is seen at once, not at the next tick.
  pollfd fds[2];
  nfds_t n_fds = 0;
  if (child_->report_fd() >= 0) fds[n_fds++] = pollfd{child_->report_fd(), POLLIN, 0};
  if (child_->exit_fd() >= 0) fds[n_fds++] = pollfd{child_->exit_fd(), POLLIN, 0};
  if (n_fds > 0) {
    if (::poll(fds, n_fds, static_cast<int>(timeout.count())) > 0) read_report(update);
  } else {
    // No pidfd (old kernel) and the report stream is closed while the child may still
    // run: check it every millisecond.
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(1)));
  }
  if (stop_requested_ && !killed_after_grace_ && std::chrono::steady_clock::now() >= kill_at_) {
    killed_after_grace_ = true;
    child_->signal_group(SIGKILL);
  }
  if (auto status = child_->try_wait()) {
    // Everything the child wrote is in the pipe now: read it before judging the end.
    read_report(update);
    if (!buffer_.empty()) handle_line(buffer_, update);  // a last line without newline
    buffer_.clear();
    Result r = finish(*status);
    r.run_id = task_->run_id;
    r.attempt = task_->attempt;
    r.child_seconds = seconds_since_start();
    update.result = std::move(r);
    child_.reset();
    task_.reset();
    run_lock_.reset();  // the child's copy closed with it: the directory is free
  }
  return update;
}

}  // namespace jslds
