// `jslds train`: run directory, signals, progress lines, report events, result.json.
#include "core/train/train_command.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/build_id.h"
#include "core/checkpoint_receipt.h"
#include "core/run_lock.h"
#include "core/config.h"
#include "core/data/loaders.h"
#include "core/train/checkpoint.h"
#include "core/analysis/fixed_points.h"
#include "core/train/post_training_analysis.h"
#include "core/train/runtime.h"
#include "core/train/trainer.h"

namespace jslds {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void jslds_train_on_stop_signal(int signal_number) {
  if (g_stop_signal == 0) g_stop_signal = signal_number;
}

// Installs the graceful-stop handlers (SIGTERM, SIGINT, SIGUSR1, SIGUSR2: finish the step,
// checkpoint, exit 143/130) and ignores SIGPIPE (a dead report reader must not kill the
// run); restores the previous dispositions on destruction.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = jslds_train_on_stop_signal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &action, &previous_[i]);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGPIPE, &ignore, &previous_pipe_);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  ~StopSignals() {
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &previous_[i], nullptr);
    ::sigaction(SIGPIPE, &previous_pipe_, nullptr);
  }
  static bool requested() { return g_stop_signal != 0; }
  static int exit_status() { return g_stop_signal == SIGINT ? 130 : 143; }
  static const char* name() {
    switch (g_stop_signal) {
      case SIGINT: return "SIGINT";
      case SIGUSR1: return "SIGUSR1";
      case SIGUSR2: return "SIGUSR2";
      default: return "SIGTERM";
    }
  }

 private:
  static constexpr std::array<int, 4> kSignals{SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
  std::array<struct sigaction, 4> previous_{};
  struct sigaction previous_pipe_ {};
};

// The --report-fd stream: one JSON object per line. Owns the descriptor it was handed.
class ReportStream {
 public:
  explicit ReportStream(int fd) : fd_(fd) {
    if (fd_ >= 0 && ::fcntl(fd_, F_GETFD) == -1) {
      throw TrainUsageError(fmt::format("--report-fd {}: not an open file descriptor ({})", fd_, std::strerror(errno)));
    }
  }
  ReportStream(const ReportStream&) = delete;
  ReportStream& operator=(const ReportStream&) = delete;
  ~ReportStream() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool enabled() const { return fd_ >= 0; }
  /// Writes one line; a failing reader is reported once on stderr and then ignored.
  void emit(const json& event) {
    if (fd_ < 0 || failed_) return;
    const std::string line = event.dump() + "\n";
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::cerr << fmt::format("warning: --report-fd {}: write failed ({}); no further events are sent\n", fd_,
                                 std::strerror(errno));
        failed_ = true;
        return;
      }
      done += static_cast<size_t>(n);
    }
  }

 private:
  int fd_;
  bool failed_ = false;
};

// Log lines go to stderr and, when no worker captures stderr, to RUN_DIR/log.txt too.
class RunLog {
 public:
  RunLog(const fs::path& file, bool enabled) {
    if (enabled) file_.open(file, std::ios::app);
  }
  void line(const std::string& text) {
    std::cerr << text << "\n";
    file_line(text);
  }
  // Only into log.txt: for an error the caller reports on stderr itself.
  void file_line(const std::string& text) {
    if (file_.is_open()) file_ << text << std::endl;
  }

 private:
  std::ofstream file_;
};

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string progress_line(int64_t step, int64_t total, const Metrics& m) {
  auto get = [&](const char* name) {
    auto it = m.find(name);
    return it == m.end() ? std::nan("") : it->second;
  };
  std::string line = fmt::format("step {}/{}  loss {:.5g}", step, total, get("train_loss"));
  for (const char* name : {"val_bps", "val_bps_jslds", "val_cobps", "val_mse", "val_mse_jslds", "rel_state_error"}) {
    if (m.count(name)) line += fmt::format("  {} {:.4g}", name, m.at(name));
  }
  const double rate = get("steps_per_s");
  line += fmt::format("  {:.1f} steps/s  ETA {}", rate, format_duration(static_cast<double>(total - step) / rate));
  return line;
}

json metrics_json(const Metrics& m) {
  json j = json::object();
  for (const auto& [name, value] : m) j[name] = value;  // NaN/inf are written as null
  return j;
}

// Calls visit(line text, parsed line, its step) for every metrics.jsonl line that is a JSON
// object with an integer "step" (others: a torn last line of a killed run, are skipped).
// Returns false when the file cannot be opened (e.g. there is none yet).
template <class Visit>
bool for_each_metrics_line(const fs::path& file, Visit visit) {
  std::ifstream in(file);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer())
      visit(line, j, j["step"].get<int64_t>());
  }
  return true;
}

