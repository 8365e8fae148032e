#include "core/data/data_check.h"

#include <new>

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "core/data/loaders.h"
#include "core/data/readers.h"
#include "core/train/trainer.h"

namespace jslds {

DataCheck check_data_options(const DataOptions& options, const ModelOptions& model) {
  try {
    // The loader's notes go into the one summary line, not before it (the window note is in
    // the provenance already).
    data_detail::LogCapture log;
    const Dataset data = load_dataset(options);
    const Split split = make_split(data, options);
    model_dims(model, data, split);
    std::string notes;
    const std::string prefix = options.path + ": ";
    for (const std::string& line : log.lines()) {
      const std::string note = line.rfind(prefix, 0) == 0 ? line.substr(prefix.size()) : line;
      if (data.provenance.find(note) == std::string::npos) notes += "; " + note;
    }
    return {fmt::format("{}; {} training and {} validation trials{}", data.provenance, split.train_trials.size(),
                        split.valid_trials.size(), notes),
            dataset_sha256(data)};
  } catch (const DataError& e) {
    throw DataCheckError(e.what());
  } catch (const std::invalid_argument& e) {  // model_dims: the mode does not fit the data
    throw DataCheckError(e.what());
  } catch (const std::bad_alloc&) {
    throw DataCheckError("not enough memory to load the data (smaller data.sim_* sizes, or a "
                         "machine or job with more memory)");
  } catch (const c10::Error& e) {  // Torch's allocator reports exhausted memory this way
    throw DataCheckError(fmt::format("the data could not be loaded: {}",
                                     e.what_without_backtrace()));
  }
}

}  // namespace jslds
