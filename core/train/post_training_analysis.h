// The single call site through which `jslds train` runs the analysis of MODEL.md §7 after a
// successful training (analysis.enabled = true).
//
// The analysis itself is core/analysis/model_analysis.h; this adds the run directory and the
// log.
//
// Legend: B validation trials, T bins, n latent.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/model/jslds_model.h"
#include "core/train/loss.h"

namespace jslds {

struct PostTrainingAnalysis {
  bool available = false;  // true once the analysis ran; false: `report` is empty
  std::string message;     // one line for the log: what was done, or why not
  /// {"summary": {name: number}, "fixed_points": [...], "modes": [...]} as in
  /// docs/report-format.md; merged into the `result` event and result.json.
  nlohmann::json report = {{"summary", nlohmann::json::object()},
                           {"fixed_points", nlohmann::json::array()},
                           {"modes", nlohmann::json::array()}};
};

/// Runs the analysis on the trained `model` with the validation trials `validation` (on
/// the model's device), writes RUN_DIR/analysis.h5, and returns the report. `bin_ms` is the
/// data's bin width; `log` receives progress lines (search progress every 500 iterations and
/// the readable summary). The search's starting states are seeded with train.seed.
/// Never throws for a failing analysis (bad [analysis] options, an empty validation set, a
/// diverging search, analysis.h5 not writable): the training's result stands, so it returns
/// available = false with the reason in `message` (also logged). The one exception:
/// analysis::SearchInterrupted when `stop_requested` (asked once per search iteration)
/// returns true, so that a signal stops the training process within a second or so.
PostTrainingAnalysis run_post_training_analysis(JsldsModelImpl& model, const Batch& validation,
                                                const RunConfig& config, double bin_ms,
                                                const std::filesystem::path& run_dir,
                                                const std::function<void(const std::string&)>& log,
                                                const std::function<bool()>& stop_requested = {});

}  // namespace jslds
