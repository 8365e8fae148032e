// Sweep specs (DESIGN §4): parsing with positioned errors, and expansion into run
// configurations (grid, random, Sobol; repeats).
//
// Expansion is a pure function of (spec, seed, index): the same spec always gives the same
// runs, in the same order, whether the campaign runs in one go or is resumed many times.
//
//   [campaign]   name, method (grid | random | sobol), max_runs, repeats, seed,
//                objective = { metric, goal }, max_attempts
//   [base]       a full run configuration, or `base = "run.toml"` at the top level
//   [parameters] "section.key" = { values = [...] }
//                "section.key" = { distribution = "uniform" | "log_uniform" | "int_uniform",
//                                  min = a, max = b }
//                "section.key" = { distribution = "normal", mean = m, std = s }
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"

namespace jslds {

enum class SweepMethod { kGrid, kRandom, kSobol };
const char* to_string(SweepMethod method);

/// How one swept key gets its values.
enum class Distribution { kValues, kUniform, kLogUniform, kIntUniform, kNormal };
const char* to_string(Distribution distribution);

/// One entry of [parameters].
struct SweepParameter {
  std::string key;                    // dotted run-config key, e.g. "loss.w_fp"
  Distribution distribution = Distribution::kValues;
  std::vector<std::string> values;    // kValues: canonical TOML literals, in file order
  double min = 0, max = 0;            // uniform, log_uniform (min > 0), int_uniform (integers)
  double mean = 0, std = 1;           // normal
  int line = 0, column = 0;           // position of the entry in the spec file
};

/// A parsed and validated sweep spec.
struct SweepSpec {
  std::string source;                 // the spec file's name, for error positions
  std::filesystem::path directory;    // relative data paths are resolved against it
  std::string name;                   // campaign name, [A-Za-z0-9._-]+
  SweepMethod method = SweepMethod::kGrid;
  int64_t max_runs = 0;               // configurations (points) to run; grid: 0 = all
  int64_t repeats = 1;                // runs per configuration, with train.seed + repeat
  uint64_t seed = 0;                  // seed of random draws and of the Sobol shift
  std::string objective_metric = "val_bps";
  std::string objective_goal = "maximize";  // maximize | minimize
  int max_attempts = 3;               // attempts per run (fresh start + retries), >= 1
  RunConfig base;                     // the base run configuration (data.path absolute)
  std::vector<SweepParameter> parameters;   // sorted by key
  std::string canonical;              // canonical text of everything above but `source`
  std::string sha256;                 // hex sha256 of `canonical`: the campaign's identity
};

/// Reads and validates a sweep spec. Throws ConfigError with "FILE:LINE:COL: …" for
/// unreadable files, TOML syntax errors, unknown sections or keys, wrong types, bad values
/// (e.g. min > max, log_uniform with min <= 0, grid with a distribution, random/sobol without
/// max_runs, an objective metric that is not a run summary of core/summary_names.h) and
/// parameters whose key, type or range does not fit the run configuration.
SweepSpec load_sweep_spec(const std::filesystem::path& file);

/// Same on TOML text. `directory` resolves a relative `base = "…"` and data paths.
SweepSpec parse_sweep_spec(std::string_view toml_text, const std::string& source_name,
                           const std::filesystem::path& directory);

/// One swept key's value in one run, for the database's params table.
struct ParamValue {
  std::string key;
  std::string text;                  // canonical TOML literal ("32", "0.005", "\"gru\"")
  std::optional<double> real;        // the number, for numeric values
};

/// One run of the campaign.
struct ExpandedRun {
  int64_t index = 0;                 // configuration index (grid point or draw), 0-based
  int64_t repeat = 0;                // 0 .. repeats-1
  int64_t number = 0;                // index * repeats + repeat + 1: the run's number
  RunConfig config;                  // validated; data.path absolute
  std::vector<ParamValue> params;    // one per spec parameter, in spec order
  std::string config_sha256;         // config_sha256(config)
};

/// Applies command-line overrides of the base run configuration, each
/// "base.section.key=value" (`jslds sweep --set`, value in TOML syntax as for `jslds train
/// --set`), e.g. "base.data.path=/data/session.nwb". A relative data.path set here is taken
/// against the current directory (where the command was typed), not the spec's directory.
/// The overrides become part of the spec: `canonical` and `sha256` are recomputed, so a
/// campaign is resumed with the same --set and a different one is a changed spec. Throws
/// ConfigError (file "--set") for a missing "base." prefix, unknown keys, wrong types or
/// ranges, and for a key that [parameters] sweeps (the override would never be used).
void apply_base_overrides(SweepSpec& spec, const std::vector<std::string>& assignments);

/// Number of configurations: grid: product of the value counts, capped by max_runs when
/// > 0; random/sobol: max_runs.
int64_t configuration_count(const SweepSpec& spec);

/// The point in [0, 1)^D (D = number of parameters) that random/sobol map through each
/// distribution's inverse CDF for configuration `index`. random: a mt19937_64 seeded with
/// seed_seq{seed, index} (portable); sobol: Boost.Random's Sobol sequence at position
/// index + 1 (skipping the origin), shifted modulo 1 by a vector drawn from the seed
/// (Cranley–Patterson rotation). Throws std::logic_error for grid specs.
std::vector<double> unit_point(const SweepSpec& spec, int64_t index);

/// Run (index, repeat). Pure. Throws ConfigError naming the parameter values and the spec
/// position when the combination is not a valid run configuration, std::out_of_range when
/// index or repeat is outside the campaign.
ExpandedRun expand_run(const SweepSpec& spec, int64_t index, int64_t repeat);

/// Every run of the campaign, each validated, in number order. Throws like expand_run.
std::vector<ExpandedRun> expand(const SweepSpec& spec);

}  // namespace jslds
