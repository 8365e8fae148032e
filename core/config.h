// Run configuration (DESIGN.md §4, defaults from MODEL.md).
//
// RunConfig is six plain option structs. Every field has its default here and nowhere
// else. One field list per struct (config.cpp, `describe`) drives TOML reading, canonical
// TOML writing, validation, `--set section.key=value` overrides, the documented defaults
// (`jslds config defaults`) and the canonical sha256.
//
// This header is free of toml++, Torch, MPI and SQLite so that every library may use it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace jslds {

/// A configuration error with its position: "FILE:LINE:COL: message".
/// `file` is the TOML file name or "--set" for command-line overrides; line and column are
/// 1-based, 0 when unknown.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, int line, int column, const std::string& message);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  int column() const { return column_; }
  /// The message without the position prefix.
  const std::string& detail() const { return detail_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string detail_;
};

/// [data]: where the spike counts come from and how they are binned and split.
struct DataOptions {
  std::string path = "";            // .nwb/.h5 (HDF5) or .mat file; empty when `simulate` is set
  std::string simulate = "";        // "" | flipflop | oscillator | ring-theta | lorenz (in memory)
  std::string format = "auto";      // auto | hdf5 | nwb | mat
  double bin_ms = 20.0;             // bin width in milliseconds (> 0)
  std::string trials = "";          // NWB intervals table with start_time/stop_time
  int64_t window_bins = 0;          // crop/split trials or cut continuous data into windows (bins)
  std::string variable = "";        // MAT: struct array variable holding the trials
  std::string field = "data";       // MAT: field with one neurons×time count matrix per trial
  double source_bin_ms = 1.0;       // MAT: bin width of those matrices (ms)
  std::string condition_field = ""; // MAT field / NWB trials-table column of per-trial labels
  std::string split_by = "window";  // with window_bins: window | trial (see make_split)
  double valid_fraction = 0.2;      // fraction of trials held out for validation, [0, 1)
  double heldout_neurons = 0.0;     // fraction of neurons held out for co-smoothing, [0, 1)
  int64_t split_seed = 0;           // seed of the train/validation and neuron splits
  int64_t sim_trials = 0;           // simulators: number of trials (0 = the simulator's default)
  int64_t sim_bins = 0;             // simulators: bins per trial (0 = the simulator's default)
  int64_t sim_neurons = 0;          // simulators: number of neurons (0 = the simulator's default)
  double freq_hz = 8.0;             // simulators: oscillation / theta frequency (Hz)
  int64_t sim_seed = 0;             // simulators: random seed
};

/// [model]: architecture (MODEL.md §1–4).
struct ModelOptions {
  std::string mode = "poisson";          // poisson | task
  int64_t latent_dim = 64;               // generator (latent) dimension n
  int64_t factors_dim = 16;              // factor dimension d
  int64_t encoder_dim = 64;              // bidirectional GRU encoder width per direction
  int64_t inferred_input_dim = 0;        // inferred inputs m (0 = no controller)
  int64_t controller_dim = 32;           // controller GRU width
  std::string cell = "gru";              // gru | tanh
  int64_t expansion_layers = 2;          // residual tanh layers of the expansion network
  std::string input_expansion = "zero";  // zero | learned
  double dropout = 0.02;                 // dropout on the generator state, [0, 1)
  double ar_tau_bins = 10.0;             // AR(1) prior time constant of inferred inputs (bins)
  double ar_var = 0.1;                   // AR(1) prior process variance
};

/// [loss]: weights of MODEL.md §5.
struct LossOptions {
  double w_rnn = 1.0;
  double w_jslds = 1.0;
  double w_approx = 10.0;
  double w_fp = 100.0;
  double l2 = 2e-5;
  double w_xe = 1.0;
  double kl_scale = 1.0;
  std::vector<int64_t> kl_warmup_steps = {500, 1000};
};

/// [train]: optimiser and schedule (MODEL.md §5).
struct TrainOptions {
  int64_t steps = 2000;
  int64_t batch_size = 64;
  double lr = 0.05;
  double lr_decay = 0.9999;
  double adam_eps = 0.1;
  double clip_norm = 10.0;
  int64_t eval_every = 100;
  int64_t checkpoint_every = 200;
  int64_t seed = 0;
};

/// [analysis]: fixed points and eigenmodes (MODEL.md §7).
struct AnalysisOptions {
  bool enabled = true;
  int64_t n_inits = 1024;
  double init_noise = 0.1;
  int64_t max_iters = 5000;
  double fp_tol = 1e-7;
  double unique_tol = 0.0;
  int64_t max_points = 64;
  double cluster_tol = 0.0;
  std::vector<double> theta_band_hz = {6.0, 10.0};
  std::string fp_reduction = "mean";  // mean | sum of q over starting states (see docs/analysis.md)
  int64_t newton_steps = 100;  // Levenberg–Marquardt steps polishing converged points; 0 = off
};

