// A stand-in for `jslds train` that speaks its report stream (docs/report-format.md) without
// Torch, for the sweep tests and bench/dispatch (selected through JSLDS_TRAIN_EXE).
//
//   fake_train train RUN_DIR/config.toml --run-dir RUN_DIR --report-fd 3 [--resume]
//
// It "trains" train.steps steps of FAKE_TRAIN_STEP_MS milliseconds each (default 0),
// reports progress every train.eval_every steps, writes checkpoint.pt (temporary file,
// fsync, rename) every train.checkpoint_every steps and on SIGTERM (then exits 143), and
// ends with a result event and result.json. Every start appends "start STEP" to
// RUN_DIR/fake_history.txt so tests can see where a resumed run continued.
//
// FAKE_TRAIN_STEPS=N trains N steps whatever train.steps says (0: a no-op child).
// FAKE_TRAIN_FAIL="3:abort,5:segv,6:exit7,8:diverge" makes the runs whose directory is named
// 3, 5, … abort, segfault, exit with status 7 or diverge halfway through ("longline": print one
// 2000-character line, then exit with status 3).
// FAKE_TRAIN_STOP_CHECKPOINT_MS delays the checkpoint written on SIGTERM (a large model's
// checkpoint that outlasts mpirun's 1 s between SIGTERM and SIGKILL for the ranks). Like the
// real trainer, every checkpoint is staged as checkpoint.pt.next and published through its
// receipt (core/checkpoint_receipt.h).
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/checkpoint_receipt.h"
#include "core/config.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::atomic<bool> g_stop{false};
extern "C" void on_term(int) { g_stop.store(true); }