// The metrics of metrics.jsonl's line for `step` (an empty object when there is none).
json last_recorded_metrics(const fs::path& file, int64_t step) {
  json found = json::object();
  for_each_metrics_line(file, [&](const std::string&, const json& j, int64_t s) {
    if (s == step && j.contains("metrics") && j["metrics"].is_object()) found = j["metrics"];
  });
  return found;
}

// Keeps only the metrics.jsonl lines of steps ≤ `step` (a resumed run re-evaluates later ones).
void truncate_metrics_history(const fs::path& file, int64_t step) {
  std::string kept;
  const bool opened = for_each_metrics_line(file, [&](const std::string& line, const json&, int64_t s) {
    if (s <= step) kept += line + "\n";
  });
  if (opened) write_file_atomically(file, kept);
}


// The files a training writes in its run directory, or an earlier attempt of it left there
// (run.lock, the receipt checkpoint.json, files a sweep kept aside as .previous/.unverified,
// the .tmp.PID/.next files of an interrupted write).
bool is_run_directory_entry(const std::string& name) {
  static const std::array<const char*, 9> names = {"config.toml",   "log.txt",        "metrics.jsonl",
                                                   "result.json",   "analysis.h5",    "checkpoint.pt",
                                                   "train_state.pt", "checkpoint.json", "run.lock"};
  for (const std::string known : names)  // NAME, or NAME.previous, NAME.tmp.PID, NAME.next, …
    if (name == known || name.starts_with(known + ".")) return true;
  return false;
}

// Files an operating system, a network filesystem or an editor leaves in any folder: hidden
// files (.nfs*, .DS_Store, swap files), backups (name~), autosaves (#name#), Thumbs.db,
// desktop.ini. They say nothing about whose folder it is.
bool is_system_or_editor_file(const std::string& name) {
  return name.starts_with(".") || name.ends_with("~") || (name.size() > 1 && name.front() == '#' && name.back() == '#') ||
         name == "Thumbs.db" || name == "desktop.ini";
}

std::string whole_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Whether `text` is the canonical form of a run configuration, as jslds writes it.
bool is_canonical_config_text(const std::string& text, const fs::path& file) {
  try {
    return text == to_toml(parse_config(text, file.string()));
  } catch (const std::exception&) {
    return false;
  }
}

// Whether `file`, one of the names a training writes, may be replaced by it: absent, empty
// (a crash before its data reached the disk), the configuration being trained, or written by
// jslds (recognised by content for the generic names a user's own files may have).
bool replaceable_by_training(const fs::path& file, const fs::path& config_file) {
  std::error_code ec;
  if (!fs::exists(file, ec) || fs::file_size(file, ec) == 0) return true;
  const std::string name = file.filename().string();
  if (name == "config.toml") {
    if (fs::equivalent(file, config_file, ec)) return true;
    // jslds writes the canonical text of a run configuration there; a user's file (notes, or a
    // hand-written configuration with its comments) is anything else.
    return is_canonical_config_text(whole_file(file), file);
  }
  if (name == "analysis.h5") return hdf5_root_attribute_starts_with(file, "format", "jslds-analysis");
  if (name == "result.json") {
    const json j = json::parse(whole_file(file), nullptr, false);
    return j.is_object() && j.value("event", std::string()) == "result";
  }
  return true;
}

