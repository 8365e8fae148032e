#include "core/train/post_training_analysis.h"

namespace jslds {

PostTrainingAnalysis run_post_training_analysis(JsldsModelImpl& /*model*/, const Batch& /*validation*/,
                                                const RunConfig& /*config*/, double /*bin_ms*/,
                                                const std::filesystem::path& /*run_dir*/,
                                                const std::function<void(const std::string&)>& log) {
  // INTEGRATION POINT (analysis area): call core/analysis here with model.generator_step,
  // model.jacobian, the expansion points and states of a forward pass over `validation`,
  // write run_dir/"analysis.h5", and return its JSON report.
  PostTrainingAnalysis result;
  result.message = "analysis not available in this build (core/analysis is not linked in yet); "
                   "result.json carries no fixed points or modes";
  if (log) log(result.message);
  return result;
}

}  // namespace jslds
