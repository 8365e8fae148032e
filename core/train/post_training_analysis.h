// The single call site through which `jslds train` runs the analysis of MODEL.md §7 after a
// successful training (analysis.enabled = true).
//
// INTEGRATION POINT: until core/analysis lands, run_post_training_analysis() returns an
// empty report with available = false and says so ("analysis not available in this build");
// it never invents numbers. The analysis area fills in the body (post_training_analysis.cpp).
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
  bool available = false;  // false: this build has no analysis; `report` is empty
  std::string message;     // one line for the log: what was done, or why not
  /// {"summary": {name: number}, "fixed_points": [...], "modes": [...]} as in
  /// docs/report-format.md; merged into the `result` event and result.json.
  nlohmann::json report = {{"summary", nlohmann::json::object()},
                           {"fixed_points", nlohmann::json::array()},
                           {"modes", nlohmann::json::array()}};
};

/// Runs the analysis on the trained `model` with the validation trials `validation` (on
/// the model's device), writes RUN_DIR/analysis.h5, and returns the report. `bin_ms` is the
/// data's bin width; `log` receives progress lines. Throws what the analysis throws.
PostTrainingAnalysis run_post_training_analysis(JsldsModelImpl& model, const Batch& validation,
                                                const RunConfig& config, double bin_ms,
                                                const std::filesystem::path& run_dir,
                                                const std::function<void(const std::string&)>& log);

}  // namespace jslds