// Makes the run directory, or checks an existing one. A training must not overwrite or mix with
// a user's own files (a mistyped --run-dir, a data folder): when the folder holds no training
// yet, every entry must be one a training writes, or left by an earlier attempt (system and
// editor files aside), and config.toml, result.json and analysis.h5 must be jslds's. A folder that holds a training (checkpoint.pt or train_state.pt) is a run
// directory; so is one a sweep worker hands over (`checks_folder` false: its coordinator made
// it, under a root its campaign owns). Throws TrainUsageError naming what is in the way.
void prepare_run_directory(const fs::path& run_dir, const fs::path& config_file, bool checks_folder) {
  std::error_code ec;
  const auto type = fs::status(run_dir, ec).type();
  if (type != fs::file_type::not_found && type != fs::file_type::directory && type != fs::file_type::none)
    throw TrainUsageError(fmt::format("--run-dir {}: exists and is not a directory; give the path of a run "
                                      "directory (new, or one jslds made)",
                                      run_dir.string()));
  if (type == fs::file_type::directory) {
    const bool holds_training = fs::exists(run_dir / "checkpoint.pt", ec) || fs::exists(run_dir / "train_state.pt", ec);
    if (!checks_folder || holds_training) return;
    std::vector<std::string> foreign;
    for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (is_system_or_editor_file(name) || fs::equivalent(entry.path(), config_file, ec)) continue;
      if (!is_run_directory_entry(name) || !replaceable_by_training(entry.path(), config_file)) foreign.push_back(name);
    }
    std::sort(foreign.begin(), foreign.end());
    if (!foreign.empty()) {
      const size_t shown = std::min<size_t>(foreign.size(), 5);
      throw TrainUsageError(fmt::format(
          "--run-dir {}: holds {}{}, which a training does not write, and no training yet: it does not look like a "
          "run directory (a training writes config.toml, log.txt, metrics.jsonl, result.json, analysis.h5 and "
          "checkpoints there). Choose a new or empty --run-dir, or move those files away",
          run_dir.string(), fmt::join(foreign.begin(), foreign.begin() + shown, ", "),
          foreign.size() > shown ? fmt::format(" and {} more", foreign.size() - shown) : std::string()));
    }
    return;
  }
  fs::create_directories(run_dir, ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("cannot create the run directory {}: {}", run_dir.string(), ec.message()));
}

}  // namespace

