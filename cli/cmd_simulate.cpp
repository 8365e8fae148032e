// `jslds simulate KIND --out F.h5 [--seed S] [--set data.key=value]…`.
#include <charconv>
#include <limits>
#include <algorithm>
#include <array>
#include <cctype>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/output_file.h"
#include "core/config.h"
#include "core/data/loaders.h"

namespace jslds::cli {
namespace {

// The [data] options a simulator reads; any other --set would be silently ignored.
constexpr std::array<const char*, 6> kSimulatorKeys = {
    "data.sim_trials", "data.sim_bins", "data.sim_neurons", "data.sim_seed",
    "data.freq_hz",    "data.bin_ms"};

// The key of a "--set key=value" override, trimmed ("" when there is no '=').
std::string override_key(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos) return "";
  std::string key = assignment.substr(0, eq);
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.front()))) key.erase(0, 1);
  return key;
}

std::string truth_names(const Dataset& data) {
  std::string names;
  for (const auto& [k, v] : data.truth) names += (names.empty() ? "" : ", ") + k;
  return names;
}

}  // namespace

void register_simulate(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "simulate", "Simulate a session with known ground truth and write it as an HDF5 file");
  cmd->footer(
      "The file is in the project's HDF5 layout (/spikes or /inputs,/targets,/mask, plus "
      "/truth/*). The same options and seed give a byte-identical file; `data.simulate = "
      "\"KIND\"` in a run configuration gives the same data in memory. Generative models and "
      "defaults: docs/data.md");
  auto kind = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto seed_text = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  cmd->add_option("kind", *kind,
                  "flipflop: 3-bit flip-flop task, 6 pulse inputs, 3 targets, mask from t=5 "
                  "(default 400 trials × 25 bins) | oscillator: damped 2-D rotation at "
                  "data.freq_hz → Poisson neurons (200 × 100 × 50) | ring-theta: position on a "
                  "ring, two remapping maps, theta at data.freq_hz (200 × 100 × 60) | lorenz: "
                  "Lorenz latents → Poisson neurons (200 × 100 × 30)")
      ->required()
      ->check(CLI::IsMember({"flipflop", "oscillator", "ring-theta", "lorenz"}));
  cmd->add_option("--out,-o", *out,
                  "output HDF5 file; its directory must exist, and an existing file is replaced only when it is "
                  "an earlier `jslds simulate` output (never a recording, a database or anything else)")
      ->required();
  auto* seed_opt = cmd->add_option("--seed", *seed_text,
                                   "random seed, a non-negative integer (same as --set "
                                   "data.sim_seed=S; default 0)");
  cmd->add_option("--set", *sets,
                  "set a simulator option: data.sim_trials, data.sim_bins, data.sim_neurons "
                  "(0 = the simulator's default), data.sim_seed, data.freq_hz (oscillator, "
                  "ring-theta), data.bin_ms; e.g. --set data.sim_trials=100. Other keys are "
                  "rejected")
      ->allow_extra_args(false);
  cmd->callback([=] {
    RunConfig config;
    bool seed_set = false;
    for (const auto& s : *sets) {
      const std::string key = override_key(s);
      if (!key.empty() && std::find(kSimulatorKeys.begin(), kSimulatorKeys.end(), key) ==
                              kSimulatorKeys.end())
        throw UsageError(fmt::format("--set {}: simulate reads only {} ('{}' would be ignored; "
                                     "the simulator is the KIND argument and the file --out)",
                                     s, fmt::join(kSimulatorKeys, ", "), key));
      seed_set = seed_set || key == "data.sim_seed";
      apply_override(config, s);
    }
    if (seed_opt->count() > 0) {
      // Parsed here, strictly: a seed out of range must be an error, never a silently
      // different seed.
      int64_t parsed = 0;
      const char* first = seed_text->data();
      const char* last = first + seed_text->size();
      const auto [end, ec] = std::from_chars(first, last, parsed);
      if (ec == std::errc::result_out_of_range)
        throw UsageError(fmt::format("--seed {}: out of range (at most {})", *seed_text,
                                     std::numeric_limits<int64_t>::max()));
      if (ec != std::errc() || end != last)
        throw UsageError(fmt::format("--seed {}: expected a non-negative integer", *seed_text));
      const int64_t* seed = &parsed;
      if (seed_set && config.data.sim_seed != *seed)
        throw UsageError(fmt::format("--seed {} and --set data.sim_seed={} disagree: give one",
                                     *seed, config.data.sim_seed));
      if (*seed < 0)  // the rule data.sim_seed follows in a run configuration
        throw UsageError(fmt::format("--seed {}: expected a non-negative integer", *seed));
      config.data.sim_seed = *seed;
    }
    check_output_file(*out, "--out", {}, {},
                      [](const std::filesystem::path& f) {
                        return hdf5_root_attribute_starts_with(f, "provenance", "simulate ");
                      },
                      "a simulation written by `jslds simulate` (an HDF5 file whose root attribute "
                      "provenance starts with \"simulate \")");
    Dataset data = simulate(*kind, config.data);
    write_dataset_h5(data, *out);
    const std::string shape =
        data.spikes_btn.defined()
            ? fmt::format("{} trials × {} bins × {} neurons", data.n_trials(), data.n_bins(),
                          data.n_neurons())
            : fmt::format("{} trials × {} bins of task data, {} inputs, {} targets",
                          data.n_trials(), data.n_bins(), data.n_inputs(),
                          data.targets_bto.defined() ? data.targets_bto.size(2) : 0);
    std::cerr << fmt::format("wrote {}: {}, {} ms bins, seed {}; truth: {}\n", *out, shape,
                             data.bin_ms, config.data.sim_seed, truth_names(data));
  });
}

}  // namespace jslds::cli
