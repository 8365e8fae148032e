// Sweep spec parsing and expansion (DESIGN §4): grid sizes, determinism and bounds of random
// and Sobol draws, positioned errors, and every example in sweeps/.
#include "coordinator/sweep_spec.h"

#include <cmath>
#include <filesystem>
#include <set>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace jslds {
namespace {

SweepSpec parse(const std::string& text) { return parse_sweep_spec(text, "spec.toml", "/data"); }

// Expects parse(text) to throw ConfigError at line:column whose message contains `needle`.
void expect_error(const std::string& text, int line, int column, const std::string& needle) {
  try {
    parse(text);
    ADD_FAILURE() << "no error for:\n" << text;
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "spec.toml") << e.what();
    EXPECT_EQ(e.line(), line) << e.what();
    EXPECT_EQ(e.column(), column) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

const char* kGrid = R"(
[campaign]
name = "grid-3x3x2"
[base]
data.simulate = "oscillator"
train.steps = 20
[parameters]
"loss.w_approx" = { values = [1.0, 10.0, 100.0] }
"model.latent_dim" = { values = [8, 16, 32] }
"model.cell" = { values = ["gru", "tanh"] }
)";

TEST(SweepSpec, GridOf3x3x2GivesExactly18DistinctRuns) {
  SweepSpec spec = parse(kGrid);
  auto runs = expand(spec);
  ASSERT_EQ(runs.size(), 18u);
  std::set<std::string> hashes;
  std::set<std::tuple<std::string, std::string, std::string>> combos;
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].number, static_cast<int64_t>(i) + 1);
    hashes.insert(runs[i].config_sha256);
    ASSERT_EQ(runs[i].params.size(), 3u);
    // Parameters are in key order: loss.w_approx, model.cell, model.latent_dim.
    combos.insert({runs[i].params[0].text, runs[i].params[1].text, runs[i].params[2].text});
    EXPECT_EQ(runs[i].config.train.steps, 20);
    EXPECT_EQ(runs[i].config.data.simulate, "oscillator");
  }
  EXPECT_EQ(hashes.size(), 18u);
  EXPECT_EQ(combos.size(), 18u);
  // The last key varies fastest: run 1 and 2 differ in latent_dim only.
  EXPECT_EQ(runs[0].params[2].text, "8");
  EXPECT_EQ(runs[1].params[2].text, "16");
  EXPECT_EQ(runs[0].config.model.latent_dim, 8);
  EXPECT_EQ(runs[1].config.model.latent_dim, 16);
  EXPECT_EQ(runs[17].config.loss.w_approx, 100.0);
  EXPECT_EQ(runs[17].config.model.cell, "tanh");
  ASSERT_TRUE(runs[17].params[0].real.has_value());
  EXPECT_EQ(*runs[17].params[0].real, 100.0);
  EXPECT_FALSE(runs[17].params[1].real.has_value());  // a string value
}

TEST(SweepSpec, RepeatsMultiplyRunsAndShiftTheSeed) {
  SweepSpec spec = parse(std::string(kGrid).replace(std::string(kGrid).find("name"), 0,
                                                    "repeats = 2\nmax_runs = 4\n"));
  auto runs = expand(spec);
  ASSERT_EQ(runs.size(), 8u);
  EXPECT_EQ(runs[0].index, 0);
  EXPECT_EQ(runs[1].index, 0);
  EXPECT_EQ(runs[1].repeat, 1);
  EXPECT_EQ(runs[1].config.train.seed, runs[0].config.train.seed + 1);
  EXPECT_NE(runs[0].config_sha256, runs[1].config_sha256);
  EXPECT_EQ(runs[7].number, 8);
}

TEST(SweepSpec, SpecHashIgnoresKeyOrderAndChangesWithContent) {
  SweepSpec a = parse(kGrid);
  std::string reordered = R"(
[parameters]
"model.cell" = { values = ["gru", "tanh"] }
"model.latent_dim" = { values = [8, 16, 32] }
"loss.w_approx" = { values = [1.0, 10.0, 100.0] }
[base]
train.steps = 20
data.simulate = "oscillator"
[campaign]
name = "grid-3x3x2"
)";
  EXPECT_EQ(parse(reordered).sha256, a.sha256);
  std::string grown = std::string(kGrid);
  grown.replace(grown.find("[8, 16, 32]"), 11, "[8, 16, 32, 64]");
  EXPECT_NE(parse(grown).sha256, a.sha256);
}

