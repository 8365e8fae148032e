#include "core/data/data_check.h"

#include <fmt/format.h>

#include "core/data/loaders.h"

namespace jslds {

std::string check_data_options(const DataOptions& options) {
  try {
    const Dataset data = load_dataset(options);
    const Split split = make_split(data, options);
    return fmt::format("{}; {} training and {} validation trials", data.provenance,
                       split.train_trials.size(), split.valid_trials.size());
  } catch (const DataError& e) {
    throw DataCheckError(e.what());
  }
}

}  // namespace jslds