/// [runtime]: where and how fast to compute.
struct RuntimeOptions {
  std::string device = "auto";  // auto | cpu | cuda | cuda:K
  int64_t threads = 0;          // intra-op threads; 0 = automatic
};

struct RunConfig {
  DataOptions data;
  ModelOptions model;
  LossOptions loss;
  TrainOptions train;
  AnalysisOptions analysis;
  RuntimeOptions runtime;
};

/// Reads and validates a run configuration file. Throws ConfigError (with file:line:col)
/// on unreadable files, TOML syntax errors, unknown sections or keys (with a did-you-mean
/// suggestion), wrong types, out-of-range values and unknown enum values.
RunConfig load_config(const std::filesystem::path& file);

/// Makes a relative data.path absolute against `directory` (lexically normalised); an empty
/// or absolute path is left as it is. A relative path in a configuration file means "from
/// that file's directory" (docs/config.md), and one given with --set "from the current
/// directory", so callers pass the file's directory or the current one. A run directory's
/// config.toml therefore always holds an absolute path and reproduces the run from anywhere.
void resolve_data_path(RunConfig& config, const std::filesystem::path& directory);

/// Same as load_config on TOML text; `source_name` is used in error positions.
RunConfig parse_config(std::string_view toml_text, const std::string& source_name);

/// Applies one override "section.key=value" (value in TOML syntax; a bare word that is not
/// valid TOML is taken as a string) and re-validates that field. Throws ConfigError with
/// file "--set" on unknown keys, wrong types or ranges.
void apply_override(RunConfig& config, std::string_view assignment);

/// Cross-field validation (e.g. kl_warmup_steps ascending). Throws ConfigError.
void validate(const RunConfig& config, const std::string& source_name);

/// Rules between keys of different sections, checked once on the final configuration (after
/// the file and every --set, by `jslds train`, `config check` and the sweep's expansion), so
/// that overrides may come in any order and may repair a file: data.heldout_neurons > 0 needs
/// model.mode = "poisson" (co-smoothing holds out recorded neurons; task data have none).
/// Throws ConfigError naming `source_name`.
void check_key_combinations(const RunConfig& config, const std::string& source_name);

/// How many of `n` neurons a data.heldout_neurons `fraction` holds out: llround(fraction · n),
/// the rule of the data split (core/data/dataset.cpp) and of check_key_combinations.
int64_t heldout_count(double fraction, int64_t n);
/// The end of the error for a fraction whose heldout_count is 0 with n ≥ 2: "rounds to no
/// held-out neuron: use e.g. 1/n …, or 0 for no co-smoothing".
std::string no_heldout_neuron_advice(int64_t n);

/// Canonical TOML: every section and key in a fixed order, values in a canonical form.
/// parse_config(to_toml(c)) == c.
std::string to_toml(const RunConfig& config);

/// The full default configuration as commented TOML (every key, its default, meaning, units).
std::string defaults_toml_commented();

/// Hex sha256 (OpenSSL) of to_toml(config): independent of key order in the source file and
/// of whether defaults were written out.
std::string config_sha256(const RunConfig& config);

/// The configuration as a JSON object {"data": {...}, "model": {...}, ...}.
std::string to_json(const RunConfig& config);

/// Every dotted key ("model.latent_dim"), in canonical order.
std::vector<std::string> config_keys();

/// The canonical TOML literal of one dotted key's value (e.g. "64", "\"gru\"", "0.05").
/// Throws ConfigError for an unknown key.
std::string config_value_text(const RunConfig& config, std::string_view dotted_key);

/// The canonical TOML literal of a number (shortest round-trip form, always with a '.' or an
/// exponent so it reads back as a float: 20 -> "20.0", 2e-05 -> "2e-05").
std::string toml_real_literal(double value);

/// A TOML basic string literal: quoted, with quotes, backslashes and control characters
/// escaped.
std::string toml_quote(std::string_view text);

/// Lower-case hex sha256 of arbitrary bytes (OpenSSL).
std::string sha256_hex(std::string_view bytes);

/// Incremental sha256 (OpenSSL EVP) for data too large to gather into one string:
/// update() any number of times, then hex_digest() once. Throws std::runtime_error when
/// OpenSSL fails. Move-only.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view bytes);
  std::string hex_digest();

 private:
  void* ctx_;  // EVP_MD_CTX*
};

bool operator==(const RunConfig& a, const RunConfig& b);

}  // namespace jslds
