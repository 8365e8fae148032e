// Run configuration: round trip, every error class, overrides, hash stability.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/config.h"

using jslds::ConfigError;
using jslds::RunConfig;

namespace {

ConfigError expect_error(const std::string& text) {
  try {
    jslds::parse_config(text, "run.toml");
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return ConfigError("", 0, 0, "");
}

}  // namespace

TEST(Config, DefaultsMatchModelMd) {
  RunConfig c;
  EXPECT_EQ(c.model.latent_dim, 64);
  EXPECT_EQ(c.model.cell, "gru");
  EXPECT_DOUBLE_EQ(c.loss.w_fp, 100.0);
  EXPECT_DOUBLE_EQ(c.loss.w_approx, 10.0);
  EXPECT_DOUBLE_EQ(c.train.adam_eps, 0.1);
  EXPECT_DOUBLE_EQ(c.train.lr_decay, 0.9999);
  EXPECT_EQ(c.loss.kl_warmup_steps, (std::vector<int64_t>{500, 1000}));
  EXPECT_EQ(c.analysis.n_inits, 1024);
}

TEST(Config, CanonicalRoundTrip) {
  RunConfig c = jslds::parse_config(
      "[model]\nlatent_dim = 8\ncell = \"tanh\"\n[loss]\nw_fp = 3\n"
      "kl_warmup_steps = [10, 20]\n[data]\nsimulate = \"ring-theta\"\nbin_ms = 10\n",
      "a.toml");
  EXPECT_EQ(c.model.latent_dim, 8);
  EXPECT_EQ(c.model.cell, "tanh");
  EXPECT_DOUBLE_EQ(c.loss.w_fp, 3.0);  // an integer is accepted for a real key
  std::string text = jslds::to_toml(c);
  RunConfig back = jslds::parse_config(text, "b.toml");
  EXPECT_EQ(jslds::to_toml(back), text);
  EXPECT_TRUE(back == c);
  EXPECT_NE(text.find("w_fp = 3.0\n"), std::string::npos);
  EXPECT_NE(text.find("kl_warmup_steps = [10, 20]\n"), std::string::npos);
}

TEST(Config, DefaultsTextParsesToDefaults) {
  RunConfig c = jslds::parse_config(jslds::defaults_toml_commented(), "defaults.toml");
  EXPECT_EQ(jslds::to_toml(c), jslds::to_toml(RunConfig{}));
  EXPECT_NE(jslds::defaults_toml_commented().find("# bin width (ms)"), std::string::npos);
}

TEST(Config, HashIgnoresKeyOrderAndExplicitDefaults) {
  RunConfig a = jslds::parse_config("[model]\nlatent_dim = 8\n[train]\nsteps = 5\n", "a");
  RunConfig b = jslds::parse_config(
      "[train]\nsteps = 5\nlr = 0.05\n[model]\ncell = \"gru\"\nlatent_dim = 8\n", "b");
  EXPECT_EQ(jslds::config_sha256(a), jslds::config_sha256(b));
  RunConfig c = jslds::parse_config("[model]\nlatent_dim = 9\n[train]\nsteps = 5\n", "c");
  EXPECT_NE(jslds::config_sha256(a), jslds::config_sha256(c));
  EXPECT_EQ(jslds::config_sha256(a).size(), 64u);
}

TEST(Config, Sha256KnownVector) {
  EXPECT_EQ(jslds::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Config, UnknownKeyHasPositionAndSuggestion) {
  ConfigError e = expect_error("[model]\ncell = \"gru\"\nlatnt_dim = 8\n");
  EXPECT_EQ(e.file(), "run.toml");
  EXPECT_EQ(e.line(), 3);
  EXPECT_EQ(e.column(), 1);
  EXPECT_NE(std::string(e.what()).find("run.toml:3:1:"), std::string::npos) << e.what();
  EXPECT_NE(e.detail().find("did you mean 'latent_dim'"), std::string::npos) << e.what();
}

TEST(Config, UnknownSectionHasSuggestion) {
  ConfigError e = expect_error("[modle]\nlatent_dim = 8\n");
  EXPECT_EQ(e.line(), 1);
  EXPECT_NE(e.detail().find("did you mean 'model'"), std::string::npos) << e.what();
}

TEST(Config, WrongType) {
  ConfigError e = expect_error("[model]\n\nlatent_dim = \"big\"\n");
  EXPECT_EQ(e.line(), 3);
  EXPECT_EQ(e.column(), 14);
  EXPECT_NE(e.detail().find("model.latent_dim must be an integer, got a string"),
            std::string::npos)
      << e.what();
  ConfigError f = expect_error("[model]\nlatent_dim = 8.5\n");
  EXPECT_NE(f.detail().find("must be an integer, got a float"), std::string::npos);
}

TEST(Config, OutOfRange) {
  EXPECT_NE(expect_error("[model]\nlatent_dim = 0\n").detail().find("expected >= 1"),
            std::string::npos);
  EXPECT_NE(expect_error("[data]\nbin_ms = 0\n").detail().find("expected >= 0.001"),
            std::string::npos);
  EXPECT_NE(expect_error("[data]\nbin_ms = 1e-300\n").detail().find("expected >= 0.001"),
            std::string::npos);
  EXPECT_NE(expect_error("[train]\nsteps = 0\n").detail().find("expected >= 1"),
            std::string::npos);
  EXPECT_NE(expect_error("[data]\nvalid_fraction = 1.0\n").detail().find("< 1.0"),
            std::string::npos);
  EXPECT_NE(expect_error("[train]\nsteps = -1\n").detail().find("train.steps"),
            std::string::npos);
  EXPECT_NE(expect_error("[loss]\nkl_warmup_steps = [100, 10]\n").detail().find("start <= end"),
            std::string::npos);
}

TEST(Config, UnknownEnumListsAllowed) {
  ConfigError e = expect_error("[model]\ncell = \"lstm\"\n");
  EXPECT_NE(e.detail().find("expected one of \"gru\", \"tanh\""), std::string::npos)
      << e.what();
  ConfigError d = expect_error("[runtime]\ndevice = \"gpu\"\n");
  EXPECT_NE(d.detail().find("cuda:K"), std::string::npos) << d.what();
  EXPECT_NO_THROW(jslds::parse_config("[runtime]\ndevice = \"cuda:1\"\n", "x"));
}

TEST(Config, SyntaxErrorHasPosition) {
  ConfigError e = expect_error("[model]\nlatent_dim = = 3\n");
  EXPECT_EQ(e.line(), 2);
  EXPECT_NE(e.detail().find("TOML syntax error"), std::string::npos);
}

TEST(Config, Overrides) {
  RunConfig c;
  jslds::apply_override(c, "model.latent_dim=32");
  jslds::apply_override(c, "model.cell=tanh");  // bare word taken as a string
  jslds::apply_override(c, "data.simulate=ring-theta");
  jslds::apply_override(c, "loss.kl_warmup_steps=[1, 2]");
  jslds::apply_override(c, "train.lr = 1e-3");
  EXPECT_EQ(c.model.latent_dim, 32);
  EXPECT_EQ(c.model.cell, "tanh");
  EXPECT_EQ(c.data.simulate, "ring-theta");
  EXPECT_EQ(c.loss.kl_warmup_steps, (std::vector<int64_t>{1, 2}));
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-3);
  try {
    jslds::apply_override(c, "model.latnt_dim=8");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "--set");
    EXPECT_NE(e.detail().find("did you mean 'latent_dim'"), std::string::npos);
  }
  EXPECT_THROW(jslds::apply_override(c, "model.latent_dim=abc"), ConfigError);
  EXPECT_THROW(jslds::apply_override(c, "latent_dim"), ConfigError);
  // Numbers TOML cannot take are named as such, not as "a string".
  for (const auto& [assignment, message] :
       {std::pair{"train.lr=1e400", "train.lr: 1e400 is out of range of a 64-bit floating-point number"},
        std::pair{"data.bin_ms=40.", "data.bin_ms: 40. is not a number as TOML writes them (e.g. 40.0"}}) {
    try {
      jslds::apply_override(c, assignment);
      ADD_FAILURE() << assignment;
    } catch (const ConfigError& e) {
      EXPECT_NE(e.detail().find(message), std::string::npos) << e.detail();
    }
  }
  // A text key takes such a word as text.
  jslds::apply_override(c, "data.condition_field=1.");
  EXPECT_EQ(c.data.condition_field, "1.");
  EXPECT_EQ(c.model.latent_dim, 32);  // failed overrides change nothing
}

