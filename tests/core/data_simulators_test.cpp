// Simulators: the properties docs/data.md promises, checked on the generated data.
// Legend: B trials, T time bins, N neurons; f frequency bins of an rfft over time.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numbers>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/data/loaders.h"

namespace fs = std::filesystem;
using namespace jslds;

namespace {

// Frequency (Hz) with the most power of x_bt... averaged over trials (and any trailing dims),
// searched from min_hz upwards. x has time on dim 1.
double peak_frequency_hz(const at::Tensor& x, double bin_ms, double min_hz) {
  auto centred = x.to(torch::kFloat64) - x.to(torch::kFloat64).mean(1, /*keepdim=*/true);
  auto power = torch::fft::rfft(centred, /*n=*/c10::nullopt, /*dim=*/1).abs().square();
  auto per_freq = power.dim() > 2 ? power.mean(0).mean(-1) : power.mean(0);  // (f)
  const int64_t T = x.size(1);
  const double resolution = 1000.0 / (bin_ms * static_cast<double>(T));
  const auto first = static_cast<int64_t>(std::ceil(min_hz / resolution));
  const int64_t k = per_freq.slice(0, first).argmax().item<int64_t>() + first;
  return static_cast<double>(k) * resolution;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

double wrap_angle(double a) { return std::remainder(a, 2.0 * std::numbers::pi); }

}  // namespace

TEST(Flipflop, TargetsFollowTheLastPulsePerBitStartingAtMinusOne) {
  DataOptions o;
  o.sim_seed = 5;
  Dataset d = simulate("flipflop", o);
  ASSERT_EQ(d.inputs_btk.sizes(), (std::vector<int64_t>{400, 25, 6}));
  ASSERT_EQ(d.targets_bto.sizes(), (std::vector<int64_t>{400, 25, 3}));
  EXPECT_FALSE(d.spikes_btn.defined());
  EXPECT_EQ(d.n_neurons(), 0);
  auto in = d.inputs_btk.accessor<float, 3>();
  auto tg = d.targets_bto.accessor<float, 3>();
  int64_t flips = 0;
  for (int64_t b = 0; b < 400; ++b)
    for (int64_t bit = 0; bit < 3; ++bit) {
      float state = -1;
      for (int64_t t = 0; t < 25; ++t) {
        const float up = in[b][t][2 * bit], down = in[b][t][2 * bit + 1];
        ASSERT_TRUE(up == 0 || up == 1) << up;
        ASSERT_TRUE(down == 0 || down == -1) << down;
        ASSERT_FALSE(up != 0 && down != 0);
        const float next = up != 0 ? 1.0f : down != 0 ? -1.0f : state;
        flips += next != state;
        state = next;
        ASSERT_EQ(tg[b][t][bit], state) << "trial " << b << " bit " << bit << " t " << t;
      }
    }
  EXPECT_GT(flips, 400);  // the task is not trivial
  EXPECT_EQ(d.mask_bt.slice(1, 0, 5).sum().item<double>(), 0.0);
  EXPECT_EQ(d.mask_bt.slice(1, 5).min().item<double>(), 1.0);
}

TEST(Oscillator, LatentSpectrumPeaksAtFreqHz) {
  for (double f : {8.0, 5.0}) {
    DataOptions o;
    o.freq_hz = f;
    o.sim_seed = 1;
    Dataset d = simulate("oscillator", o);
    ASSERT_EQ(d.spikes_btn.sizes(), (std::vector<int64_t>{200, 100, 50}));
    EXPECT_EQ(peak_frequency_hz(d.truth.at("latents"), o.bin_ms, 0.5), f);
    // Eigenvalue angle = 2π f Δt.
    auto eig = d.truth.at("eigenvalues");
    const double angle = std::atan2(eig[0][1].item<double>(), eig[0][0].item<double>());
    EXPECT_NEAR(angle / (2 * std::numbers::pi * o.bin_ms / 1000.0), f, 1e-9);
    // The counts carry the rhythm too: project them on the true loading.
    auto projected = torch::matmul(d.spikes_btn.to(torch::kFloat64), d.truth.at("loading"));
    EXPECT_NEAR(peak_frequency_hz(projected, o.bin_ms, 0.5), f, 0.5);
  }
}

TEST(RingTheta, RatesArePeriodicInPositionAndModulatedAtTheta) {
  DataOptions o;
  o.sim_seed = 2;
  Dataset d = simulate("ring-theta", o);
  ASSERT_EQ(d.spikes_btn.sizes(), (std::vector<int64_t>{200, 100, 60}));
  EXPECT_EQ(d.bin_ms, 20.0);
  // Population spikes oscillate at 8 Hz (above the slow position-driven band).
  EXPECT_EQ(peak_frequency_hz(d.spikes_btn.sum(-1), o.bin_ms, 3.0), 8.0);
  // Tuning to θ on the ring: the spike-weighted circular mean of θ in map 0 recovers each
  // neuron's preferred angle, including those whose field wraps around 0 = 2π.
  auto map0 = (d.truth.at("map") == 0).to(torch::kFloat64).unsqueeze(-1);      // (B,T,1)
  auto theta = d.truth.at("position").to(torch::kFloat64).unsqueeze(-1);      // (B,T,1)
  auto w = d.spikes_btn.to(torch::kFloat64) * map0;                           // (B,T,N)
  auto c = (w * torch::cos(theta)).sum(std::vector<int64_t>{0, 1});
  auto s = (w * torch::sin(theta)).sum(std::vector<int64_t>{0, 1});
  auto estimated = torch::atan2(s, c);
  auto preferred = d.truth.at("preferred_angle")[0];
  int64_t recovered = 0;
  for (int64_t n = 0; n < 60; ++n)
    recovered += std::abs(wrap_angle(estimated[n].item<double>() - preferred[n].item<double>())) < 0.35;
  EXPECT_GE(recovered, 54) << "of 60 neurons";
  // Both maps occur and they differ (random remapping).
  const double in_map1 = d.truth.at("map").to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(in_map1, 0.2);
  EXPECT_LT(in_map1, 0.8);
  EXPECT_FALSE(torch::allclose(d.truth.at("preferred_angle")[0], d.truth.at("preferred_angle")[1]));
}

TEST(Lorenz, StatesFollowTheLorenzEquations) {
  DataOptions o;
  Dataset d = simulate("lorenz", o);
  ASSERT_EQ(d.spikes_btn.sizes(), (std::vector<int64_t>{200, 100, 30}));
  auto x = d.truth.at("states").to(torch::kFloat64);  // (B,T,3)
  const double h = d.truth.at("time_units_per_bin").item<double>();
  auto deriv = (x.slice(1, 2) - x.slice(1, 0, -2)) / (2 * h);  // centred difference at t
  auto mid = x.slice(1, 1, -1);
  auto X = mid.select(2, 0), Y = mid.select(2, 1), Z = mid.select(2, 2);
  auto f = torch::stack({10.0 * (Y - X), X * (28.0 - Z) - Y, X * Y - (8.0 / 3.0) * Z}, 2);
  const double relative = ((deriv - f).norm() / f.norm()).item<double>();
  EXPECT_LT(relative, 0.02);
  auto z = d.truth.at("latents").reshape({-1, 3});
  EXPECT_TRUE(torch::allclose(z.mean(0), torch::zeros({3}), 0, 1e-4));
  EXPECT_TRUE(torch::allclose(z.std(0), torch::ones({3}), 0, 1e-4));
}

TEST(Simulators, SameSeedGivesIdenticalFilesAndInMemoryData) {
  const fs::path dir = fs::temp_directory_path() / ("jslds_sim_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char* kind : {"flipflop", "oscillator", "ring-theta", "lorenz"}) {
    DataOptions o;
    o.sim_trials = 20;
    o.sim_seed = 9;
    write_dataset_h5(simulate(kind, o), dir / "a.h5");
    write_dataset_h5(simulate(kind, o), dir / "b.h5");
    EXPECT_EQ(file_bytes(dir / "a.h5"), file_bytes(dir / "b.h5")) << kind;
    o.sim_seed = 10;
    write_dataset_h5(simulate(kind, o), dir / "c.h5");
    EXPECT_NE(file_bytes(dir / "a.h5"), file_bytes(dir / "c.h5")) << kind;
    // data.simulate in a run configuration gives the same data as the written file.
    o.sim_seed = 9;
    o.simulate = kind;
    Dataset memory = load_dataset(o);
    DataOptions from_file;
    from_file.path = (dir / "a.h5").string();
    Dataset file = load_dataset(from_file);
    const auto& a = memory.spikes_btn.defined() ? memory.spikes_btn : memory.targets_bto;
    const auto& b = file.spikes_btn.defined() ? file.spikes_btn : file.targets_bto;
    EXPECT_TRUE(torch::equal(a, b)) << kind;
  }
  fs::remove_all(dir);
}

TEST(Simulators, BadKindAndSizesAreDataErrors) {
  DataOptions o;
  EXPECT_THROW(simulate("pendulum", o), DataError);
  o.freq_hz = 25.0;  // Nyquist of 20 ms bins
  EXPECT_THROW(simulate("oscillator", o), DataError);
  o = DataOptions{};
  o.sim_bins = 5;
  EXPECT_THROW(simulate("flipflop", o), DataError);
}

// Found by a tester: one Lorenz sample cannot be standardised (NaN rates reached Torch's
// Poisson sampler and printed a stack trace). Two samples are enough.
TEST(Lorenz, FewerThanTwoSamplesIsADataErrorAndTwoWork) {
  DataOptions o;
  o.sim_trials = 1;
  o.sim_bins = 1;
  try {
    simulate("lorenz", o);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_EQ(e.file(), "simulate lorenz");
    EXPECT_NE(std::string(e.what()).find("expected at least 2"), std::string::npos) << e.what();
  }
  o.sim_bins = 2;
  o.sim_neurons = 3;
  Dataset d = simulate("lorenz", o);
  EXPECT_TRUE(torch::isfinite(d.truth.at("latents")).all().item<bool>());
  EXPECT_EQ(d.spikes_btn.sizes(), (at::IntArrayRef{1, 2, 3}));
}

// Sizes that cannot fit in memory are rejected before anything is allocated, and a negative
// seed is rejected like in a run configuration.
TEST(Simulators, OversizedSessionsAndNegativeSeedsAreDataErrors) {
  DataOptions o;
  o.sim_trials = 1'000'000'000'000;
  for (const char* kind : {"flipflop", "oscillator", "ring-theta", "lorenz"}) {
    try {
      simulate(kind, o);
      FAIL() << "expected DataError for " << kind;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("of memory: expected smaller data.sim_trials"),
                std::string::npos)
          << e.what();
    }
  }
  o = DataOptions{};
  o.sim_seed = -1;
  EXPECT_THROW(simulate("oscillator", o), DataError);
}