int run_train_command(const TrainCommandOptions& options) {
  const bool malloc_tuned = tune_malloc();
  RunConfig config = load_config(options.config_file);
  // data.path from the file: relative to the file; from --set: relative to here.
  resolve_data_path(config, fs::absolute(options.config_file).parent_path());
  const std::string path_from_file = config.data.path;
  for (const auto& assignment : options.overrides) apply_override(config, assignment);
  if (config.data.path != path_from_file) resolve_data_path(config, fs::current_path());
  validate(config, "--set");
  check_key_combinations(config, options.overrides.empty() ? options.config_file.string()
                                                           : options.config_file.string() + " with --set");
  // Before the run directory exists: a configuration without data must not leave one behind.
  if (config.data.path.empty() && config.data.simulate.empty())
    throw TrainUsageError(fmt::format("{}: no data: set data.path to a recording (.nwb/.h5/.mat) or data.simulate "
                                      "to a simulator (e.g. --set data.simulate=oscillator)",
                                      options.config_file.string()));
  if (!config.data.path.empty() && !fs::exists(config.data.path))
    throw TrainUsageError(fmt::format("data.path = {}: no such file", config.data.path));

  const fs::path run_dir = fs::absolute(options.run_dir.empty() ? fs::path("jslds-runs") / options.config_file.stem()
                                                                 : options.run_dir)
                               .lexically_normal();

  // Everything the input can make fail is checked before the run directory is made: a refused
  // configuration, device or data file leaves nothing behind.
  ReportStream report(options.report_fd);
  const int threads = configure_threads(config.runtime.threads);
  c10::Device device = c10::Device(c10::DeviceType::CPU);
  try {
    device = select_device(config.runtime.device);
  } catch (const std::invalid_argument& e) {
    throw TrainUsageError(e.what());
  }
  Dataset data;
  Split split;
  try {
    data = load_dataset(config.data);
    split = make_split(data, config.data);
  } catch (const DataError& e) {
    throw TrainUsageError(e.what());
  }
  std::unique_ptr<Trainer> trainer;
  try {
    TrainerOptions trainer_options;
    trainer_options.device = device;
    trainer = std::make_unique<Trainer>(config, data, split, trainer_options);
  } catch (const std::invalid_argument& e) {
    throw TrainUsageError(e.what());
  }

  // A sweep worker's run directory (--report-fd) was made by its coordinator, under a root its campaign owns.
  prepare_run_directory(run_dir, options.config_file, /*checks_folder=*/options.report_fd < 0);
  // One training per run directory: a second `jslds train` of this directory (or a sweep
  // resuming it) is refused before it touches anything (core/run_lock.h).
  RunDirectoryLock run_lock;
  try {
    run_lock = RunDirectoryLock::acquire_for_training(run_dir);
  } catch (const RunDirectoryBusy& e) {
    throw TrainUsageError(e.what());
  }
  // A checkpoint whose publication a crash interrupted is completed or undone first
  // (core/checkpoint_receipt.h), so that what follows sees one whole pair.
  const std::string recovery_note = options.resume ? recover_checkpoint_publication(run_dir) : std::string();
  const bool has_state = fs::exists(run_dir / "train_state.pt");
  const bool has_checkpoint = fs::exists(run_dir / "checkpoint.pt");
  if (!options.resume && (has_state || has_checkpoint)) {
    throw TrainUsageError(fmt::format("{} already holds a training (checkpoint.pt / train_state.pt); pass --resume "
                                      "to continue it or choose another --run-dir",
                                      run_dir.string()));
  }
  if (options.resume && !has_state && has_checkpoint) {
    // Starting from step 0 here would replace a trained model with a new one.
    throw TrainUsageError(fmt::format(
        "{}: --resume needs train_state.pt (the optimiser state written with checkpoint.pt), which is missing; "
        "the training cannot be continued. Its model is kept: `jslds analyze {}` still analyses it. To train "
        "again from step 0 in this directory, move checkpoint.pt away first, or choose another --run-dir",
        (run_dir / "checkpoint.pt").string(), run_dir.string()));
  }

  RunLog log(run_dir / "log.txt", !report.enabled());
  StopSignals stop_signals;
  if (!recovery_note.empty()) log.line(recovery_note);

  log.line(fmt::format("jslds train {}: run directory {}, device {}, {} intra-op thread(s), BLAS {}, malloc {}",
                       build_id(), run_dir.string(), device.str(), threads, blas_library(),
                       malloc_tuned ? "tuned" : "default"));
  log.line(fmt::format("data: {}; {} training and {} validation trials{}", data.provenance, split.train_trials.size(),
                       split.valid_trials.size(),
                       split.heldout_neurons.empty()
                           ? std::string()
                           : fmt::format(", {} held-out neurons for co-smoothing", split.heldout_neurons.size())));
  if (trainer->validation_is_training()) {
    log.line(config.data.valid_fraction > 0
                 ? fmt::format("note: no validation trials: {} trial(s) cannot give a validation trial and keep a "
                               "training one (data.valid_fraction = {}); metrics are computed on the training trials",
                               data.n_trials(), config.data.valid_fraction)
                 : std::string("note: no validation trials (data.valid_fraction = 0): metrics are computed on the "
                               "training trials"));
  }
  if (config.train.batch_size > static_cast<int64_t>(split.train_trials.size()))
    log.line(fmt::format("note: train.batch_size = {} is more than the {} training trials: each step uses all of them",
                         config.train.batch_size, split.train_trials.size()));
  log.line(fmt::format("model: {}", c10::str(*trainer->model())));
  const fs::path metrics_file = run_dir / "metrics.jsonl";
  if (options.resume && has_state) {
    try {
      trainer->resume(run_dir);
    } catch (const CheckpointError& e) {
      // A changed configuration or a pair that does not fit: a usage problem (exit status 2).
      log.file_line(std::string("error: ") + e.what());
      throw TrainUsageError(e.what());
    }
    if (trainer->step() > config.train.steps) {
      const std::string why = fmt::format(
          "{}: the run has done {} steps, more than train.steps = {}; resume with train.steps >= {} (a smaller "
          "value would make config.toml misdescribe the run)",
          (run_dir / "train_state.pt").string(), trainer->step(), config.train.steps, trainer->step());
      log.file_line("error: " + why);
      throw TrainUsageError(why);
    }
    truncate_metrics_history(metrics_file, trainer->step());
    log.line(fmt::format("resumed from {} at step {}/{}", (run_dir / "train_state.pt").string(), trainer->step(),
                         config.train.steps));
    if (!trainer->resumed_with_changes().empty())
      log.line(fmt::format("resumed with changed settings (from {}, not checkpoint.pt's): {}",
                           options.config_file.string(), fmt::join(trainer->resumed_with_changes(), ", ")));
    if (trainer->resumed_without_train_seconds())
      log.line(fmt::format("note: train_state.pt was written before jslds kept the training time; train_seconds "
                           "counts only the steps from {} on",
                           trainer->step()));
    if (!trainer->resumed_from_other_build().empty())
      log.line(fmt::format("note: steps up to {} were computed by another build of jslds or OpenBLAS kernel set "
                           "({}) and this one ({}) continues them: the result will not be bit-identical to an "
                           "uninterrupted run of either (result.json and the database record both as jslds_build)",
                           trainer->step(), trainer->resumed_from_other_build(), numerics_id()));
  } else {
    if (options.resume) log.line("--resume: no training in the run directory yet; starting from step 0");
    // A fresh start's history must not follow an earlier attempt's (a sweep's retry of a
    // diverged run starts afresh in the same directory).
    std::error_code ignored;
    fs::remove(metrics_file, ignored);
  }

  {
    // config.toml is the resolved configuration, every key (`jslds train RUN_DIR/config.toml`
    // reproduces the run). When it was also the file given and not in that form, the user's
    // own text (comments, a shorter form) is kept beside it instead of being lost.
    const fs::path config_toml = run_dir / "config.toml";
    const std::string canonical = to_toml(config);
    std::error_code ec;
    if (fs::equivalent(config_toml, options.config_file, ec)) {
      const std::string given = whole_file(config_toml);
      if (given != canonical && !is_canonical_config_text(given, config_toml)) {
        write_file_atomically(run_dir / "config.toml~", given);
        log.line(fmt::format("note: {} was the configuration given; it now holds the resolved configuration "
                             "(every key) and your text is kept as config.toml~",
                             config_toml.string()));
      }
    }
    write_file_atomically(config_toml, canonical);
  }
  std::ofstream metrics_out(metrics_file, std::ios::app);
  TrainHooks hooks;
  hooks.stop_requested = [] { return StopSignals::requested(); };
  hooks.on_eval = [&](int64_t step, const Metrics& m) {
    log.line(progress_line(step, config.train.steps, m));
    const json metrics = metrics_json(m);
    metrics_out << json{{"step", step}, {"metrics", metrics}}.dump() << std::endl;
    report.emit({{"event", "progress"}, {"step", step}, {"metrics", metrics}});
  };
  hooks.on_checkpoint = [&](int64_t step, const fs::path& path, const FileDigest& digest) {
    // Its receipt is already written (Trainer::save): if the supervisor is gone (its rank was
    // killed), the receipt is what lets a resumed campaign adopt it (core/checkpoint_receipt.h).
    report.emit({{"event", "checkpoint"},
                 {"step", step},
                 {"path", path.string()},
                 {"bytes", digest.bytes},
                 {"sha256", digest.sha256}});
  };

  const TrainOutcome outcome = trainer->run(run_dir, hooks);
  if (outcome.status == "interrupted") {
    log.line(fmt::format("stopped by {} after step {}; checkpoint written, continue with --resume",
                         StopSignals::name(), outcome.step));
    return StopSignals::exit_status();
  }

  json summary = metrics_json(outcome.final_metrics);
  if (outcome.status == "done" && !outcome.final_metrics.contains("train_loss")) {
    // Resumed with no step left (the previous attempt ended after its last checkpoint): the
    // training-side figures of the last evaluation (train_loss, loss terms, lr, steps_per_s)
    // are those that attempt wrote to metrics.jsonl; take them from there.
    const json recorded = last_recorded_metrics(metrics_file, outcome.step);
    for (const auto& [name, value] : recorded.items())
      if (!summary.contains(name)) summary[name] = value;
  }
  summary["steps_done"] = outcome.status == "done" ? outcome.step : outcome.step - 1;
  summary["train_seconds"] = outcome.train_seconds;
  json result = {{"event", "result"},
                 {"status", outcome.status},
                 {"step", outcome.step},
                 {"message", outcome.message},
                 {"jslds_build", trainer->builds()},
                 {"data_sha256", trainer->data_sha256()},
                 {"summary", summary},
                 {"fixed_points", json::array()},
                 {"modes", json::array()}};
  if (outcome.status == "diverged") {
    log.line("diverged: " + outcome.message);
  } else if (config.analysis.enabled) {
    if (StopSignals::requested()) {
      log.line(fmt::format("stopped by {} before the analysis; continue with --resume", StopSignals::name()));
      return StopSignals::exit_status();
    }
    PostTrainingAnalysis analysis;
    try {
      analysis = run_post_training_analysis(
          *trainer->model(), trainer->validation(), config, data.bin_ms, run_dir,
          [&](const std::string& s) { log.line(s); }, [] { return StopSignals::requested(); });
    } catch (const analysis::SearchInterrupted& e) {
      // The checkpoint of the last step is written: --resume evaluates it and redoes the analysis.
      log.line(fmt::format("stopped by {} during the analysis ({}); continue with --resume", StopSignals::name(),
                           e.what()));
      return StopSignals::exit_status();
    }
    for (const auto& [name, value] : analysis.report["summary"].items()) result["summary"][name] = value;
    result["fixed_points"] = analysis.report["fixed_points"];
    result["modes"] = analysis.report["modes"];
  }
  write_file_atomically(run_dir / "result.json", result.dump(2) + "\n");
  report.emit(result);
  log.line(fmt::format("{} at step {}: {}", outcome.status, outcome.step, (run_dir / "result.json").string()));
  return 0;
}

}  // namespace jslds