TEST(Config, PathAndSimulateAreExclusive) {
  ConfigError e = expect_error("[data]\npath = \"a.nwb\"\nsimulate = \"lorenz\"\n");
  EXPECT_NE(e.detail().find("both set"), std::string::npos);
  // An override naming one source replaces the other, in either order.
  RunConfig c;
  jslds::apply_override(c, "data.simulate=ring-theta");
  jslds::apply_override(c, "data.path=rec.nwb");
  EXPECT_EQ(c.data.path, "rec.nwb");
  EXPECT_EQ(c.data.simulate, "");
  jslds::apply_override(c, "data.simulate=lorenz");
  EXPECT_EQ(c.data.path, "");
  EXPECT_EQ(c.data.simulate, "lorenz");
}

// A rule between keys is checked on the final configuration: --set may repair a file, in
// any order.
TEST(Config, HeldOutNeuronsNeedPoissonModeInTheFinalConfiguration) {
  RunConfig c = jslds::parse_config("[data]\nheldout_neurons = 0.2\n[model]\nmode = \"task\"\n", "e.toml");
  try {
    jslds::check_key_combinations(c, "e.toml");
    ADD_FAILURE() << "task mode with held-out neurons was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "e.toml");
    EXPECT_NE(e.detail().find("data.heldout_neurons = 0.2 with model.mode = \"task\""), std::string::npos)
        << e.detail();
  }
  RunConfig fixed = c;
  jslds::apply_override(fixed, "data.heldout_neurons=0");
  EXPECT_NO_THROW(jslds::check_key_combinations(fixed, "e.toml with --set"));
  for (const bool mode_first : {true, false}) {
    RunConfig t;
    t.model.mode = "task";
    if (mode_first) jslds::apply_override(t, "model.mode=poisson");
    jslds::apply_override(t, "data.heldout_neurons=0.2");
    if (!mode_first) jslds::apply_override(t, "model.mode=poisson");
    EXPECT_NO_THROW(jslds::check_key_combinations(t, "--set")) << mode_first;
  }
}

