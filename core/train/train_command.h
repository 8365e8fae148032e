// `jslds train`: one training run in a run directory (DESIGN §2–4), free of Torch so the
// CLI can include it cheaply.
//
// Run directory: config.toml (canonical), checkpoint.pt, train_state.pt, metrics.jsonl (one
// {"step", "metrics"} line per evaluation), result.json, analysis.h5, and log.txt when no
// --report-fd is given (a worker redirects stderr to log.txt itself).
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace jslds {

/// A usage or input problem of `jslds train` (exit status 2): e.g. a run directory that
/// already holds a training without --resume, a bad --report-fd, data that do not fit the
/// model mode, or unreadable data.
class TrainUsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainCommandOptions {
  std::filesystem::path config_file;   // run configuration (TOML)
  std::filesystem::path run_dir;       // empty: jslds-runs/<config file stem>
  std::vector<std::string> overrides;  // "section.key=value", applied in order
  bool resume = false;                 // continue from RUN_DIR/train_state.pt when present
  int report_fd = -1;                  // ≥ 0: write the JSON lines of docs/report-format.md there
};

/// Runs the training (and the analysis when analysis.enabled), writing the run directory,
/// progress lines on stderr and, with a report fd, the progress/checkpoint/result events.
/// Returns the exit status: 0 when the run ended "done" or "diverged" (the status is in
/// result.json and the result event), 143 (SIGTERM, SIGUSR1, SIGUSR2) or 130 (SIGINT) after
/// a graceful stop that wrote a checkpoint. Throws ConfigError / TrainUsageError for bad
/// input (exit 2) and other exceptions for runtime failures (exit 1).
int run_train_command(const TrainCommandOptions& options);

}  // namespace jslds
