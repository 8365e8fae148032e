// Whether a run's data options work, found before a campaign starts: the same loading, trial/
// neuron split and data-against-mode check `jslds train` does first (core/data/loaders.h,
// core/train/trainer.h model_dims), from a header free of Torch so that the sweep command can
// call it.
#pragma once

#include <stdexcept>
#include <string>

#include "core/config.h"

namespace jslds {

/// Data options that `jslds train` would refuse; what() is the loader's message
/// ("FILE: OBJECT: problem (expected …)", see DataError), the mode mismatch, or the memory
/// the data would need.
class DataCheckError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What check_data_options found.
struct DataCheck {
  std::string summary;      // the provenance (source and shape); "; b training and v validation trials"
  std::string data_sha256;  // dataset_sha256 of the data (core/data/dataset.h), as checkpoints record it
};

/// Loads the data `data` names (load_dataset), splits it (make_split) and checks that `model`'s
/// mode fits it (spike counts for poisson, inputs and targets for task), as `jslds train` does
/// before it builds a model, then drops them. Throws DataCheckError for everything those
/// refuse, and when the data do not fit in memory.
DataCheck check_data_options(const DataOptions& data, const ModelOptions& model);

}  // namespace jslds
