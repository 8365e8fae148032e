#include "coordinator/sweep_spec.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include <boost/math/distributions/normal.hpp>
#include <boost/random/sobol.hpp>
#include <fmt/format.h>

#include "core/config_toml.h"
#include "core/did_you_mean.h"
#include "core/summary_names.h"

namespace jslds {

namespace {

[[noreturn]] void fail(const std::string& source, const toml::source_region& at,
                       const std::string& message) {
  throw ConfigError(source, static_cast<int>(at.begin.line), static_cast<int>(at.begin.column),
                    message);
}

std::string read_text(const std::filesystem::path& file, const char* what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    throw ConfigError(file.string(), 0, 0,
                      fmt::format("{} {}", what,
                                  std::filesystem::exists(file, ec) ? "cannot be read"
                                                                    : "does not exist"));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

toml::table parse_toml(std::string_view text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    fail(source, e.source(), fmt::format("TOML syntax error: {}", e.description()));
  }
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

// Typed readers of one key of a table, with positioned errors.
struct Reader {
  const std::string& source;
  const toml::table& table;
  const char* where;  // "[campaign]" or "parameter \"loss.w_fp\""

  const toml::node* find(const char* key) const { return table.get(key); }

  [[noreturn]] void wrong(const char* key, const toml::node& n, const char* expected) const {
    fail(source, n.source(),
         fmt::format("{} in {} must be {}, got {}", key, where, expected, type_name(n)));
  }

  std::optional<std::string> string(const char* key) const {
    const auto* n = find(key);
    if (!n) return std::nullopt;
    if (!n->is_string()) wrong(key, *n, "a string");
    return n->as_string()->get();
  }
  std::optional<int64_t> integer(const char* key) const {
    const auto* n = find(key);
    if (!n) return std::nullopt;
    if (!n->is_integer()) wrong(key, *n, "an integer");
    return n->as_integer()->get();
  }
  std::optional<double> number(const char* key) const {
    const auto* n = find(key);
    if (!n) return std::nullopt;
    if (auto i = n->as_integer()) return static_cast<double>(i->get());
    if (auto d = n->as_floating_point()) {
      if (!std::isfinite(d->get()))
        fail(source, n->source(), fmt::format("{} in {} must be finite", key, where));
      return d->get();
    }
    wrong(key, *n, "a number");
  }
  // Rejects keys outside `known`, listing what is expected.
  void only(std::initializer_list<const char*> known) const {
    for (const auto& [k, n] : table) {
      bool ok = std::any_of(known.begin(), known.end(),
                            [&](const char* x) { return k.str() == x; });
      if (!ok) {
        std::vector<std::string> names(known.begin(), known.end());
        fail(source, k.source().begin.line ? k.source() : n.source(),
             fmt::format("unknown key '{}' in {}: expected one of {}", k.str(), where,
                         fmt::join(names, ", ")));
      }
    }
  }
};

// Applies `literal` to `config` at `key`, rethrowing errors at the parameter's position.
void apply_literal(RunConfig& config, const SweepParameter& p, const std::string& literal,
                   const std::string& source) {
  // apply_value, not apply_override: cross-field rules are checked once all parameters are
  // set (expand_run), so the order in which keys are applied cannot matter.
  try {
    toml::table parsed = toml::parse("v = " + literal, source);
    apply_value(config, p.key, *parsed.get("v"), source);
  } catch (const toml::parse_error& e) {
    throw ConfigError(source, p.line, p.column,
                      fmt::format("parameter \"{}\" = {}: not a TOML value: {}", p.key, literal,
                                  e.description()));
  } catch (const ConfigError& e) {
    throw ConfigError(source, p.line, p.column,
                      fmt::format("parameter \"{}\" = {}: {}", p.key, literal, e.detail()));
  }
}

// Reads one [parameters] entry and checks it against a scratch copy of the base config.
SweepParameter read_parameter(const std::string& source, const toml::key& key,
                              const toml::node& node, const RunConfig& base,
                              SweepMethod method) {
  SweepParameter p;
  p.key = std::string(key.str());
  const auto& at = key.source().begin.line ? key.source() : node.source();
  p.line = static_cast<int>(at.begin.line);
  p.column = static_cast<int>(at.begin.column);
  std::string where = fmt::format("parameter \"{}\"", p.key);
  const auto* table = node.as_table();
  if (!table)
    fail(source, node.source(),
         fmt::format("{} must be a table such as {{ values = [...] }} or {{ distribution = "
                     "\"uniform\", min = a, max = b }}, got {}",
                     where, type_name(node)));
  Reader r{source, *table, where.c_str()};
  RunConfig scratch = base;
  if (const auto* values = table->get("values")) {
    r.only({"values"});
    const auto* array = values->as_array();
    if (!array || array->empty())
      fail(source, values->source(),
           fmt::format("values of {} must be a non-empty array", where));
    for (const auto& v : *array) {
      try {
        apply_value(scratch, p.key, v, source);
      } catch (const ConfigError& e) {
        throw ConfigError(e.file(), e.line(), e.column(),
                          fmt::format("{}: {}", where, e.detail()));
      }
      p.values.push_back(config_value_text(scratch, p.key));
    }
    auto sorted = p.values;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      fail(source, values->source(), fmt::format("values of {} repeat a value", where));
    p.distribution = Distribution::kValues;
    return p;
  }
  auto dist = r.string("distribution");
  if (!dist)
    fail(source, node.source(),
         fmt::format("{} needs either values = [...] or distribution = \"uniform\" | "
                     "\"log_uniform\" | \"int_uniform\" | \"normal\"",
                     where));
  if (method == SweepMethod::kGrid)
    fail(source, table->get("distribution")->source(),
         fmt::format("{} has a distribution, but method = \"grid\" takes only values = [...]; "
                     "use method = \"random\" or \"sobol\"",
                     where));
  auto need = [&](const char* k) {
    auto v = r.number(k);
    if (!v) fail(source, node.source(), fmt::format("{} needs {} = <number>", where, k));
    return *v;
  };
  if (*dist == "normal") {
    r.only({"distribution", "mean", "std"});
    p.distribution = Distribution::kNormal;
    p.mean = need("mean");
    p.std = need("std");
    if (!(p.std > 0))
      fail(source, table->get("std")->source(), fmt::format("std of {} must be > 0", where));
    apply_literal(scratch, p, toml_real_literal(p.mean), source);
    return p;
  }
  r.only({"distribution", "min", "max"});
  if (*dist == "uniform") p.distribution = Distribution::kUniform;
  else if (*dist == "log_uniform") p.distribution = Distribution::kLogUniform;
  else if (*dist == "int_uniform") p.distribution = Distribution::kIntUniform;
  else
    fail(source, table->get("distribution")->source(),
         fmt::format("distribution \"{}\" of {} is unknown: expected uniform, log_uniform, "
                     "int_uniform or normal",
                     *dist, where));
  p.min = need("min");
  p.max = need("max");
  if (!(p.min <= p.max))
    fail(source, table->get("min")->source(),
         fmt::format("{}: min = {} is greater than max = {}", where, p.min, p.max));
  if (p.distribution == Distribution::kLogUniform && !(p.min > 0))
    fail(source, table->get("min")->source(),
         fmt::format("{}: log_uniform needs min > 0, got {}", where, p.min));
  if (p.distribution == Distribution::kIntUniform) {
    for (const char* k : {"min", "max"})
      if (!table->get(k)->is_integer())
        fail(source, table->get(k)->source(),
             fmt::format("{} of {} must be an integer for int_uniform", k, where));
    apply_literal(scratch, p, fmt::format("{}", static_cast<int64_t>(p.min)), source);
    apply_literal(scratch, p, fmt::format("{}", static_cast<int64_t>(p.max)), source);
  } else {
    apply_literal(scratch, p, toml_real_literal(p.min), source);
    apply_literal(scratch, p, toml_real_literal(p.max), source);
  }
  return p;
}

std::string canonical_text(const SweepSpec& s) {
  std::string out = fmt::format(
      "[campaign]\nname = {}\nmethod = {}\nmax_runs = {}\nrepeats = {}\nseed = {}\n"
      "objective = {{ metric = {}, goal = {} }}\nmax_attempts = {}\n\n[base]\n{}\n"
      "[parameters]\n",
      toml_quote(s.name), toml_quote(to_string(s.method)), s.max_runs, s.repeats, s.seed,
      toml_quote(s.objective_metric), toml_quote(s.objective_goal), s.max_attempts, to_toml(s.base));
  for (const auto& p : s.parameters) {
    switch (p.distribution) {
      case Distribution::kValues:
        out += fmt::format("{} = {{ values = [{}] }}\n", toml_quote(p.key), fmt::join(p.values, ", "));
        break;
      case Distribution::kNormal:
        out += fmt::format("{} = {{ distribution = \"normal\", mean = {}, std = {} }}\n",
                           toml_quote(p.key), toml_real_literal(p.mean), toml_real_literal(p.std));
        break;
      default:
        out += fmt::format("{} = {{ distribution = {}, min = {}, max = {} }}\n", toml_quote(p.key),
                           toml_quote(to_string(p.distribution)), toml_real_literal(p.min),
                           toml_real_literal(p.max));
    }
  }
  return out;
}

// The number a canonical literal stands for, or nullopt for strings and booleans.
std::optional<double> literal_number(const std::string& text) {
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// u in [0, 1) → the parameter's value as a canonical literal and a number.
std::pair<std::string, std::optional<double>> draw_value(const SweepParameter& p, double u) {
  constexpr double kTiny = 0x1p-53;
  u = std::clamp(u, kTiny, 1.0 - kTiny);  // keeps the normal quantile finite
  switch (p.distribution) {
    case Distribution::kValues: {
      auto i = std::min(static_cast<size_t>(u * static_cast<double>(p.values.size())),
                        p.values.size() - 1);
      return {p.values[i], literal_number(p.values[i])};
    }
    case Distribution::kUniform: {
      double v = p.min + u * (p.max - p.min);
      return {toml_real_literal(v), v};
    }
    case Distribution::kLogUniform: {
      double v = std::exp(std::log(p.min) + u * (std::log(p.max) - std::log(p.min)));
      v = std::clamp(v, p.min, p.max);
      return {toml_real_literal(v), v};
    }
    case Distribution::kIntUniform: {
      auto lo = static_cast<int64_t>(p.min), hi = static_cast<int64_t>(p.max);
      auto v = lo + static_cast<int64_t>(std::floor(u * static_cast<double>(hi - lo + 1)));
      v = std::clamp(v, lo, hi);
      return {std::to_string(v), static_cast<double>(v)};
    }
    case Distribution::kNormal: {
      double v = boost::math::quantile(boost::math::normal(p.mean, p.std), u);
      return {toml_real_literal(v), v};
    }
  }
  return {"", std::nullopt};
}

}  // namespace

const char* to_string(SweepMethod method) {
  switch (method) {
    case SweepMethod::kGrid: return "grid";
    case SweepMethod::kRandom: return "random";
    case SweepMethod::kSobol: return "sobol";
  }
  return "?";
}

const char* to_string(Distribution distribution) {
  switch (distribution) {
    case Distribution::kValues: return "values";
    case Distribution::kUniform: return "uniform";
    case Distribution::kLogUniform: return "log_uniform";
    case Distribution::kIntUniform: return "int_uniform";
    case Distribution::kNormal: return "normal";
  }
  return "?";
}

SweepSpec parse_sweep_spec(std::string_view toml_text, const std::string& source,
                           const std::filesystem::path& directory) {
  toml::table root = parse_toml(toml_text, source);
  SweepSpec spec;
  spec.source = source;
  spec.directory = directory;

  for (const auto& [k, n] : root) {
    if (k.str() == "campaign" || k.str() == "base" || k.str() == "parameters") continue;
    fail(source, k.source(),
         fmt::format("unknown section or key '{}': expected [campaign], [base] (or base = "
                     "\"run.toml\") and [parameters]",
                     k.str()));
  }

  // [campaign]
  const auto* campaign_node = root.get("campaign");
  if (!campaign_node || !campaign_node->is_table())
    throw ConfigError(source, 1, 1, "missing [campaign] table with at least name = \"...\"");
  const auto& campaign = *campaign_node->as_table();
  Reader c{source, campaign, "[campaign]"};
  c.only({"name", "method", "max_runs", "repeats", "seed", "objective", "max_attempts"});
  auto name = c.string("name");
  if (!name)
    fail(source, campaign.source(), "[campaign] needs name = \"...\" (the campaign's identity)");
  if (name->empty() || !std::all_of(name->begin(), name->end(), [](unsigned char ch) {
        return std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
      }) || name->find_first_not_of('.') == std::string::npos || name->front() == '-')
    fail(source, campaign.get("name")->source(),
         fmt::format("campaign name \"{}\" must match [A-Za-z0-9._-]+, not start with '-' and not "
                     "be only dots (it names a directory, ARTIFACTS/<name>/, and is typed as an "
                     "argument: `jslds best <name>`)",
                     *name));
  spec.name = *name;
  std::string method = c.string("method").value_or("grid");
  if (method == "grid") spec.method = SweepMethod::kGrid;
  else if (method == "random") spec.method = SweepMethod::kRandom;
  else if (method == "sobol") spec.method = SweepMethod::kSobol;
  else
    fail(source, campaign.get("method")->source(),
         fmt::format("method = \"{}\" is unknown: expected grid, random or sobol", method));
  spec.max_runs = c.integer("max_runs").value_or(0);
  if (spec.max_runs < 0)
    fail(source, campaign.get("max_runs")->source(), "max_runs must be >= 0");
  if (spec.method != SweepMethod::kGrid && spec.max_runs <= 0)
    fail(source, campaign_node->source(),
         fmt::format("method = \"{}\" needs max_runs > 0 (the number of configurations to draw)",
                     method));
  spec.repeats = c.integer("repeats").value_or(1);
  if (spec.repeats < 1) fail(source, campaign.get("repeats")->source(), "repeats must be >= 1");
  int64_t seed = c.integer("seed").value_or(0);
  if (seed < 0) fail(source, campaign.get("seed")->source(), "seed must be >= 0");
  spec.seed = static_cast<uint64_t>(seed);
  int64_t attempts = c.integer("max_attempts").value_or(3);
  if (attempts < 1 || attempts > 1000)
    fail(source, campaign.get("max_attempts")->source(), "max_attempts must be in [1, 1000]");
  spec.max_attempts = static_cast<int>(attempts);
  if (const auto* objective = campaign.get("objective")) {
    const auto* t = objective->as_table();
    if (!t)
      fail(source, objective->source(),
           "objective must be a table: { metric = \"val_bps\", goal = \"maximize\" }");
    Reader o{source, *t, "objective"};
    o.only({"metric", "goal"});
    spec.objective_metric = o.string("metric").value_or(spec.objective_metric);
    spec.objective_goal = o.string("goal").value_or(spec.objective_goal);
    if (spec.objective_metric.empty())
      fail(source, objective->source(), "objective metric must not be empty");
    // A name no run reports would let the whole campaign run and leave `jslds best` nothing
    // to rank, so it is refused here (a name of the other model mode is only warned about at
    // run time: model.mode may be swept).
    if (!is_summary_name(spec.objective_metric)) {
      std::vector<std::string> names;
      for (const auto& s : kSummaryNames) names.emplace_back(s.name);
      fail(source, t->get("metric")->source(),
           fmt::format("objective metric \"{}\" is not a run summary{}: expected one of {}",
                       spec.objective_metric, did_you_mean(spec.objective_metric, names),
                       summary_names_by_group()));
    }
    if (spec.objective_goal != "maximize" && spec.objective_goal != "minimize")
      fail(source, t->get("goal")->source(),
           fmt::format("objective goal \"{}\" is unknown: expected maximize or minimize",
                       spec.objective_goal));
  }

  // [base] or base = "run.toml"
  const auto* base = root.get("base");
  if (!base) {
    spec.base = RunConfig{};
  } else if (const auto* path = base->as_string()) {
    std::filesystem::path file(path->get());
    if (file.is_relative()) file = directory / file;
    std::string text;
    try {
      text = read_text(file, "base run configuration");
    } catch (const ConfigError& e) {
      fail(source, base->source(), fmt::format("base = \"{}\": {}", path->get(), e.detail()));
    }
    spec.base = parse_config(text, file.string());
    resolve_data_path(spec.base, file.parent_path());
  } else if (const auto* table = base->as_table()) {
    spec.base = config_from_table(*table, source);
    resolve_data_path(spec.base, directory);
  } else {
    fail(source, base->source(),
         fmt::format("base must be a [base] table or a path string, got {}", type_name(*base)));
  }

  // [parameters]
  if (const auto* params = root.get("parameters")) {
    const auto* table = params->as_table();
    if (!table) fail(source, params->source(), "[parameters] must be a table");
    for (const auto& [k, n] : *table)
      spec.parameters.push_back(read_parameter(source, k, n, spec.base, spec.method));
  }
  std::sort(spec.parameters.begin(), spec.parameters.end(),
            [](const auto& a, const auto& b) { return a.key < b.key; });

  spec.canonical = canonical_text(spec);
  spec.sha256 = sha256_hex(spec.canonical);
  return spec;
}

SweepSpec load_sweep_spec(const std::filesystem::path& file) {
  std::filesystem::path dir = std::filesystem::absolute(file).parent_path();
  return parse_sweep_spec(read_text(file, "sweep spec"), file.string(), dir);
}

void apply_base_overrides(SweepSpec& spec, const std::vector<std::string>& assignments) {
  static const std::string kPrefix = "base.";
  if (assignments.empty()) return;
  RunConfig base = spec.base;  // a failed override changes nothing
  const std::string path_before = base.data.path;
  for (const auto& assignment : assignments) {
    if (assignment.compare(0, kPrefix.size(), kPrefix) != 0)
      throw ConfigError("--set", 0, 0,
                        fmt::format("'{}': a sweep override names a key of the spec's [base], "
                                    "e.g. base.data.path=session.nwb",
                                    assignment));
    const std::string rest = assignment.substr(kPrefix.size());
    const std::string key = rest.substr(0, rest.find('='));
    auto trimmed = key.substr(0, key.find_last_not_of(" \t") + 1);
    for (const auto& p : spec.parameters)
      if (p.key == trimmed)
        throw ConfigError("--set", 0, 0,
                          fmt::format("'{}': {} is swept in [parameters] ({}:{}:{}), so a base "
                                      "value would never be used",
                                      assignment, p.key, spec.source, p.line, p.column));
    try {
      apply_override(base, rest);
    } catch (const ConfigError& e) {
      throw ConfigError("--set", 0, 0, fmt::format("'{}': {}", assignment, e.detail()));
    }
  }
  if (base.data.path != path_before) resolve_data_path(base, std::filesystem::current_path());
  spec.base = std::move(base);
  spec.canonical = canonical_text(spec);
  spec.sha256 = sha256_hex(spec.canonical);
}

int64_t configuration_count(const SweepSpec& spec) {
  if (spec.method != SweepMethod::kGrid) return spec.max_runs;
  int64_t n = 1;
  for (const auto& p : spec.parameters) {
    auto k = static_cast<int64_t>(p.values.size());
    if (n > (int64_t{1} << 40) / k)
      throw ConfigError(spec.source, p.line, p.column,
                        "the grid has more than 2^40 points: give [campaign] max_runs");
    n *= k;
  }
  return spec.max_runs > 0 ? std::min(n, spec.max_runs) : n;
}

std::vector<double> unit_point(const SweepSpec& spec, int64_t index) {
  const size_t dims = spec.parameters.size();
  std::vector<double> u(dims);
  if (dims == 0) return u;
  auto seed_lo = static_cast<uint32_t>(spec.seed), seed_hi = static_cast<uint32_t>(spec.seed >> 32);
  auto to_unit = [](uint64_t x) { return static_cast<double>(x >> 11) * 0x1p-53; };
  switch (spec.method) {
    case SweepMethod::kGrid:
      throw std::logic_error("unit_point: grid specs have no unit points");
    case SweepMethod::kRandom: {
      auto idx = static_cast<uint64_t>(index);
      std::seed_seq seq{seed_lo, seed_hi, static_cast<uint32_t>(idx),
                        static_cast<uint32_t>(idx >> 32)};
      std::mt19937_64 rng(seq);
      for (auto& x : u) x = to_unit(rng());
      return u;
    }
    case SweepMethod::kSobol: {
      if (dims > 3667)  // Boost's direction-number table
        throw ConfigError(spec.source, 0, 0, "sobol supports at most 3667 parameters");
      boost::random::sobol sobol(dims);
      sobol.seed(static_cast<uint64_t>(index) + 1);
      std::seed_seq seq{seed_lo, seed_hi, 0x736f626cU /* "sobl" */};
      std::mt19937_64 shift(seq);
      for (auto& x : u) {
        double v = to_unit(sobol());
        x = std::fmod(v + to_unit(shift()), 1.0);
      }
      return u;
    }
  }
  return u;
}

ExpandedRun expand_run(const SweepSpec& spec, int64_t index, int64_t repeat) {
  const int64_t count = configuration_count(spec);
  if (index < 0 || index >= count || repeat < 0 || repeat >= spec.repeats)
    throw std::out_of_range(fmt::format("run (index {}, repeat {}) is outside the campaign of {} "
                                        "configurations x {} repeats",
                                        index, repeat, count, spec.repeats));
  ExpandedRun run;
  run.index = index;
  run.repeat = repeat;
  run.number = index * spec.repeats + repeat + 1;
  run.config = spec.base;
  if (spec.method == SweepMethod::kGrid) {
    // Mixed radix, the last parameter (by key) varying fastest.
    int64_t rest = index;
    std::vector<size_t> digit(spec.parameters.size());
    for (size_t j = spec.parameters.size(); j-- > 0;) {
      auto k = static_cast<int64_t>(spec.parameters[j].values.size());
      digit[j] = static_cast<size_t>(rest % k);
      rest /= k;
    }
    for (size_t j = 0; j < spec.parameters.size(); ++j) {
      const auto& text = spec.parameters[j].values[digit[j]];
      run.params.push_back({spec.parameters[j].key, text, literal_number(text)});
    }
  } else {
    auto u = unit_point(spec, index);
    for (size_t j = 0; j < spec.parameters.size(); ++j) {
      auto [text, real] = draw_value(spec.parameters[j], u[j]);
      run.params.push_back({spec.parameters[j].key, text, real});
    }
  }
  for (size_t j = 0; j < run.params.size(); ++j)
    apply_literal(run.config, spec.parameters[j], run.params[j].text, spec.source);
  run.config.train.seed += repeat;
  resolve_data_path(run.config, spec.directory);
  try {
    validate(run.config, spec.source);
    check_key_combinations(run.config, spec.source);
  } catch (const ConfigError& e) {
    std::vector<std::string> shown;
    for (const auto& p : run.params) shown.push_back(fmt::format("{} = {}", p.key, p.text));
    throw ConfigError(spec.source, 0, 0,
                      fmt::format("run {} ({}) is not a valid run configuration: {}", run.number,
                                  fmt::join(shown, ", "), e.detail()));
  }
  run.config_sha256 = config_sha256(run.config);
  return run;
}

std::vector<ExpandedRun> expand(const SweepSpec& spec) {
  std::vector<ExpandedRun> runs;
  const int64_t count = configuration_count(spec);
  runs.reserve(static_cast<size_t>(count * spec.repeats));
  for (int64_t i = 0; i < count; ++i)
    for (int64_t r = 0; r < spec.repeats; ++r) runs.push_back(expand_run(spec, i, r));
  return runs;
}

}  // namespace jslds
