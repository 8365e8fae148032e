// `jslds train CONFIG.toml [--run-dir D] [--set k=v]… [--resume] [--report-fd N]`.
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/train/train_command.h"

namespace jslds::cli {

void register_train(CLI::App& app) {
  auto* train = app.add_subcommand("train", "Train one model, then analyse its fixed points and eigenmodes");
  train->footer(
      "Trains the model of docs/model.md (nonlinear generator co-trained with its Jacobian switching linear system), "
      "then analyses its fixed points and eigenmodes when analysis.enabled.\n"
      "Writes the run directory: config.toml (canonical; `jslds train RUN_DIR/config.toml` reproduces the run; when CONFIG is "
      "RUN_DIR/config.toml itself, its own text is kept as config.toml~), "
      "checkpoint.pt (torch.load-able: parameter name -> tensor plus \"config\"), train_state.pt (optimiser and RNG "
      "state for --resume), checkpoint.json (the checkpoint's receipt: step and sha256s), metrics.jsonl (one line per "
      "evaluation), result.json (status and final summaries), analysis.h5 and log.txt.\n"
      "Prints a progress line on stderr at each evaluation: step/total, loss, the validation metrics (Poisson mode: "
      "val_bps, val_bps_jslds and, with held-out neurons, val_cobps; task mode: val_mse, val_mse_jslds), "
      "rel_state_error, steps/s and ETA. SIGTERM/SIGINT/SIGUSR1/SIGUSR2 finish the current step, write a checkpoint and "
      "exit 143 (130 for SIGINT); during the final analysis they stop it at the next search iteration; --resume "
      "continues (and redoes the analysis).\n"
      "Exit status: 0 when the run ended done or diverged (see result.json), 2 for bad configuration or data "
      "(including a --resume whose configuration changed or asks for fewer train.steps than were done), 1 for other "
      "failures.");
  auto opts = std::make_shared<TrainCommandOptions>();
  auto config = std::make_shared<std::string>();
  auto run_dir = std::make_shared<std::string>();
  train->add_option("config", *config, "run configuration (TOML; `jslds config defaults` lists every key)")
      ->required()
      ->check(CLI::ExistingFile);
  train->add_option("--run-dir", *run_dir,
                    "run directory to create or resume (default: jslds-runs/<config file name without .toml>); an "
                    "existing folder must be empty or a run directory jslds made: one holding other files (data, "
                    "notes, a config.toml or result.json jslds did not write) is refused untouched");
  train->add_option("--set", opts->overrides,
                    "override one configuration key, e.g. --set train.steps=500 (repeatable; TOML values)")
      ->allow_extra_args(false);
  train->add_flag("--resume", opts->resume,
                  "continue the training in the run directory from train_state.pt (from scratch when the directory holds "
                  "no training yet; refused when checkpoint.pt is there without train_state.pt); "
                  "only train.steps, train.eval_every, train.checkpoint_every, [analysis] and [runtime] may differ from "
                  "the interrupted run");
  train->add_option("--report-fd", opts->report_fd,
                    "write JSON lines (progress, checkpoint, result events; docs/report-format.md) to this open file "
                    "descriptor; used by sweep workers")
      ->check(CLI::NonNegativeNumber);
  train->callback([opts, config, run_dir] {
    opts->config_file = *config;
    opts->run_dir = *run_dir;
    int status = 0;
    try {
      status = run_train_command(*opts);
    } catch (const TrainUsageError& e) {
      throw UsageError(e.what());
    }
    if (status != 0) throw Exit{status, ""};
  });
}

}  // namespace jslds::cli