// The simulators' neuron counts are known before any data are made: a held-out fraction that
// rounds to no neuron is refused by the configuration (and so by `jslds sweep --dry-run`).
TEST(Config, AHeldOutFractionThatRoundsToNoSimulatedNeuronIsRefused) {
  RunConfig c;
  c.data.simulate = "ring-theta";  // 60 neurons by default
  c.data.heldout_neurons = 0.005;  // 0.3 of a neuron
  try {
    jslds::check_key_combinations(c, "r.toml");
    ADD_FAILURE() << "0.005 of 60 neurons was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(e.detail().find("data.heldout_neurons = 0.005 of the 60 neurons of simulate = \"ring-theta\" rounds "
                              "to no held-out neuron: use e.g. 0.0167 (1/60: one neuron)"),
              std::string::npos)
        << e.detail();
  }
  c.data.heldout_neurons = 0.01;  // 0.6 rounds to one neuron
  EXPECT_NO_THROW(jslds::check_key_combinations(c, "r.toml"));
  c.data.heldout_neurons = 0.005;
  c.data.sim_neurons = 200;  // 1 neuron
  EXPECT_NO_THROW(jslds::check_key_combinations(c, "r.toml"));
  c.data.simulate = "oscillator";  // 50 neurons
  c.data.sim_neurons = 0;
  c.data.heldout_neurons = 0.009;
  EXPECT_THROW(jslds::check_key_combinations(c, "o.toml"), ConfigError);
  // A recording's neuron count is known only when it is read (the data split checks it then).
  RunConfig recorded;
  recorded.data.path = "session.nwb";
  recorded.data.heldout_neurons = 0.001;
  EXPECT_NO_THROW(jslds::check_key_combinations(recorded, "n.toml"));
}

