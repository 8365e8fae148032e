// `jslds data inspect FILE [--config run.toml] [--set data.key=value]…`.
#include <cctype>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/config.h"
#include "core/data/inspect.h"
#include "core/data/loaders.h"

namespace jslds::cli {
namespace {

// The key of a "--set key=value" override, trimmed ("" when there is no '=').
std::string override_key(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos) return "";
  std::string key = assignment.substr(0, eq);
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.front()))) key.erase(0, 1);
  return key;
}

}  // namespace

void register_data(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Look at data files before training on them");
  data->require_subcommand(1);
  auto* inspect = data->add_subcommand(
      "inspect", "Show what a data file holds and how the [data] options would bin it");
  inspect->footer(
      "Shows what a data file holds (format; NWB units and intervals tables, MAT variables and "
      "struct fields, or HDF5 datasets and who wrote them), its neurons, trials, duration, "
      "spike count and mean rate per neuron; then the (trials, bins, neurons) shape, spike "
      "count and conditions that the [data] options produce, with any crops or ignored "
      "options. Exit 0 when the file can be binned with these options, 2 when the file "
      "cannot be read or the options cannot bin it (the reason on stderr), so it works as a "
      "pre-flight check before `jslds train`");
  auto file = std::make_shared<std::string>();
  auto config_file = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  inspect->add_option("file", *file, "a .nwb, .h5 or .mat file")->required();
  inspect->add_option("--config", *config_file,
                      "take the [data] options from this run configuration (its data.path, "
                      "data.simulate and other sections are ignored)");
  inspect->add_option("--set", *sets,
                      "override a [data] option, e.g. --set data.bin_ms=10 --set "
                      "data.trials=intervals/encoding_table --set data.variable=D "
                      "(`jslds config defaults` lists them); other sections are rejected")
      ->allow_extra_args(false);
  inspect->callback([=] {
    RunConfig config = config_file->empty() ? RunConfig{} : load_config(*config_file);
    config.data.path.clear();
    config.data.simulate.clear();
    for (const auto& s : *sets) {
      const std::string key = override_key(s);
      if (key == "data.path" || key == "data.simulate")
        throw UsageError(fmt::format("--set {}: data inspect looks at the FILE argument; {} "
                                     "does not apply",
                                     s, key));
      if (!key.empty() && key.rfind("data.", 0) != 0)
        throw UsageError(fmt::format("--set {}: data inspect takes only [data] options "
                                     "(data.KEY=VALUE); '{}' is not one",
                                     s, key));
      apply_override(config, s);
    }
    const DataFileReport report = inspect_data_file(*file, config.data);
    std::cout << format_report(report, /*with_binned_error=*/false) << std::flush;
    if (!report.binned_error.empty()) throw UsageError(report.binned_error);
  });
}

}  // namespace jslds::cli
