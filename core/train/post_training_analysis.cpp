// The analysis at the end of `jslds train` (MODEL.md §7): core/analysis/model_analysis.h on the
// validation trials, analysis.h5 in the run directory, the JSON report of
// docs/report-format.md for result.json and the `result` event.
#include "core/train/post_training_analysis.h"

#include <chrono>
#include <cmath>
#include <sstream>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "core/analysis/analysis_h5.h"
#include "core/analysis/analysis_report.h"
#include "core/analysis/model_analysis.h"

namespace jslds {

PostTrainingAnalysis run_post_training_analysis(JsldsModelImpl& model, const Batch& validation,
                                                const RunConfig& config, double bin_ms,
                                                const std::filesystem::path& run_dir,
                                                const std::function<void(const std::string&)>& log,
                                                const std::function<bool()>& stop_requested) {
  auto say = [&](const std::string& line) {
    if (log) log(line);
  };
  const auto t0 = std::chrono::steady_clock::now();
  say(fmt::format("analysis: fixed points and eigenmodes of the generator (MODEL §7), {} starts, at most {} "
                  "iterations, objective {}",
                  config.analysis.n_inits, config.analysis.max_iters, config.analysis.fp_reduction));
  PostTrainingAnalysis out;
  try {
    // The search's starting states depend on train.seed only, so `jslds analyze` on the same
    // checkpoint with the same [analysis] gives the same fixed points.
    const analysis::AnalysisResult result = analysis::analyse_model(
        model, validation, config.analysis, bin_ms, static_cast<uint64_t>(config.train.seed),
        [&](const std::string& stage, const std::string& detail) { say("analysis: " + stage + ": " + detail); },
        stop_requested);
    const std::filesystem::path h5 = run_dir / "analysis.h5";
    analysis::write_analysis_h5(result, h5);
    out.report = analysis::analysis_to_json(result);
    out.available = true;
    std::istringstream summary(analysis::format_analysis_summary(result));
    // Every line is labelled "analysis: " here; the summary's own title ("Analysis: ...", a
    // heading in `jslds analyze`'s output) would say it twice.
    constexpr std::string_view kTitle = "Analysis: ";
    for (std::string line; std::getline(summary, line);)
      say("analysis: " + (line.starts_with(kTitle) ? line.substr(kTitle.size()) : line));
    out.message = fmt::format("analysis: {} fixed points, {} expansion points analysed in {:.1f} s; wrote {}",
                              result.fixed_points.size(), result.expansion_points.size(),
                              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                              h5.string());
  } catch (const analysis::SearchInterrupted&) {
    throw;  // not a failure of the analysis: the caller stops
  } catch (const std::exception& e) {
    // The training itself succeeded: keep its result and say why the analysis is missing.
    out = PostTrainingAnalysis{};
    out.message = fmt::format("analysis failed, result.json has no fixed points or modes: {} (re-run it with "
                              "`jslds analyze {}`)",
                              e.what(), run_dir.string());
  }
  say(out.message);
  return out;
}

}  // namespace jslds
