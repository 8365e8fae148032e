// Whether a run's data options work, found before a campaign starts: the same loading and
// trial/neuron split `jslds train` does first (core/data/loaders.h), from a header free of
// Torch so that the sweep command can call it.
#pragma once

#include <stdexcept>
#include <string>

#include "core/config.h"

namespace jslds {

/// Data options that `jslds train` would refuse; what() is the loader's message
/// ("FILE: OBJECT: problem (expected …)", see DataError).
class DataCheckError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Loads the data `options` name (load_dataset) and splits it (make_split), as `jslds train`
/// does before it builds a model, then drops them. Returns one line: the provenance (which
/// names the source and the shape), then "; b training and v validation trials". Throws
/// DataCheckError for everything load_dataset and make_split throw DataError for (a missing
/// table, a variable that is not there, bins that do not fit, too little memory, …).
std::string check_data_options(const DataOptions& options);

}  // namespace jslds