const char* kRandom = R"(
[campaign]
name = "rand"
method = "%s"
max_runs = 64
seed = %d
[base]
data.simulate = "oscillator"
[parameters]
"loss.w_fp" = { distribution = "log_uniform", min = 1.0, max = 1000.0 }
"train.lr" = { distribution = "uniform", min = 0.005, max = 0.05 }
"model.controller_dim" = { distribution = "int_uniform", min = 16, max = 64 }
"loss.kl_scale" = { distribution = "normal", mean = 1.0, std = 0.1 }
"model.cell" = { values = ["gru", "tanh"] }
)";

std::string random_spec(const char* method, int seed) {
  char buffer[2048];
  std::snprintf(buffer, sizeof buffer, kRandom, method, seed);
  return buffer;
}

class RandomMethods : public ::testing::TestWithParam<const char*> {};

TEST_P(RandomMethods, DeterministicBySeedDistinctAcrossIndicesInsideBounds) {
  auto runs_a = expand(parse(random_spec(GetParam(), 7)));
  auto runs_b = expand(parse(random_spec(GetParam(), 7)));
  auto runs_c = expand(parse(random_spec(GetParam(), 8)));
  ASSERT_EQ(runs_a.size(), 64u);
  std::set<std::string> hashes;
  std::set<double> lrs;
  int gru = 0, below_mean = 0;
  for (size_t i = 0; i < runs_a.size(); ++i) {
    const auto& c = runs_a[i].config;
    EXPECT_EQ(runs_a[i].config_sha256, runs_b[i].config_sha256) << "run " << i;
    hashes.insert(runs_a[i].config_sha256);
    lrs.insert(c.train.lr);
    EXPECT_GE(c.loss.w_fp, 1.0);
    EXPECT_LE(c.loss.w_fp, 1000.0);
    EXPECT_GE(c.train.lr, 0.005);
    EXPECT_LT(c.train.lr, 0.05);
    EXPECT_GE(c.model.controller_dim, 16);
    EXPECT_LE(c.model.controller_dim, 64);
    EXPECT_TRUE(std::isfinite(c.loss.kl_scale));
    EXPECT_GT(c.loss.kl_scale, 0.0);  // 10 standard deviations
    gru += c.model.cell == "gru";
    below_mean += c.loss.kl_scale < 1.0;
  }
  EXPECT_EQ(hashes.size(), 64u);
  EXPECT_EQ(lrs.size(), 64u);
  // Both categories and both sides of the normal's mean are drawn (P(fail) < 1e-15).
  EXPECT_GT(gru, 8);
  EXPECT_LT(gru, 56);
  EXPECT_GT(below_mean, 8);
  EXPECT_LT(below_mean, 56);
  int same = 0;
  for (size_t i = 0; i < runs_a.size(); ++i) same += runs_a[i].config_sha256 == runs_c[i].config_sha256;
  EXPECT_EQ(same, 0) << "another seed must give other draws";
}

INSTANTIATE_TEST_SUITE_P(SweepSpec, RandomMethods, ::testing::Values("random", "sobol"));

TEST(SweepSpec, ExpansionIsAPureFunctionOfIndex) {
  SweepSpec spec = parse(random_spec("random", 3));
  auto all = expand(spec);
  auto again = expand_run(spec, 41, 0);
  EXPECT_EQ(again.config_sha256, all[41].config_sha256);
  EXPECT_EQ(again.number, 42);
  // A grown campaign keeps the draws of the smaller one.
  SweepSpec grown = spec;
  grown.max_runs = 100;
  EXPECT_EQ(expand_run(grown, 41, 0).config_sha256, all[41].config_sha256);
  EXPECT_THROW(expand_run(spec, 64, 0), std::out_of_range);
}

TEST(SweepSpec, SobolPointsAreLowDiscrepancy) {
  // The first 2^k Sobol points put exactly one point in each of the 2^k intervals of every
  // coordinate; a Cranley-Patterson shift preserves that modulo 1 up to one boundary move.
  SweepSpec spec = parse(random_spec("sobol", 0));
  for (size_t d = 0; d < spec.parameters.size(); ++d) {
    std::multiset<int> cells;
    for (int i = 0; i < 64; ++i) cells.insert(static_cast<int>(unit_point(spec, i)[d] * 64));
    std::set<int> distinct(cells.begin(), cells.end());
    EXPECT_GE(distinct.size(), 62u) << "dimension " << d;
  }
}

TEST(SweepSpec, BaseTablePathsAreResolvedAgainstTheSpecDirectory) {
  SweepSpec spec = parse("[campaign]\nname = \"x\"\n[base]\ndata.path = \"rec/s1.nwb\"\n");
  EXPECT_EQ(spec.base.data.path, "/data/rec/s1.nwb");
  auto runs = expand(spec);
  ASSERT_EQ(runs.size(), 1u);  // no parameters: one configuration
  EXPECT_EQ(runs[0].config.data.path, "/data/rec/s1.nwb");
}

