// `jslds data inspect FILE [--set data.key=value]…`.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/config.h"
#include "core/data/inspect.h"
#include "core/data/loaders.h"

namespace jslds::cli {

void register_data(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Look at data files before training on them");
  data->require_subcommand(1);
  auto* inspect = data->add_subcommand(
      "inspect",
      "Show what a data file holds (format; NWB units and intervals tables, MAT variables and "
      "struct fields, or HDF5 datasets), its neurons, trials, duration and mean rate per "
      "neuron, and the (trials, bins, neurons) shape that the [data] options produce. "
      "Exit 2 when the file cannot be read");
  auto file = std::make_shared<std::string>();
  auto config_file = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  inspect->add_option("file", *file, "a .nwb, .h5 or .mat file")->required();
  inspect->add_option("--config", *config_file,
                      "take the [data] options from this run configuration (data.path ignored)");
  inspect->add_option("--set", *sets,
                      "override a [data] option, e.g. --set data.bin_ms=10 --set "
                      "data.trials=intervals/encoding_table --set data.variable=D")
      ->allow_extra_args(false);
  inspect->callback([=] {
    RunConfig config = config_file->empty() ? RunConfig{} : load_config(*config_file);
    config.data.path.clear();
    config.data.simulate.clear();
    for (const auto& s : *sets) apply_override(config, s);
    try {
      std::cout << format_report(inspect_data_file(*file, config.data));
    } catch (const DataError& e) {
      throw UsageError(e.what());
    }
  });
}

}  // namespace jslds::cli
