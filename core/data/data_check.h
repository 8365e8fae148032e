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

/// Loads the data `data` names (load_dataset), splits it (make_split) and checks that `model`'s
/// mode fits it (spike counts for poisson, inputs and targets for task), as `jslds train` does
/// before it builds a model, then drops them. Returns one line: the provenance (which names
/// the source and the shape), then "; b training and v validation trials". Throws
/// DataCheckError for everything those refuse, and when the data do not fit in memory.
std::string check_data_options(const DataOptions& data, const ModelOptions& model);

}  // namespace jslds