TEST(SweepSpec, BadSpecsGivePositionedErrors) {
  expect_error("[campaign]\nname = \"a b\"\n", 2, 8, "must match [A-Za-z0-9._-]+");
  // "." and ".." would put run directories in ARTIFACTS/ itself or beside it.
  expect_error("[campaign]\nname = \"..\"\n", 2, 8, "not be only dots");
  expect_error("[campaign]\nname = \".\"\n", 2, 8, "not be only dots");
  // A leading '-' would read as an option: `jslds best -x` could not name it.
  expect_error("[campaign]\nname = \"-x\"\n", 2, 8, "not start with '-'");
  expect_error("[campaign]\nname = \"a\"\nmetod = \"grid\"\n", 3, 1, "unknown key 'metod'");
  expect_error("[campaign]\nname = \"a\"\nmethod = \"random\"\n", 1, 1, "needs max_runs > 0");
  expect_error("[campaign]\nname = \"a\"\n[parameters]\n\"model.latnt_dim\" = { values = [8] }\n",
               4, 33, "unknown key 'latnt_dim' in [model] (did you mean 'latent_dim'?)");
  expect_error("[campaign]\nname = \"a\"\n[parameters]\n\"model.latent_dim\" = { values = [8, 0] }\n",
               4, 37, "model.latent_dim = 0 is out of range: expected >= 1");
  expect_error(
      "[campaign]\nname = \"a\"\nmethod = \"sobol\"\nmax_runs = 4\n[parameters]\n"
      "\"train.lr\" = { distribution = \"uniform\", min = 0.1, max = 0.01 }\n",
      6, 48, "min = 0.1 is greater than max = 0.01");
  expect_error(
      "[campaign]\nname = \"a\"\n[parameters]\n\"train.lr\" = { distribution = \"uniform\", "
      "min = 0.1, max = 0.2 }\n",
      4, 31, "takes only values");
  expect_error(
      "[campaign]\nname = \"a\"\nmethod = \"random\"\nmax_runs = 2\n[parameters]\n"
      "\"model.latent_dim\" = { distribution = \"uniform\", min = 8, max = 64 }\n",
      6, 1, "model.latent_dim must be an integer, got a float");
  expect_error(
      "[campaign]\nname = \"a\"\nmethod = \"random\"\nmax_runs = 2\n[parameters]\n"
      "\"loss.w_fp\" = { distribution = \"log_uniform\", min = 0.0, max = 10.0 }\n",
      6, 53, "log_uniform needs min > 0");
  expect_error("[campaign]\nname = \"a\"\n[base]\nmodel.latent_dim = -1\n", 4, 20,
               "model.latent_dim = -1 is out of range");
  expect_error("[campaign]\nname = \"a\"\n[extra]\n", 3, 2, "unknown section or key 'extra'");
  expect_error("[campaign]\nname = \"a\"\nseed = 1\nseed = 2\n", 4, 8,
               "TOML syntax error: Error while parsing key-value pair: cannot redefine");
}

TEST(SweepSpec, AnObjectiveMetricNoRunReportsIsRefusedWithTheClosestName) {
  // Refused when the spec is read, not discovered by `jslds best` after the whole campaign.
  expect_error("[campaign]\nname = \"a\"\nobjective = { metric = \"val_bsp\", goal = \"maximize\" }\n",
               3, 24,
               "objective metric \"val_bsp\" is not a run summary (did you mean 'val_bps'?): expected "
               "one of val_bps, val_bps_jslds, val_cobps, val_nll (Poisson mode); val_mse, "
               "val_mse_jslds (task mode); rel_state_error, fp_residual (JSLDS); train_loss, ");
  expect_error("[campaign]\nname = \"a\"\nobjective = { metric = \"summary.val_bps\" }\n", 3, 24,
               "objective metric \"summary.val_bps\" is not a run summary");
  try {
    parse("[campaign]\nname = \"a\"\nobjective = { metric = \"ring_scor\" }\n");
    ADD_FAILURE() << "ring_scor was accepted";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("(did you mean 'ring_score'?)"), std::string::npos) << what;
    EXPECT_NE(what.find("n_stable_clusters, ring_score (analysis)"), std::string::npos) << what;
  }
  // Task-mode metrics, analysis scalars and the training figures are objectives too.
  for (const char* metric : {"val_bps", "val_cobps", "val_mse", "val_mse_jslds", "rel_state_error",
                             "n_stable_clusters", "ring_score", "dominant_freq_hz", "train_seconds"}) {
    const SweepSpec spec = parse(fmt::format(
        "[campaign]\nname = \"a\"\nobjective = {{ metric = \"{}\", goal = \"minimize\" }}\n", metric));
    EXPECT_EQ(spec.objective_metric, metric);
    EXPECT_EQ(spec.objective_goal, "minimize");
  }
  EXPECT_EQ(parse("[campaign]\nname = \"a\"\n").objective_metric, "val_bps");
}

