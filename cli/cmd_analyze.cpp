// `jslds analyze RUN_DIR|CHECKPOINT.pt [--set analysis.key=value]… [--output F] [--json]`:
// re-runs the analysis of MODEL.md §7 on a trained model (docs/analysis.md).
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/db_access.h"
#include "cli/output_file.h"
#include "core/analysis/analysis_h5.h"
#include "core/analysis/analysis_report.h"
#include "core/analysis/model_analysis.h"
#include "core/config.h"
#include "core/data/loaders.h"
#include "core/run_lock.h"
#include "core/train/checkpoint.h"
#include "core/train/runtime.h"
#include "core/train/trainer.h"

namespace jslds::cli {
namespace {

namespace fs = std::filesystem;

struct AnalyzeOptions {
  std::string target;                  // RUN_DIR or CHECKPOINT.pt
  std::vector<std::string> overrides;  // analysis.key=value
  std::string output;                  // analysis.h5 path; empty = beside the checkpoint
  bool json = false;                   // print the JSON report instead of the readable summary
  std::optional<int64_t> threads;      // intra-op threads; unset = the checkpoint's runtime.threads
};

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

// Refuses --set assignments outside [analysis]: the model and its data are fixed by the
// checkpoint, so changing them would analyse something else than what was trained.
void check_override(const std::string& assignment) {
  const auto eq = assignment.find('=');
  const std::string_view key = trim(std::string_view(assignment).substr(0, eq));
  if (eq == std::string::npos || key.rfind("analysis.", 0) != 0) {
    throw UsageError(fmt::format(
        "--set {}: jslds analyze changes [analysis] keys only (expected analysis.KEY=VALUE, e.g. "
        "analysis.n_inits=256); the model, its data and the runtime are those stored in the checkpoint",
        assignment));
  }
}

bool same_dims(const ModelDims& a, const ModelDims& b) {
  return a.neurons == b.neurons && a.heldin_neurons == b.heldin_neurons && a.external_inputs == b.external_inputs &&
         a.outputs == b.outputs;
}

void run_analyze(const AnalyzeOptions& o) {
  tune_malloc();
  const fs::path target(o.target);
  std::error_code ec;
  fs::path checkpoint;
  if (fs::is_directory(target, ec)) {
    checkpoint = target / "checkpoint.pt";
    if (!fs::exists(checkpoint, ec)) {
      throw UsageError(fmt::format("{}: this run directory holds no checkpoint.pt (has `jslds train` written a "
                                   "checkpoint yet?)",
                                   target.string()));
    }
  } else if (fs::is_regular_file(target, ec)) {
    checkpoint = target;
  } else {
    throw UsageError(fmt::format("{}: no such run directory or checkpoint file", target.string()));
  }
  for (const auto& assignment : o.overrides) check_override(assignment);

  LoadedModel loaded;
  try {
    loaded = load_checkpoint(checkpoint);
  } catch (const CheckpointError& e) {
    throw UsageError(fmt::format("cannot analyse {}", e.what()));
  }
  RunConfig config = loaded.config;
  for (const auto& assignment : o.overrides) apply_override(config, assignment);
  validate(config, "--set");
  for (const auto& assignment : o.overrides) {
    const std::string key(trim(std::string_view(assignment).substr(0, assignment.find('='))));
    if (key == "analysis.enabled" && !config.analysis.enabled)
      throw UsageError(fmt::format("--set {}: analysis.enabled = false turns off the analysis that "
                                   "jslds analyze exists to run (it applies to jslds train)",
                                   assignment));
  }
  // Checked before the work: a mistyped --output must not replace the model or its data.
  const fs::path output = o.output.empty() ? checkpoint.parent_path() / "analysis.h5" : fs::path(o.output);
  check_output_file(output, o.output.empty() ? "analysis.h5 beside the checkpoint:" : "--output",
                    {checkpoint, checkpoint.parent_path() / "train_state.pt",
                     config.data.path.empty() ? fs::path() : fs::path(config.data.path)},
                    {"checkpoint being analysed", "training state beside the checkpoint",
                     "recording the configuration names (data.path)"},
                    [](const fs::path& f) { return hdf5_root_attribute_starts_with(f, "format", "jslds-analysis"); },
                    "an analysis.h5 written by jslds (an HDF5 file whose root attribute format is "
                    "\"jslds-analysis\")");

  // A training in progress writes its own analysis.h5 when it ends; replacing it now would be
  // overwritten (or, for a sweep run, leave the database describing another file).
  const fs::path output_dir = output.parent_path().empty() ? fs::path(".") : output.parent_path();
  if (const auto holder = training_in_progress(output_dir))
    throw UsageError(fmt::format(
        "{} is the analysis.h5 of a training in progress ({} holds {}): the trainer writes it when "
        "it ends. Wait for the training to end, or write this analysis elsewhere with --output F "
        "(reading the checkpoint while it trains is safe; on a small machine add --threads 1)",
        output.string(), holder->pid > 0 ? fmt::format("pid {}", holder->pid) : std::string("a process"),
        (output_dir / "run.lock").string()));
  const bool replaces_training_analysis = o.output.empty() && fs::exists(output, ec);
  // The result is written beside the output (a temporary file, then a rename): a folder this
  // user cannot write would otherwise fail only after the whole search.
  if (::access(output_dir.c_str(), W_OK) != 0)
    throw UsageError(fmt::format("{}: cannot write the analysis there: the folder {} is not writable "
                                 "({}); write it elsewhere with --output F",
                                 output.string(), output_dir.string(), std::strerror(errno)));

  const int threads = configure_threads(o.threads.value_or(config.runtime.threads));
  c10::Device device(c10::DeviceType::CPU);
  try {
    device = select_device(config.runtime.device);
  } catch (const std::invalid_argument& e) {
    throw UsageError(fmt::format("runtime.device of the checkpoint's configuration: {}", e.what()));
  }
  std::cerr << fmt::format("jslds analyze: {} (step {}), device {}, {} thread(s)\n", fs::absolute(checkpoint).string(),
                           loaded.step, device.str(), threads);

  // The validation trials exactly as `jslds train` saw them: same data options, same split.
  const Dataset data = load_dataset(config.data);
  const Split split = make_split(data, config.data);
  TrainerOptions trainer_options;
  trainer_options.device = device;
  std::unique_ptr<Trainer> trainer;
  try {
    trainer = std::make_unique<Trainer>(config, data, split, trainer_options);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (!same_dims(trainer->dims(), loaded.dims)) {
    const ModelDims& d = trainer->dims();
    const ModelDims& c = loaded.dims;
    throw UsageError(fmt::format(
        "{}: the data the configuration names ({}) no longer fit the checkpoint: neurons {} vs {}, held-in {} vs "
        "{}, external inputs {} vs {}, outputs {} vs {} (data vs checkpoint)",
        checkpoint.string(), data.provenance, d.neurons, c.neurons, d.heldin_neurons, c.heldin_neurons,
        d.external_inputs, c.external_inputs, d.outputs, c.outputs));
  }
  if (!loaded.data_sha256.empty() && loaded.data_sha256 != trainer->data_sha256()) {
    std::cerr << fmt::format(
        "warning: the data the checkpoint's configuration names have changed since training (fingerprint {}, "
        "trained on {}): this analysis uses the current file's validation trials and will not reproduce the "
        "analysis made at the end of training\n",
        trainer->data_sha256().substr(0, 12), loaded.data_sha256.substr(0, 12));
  }
  std::cerr << fmt::format("data: {}; {} validation trials{}\n", data.provenance, split.valid_trials.size(),
                           trainer->validation_is_training() ? " (none held out: using the training trials)" : "");
  JsldsModel model = loaded.model;
  model->to(device);

  const analysis::AnalysisResult result = analysis::analyse_model(
      *model, trainer->validation(), config.analysis, data.bin_ms, static_cast<uint64_t>(config.train.seed),
      [](const std::string& stage, const std::string& detail) {
        std::cerr << "analysis: " << stage << ": " << detail << "\n";
      });
  analysis::write_analysis_h5(result, output);
  std::cerr << "wrote " << fs::absolute(output).string() << "\n";
  if (replaces_training_analysis)
    std::cerr << "note: this replaced the analysis.h5 written at the end of training; for a sweep run, the "
                 "experiment database (jslds show, jslds query) still holds the summaries, fixed points and "
                 "sha256 of the earlier analysis\n";
  if (o.json) {
    std::cout << analysis::analysis_to_json(result).dump(2) << "\n";
  } else {
    std::cout << analysis::format_analysis_summary(result);
  }
}

}  // namespace

void register_analyze(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "analyze", "Re-run the analysis of a trained model: fixed points, eigenmodes, structure scores");
  cmd->footer(
      "Re-runs the analysis of docs/analysis.md: expansion points on the validation "
      "trials, numerical fixed points of the autonomous generator F(h, u = 0), Jacobian eigenmodes in Hz and "
      "seconds, and the structure scores (n_stable_clusters, ring_score, theta_mode, …).\n"
      "Reads the checkpoint (refusing a truncated or altered one) and the data its configuration names (a relative "
      "data.path is taken from the current directory), rebuilds the same train/validation split, writes "
      "analysis.h5 beside the checkpoint (or --output) and prints a readable summary on stdout: fixed points by "
      "class, the slowest modes with frequency (Hz) and time constant τ (s), the structure scores. Progress goes to "
      "stderr. The fixed-point starts are seeded with train.seed, so the same checkpoint and options give the same "
      "result as the analysis at the end of `jslds train`. result.json is not changed. A run directory that a "
      "training still holds (run.lock) gets no new analysis.h5: use --output elsewhere.\n"
      "Exit status: 0 done, 2 for a missing or corrupted checkpoint, --set outside [analysis], bad values, "
      "unreadable data or a training in progress, 1 for other failures.");
  auto o = std::make_shared<AnalyzeOptions>();
  cmd->add_option("target", o->target,
                  "run directory holding checkpoint.pt (written by `jslds train`), or a checkpoint file")
      ->required();
  cmd->add_option("--set", o->overrides,
                  "change one [analysis] key for this analysis, e.g. --set analysis.n_inits=256 or "
                  "--set analysis.fp_reduction=sum (repeatable; `jslds config defaults` lists the keys)")
      ->allow_extra_args(false);
  cmd->add_option("--output,-o", o->output,
                  "where to write analysis.h5 (default: beside the checkpoint); an existing file is replaced only "
                  "when it is an earlier analysis.h5, never the checkpoint, its train_state.pt or the recording");
  cmd->add_flag("--json", o->json,
                "print the report as JSON (summary, fixed_points, modes as in docs/report-format.md) instead of the "
                "readable summary");
  cmd->add_option("--threads", o->threads,
                  "intra-op threads for this analysis (default: the checkpoint's runtime.threads, where 0 means "
                  "OMP_NUM_THREADS or every core). Use 1 beside a training on a small machine: two programs each "
                  "using every core slow each other down many times over; at most 4096, as runtime.threads")
      ->check(whole_number_between(0, 4096));
  cmd->callback([o] { run_analyze(*o); });
}

}  // namespace jslds::cli
