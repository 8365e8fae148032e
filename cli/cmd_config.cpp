// `jslds config defaults` and `jslds config check FILE [--set k=v]…`.
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/config.h"

namespace jslds::cli {

void register_config(CLI::App& app) {
  auto* config = app.add_subcommand("config", "Print the default run configuration or check one");
  config->require_subcommand(1);

  auto* defaults = config->add_subcommand(
      "defaults",
      "Print the full default run configuration as commented TOML (every key, its default, "
      "meaning and units)");
  defaults->callback([] { std::cout << defaults_toml_commented(); });

  auto* check = config->add_subcommand(
      "check",
      "Validate a run configuration and print its canonical form (every key, stable order). "
      "On error prints FILE:LINE:COL and the problem on stderr and exits 2");
  auto file = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  check->add_option("file", *file, "run configuration (TOML)")->required();
  check->add_option("--set", *sets, "override one key, e.g. --set model.latent_dim=32")
      ->allow_extra_args(false);
  check->callback([file, sets] {
    RunConfig c = load_config(*file);
    for (const auto& s : *sets) apply_override(c, s);
    check_key_combinations(c, sets->empty() ? *file : *file + " with --set");
    std::cout << to_toml(c);
    if (c.data.path.empty() && c.data.simulate.empty())
      std::cerr << "note: no data source (data.path or data.simulate): valid, but `jslds train` needs one "
                   "(e.g. --set data.simulate=oscillator)\n";
  });
}

}  // namespace jslds::cli