TEST(SweepSpec, InvalidCombinationNamesTheParameters) {
  // data.path from [base] and data.simulate from a parameter: each valid alone, not together.
  SweepSpec spec = parse(
      "[campaign]\nname = \"a\"\n[base]\ndata.path = \"x.nwb\"\n[parameters]\n"
      "\"data.simulate\" = { values = [\"\", \"oscillator\"] }\n");
  EXPECT_NO_THROW(expand_run(spec, 0, 0));
  try {
    expand_run(spec, 1, 0);
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("run 2 (data.simulate = \"oscillator\")"), std::string::npos) << what;
    EXPECT_NE(what.find("both set"), std::string::npos) << what;
  }
  EXPECT_THROW(expand(spec), ConfigError);
}

TEST(SweepSpec, CrossFieldRulesApplyToTheWholeRunNotToEachParameter) {
  // Setting data.path first would clash with the base's data.simulate until data.simulate
  // is cleared by the next parameter: valid as a whole.
  SweepSpec spec = parse(
      "[campaign]\nname = \"a\"\n[base]\ndata.simulate = \"oscillator\"\n[parameters]\n"
      "\"data.path\" = { values = [\"x.nwb\"] }\n\"data.simulate\" = { values = [\"\"] }\n");
  auto runs = expand(spec);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].config.data.path, "/data/x.nwb");
  EXPECT_EQ(runs[0].config.data.simulate, "");
}

TEST(SweepSpec, BaseOverridesChangeEveryRunAndTheSpecIdentity) {
  SweepSpec spec = parse(kGrid);
  const std::string before = spec.sha256;
  apply_base_overrides(spec, {"base.train.steps=7", "base.data.simulate=ring-theta"});
  EXPECT_NE(spec.sha256, before) << "a campaign resumed with other overrides is another spec";
  EXPECT_NE(spec.canonical.find("steps = 7"), std::string::npos) << spec.canonical;
  for (const auto& run : expand(spec)) {
    EXPECT_EQ(run.config.train.steps, 7);
    EXPECT_EQ(run.config.data.simulate, "ring-theta");
  }
  SweepSpec same = parse(kGrid);
  apply_base_overrides(same, {"base.train.steps=7", "base.data.simulate=ring-theta"});
  EXPECT_EQ(same.sha256, spec.sha256);
}

TEST(SweepSpec, BaseOverrideOfADataPathIsTakenFromTheCurrentDirectory) {
  SweepSpec spec = parse(R"([campaign]
name = "files"
[base]
data.path = "rec.mat"
)");
  EXPECT_EQ(spec.base.data.path, "/data/rec.mat");  // the spec's directory
  apply_base_overrides(spec, {"base.data.path=mine/session.nwb"});
  EXPECT_EQ(spec.base.data.path,
            (std::filesystem::current_path() / "mine/session.nwb").lexically_normal().string());
}

TEST(SweepSpec, BadBaseOverridesSayWhatAndChangeNothing) {
  SweepSpec spec = parse(kGrid);
  const std::string before = spec.sha256;
  auto expect_set_error = [&](const std::string& assignment, const std::string& needle) {
    try {
      apply_base_overrides(spec, {"base.train.steps=9", assignment});
      ADD_FAILURE() << "no error for " << assignment;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.file(), "--set") << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_EQ(spec.sha256, before) << "a failed override must change nothing";
    EXPECT_EQ(spec.base.train.steps, 20);
  };
  expect_set_error("train.steps=5", "base.data.path=");            // no base. prefix
  expect_set_error("base.model.latent_dim=4", "swept in [parameters]");
  expect_set_error("base.train.stepz=5", "stepz");
  expect_set_error("base.train.steps=-1", "train.steps");
}

TEST(SweepSpec, EveryExampleInSweepsParsesAndExpands) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(JSLDS_SOURCE_DIR) / "sweeps";
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    ++files;
    SCOPED_TRACE(entry.path().string());
    SweepSpec spec = load_sweep_spec(entry.path());
    auto runs = expand(spec);
    EXPECT_GT(runs.size(), 0u);
    EXPECT_EQ(spec.sha256.size(), 64u);
  }
  EXPECT_GE(files, 3) << "sweeps/ should hold the documented examples";
}

}  // namespace
}  // namespace jslds
