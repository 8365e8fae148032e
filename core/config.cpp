#include "core/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "core/config_toml.h"
#include "core/did_you_mean.h"
#include "core/simulator_sizes.h"

namespace jslds {

ConfigError::ConfigError(std::string file, int line, int column, const std::string& message)
    : std::runtime_error(line > 0 ? fmt::format("{}:{}:{}: {}", file, line, column, message)
                                  : fmt::format("{}: {}", file, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      detail_(message) {}

namespace {

// ---------------------------------------------------------------------------------------
// The field lists. One entry per key: name, member, one line of documentation (meaning and
// units), and its check. Adding an option is one line here plus its default in config.h.
// ---------------------------------------------------------------------------------------

enum class Kind { kBool, kInt, kReal, kString, kIntList, kRealList };

struct Bound {
  double value;
  bool exclusive;
};

struct Field {
  const char* name;
  Kind kind;
  void* ptr;
  const char* doc;
  std::optional<Bound> min;
  std::optional<Bound> max;
  std::vector<std::string> choices;                           // allowed strings, if an enum
  std::function<std::string(const std::string&)> check_text;  // "" = ok, else what is expected
  int pair = 0;  // lists only: 1 = exactly [a, b] with a <= b; 2 = with a < b
};

struct Section {
  const char* name;
  const char* doc;
  std::vector<Field> fields;
};

struct Check {
  std::optional<Bound> min;
  std::optional<Bound> max;
};
const Check kAny{};
const Check kNonNegative{Bound{0, false}, std::nullopt};
const Check kPositive{Bound{0, true}, std::nullopt};
const Check kAtLeastOne{Bound{1, false}, std::nullopt};
const Check kFraction{Bound{0, false}, Bound{1, true}};   // [0, 1)
const Check kOpenUnit{Bound{0, true}, Bound{1, false}};   // (0, 1]
// Sizes: at least 1, and at most what any machine this runs on could hold.
const Check kSize{Bound{1, false}, Bound{1 << 16, false}};
const Check kBatch{Bound{1, false}, Bound{1 << 20, false}};
const Check kThreads{Bound{0, false}, Bound{4096, false}};
// Bin widths: 1 µs to 1000 s; outside that range a value is a unit mistake (1e-300 ms gave
// NaN metrics and frequencies of 300 digits).
const Check kBinMs{Bound{1e-3, false}, Bound{1e6, false}};

Field f_bool(const char* n, bool& v, const char* doc) {
  return Field{n, Kind::kBool, &v, doc, std::nullopt, std::nullopt, {}, {}};
}
Field f_int(const char* n, int64_t& v, const char* doc, Check c = kNonNegative) {
  return Field{n, Kind::kInt, &v, doc, c.min, c.max, {}, {}};
}
Field f_real(const char* n, double& v, const char* doc, Check c = kNonNegative) {
  return Field{n, Kind::kReal, &v, doc, c.min, c.max, {}, {}};
}
Field f_str(const char* n, std::string& v, const char* doc,
            std::vector<std::string> choices = {}) {
  return Field{n, Kind::kString, &v, doc, std::nullopt, std::nullopt, std::move(choices), {}};
}
Field f_ints(const char* n, std::vector<int64_t>& v, const char* doc, Check c = kNonNegative) {
  return Field{n, Kind::kIntList, &v, doc, c.min, c.max, {}, {}};
}
Field f_reals(const char* n, std::vector<double>& v, const char* doc, Check c = kNonNegative) {
  return Field{n, Kind::kRealList, &v, doc, c.min, c.max, {}, {}};
}

std::string check_device(const std::string& s) {
  if (s == "auto" || s == "cpu" || s == "cuda") return "";
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 &&
      std::all_of(s.begin() + 5, s.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return "";
  return "one of auto, cpu, cuda, cuda:K (K a device index)";
}

std::vector<Section> sections(RunConfig& c) {
  auto& d = c.data;
  auto& m = c.model;
  auto& l = c.loss;
  auto& t = c.train;
  auto& a = c.analysis;
  auto& r = c.runtime;
  std::vector<Section> s;
  s.push_back({"data", "where the spike counts come from, how they are binned and split", {
      f_str("path", d.path, "recording file: .nwb/.h5 (HDF5) or .mat; empty when simulate is set"),
      f_str("simulate", d.simulate, "built-in simulated session instead of a file",
            {"", "flipflop", "oscillator", "ring-theta", "lorenz"}),
      f_str("format", d.format, "file format; auto = by extension and file signature",
            {"auto", "hdf5", "nwb", "mat"}),
      f_real("bin_ms", d.bin_ms, "bin width (ms)", kBinMs),
      f_str("trials", d.trials,
            "NWB intervals table with start_time/stop_time (e.g. intervals/trials); "
            "empty = intervals/trials when present, else continuous windows"),
      f_int("window_bins", d.window_bins,
            "crop or split trials into windows of this many bins; continuous data is cut into "
            "windows of this length (required then); 0 = whole trials"),
      f_str("variable", d.variable, "MAT: struct array variable holding the trials (e.g. D)"),
      f_str("field", d.field, "MAT: field holding one neurons x time count matrix per trial"),
      f_real("source_bin_ms", d.source_bin_ms, "MAT: bin width of those matrices (ms)",
             kBinMs),
      f_str("condition_field", d.condition_field,
            "optional per-trial condition label: a MAT struct field or an NWB trials-table column; stratifies the validation split"),
      f_real("valid_fraction", d.valid_fraction,
             "fraction of trials held out for validation (stratified by condition)", kFraction),
      f_str("split_by", d.split_by,
            "with window_bins: what the validation split draws; window = each window on its own, trial = every "
            "window of a recorded trial on the same side (validation windows come from trials training never saw)",
            {"window", "trial"}),
      f_real("heldout_neurons", d.heldout_neurons,
             "fraction of neurons held out for co-smoothing (val_cobps); poisson mode only", kFraction),
      f_int("split_seed", d.split_seed, "seed of the trial and neuron splits"),
      f_int("sim_trials", d.sim_trials, "simulators: trials (0 = the simulator's default)"),
      f_int("sim_bins", d.sim_bins, "simulators: bins per trial (0 = the simulator's default)"),
      f_int("sim_neurons", d.sim_neurons, "simulators: neurons (0 = the simulator's default)"),
      f_real("freq_hz", d.freq_hz, "simulators: oscillation / theta frequency (Hz)", kPositive),
      f_int("sim_seed", d.sim_seed, "simulators: random seed"),
  }});
  s.push_back({"model", "architecture (MODEL.md sections 1-4)", {
      f_str("mode", m.mode, "poisson: spike counts (LFADS-style); task: inputs -> targets",
            {"poisson", "task"}),
      f_int("latent_dim", m.latent_dim, "generator (latent) dimension n", kSize),
      f_int("factors_dim", m.factors_dim, "factor dimension d", kSize),
      f_int("encoder_dim", m.encoder_dim, "encoder GRU width per direction", kSize),
      f_int("inferred_input_dim", m.inferred_input_dim,
            "inferred inputs m from the controller; 0 = no controller",
            Check{Bound{0, false}, Bound{1 << 16, false}}),
      f_int("controller_dim", m.controller_dim, "controller GRU width", kSize),
      f_str("cell", m.cell, "generator cell: reset-before-matmul GRU or vanilla tanh",
            {"gru", "tanh"}),
      f_int("expansion_layers", m.expansion_layers,
            "residual tanh layers of the expansion network",
            Check{Bound{1, false}, Bound{64, false}}),
      f_str("input_expansion", m.input_expansion,
            "input expansion point u*: zero, or learned by the expansion network",
            {"zero", "learned"}),
      f_real("dropout", m.dropout, "dropout rate on the generator state", kFraction),
      f_real("ar_tau_bins", m.ar_tau_bins, "AR(1) prior time constant of inferred inputs (bins)",
             kPositive),
      f_real("ar_var", m.ar_var, "AR(1) prior process variance of inferred inputs", kPositive),
  }});
  Field kl_warmup = f_ints("kl_warmup_steps", l.kl_warmup_steps,
                           "KL warm-up [start, end] (steps): 0.01*kl_scale before start, "
                           "linear to kl_scale at end");
  kl_warmup.pair = 1;
  s.push_back({"loss", "loss weights (MODEL.md section 5)", {
      f_real("w_rnn", l.w_rnn, "weight of the nonlinear model's likelihood / output error"),
      f_real("w_jslds", l.w_jslds, "weight of the JSLDS chain's likelihood / output error"),
      f_real("w_approx", l.w_approx, "weight of ||g - a||^2 (nonlinear vs JSLDS states)"),
      f_real("w_fp", l.w_fp, "fixed-point regularisation ||F(e*, u*) - e*||^2"),
      f_real("l2", l.l2, "L2 penalty on recurrent weights"),
      f_real("w_xe", l.w_xe, "input expansion point penalty (input_expansion = learned)"),
      f_real("kl_scale", l.kl_scale, "final weight of the KL terms"),
      kl_warmup,
  }});
  s.push_back({"train", "optimiser and schedule", {
      f_int("steps", t.steps, "training steps (minibatches)", kAtLeastOne),
      f_int("batch_size", t.batch_size, "trials per minibatch", kBatch),
      f_real("lr", t.lr, "initial Adam learning rate", kPositive),
      f_real("lr_decay", t.lr_decay, "per-step learning-rate decay factor: lr * lr_decay^step",
             kOpenUnit),
      f_real("adam_eps", t.adam_eps, "Adam epsilon (the reference uses 0.1)", kPositive),
      f_real("clip_norm", t.clip_norm, "global gradient-norm clip", kPositive),
      f_int("eval_every", t.eval_every, "validation metrics every this many steps", kAtLeastOne),
      f_int("checkpoint_every", t.checkpoint_every, "checkpoint every this many steps",
            kAtLeastOne),
      f_int("seed", t.seed, "seed of initialisation, minibatches, sampling and dropout"),
  }});
  Field theta = f_reals("theta_band_hz", a.theta_band_hz,
                        "[low, high] frequency band of theta_mode (Hz)");
  theta.pair = 2;
  s.push_back({"analysis", "fixed points and eigenmodes after training (MODEL.md section 7)", {
      f_bool("enabled", a.enabled, "run the analysis at the end of jslds train"),
      f_int("n_inits", a.n_inits, "starting states of the fixed-point search", kAtLeastOne),
      f_real("init_noise", a.init_noise, "std of the noise added to starting states"),
      f_int("max_iters", a.max_iters, "iteration cap of the fixed-point search", kAtLeastOne),
      f_real("fp_tol", a.fp_tol, "fixed-point tolerance: mean-over-dims squared speed",
             kPositive),
      f_real("unique_tol", a.unique_tol, "merge distance of points; 0 = 1e-2*sqrt(latent_dim)"),
      f_int("max_points", a.max_points, "expansion points kept (farthest-point sampling)",
            kAtLeastOne),
      f_real("cluster_tol", a.cluster_tol,
             "linkage distance of stable fixed-point clusters; 0 = unique_tol"),
      theta,
      f_str("fp_reduction", a.fp_reduction,
            "fixed-point search objective: mean or sum of q over starting states (MODEL.md "
            "says sum; mean converges where sum stalls at lr 1.0, see docs/analysis.md)",
            {"mean", "sum"}),
      f_int("newton_steps", a.newton_steps,
            "Levenberg-Marquardt steps polishing each converged point to a fixed point "
            "(residual below 1e-4*fp_tol and at the rounding level of the states' dtype; "
            "points not polished are kept as slow points); 0 = off, MODEL.md's search alone "
            "(docs/analysis.md)"),
  }});
  Field device = f_str("device", r.device, "compute device: auto | cpu | cuda | cuda:K");
  device.check_text = check_device;
  s.push_back({"runtime", "where and how fast to compute", {
      device,
      f_int("threads", r.threads, "intra-op threads; 0 = automatic", kThreads),
  }});
  return s;
}

std::vector<Section> sections(const RunConfig& c) {
  return sections(const_cast<RunConfig&>(c));  // fields are only read through this overload
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

std::string value_text(const Field& f) {
  switch (f.kind) {
    case Kind::kBool: return *static_cast<bool*>(f.ptr) ? "true" : "false";
    case Kind::kInt: return std::to_string(*static_cast<int64_t*>(f.ptr));
    case Kind::kReal: return toml_real_literal(*static_cast<double*>(f.ptr));
    case Kind::kString: return toml_quote(*static_cast<std::string*>(f.ptr));
    case Kind::kIntList: {
      auto& v = *static_cast<std::vector<int64_t>*>(f.ptr);
      return fmt::format("[{}]", fmt::join(v, ", "));
    }
    case Kind::kRealList: {
      auto& v = *static_cast<std::vector<double>*>(f.ptr);
      std::vector<std::string> parts;
      for (double x : v) parts.push_back(toml_real_literal(x));
      return fmt::format("[{}]", fmt::join(parts, ", "));
    }
  }
  return "";
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kBool: return "a boolean (true or false)";
    case Kind::kInt: return "an integer";
    case Kind::kReal: return "a number";
    case Kind::kString: return "a string";
    case Kind::kIntList: return "an array of integers";
    case Kind::kRealList: return "an array of numbers";
  }
  return "";
}

std::string range_text(const Field& f) {
  bool integer = f.kind == Kind::kInt || f.kind == Kind::kIntList;
  auto num = [&](double v) {
    return integer ? std::to_string(static_cast<int64_t>(v)) : toml_real_literal(v);
  };
  std::string s;
  if (f.min) s += fmt::format("{} {}", f.min->exclusive ? ">" : ">=", num(f.min->value));
  if (f.max) {
    if (!s.empty()) s += " and ";
    s += fmt::format("{} {}", f.max->exclusive ? "<" : "<=", num(f.max->value));
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

struct Where {
  std::string source;
  int line;
  int column;
};

Where where_of(const std::string& source, const toml::node& n) {
  const auto& b = n.source().begin;
  return Where{source, static_cast<int>(b.line), static_cast<int>(b.column)};
}

[[noreturn]] void fail(const Where& w, const std::string& msg) {
  throw ConfigError(w.source, w.line, w.column, msg);
}

void check_bounds(const Field& f, double v, const std::string& key, const Where& w) {
  if (!std::isfinite(v)) fail(w, fmt::format("{} must be finite, got {}", key, v));
  bool ok = true;
  if (f.min) ok = ok && (f.min->exclusive ? v > f.min->value : v >= f.min->value);
  if (f.max) ok = ok && (f.max->exclusive ? v < f.max->value : v <= f.max->value);
  bool integer = f.kind == Kind::kInt || f.kind == Kind::kIntList;
  if (!ok)
    fail(w, fmt::format("{} = {} is out of range: expected {}", key,
                        integer ? std::to_string(static_cast<int64_t>(v)) : toml_real_literal(v),
                        range_text(f)));
}

void set_field(const Field& f, const toml::node& n, const std::string& key, const Where& w) {
  auto wrong_type = [&]() {
    const char* found = "a date/time";
    switch (n.type()) {
      case toml::node_type::string: found = "a string"; break;
      case toml::node_type::integer: found = "an integer"; break;
      case toml::node_type::floating_point: found = "a float"; break;
      case toml::node_type::boolean: found = "a boolean"; break;
      case toml::node_type::array: found = "an array"; break;
      case toml::node_type::table: found = "a table"; break;
      default: break;
    }
    fail(w, fmt::format("{} must be {}, got {}", key, kind_name(f.kind), found));
  };
  auto number = [&](const toml::node& x, bool integer_only) -> std::optional<double> {
    if (auto i = x.as_integer()) return static_cast<double>(i->get());
    if (!integer_only)
      if (auto d = x.as_floating_point()) return d->get();
    return std::nullopt;
  };
  switch (f.kind) {
    case Kind::kBool: {
      auto b = n.as_boolean();
      if (!b) wrong_type();
      *static_cast<bool*>(f.ptr) = b->get();
      return;
    }
    case Kind::kInt: {
      auto i = n.as_integer();
      if (!i) wrong_type();
      check_bounds(f, static_cast<double>(i->get()), key, w);
      *static_cast<int64_t*>(f.ptr) = i->get();
      return;
    }
    case Kind::kReal: {
      auto v = number(n, false);
      if (!v) wrong_type();
      check_bounds(f, *v, key, w);
      *static_cast<double*>(f.ptr) = *v;
      return;
    }
    case Kind::kString: {
      auto s = n.as_string();
      if (!s) wrong_type();
      const std::string& v = s->get();
      if (!f.choices.empty() &&
          std::find(f.choices.begin(), f.choices.end(), v) == f.choices.end()) {
        std::vector<std::string> shown;
        for (const auto& c : f.choices) shown.push_back(toml_quote(c));
        fail(w, fmt::format("{} = {} is not allowed: expected one of {}", key, toml_quote(v),
                            fmt::join(shown, ", ")));
      }
      if (f.check_text) {
        std::string expected = f.check_text(v);
        if (!expected.empty())
          fail(w, fmt::format("{} = {} is not allowed: expected {}", key, toml_quote(v), expected));
      }
      *static_cast<std::string*>(f.ptr) = v;
      return;
    }
    case Kind::kIntList:
    case Kind::kRealList: {
      auto arr = n.as_array();
      if (!arr) wrong_type();
      bool ints = f.kind == Kind::kIntList;
      std::vector<double> vals;
      for (size_t i = 0; i < arr->size(); ++i) {
        const auto& el = *arr->get(i);
        auto v = number(el, ints);
        if (!v)
          fail(where_of(w.source, el),
               fmt::format("{} must be {}: element {} is not {}", key, kind_name(f.kind), i + 1,
                           ints ? "an integer" : "a number"));
        check_bounds(f, *v, key, where_of(w.source, el));
        vals.push_back(*v);
      }
      if (f.pair && vals.size() != 2)
        fail(w, fmt::format("{} must have exactly 2 elements [{}], got {}", key,
                            f.pair == 1 ? "start, end" : "low, high", vals.size()));
      if (f.pair == 1 && vals[0] > vals[1])
        fail(w, fmt::format("{} = [{}, {}]: expected start <= end", key,
                            static_cast<int64_t>(vals[0]), static_cast<int64_t>(vals[1])));
      if (f.pair == 2 && !(vals[0] < vals[1]))
        fail(w, fmt::format("{} = [{}, {}]: expected low < high", key, toml_real_literal(vals[0]),
                            toml_real_literal(vals[1])));
      if (ints) {
        auto& out = *static_cast<std::vector<int64_t>*>(f.ptr);
        out.clear();
        for (const auto& el : *arr) out.push_back(el.as_integer()->get());
      } else {
        *static_cast<std::vector<double>*>(f.ptr) = vals;
      }
      return;
    }
  }
}

std::vector<std::string> names_of(const std::vector<Section>& ss) {
  std::vector<std::string> out;
  for (const auto& s : ss) out.push_back(s.name);
  return out;
}
std::vector<std::string> names_of(const Section& s) {
  std::vector<std::string> out;
  for (const auto& f : s.fields) out.push_back(f.name);
  return out;
}

// Finds the field for "section.key"; throws with a suggestion otherwise.
const Field& find_field(const std::vector<Section>& ss, std::string_view dotted,
                        const Where& w) {
  auto dot = dotted.find('.');
  if (dot == std::string_view::npos)
    fail(w, fmt::format("'{}' is not a configuration key: expected section.key, e.g. "
                        "model.latent_dim",
                        dotted));
  std::string sec(dotted.substr(0, dot)), key(dotted.substr(dot + 1));
  for (const auto& s : ss) {
    if (sec != s.name) continue;
    for (const auto& f : s.fields)
      if (key == f.name) return f;
    fail(w, fmt::format("unknown key '{}' in [{}]{}", key, sec, did_you_mean(key, names_of(s))));
  }
  fail(w, fmt::format("unknown section [{}]{}", sec, did_you_mean(sec, names_of(ss))));
}

void read_table(RunConfig& c, const toml::table& root, const std::string& source) {
  auto ss = sections(c);
  Where simulate_at{source, 0, 0};
  for (const auto& [k, node] : root) {
    std::string sec(k.str());
    Where w{source, static_cast<int>(k.source().begin.line),
            static_cast<int>(k.source().begin.column)};
    if (w.line == 0) w = where_of(source, node);
    auto it = std::find_if(ss.begin(), ss.end(), [&](const Section& s) { return sec == s.name; });
    if (it == ss.end() && !node.is_table())
      for (const auto& candidate : ss)
        for (const auto& f : candidate.fields)
          if (sec == f.name)
            fail(w, fmt::format("key '{}' must be inside its section: write it under [{}]", sec,
                                candidate.name));
    if (it == ss.end())
      fail(w, fmt::format("unknown section [{}]{}; expected one of [data], [model], [loss], "
                          "[train], [analysis], [runtime]",
                          sec, did_you_mean(sec, names_of(ss))));
    auto tbl = node.as_table();
    if (!tbl) {
      for (const auto& candidate : ss)
        for (const auto& f : candidate.fields)
          if (sec == f.name)
            fail(w, fmt::format("key '{}' must be inside its section: write it under [{}]", sec,
                                candidate.name));
      fail(w, fmt::format("[{}] must be a table", sec));
    }
    for (const auto& [fk, fnode] : *tbl) {
      std::string key(fk.str());
      Where fw{source, static_cast<int>(fk.source().begin.line),
               static_cast<int>(fk.source().begin.column)};
      if (fw.line == 0) fw = where_of(source, fnode);
      auto f = std::find_if(it->fields.begin(), it->fields.end(),
                            [&](const Field& x) { return key == x.name; });
      if (f == it->fields.end())
        fail(fw, fmt::format("unknown key '{}' in [{}]{}", key, sec,
                             did_you_mean(key, names_of(*it))));
      set_field(*f, fnode, fmt::format("{}.{}", sec, key), where_of(source, fnode));
      if (sec == "data" && key == "simulate") simulate_at = where_of(source, fnode);
    }
  }
  if (!c.data.path.empty() && !c.data.simulate.empty())
    fail(simulate_at, fmt::format("data.path = {} and data.simulate = {} are both set: expected "
                                  "one of them (remove one, or set it to \"\")",
                                  toml_quote(c.data.path), toml_quote(c.data.simulate)));
}

std::string read_file(const std::filesystem::path& file) {
  std::error_code dir_ec;
  if (std::filesystem::is_directory(file, dir_ec))
    throw ConfigError(file.string(), 0, 0, "is a directory: expected a TOML configuration file");
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    const char* why = std::filesystem::exists(file, ec) ? "cannot be read" : "does not exist";
    throw ConfigError(file.string(), 0, 0, fmt::format("configuration file {}", why));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

RunConfig config_from_table(const toml::table& table, const std::string& source_name) {
  RunConfig c;
  read_table(c, table, source_name);
  validate(c, source_name);
  return c;
}

RunConfig parse_config(std::string_view toml_text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw ConfigError(source_name, static_cast<int>(b.line), static_cast<int>(b.column),
                      fmt::format("TOML syntax error: {}", e.description()));
  }
  return config_from_table(root, source_name);
}

RunConfig load_config(const std::filesystem::path& file) {
  return parse_config(read_file(file), file.string());
}

void apply_value(RunConfig& config, std::string_view dotted_key, const toml::node& value,
                 const std::string& source_name) {
  auto ss = sections(config);
  Where w = where_of(source_name, value);
  const Field& f = find_field(ss, dotted_key, w);
  set_field(f, value, std::string(dotted_key), w);
}

void apply_override(RunConfig& config, std::string_view assignment) {
  static const std::string kSource = "--set";
  auto eq = assignment.find('=');
  if (eq == std::string_view::npos)
    throw ConfigError(kSource, 0, 0,
                      fmt::format("'{}' is not an override: expected section.key=value, e.g. "
                                  "model.latent_dim=32",
                                  assignment));
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  std::string_view key = trim(assignment.substr(0, eq));
  std::string_view text = trim(assignment.substr(eq + 1));
  if (text.empty())
    throw ConfigError(kSource, 1, static_cast<int>(eq + 2),
                      fmt::format("'{}' has an empty value: expected {}=VALUE", assignment, key));
  int value_column = static_cast<int>(eq + 2);
  // The value in TOML syntax; a bare word that is not TOML (gru, ring-theta) is a string.
  toml::table parsed;
  bool is_toml = true;
  try {
    parsed = toml::parse(fmt::format("v = {}", text), kSource);
    is_toml = parsed.contains("v");
  } catch (const toml::parse_error&) {
    is_toml = false;
  }
  RunConfig updated = config;  // a failed override changes nothing
  try {
    auto ss = sections(updated);
    Where w{kSource, 1, 1};
    const Field& f = find_field(ss, key, w);
    Where vw{kSource, 1, value_column};
    std::string full = std::string(key);
    if (is_toml) {
      set_field(f, *parsed.get("v"), full, vw);
    } else {
      std::string_view digits = text;
      if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) digits.remove_prefix(1);
      const bool too_long_integer = digits.size() >= 19 && digits.front() != '0' &&
                                    digits.find_first_not_of("0123456789") == std::string_view::npos;
      if (too_long_integer)  // toml++ refuses integers beyond 64 bits; say so, not "got a string"
        throw ConfigError(kSource, 1, value_column,
                          fmt::format("{}: {} is out of range of a 64-bit integer (at most {})",
                                      full, text, std::numeric_limits<int64_t>::max()));
      // A number TOML cannot take (1e400, 40.) is not a bare word: say what is wrong with it,
      // not "got a string".
      const std::string word(text);
      char* end = nullptr;
      errno = 0;
      (void)std::strtod(word.c_str(), &end);
      // Only for numeric keys: a text key (data.condition_field=1.) takes the bare word as text.
      const bool numeric_key = f.kind == Kind::kInt || f.kind == Kind::kReal;
      const bool numeric = numeric_key && end == word.c_str() + word.size() &&
                           word.find_first_of("0123456789") != std::string::npos;
      if (numeric && errno == ERANGE)
        throw ConfigError(kSource, 1, value_column,
                          fmt::format("{}: {} is out of range of a 64-bit floating-point number", full,
                                      text));
      if (numeric)
        throw ConfigError(kSource, 1, value_column,
                          fmt::format("{}: {} is not a number as TOML writes them (e.g. 40.0, 1e-3, "
                                      "0.5, 32)",
                                      full, text));
      toml::value<std::string> s{word};
      set_field(f, s, full, vw);
    }
    // The data source is one of two: an override naming one replaces the other, so that
    // `--set data.path=F` turns a simulated configuration into one of the recording F.
    if (full == "data.path" && !updated.data.path.empty()) updated.data.simulate.clear();
    if (full == "data.simulate" && !updated.data.simulate.empty()) updated.data.path.clear();
    validate(updated, kSource);
  } catch (const ConfigError& e) {
    throw ConfigError(e.file(), e.line(), e.column(),
                      fmt::format("{} (in --set '{}')", e.detail(), assignment));
  }
  config = std::move(updated);
}

void validate(const RunConfig& c, const std::string& source_name) {
  auto bad = [&](const std::string& msg) { throw ConfigError(source_name, 0, 0, msg); };
  // Lists are checked as they are read (with their position); this catches structs built
  // in code.
  const auto& kw = c.loss.kl_warmup_steps;
  if (kw.size() != 2 || kw[0] > kw[1])
    bad(fmt::format("loss.kl_warmup_steps must be [start, end] with start <= end, got [{}]",
                    fmt::join(kw, ", ")));
  const auto& tb = c.analysis.theta_band_hz;
  if (tb.size() != 2 || !(tb[0] < tb[1]))
    bad(fmt::format("analysis.theta_band_hz must be [low, high] with low < high, got [{}]",
                    fmt::join(tb, ", ")));
  if (!c.data.path.empty() && !c.data.simulate.empty())
    bad(fmt::format("data.path = {} and data.simulate = {} are both set: expected one of them (remove one, "
                    "or set it to \"\")",
                    toml_quote(c.data.path), toml_quote(c.data.simulate)));
}

void check_key_combinations(const RunConfig& c, const std::string& source_name) {
  // Co-smoothing predicts held-out recorded neurons from the others (MODEL §6, val_cobps):
  // task mode models inputs and targets, so the setting would be silently ignored there.
  if (c.model.mode == "task" && c.data.heldout_neurons > 0)
    throw ConfigError(source_name, 0, 0,
                      fmt::format("data.heldout_neurons = {} with model.mode = \"task\": held-out neurons "
                                  "(co-smoothing, val_cobps) need spike data in model.mode = \"poisson\"; set "
                                  "data.heldout_neurons = 0",
                                  c.data.heldout_neurons));
  // A simulator's neuron count is known now: a fraction that rounds to no held-out neuron is
  // refused here (and so by `jslds sweep --dry-run`) rather than by the data split of a run
  // (core/data/dataset.cpp rounds the same way).
  if (c.data.heldout_neurons > 0 && c.data.heldout_neurons < 1 && c.data.sim_neurons >= 0)
    if (auto sizes = simulator_default_sizes(c.data.simulate)) {
      const int64_t n = c.data.sim_neurons > 0 ? c.data.sim_neurons : sizes->neurons;
      if (n >= 2 && heldout_count(c.data.heldout_neurons, n) == 0)
        throw ConfigError(source_name, 0, 0,
                          fmt::format("data.heldout_neurons = {} of the {} neurons of simulate = {} {}",
                                      c.data.heldout_neurons, n, toml_quote(c.data.simulate),
                                      no_heldout_neuron_advice(n)));
    }
}

int64_t heldout_count(double fraction, int64_t n) {
  return static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
}

std::string no_heldout_neuron_advice(int64_t n) {
  return fmt::format("rounds to no held-out neuron: use e.g. {:.3g} (1/{}: one neuron), or 0 for no co-smoothing",
                     1.0 / static_cast<double>(n), n);
}

std::string to_toml(const RunConfig& config) {
  std::string out;
  for (const auto& s : sections(config)) {
    if (!out.empty()) out += "\n";
    out += fmt::format("[{}]\n", s.name);
    for (const auto& f : s.fields) out += fmt::format("{} = {}\n", f.name, value_text(f));
  }
  return out;
}

std::string defaults_toml_commented() {
  RunConfig c;
  std::string out =
      "# jslds run configuration: every key with its default.\n"
      "# Save as run.toml, edit, and check with `jslds config check run.toml`.\n";
  for (const auto& s : sections(c)) {
    out += fmt::format("\n# {}\n[{}]\n", s.doc, s.name);
    for (const auto& f : s.fields) {
      std::string extra;
      if (!f.choices.empty()) {
        std::vector<std::string> shown;
        for (const auto& ch : f.choices) shown.push_back(toml_quote(ch));
        extra = fmt::format(" [one of {}]", fmt::join(shown, ", "));
      } else if (f.min || f.max) {
        extra = fmt::format(" [{}]", range_text(f));
      }
      out += fmt::format("# {}{}\n{} = {}\n", f.doc, extra, f.name, value_text(f));
    }
  }
  return out;
}

std::string toml_real_literal(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // 20 -> 20.0 (n: inf/nan)
  return s;
}

std::string toml_quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (ch < 0x20 || ch == 0x7f) out += fmt::format("\\u{:04X}", ch);
        else out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL EVP_DigestInit_ex(sha256) failed");
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(std::string_view bytes) {
  if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size()) != 1)
    throw std::runtime_error("OpenSSL EVP_DigestUpdate(sha256) failed");
}

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len) != 1)
    throw std::runtime_error("OpenSSL EVP_DigestFinal_ex(sha256) failed");
  std::string hex;
  hex.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}

std::string config_sha256(const RunConfig& config) { return sha256_hex(to_toml(config)); }

std::string to_json(const RunConfig& config) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& s : sections(config)) {
    nlohmann::ordered_json sec = nlohmann::ordered_json::object();
    for (const auto& f : s.fields) {
      switch (f.kind) {
        case Kind::kBool: sec[f.name] = *static_cast<bool*>(f.ptr); break;
        case Kind::kInt: sec[f.name] = *static_cast<int64_t*>(f.ptr); break;
        case Kind::kReal: sec[f.name] = *static_cast<double*>(f.ptr); break;
        case Kind::kString: sec[f.name] = *static_cast<std::string*>(f.ptr); break;
        case Kind::kIntList: sec[f.name] = *static_cast<std::vector<int64_t>*>(f.ptr); break;
        case Kind::kRealList: sec[f.name] = *static_cast<std::vector<double>*>(f.ptr); break;
      }
    }
    j[s.name] = std::move(sec);
  }
  return j.dump();
}

std::vector<std::string> config_keys() {
  RunConfig c;
  std::vector<std::string> out;
  for (const auto& s : sections(c))
    for (const auto& f : s.fields) out.push_back(fmt::format("{}.{}", s.name, f.name));
  return out;
}

std::string config_value_text(const RunConfig& config, std::string_view dotted_key) {
  auto ss = sections(config);
  return value_text(find_field(ss, dotted_key, Where{"config", 0, 0}));
}

bool operator==(const RunConfig& a, const RunConfig& b) { return to_toml(a) == to_toml(b); }

void resolve_data_path(RunConfig& config, const std::filesystem::path& directory) {
  if (config.data.path.empty()) return;
  std::filesystem::path p(config.data.path);
  if (p.is_relative()) config.data.path = (directory / p).lexically_normal().string();
}

}  // namespace jslds