TEST(Config, LoadMissingFile) {
  try {
    jslds::load_config("/nonexistent/run.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos);
  }
}

TEST(Config, ValueTextAndKeys) {
  RunConfig c;
  EXPECT_EQ(jslds::config_value_text(c, "model.latent_dim"), "64");
  EXPECT_EQ(jslds::config_value_text(c, "model.cell"), "\"gru\"");
  EXPECT_EQ(jslds::config_value_text(c, "loss.l2"), "2e-05");
  auto keys = jslds::config_keys();
  EXPECT_EQ(keys.front(), "data.path");
  EXPECT_NE(std::find(keys.begin(), keys.end(), "runtime.threads"), keys.end());
  EXPECT_NE(jslds::to_json(c).find("\"latent_dim\":64"), std::string::npos);
}

TEST(Config, EveryKeyIsDocumented) {
  std::ifstream in(std::string(JSLDS_SOURCE_DIR) + "/docs/config.md");
  ASSERT_TRUE(in) << "docs/config.md is missing";
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string section;
  size_t pos = 0;
  for (const auto& key : jslds::config_keys()) {
    auto dot = key.find('.');
    std::string sec = key.substr(0, dot), name = key.substr(dot + 1);
    if (sec != section) {
      pos = doc.find("## [" + sec + "]");
      ASSERT_NE(pos, std::string::npos) << "section [" << sec << "] not in docs/config.md";
      section = sec;
    }
    EXPECT_NE(doc.find("| `" + name + "` |", pos), std::string::npos)
        << key << " is not documented in docs/config.md (regenerate it with "
                  "scripts/gen_config_doc.py)";
  }
}

// docs/config.md is scripts/gen_config_doc.py's output for `jslds config defaults`, byte for
// byte, and it states the data.path rule that core/config.h (resolve_data_path) refers to.
TEST(Config, DocsConfigMdIsTheGeneratorsOutput) {
  if (std::system("command -v python3 > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "no python3 here to run scripts/gen_config_doc.py";
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("jslds_config_doc_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "defaults.toml") << jslds::defaults_toml_commented();
  const std::string source(JSLDS_SOURCE_DIR);
  ASSERT_EQ(std::system(("python3 " + source + "/scripts/gen_config_doc.py < " + (dir / "defaults.toml").string() +
                         " > " + (dir / "config.md").string())
                            .c_str()),
            0);
  auto slurp = [](const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string generated = slurp(dir / "config.md");
  const std::string doc = slurp(source + "/docs/config.md");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(doc, generated) << "docs/config.md is not the generator's output; regenerate it: "
                               "build/cli/jslds config defaults | python3 scripts/gen_config_doc.py > "
                               "docs/config.md";
  EXPECT_NE(doc.find("A relative `data.path` in a run configuration file is taken from that file's directory"),
            std::string::npos);
  EXPECT_NE(doc.find("a relative path given with `--set data.path=…` is taken from the current directory"),
            std::string::npos);
  EXPECT_NE(doc.find("The run directory's `config.toml` stores the absolute path"), std::string::npos);
}

TEST(Config, DirectoryIsNotAConfig) {
  try {
    jslds::load_config(JSLDS_SOURCE_DIR);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(e.detail().find("is a directory"), std::string::npos) << e.what();
  }
}

TEST(Config, ListErrorsArePositioned) {
  ConfigError order = expect_error("[loss]\n\nkl_warmup_steps = [1000, 500]\n");
  EXPECT_EQ(order.line(), 3);
  EXPECT_NE(order.detail().find("expected start <= end"), std::string::npos) << order.what();
  ConfigError three = expect_error("[loss]\nkl_warmup_steps = [1, 2, 3]\n");
  EXPECT_EQ(three.line(), 2);
  EXPECT_NE(three.detail().find("exactly 2 elements"), std::string::npos) << three.what();
  ConfigError empty = expect_error("[analysis]\ntheta_band_hz = []\n");
  EXPECT_EQ(empty.line(), 2);
  ConfigError element = expect_error("[loss]\nkl_warmup_steps = [1, \"a\"]\n");
  EXPECT_NE(element.detail().find("element 2 is not an integer"), std::string::npos)
      << element.what();
  EXPECT_EQ(element.column(), 23);
}

TEST(Config, IntegerRangesPrintAsIntegers) {
  ConfigError e = expect_error("[model]\nlatent_dim = -1\n");
  EXPECT_NE(e.detail().find("model.latent_dim = -1 is out of range: expected >= 1 and <= 65536"),
            std::string::npos)
      << e.what();
  EXPECT_THROW(jslds::parse_config("[train]\nbatch_size = 1000000000\n", "x"), ConfigError);
  EXPECT_THROW(jslds::parse_config("[runtime]\nthreads = 100000\n", "x"), ConfigError);
}

TEST(Config, BareKeyNamesItsSection) {
  ConfigError e = expect_error("latent_dim = 3\n");
  EXPECT_NE(e.detail().find("write it under [model]"), std::string::npos) << e.what();
}

TEST(Config, OverrideErrorsQuoteTheAssignment) {
  RunConfig c;
  try {
    jslds::apply_override(c, "model.latent_dim=");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(e.detail().find("empty value"), std::string::npos) << e.what();
  }
  try {
    jslds::apply_override(c, "model.latent_dim=0");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(e.detail().find("(in --set 'model.latent_dim=0')"), std::string::npos) << e.what();
  }
  // An override that breaks a rule checked on the whole configuration changes nothing either.
  const std::vector<double> band = c.analysis.theta_band_hz;
  EXPECT_THROW(jslds::apply_override(c, "analysis.theta_band_hz=[10.0, 6.0]"), ConfigError);
  EXPECT_EQ(c.analysis.theta_band_hz, band);
}
