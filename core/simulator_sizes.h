// Default sizes of the built-in simulators (docs/data.md), shared by the simulators
// (core/data/simulators.cpp) and by configuration checks that need the neuron count before
// any data are made (a held-out fraction that rounds to no neuron is refused by
// `jslds sweep --dry-run`, not by a run that fails halfway through a campaign).
// Free of Torch: jslds_config includes it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace jslds {

/// Trials, time bins and neurons of a simulated session; a data.sim_* key of 0 keeps these.
struct SimulatorSizes {
  int64_t trials, bins, neurons;  // neurons 0: task data (inputs and targets, no spikes)
};

inline constexpr SimulatorSizes kFlipflopSizes{400, 25, 0};
inline constexpr SimulatorSizes kOscillatorSizes{200, 100, 50};
inline constexpr SimulatorSizes kRingThetaSizes{200, 100, 60};
inline constexpr SimulatorSizes kLorenzSizes{200, 100, 30};

/// The default sizes of simulator `kind` (flipflop | oscillator | ring-theta | lorenz);
/// nullopt for any other name.
inline std::optional<SimulatorSizes> simulator_default_sizes(std::string_view kind) {
  if (kind == "flipflop") return kFlipflopSizes;
  if (kind == "oscillator") return kOscillatorSizes;
  if (kind == "ring-theta") return kRingThetaSizes;
  if (kind == "lorenz") return kLorenzSizes;
  return std::nullopt;
}

}  // namespace jslds
