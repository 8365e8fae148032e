#include "worker/supervisor.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "coordinator/signals.h"
#include "core/config.h"

namespace jslds {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int kReportFd = 3;
constexpr size_t kLogTailBytes = 600;

// The last `bytes` of a file, starting at a line boundary when possible.
std::string file_tail(const fs::path& file, size_t bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  auto size = static_cast<size_t>(in.tellg());
  size_t from = size > bytes ? size - bytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string tail(size - from, '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  if (from > 0) {
    auto nl = tail.find('\n');
    if (nl != std::string::npos && nl + 1 < tail.size()) tail.erase(0, nl + 1);
  }
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  return tail;
}

std::string with_tail(std::string message, const std::string& tail) {
  if (!tail.empty()) message += "; end of log.txt:\n" + tail;
  return message;
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

}  // namespace

std::string file_sha256(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", file.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  return sha256_hex(ss.str());
}

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
      r.message = fmt::format("stopped at step {} (exit status {}); resumes from the checkpoint "
                              "of step {}",
                              end.last_step, r.exit_status, end.checkpoint_step);
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
      r.message = fmt::format("{} at step {}{}; resumes from the checkpoint of step {}",
                              signal_name(sig), end.last_step,
                              end.killed_after_grace ? " (did not stop within the grace period)"
                                                     : "",
                              end.checkpoint_step);
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
  buffer_.clear();
  result_event_.reset();
  last_step_ = 0;
  checkpoint_step_ = 0;
  malformed_lines_ = 0;
  stop_requested_ = false;
  killed_after_grace_ = false;
  started_ = std::chrono::steady_clock::now();

  const fs::path dir(task.run_dir);
  bool resume = task.resume;
  if (resume) {
    const fs::path checkpoint = dir / "checkpoint.pt";
    std::string found;
    try {
      found = file_sha256(checkpoint);
    } catch (const std::exception&) {
      found = "";
    }
    if (task.checkpoint_sha256.empty() || found != task.checkpoint_sha256) {
      resume = false;
      std::error_code ec;
      if (!found.empty()) fs::rename(checkpoint, dir / "checkpoint.pt.unverified", ec);
      note_ = found.empty()
                  ? "no checkpoint.pt to resume from: restarted from step 0"
                  : fmt::format("checkpoint.pt (sha256 {}) does not match the recorded checkpoint "
                                "(step {}, sha256 {}): not loaded, kept as "
                                "checkpoint.pt.unverified; restarted from step 0",
                                found.substr(0, 12), task.checkpoint_step,
                                task.checkpoint_sha256.empty()
                                    ? std::string("none")
                                    : task.checkpoint_sha256.substr(0, 12));
    } else {
      checkpoint_step_ = task.checkpoint_step;
      last_step_ = task.checkpoint_step;
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

  try {
    std::error_code ec;
    fs::create_directories(dir, ec);
    {
      std::ofstream log(spawn.log_file, std::ios::app);
      log << fmt::format("=== {} attempt {} of run {} ({}){}\n", utc_now(), task.attempt,
                         task.run_number,
                         resume ? fmt::format("resuming from step {}", task.checkpoint_step)
                                : std::string("from step 0"),
                         note_.empty() ? "" : "; " + note_);
    }
    child_ = ChildProcess::spawn(spawn);
  } catch (const std::exception& e) {
    Result r;
    r.run_id = task.run_id;
    r.attempt = task.attempt;
    r.outcome = RunOutcome::kFailed;
    r.message = fmt::format("cannot start the training process: {}", e.what());
    start_failure_ = r;
  }
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
  end.log_tail = file_tail(fs::path(task_->run_dir) / "log.txt", kLogTailBytes);
  end.malformed_lines = malformed_lines_;
  Result r;
  try {
    r = classify_child_end(end);
  } catch (const ProtocolError& e) {
    r.outcome = RunOutcome::kFailed;
    r.message = fmt::format("bad report stream: {}", e.what());
  }
  if (!note_.empty()) r.message = r.message.empty() ? note_ : note_ + "; " + r.message;
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
    return update;
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
  }
  return update;
}

}  // namespace jslds