void emit(int fd, const json& event) {
  std::string line = event.dump() + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) std::exit(120);  // the worker is gone
    p += n;
    left -= static_cast<size_t>(n);
  }
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"stand-in for `jslds train` (tests and benchmarks)"};
  std::string config_file, run_dir_text;
  int report_fd = -1;
  bool resume = false;
  auto* train = app.add_subcommand("train", "train one run")->required();
  train->add_option("config", config_file)->required();
  train->add_option("--run-dir", run_dir_text)->required();
  train->add_option("--report-fd", report_fd)->required();
  train->add_flag("--resume", resume);
  CLI11_PARSE(app, argc, argv);

  std::signal(SIGTERM, on_term);
  std::signal(SIGPIPE, SIG_IGN);  // as the real trainer: a dead report reader must not kill it
  const fs::path run_dir = fs::absolute(run_dir_text);
  const jslds::RunConfig config = jslds::load_config(config_file);
  // FAKE_TRAIN_STEPS overrides train.steps; 0 makes a no-op child that reports its result at
  // once (bench/dispatch), which a run configuration cannot ask for (train.steps >= 1).
  const char* steps_override = std::getenv("FAKE_TRAIN_STEPS");
  const int64_t steps = steps_override ? std::atol(steps_override) : config.train.steps;
  const int step_ms = std::getenv("FAKE_TRAIN_STEP_MS") ? std::atoi(std::getenv("FAKE_TRAIN_STEP_MS")) : 0;

  std::string failure;
  if (const char* f = std::getenv("FAKE_TRAIN_FAIL")) {
    std::stringstream ss(f);
    for (std::string item; std::getline(ss, item, ',');) {
      auto colon = item.find(':');
      if (colon != std::string::npos && item.substr(0, colon) == run_dir.filename().string())
        failure = item.substr(colon + 1);
    }
  }

  const fs::path checkpoint = run_dir / "checkpoint.pt";
  int64_t step = 0;
  if (resume) {
    std::string text = slurp(checkpoint);
    if (std::sscanf(text.c_str(), "fake-checkpoint step=%ld", &step) != 1) {
      std::fprintf(stderr, "fake_train: --resume but %s is not a checkpoint\n", checkpoint.c_str());
      return 3;
    }
  }
  {
    std::ofstream history(run_dir / "fake_history.txt", std::ios::app);
    history << "start " << step << "\n";
  }
  std::fprintf(stderr, "fake_train: run %s from step %ld of %ld\n", run_dir.filename().c_str(),
               static_cast<long>(step), static_cast<long>(steps));

  // The objective depends on the configuration so that runs differ.
  const double val_bps = 0.05 + 0.001 * static_cast<double>(config.model.latent_dim) +
                         0.01 * std::log10(1.0 + config.loss.w_approx);

  auto save_checkpoint = [&](int64_t at) {
    std::string bytes = fmt::format("fake-checkpoint step={}\nconfig={}\n", at,
                                    jslds::config_sha256(config));
    // The pair the real trainer writes: checkpoint.pt and the train_state.pt written with it.
    const std::string state = fmt::format("fake-state step={}\n", at);
    jslds::write_file_atomically(jslds::staged_checkpoint_path(checkpoint), bytes);
    jslds::write_file_atomically(jslds::staged_checkpoint_path(run_dir / "train_state.pt"), state);
    jslds::publish_staged_checkpoint(run_dir, {at, "checkpoint.pt", static_cast<int64_t>(bytes.size()),
                                               jslds::sha256_hex(bytes), jslds::sha256_hex(state)});
    emit(report_fd, {{"event", "checkpoint"},
                     {"step", at},
                     {"path", checkpoint.string()},
                     {"bytes", bytes.size()},
                     {"sha256", jslds::sha256_hex(bytes)}});
  };

  while (step < steps) {
    if (g_stop.load()) {
      if (const char* delay = std::getenv("FAKE_TRAIN_STOP_CHECKPOINT_MS"))
        std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));
      save_checkpoint(step);
      std::fprintf(stderr, "fake_train: SIGTERM at step %ld, checkpoint written\n",
                   static_cast<long>(step));
      return 143;
    }
    if (step_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
    ++step;
    if (!failure.empty() && step == std::max<int64_t>(1, steps / 2)) {
      std::fprintf(stderr, "fake_train: failing on purpose with '%s' at step %ld\n",
                   failure.c_str(), static_cast<long>(step));
      std::fflush(stderr);
      if (failure == "abort") std::abort();
      if (failure == "segv") std::raise(SIGSEGV);
      if (failure.rfind("exit", 0) == 0) return std::atoi(failure.c_str() + 4);
      if (failure == "longline") {  // a last line longer than the log tail the supervisor quotes
        std::fprintf(stderr, "start of a long line %s end of the long line\n", std::string(2000, 'x').c_str());
        return 3;
      }
      if (failure == "diverge") {
        json r = {{"event", "result"},       {"status", "diverged"},
                  {"step", step},            {"message", "train_loss is nan at step " + std::to_string(step)},
                  {"summary", json::object()}, {"fixed_points", json::array()},
                  {"modes", json::array()}};
        jslds::write_file_atomically(run_dir / "result.json", r.dump());
        emit(report_fd, r);
        return 0;
      }
    }
    if (step % config.train.eval_every == 0 || step == steps)
      emit(report_fd, {{"event", "progress"},
                       {"step", step},
                       {"metrics",
                        {{"train_loss", 1.0 / (1.0 + static_cast<double>(step))},
                         {"val_bps", val_bps * static_cast<double>(step) / static_cast<double>(steps)}}}});
    if (step % config.train.checkpoint_every == 0 || step == steps) save_checkpoint(step);
  }

  json summary = {{"val_bps", val_bps}, {"rel_state_error", 0.1}, {"n_fixed_points", 1}};
  json fixed_points = json::array({{{"idx", 0},
                                    {"source", "numerical"},
                                    {"q", 1e-9},
                                    {"stability", "stable"},
                                    {"n_unstable", 0},
                                    {"max_abs_eig", 0.9},
                                    {"coords", {0.1, -0.2}}}});
  json modes = json::array({{{"point_idx", 0},
                             {"mode_idx", 0},
                             {"eig_re", 0.9},
                             {"eig_im", 0.1},
                             {"abs", 0.9055},
                             {"freq_hz", 0.8},
                             {"tau_s", nullptr}}});
  json result = {{"event", "result"},    {"status", "done"},        {"step", step},
                 {"message", ""},        {"summary", summary},      {"fixed_points", fixed_points},
                 {"modes", modes}};
  jslds::write_file_atomically(run_dir / "result.json", result.dump());
  emit(report_fd, result);
  return 0;
}
