// `jslds simulate KIND --out F.h5 [--seed S] [--set data.key=value]…`.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/config.h"
#include "core/data/loaders.h"

namespace jslds::cli {

void register_simulate(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "simulate",
      "Simulate a session with known ground truth and write it in the project's HDF5 layout "
      "(/spikes or /inputs,/targets,/mask, plus /truth/*). The same options and seed give a "
      "byte-identical file; `data.simulate = \"KIND\"` in a run configuration gives the same "
      "data in memory. Generative models and defaults: docs/data.md");
  auto kind = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto seed = std::make_shared<int64_t>(0);
  auto sets = std::make_shared<std::vector<std::string>>();
  cmd->add_option("kind", *kind,
                  "flipflop (3-bit flip-flop task: 6 pulse inputs, 3 targets, T=25, mask from "
                  "t=5) | oscillator (damped 2-D rotation at data.freq_hz → Poisson neurons) | "
                  "ring-theta (position on a ring, two remapping maps, theta at data.freq_hz; 60 "
                  "neurons) | lorenz (Lorenz latents → Poisson neurons)")
      ->required()
      ->check(CLI::IsMember({"flipflop", "oscillator", "ring-theta", "lorenz"}));
  cmd->add_option("--out,-o", *out, "output HDF5 file (overwritten)")->required();
  auto* seed_opt = cmd->add_option("--seed", *seed, "random seed (same as --set data.sim_seed=S)");
  cmd->add_option("--set", *sets,
                  "override a run-configuration key, e.g. --set data.sim_trials=100, "
                  "data.sim_bins, data.sim_neurons (0 = the simulator's default), "
                  "data.freq_hz, data.bin_ms")
      ->allow_extra_args(false);
  cmd->callback([=] {
    RunConfig config;
    for (const auto& s : *sets) apply_override(config, s);
    if (seed_opt->count() > 0) config.data.sim_seed = *seed;
    try {
      Dataset data = simulate(*kind, config.data);
      write_dataset_h5(data, *out);
      std::cerr << fmt::format("wrote {}: {} trials × {} bins × {} neurons, {} inputs, {} ms "
                               "bins; truth: {}\n",
                               *out, data.n_trials(), data.n_bins(), data.n_neurons(),
                               data.n_inputs(), data.bin_ms, [&] {
                                 std::string names;
                                 for (const auto& [k, v] : data.truth)
                                   names += (names.empty() ? "" : ", ") + k;
                                 return names;
                               }());
    } catch (const DataError& e) {
      throw UsageError(e.what());
    }
  });
}

}  // namespace jslds::cli
