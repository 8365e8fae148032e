// Simulated sessions with known ground truth (docs/data.md gives every equation).
// Legend: B trials, T time bins, N neurons, K external inputs, O task targets; dt = bin_ms/1000 s.
//
// Every random number comes from one CPU generator seeded with data.sim_seed, drawn in a
// fixed order (parameters first, then trials, then Poisson counts), so the same options
// give a bit-identical Dataset.
#include <array>
#include <cmath>
#include <numbers>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "core/data/loaders.h"
#include "core/data/readers.h"
#include "core/simulator_sizes.h"

namespace jslds {
namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;

// flipflop (Sussillo & Barak 2013; JSLDS paper §5.1)
constexpr int64_t kFlipflopMaskFrom = 5;
constexpr double kFlipflopPulseProbability = 0.08;  // per bit per bin
// oscillator
constexpr double kOscillatorDecayS = 0.5;                 // amplitude decay time constant τ
constexpr double kOscillatorRateMinHz = 5.0, kOscillatorRateMaxHz = 20.0;
constexpr double kOscillatorGainMin = 0.5, kOscillatorGainMax = 1.0;
// ring-theta
constexpr double kRingVelocitySd = std::numbers::pi;     // rad/s, stationary sd of velocity
constexpr double kRingVelocityTauS = 0.5;                // velocity correlation time
constexpr double kRingMapDwellS = 2.0;                   // mean time between map switches
constexpr double kRingKappa = 3.0;                       // von Mises concentration
constexpr double kRingBaseHz = 1.0;                      // rate away from the field
constexpr double kRingPeakMinHz = 10.0, kRingPeakMaxHz = 30.0;
constexpr double kRingThetaDepth = 0.6;                  // theta modulation depth
constexpr double kRingPhaseOffsetSpread = std::numbers::pi / 2;  // offsets ~ U(−π/2, π/2)
// lorenz (LFADS benchmark)
constexpr double kLorenzSigma = 10.0, kLorenzRho = 28.0, kLorenzBeta = 8.0 / 3.0;
constexpr double kLorenzStep = 0.005;       // RK4 step (Lorenz time units)
constexpr int64_t kLorenzStepsPerBin = 2;   // → 0.01 time units per bin
constexpr int64_t kLorenzBurnIn = 1000;     // RK4 steps discarded to reach the attractor
constexpr double kLorenzRateHz = 10.0;      // baseline rate
constexpr double kLorenzGainSd = 0.5;       // sd of the loading weights

using Sizes = SimulatorSizes;

// Bytes the simulators hold per (trial, bin, neuron) element at their peak: ring-theta keeps
// about six float64 (B,T,N) intermediates alive at once.
constexpr double kSimulatorBytesPerElement = 48.0;

// `values_per_bin`: elements per (trial, bin) at the peak (N, or the input channels of task
// data), for the memory estimate.
Sizes resolve_sizes(const std::string& source, const DataOptions& o, Sizes defaults,
                    int64_t values_per_bin = -1) {
  auto pick = [&](int64_t v, int64_t d, const char* key) {
    if (v < 0)
      throw DataError(source, key, fmt::format("is {}, expected ≥ 0 (0 = the default, {})", v, d));
    return v == 0 ? d : v;
  };
  Sizes s{pick(o.sim_trials, defaults.trials, "data.sim_trials"),
          pick(o.sim_bins, defaults.bins, "data.sim_bins"),
          pick(o.sim_neurons, defaults.neurons, "data.sim_neurons")};
  const double per_bin = static_cast<double>(values_per_bin >= 0 ? values_per_bin : s.neurons);
  data_detail::check_memory(
      static_cast<double>(s.trials) * static_cast<double>(s.bins) * std::max(per_bin, 1.0),
      kSimulatorBytesPerElement, source, "data.sim_trials × data.sim_bins × data.sim_neurons",
      fmt::format("{} trials × {} bins × {} neurons", s.trials, s.bins, s.neurons),
      "smaller data.sim_trials, data.sim_bins or data.sim_neurons");
  return s;
}

void check_frequency(const std::string& source, const DataOptions& o) {
  const double nyquist = 500.0 / o.bin_ms;
  if (!(o.freq_hz > 0) || !(o.freq_hz < nyquist))
    throw DataError(source, "data.freq_hz",
                    fmt::format("is {} Hz, expected 0 < freq_hz < {} Hz (the Nyquist frequency "
                                "of {} ms bins)",
                                o.freq_hz, nyquist, o.bin_ms));
}

// Simulators without an oscillation say so when data.freq_hz differs from its default.
void note_unused_frequency(const std::string& kind, const DataOptions& o) {
  if (o.freq_hz != DataOptions{}.freq_hz)
    data_detail::log_data(fmt::format("{} has no oscillation: data.freq_hz = {} ignored", kind,
                                      o.freq_hz));
}

// Poisson counts for per-bin rates, after checking that every rate is finite and ≥ 0 (a
// NaN rate would otherwise surface as an opaque Torch error).
at::Tensor poisson_counts(const at::Tensor& rate_bin, at::Generator& gen, const std::string& source) {
  if (!(torch::isfinite(rate_bin).all().item<bool>() && (rate_bin >= 0).all().item<bool>()))
    throw DataError(source, "rates",
                    "some Poisson rates are negative or not finite with these options: expected "
                    "finite rates (try other data.sim_* sizes or data.bin_ms)");
  return at::poisson(rate_bin, gen);
}

at::Tensor uniform(at::IntArrayRef size, double lo, double hi, at::Generator& gen) {
  return torch::rand(size, gen, torch::kFloat64) * (hi - lo) + lo;
}

at::Tensor scalar(double v) { return torch::tensor(v, torch::kFloat64); }

std::string describe(const std::string& kind, const DataOptions& o, const Sizes& s,
                     bool with_freq) {
  return fmt::format("simulate {} seed={} trials={} bins={} neurons={} bin_ms={}{} (jslds {})",
                     kind, o.sim_seed, s.trials, s.bins, s.neurons, o.bin_ms,
                     with_freq ? fmt::format(" freq_hz={}", o.freq_hz) : "", JSLDS_VERSION);
}

std::vector<std::string> neuron_names(int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(fmt::format("sim{}", i));
  return out;
}

Dataset flipflop(const DataOptions& o, at::Generator& gen) {
  const std::string source = "simulate flipflop";
  Sizes s = resolve_sizes(source, o, kFlipflopSizes, 9);
  if (s.bins <= kFlipflopMaskFrom)
    throw DataError(source, "data.sim_bins",
                    fmt::format("is {}, expected more than {} bins (the mask starts at t = {})",
                                s.bins, kFlipflopMaskFrom, kFlipflopMaskFrom));
  if (o.sim_neurons != 0)
    data_detail::log_data("flipflop is task data without neurons: data.sim_neurons ignored");
  note_unused_frequency("flipflop", o);
  s.neurons = 0;
  const int64_t B = s.trials, T = s.bins;
  auto pulse = torch::rand({B, T, 3}, gen, torch::kFloat64) < kFlipflopPulseProbability;
  auto positive = torch::rand({B, T, 3}, gen, torch::kFloat64) < 0.5;
  auto inputs = torch::zeros({B, T, 6}, torch::kFloat32);
  auto targets = torch::empty({B, T, 3}, torch::kFloat32);
  auto p = pulse.accessor<bool, 3>();
  auto up = positive.accessor<bool, 3>();
  auto in = inputs.accessor<float, 3>();
  auto tg = targets.accessor<float, 3>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t bit = 0; bit < 3; ++bit) {
      float state = -1.0f;
      for (int64_t t = 0; t < T; ++t) {
        if (p[b][t][bit]) {
          state = up[b][t][bit] ? 1.0f : -1.0f;
          in[b][t][2 * bit + (up[b][t][bit] ? 0 : 1)] = state;
        }
        tg[b][t][bit] = state;
      }
    }
  Dataset d;
  d.inputs_btk = inputs;
  d.targets_bto = targets;
  d.mask_bt = torch::ones({B, T}, torch::kFloat32);
  d.mask_bt.narrow(1, 0, kFlipflopMaskFrom).zero_();
  d.bin_ms = o.bin_ms;
  d.truth["bits"] = targets.clone();
  d.truth["pulse_probability"] = scalar(kFlipflopPulseProbability);
  d.provenance = describe("flipflop", o, s, false);
  return d;
}

Dataset oscillator(const DataOptions& o, at::Generator& gen) {
  const std::string source = "simulate oscillator";
  check_frequency(source, o);
  const Sizes s = resolve_sizes(source, o, kOscillatorSizes);
  const int64_t B = s.trials, T = s.bins, N = s.neurons;
  const double dt = o.bin_ms / 1000.0;
  const double r = std::exp(-dt / kOscillatorDecayS);
  const double w = kTwoPi * o.freq_hz * dt;
  const double noise_sd = std::sqrt(1.0 - r * r);  // stationary latent variance 1 per dim
  auto dynamics = torch::tensor({r * std::cos(w), -r * std::sin(w), r * std::sin(w), r * std::cos(w)},
                                torch::kFloat64).reshape({2, 2});

  // Parameters: loading c_n = g_n (cos φ_n, sin φ_n), bias b_n = log(rate_n · dt).
  auto gain = uniform({N}, kOscillatorGainMin, kOscillatorGainMax, gen);
  auto angle = uniform({N}, 0.0, kTwoPi, gen);
  auto loading = torch::stack({gain * torch::cos(angle), gain * torch::sin(angle)}, 1);  // (N,2)
  auto bias = torch::log(uniform({N}, kOscillatorRateMinHz, kOscillatorRateMaxHz, gen) * dt);

  auto z0 = torch::randn({B, 2}, gen, torch::kFloat64);
  auto noise = torch::randn({T, B, 2}, gen, torch::kFloat64) * noise_sd;
  std::vector<at::Tensor> steps;
  steps.reserve(static_cast<size_t>(T));
  auto z = z0;
  auto noise_t = noise.unbind(0);
  for (int64_t t = 0; t < T; ++t) {
    if (t > 0) z = torch::matmul(z, dynamics.t()) + noise_t[static_cast<size_t>(t)];
    steps.push_back(z);
  }
  auto latents = torch::stack(steps, 1);                         // (B,T,2)
  auto rate_bin = torch::exp(torch::matmul(latents, loading.t()) + bias);  // (B,T,N) per bin
  auto counts = poisson_counts(rate_bin, gen, source);

  Dataset d;
  d.spikes_btn = counts.to(torch::kFloat32);
  d.bin_ms = o.bin_ms;
  d.neuron_ids = neuron_names(N);
  d.truth["latents"] = latents.to(torch::kFloat32);
  d.truth["rates_hz"] = (rate_bin / dt).to(torch::kFloat32);
  d.truth["loading"] = loading;
  d.truth["bias"] = bias;
  d.truth["dynamics"] = dynamics;
  d.truth["eigenvalues"] = torch::tensor({r * std::cos(w), r * std::sin(w), r * std::cos(w),
                                          -r * std::sin(w)},
                                         torch::kFloat64).reshape({2, 2});  // rows: (re, im)
  d.truth["frequency_hz"] = scalar(o.freq_hz);
  d.truth["decay_s"] = scalar(kOscillatorDecayS);
  d.provenance = describe("oscillator", o, s, true);
  return d;
}

Dataset ring_theta(const DataOptions& o, at::Generator& gen) {
  const std::string source = "simulate ring-theta";
  check_frequency(source, o);
  const Sizes s = resolve_sizes(source, o, kRingThetaSizes);
  const int64_t B = s.trials, T = s.bins, N = s.neurons;
  const double dt = o.bin_ms / 1000.0;
  const double a = std::exp(-dt / kRingVelocityTauS);
  const double switch_p = 1.0 - std::exp(-dt / kRingMapDwellS);

  // Parameters: preferred angles per map (random remapping), theta phase offsets, peaks.
  auto preferred = uniform({2, N}, 0.0, kTwoPi, gen);
  auto offset = uniform({N}, -kRingPhaseOffsetSpread, kRingPhaseOffsetSpread, gen);
  auto peak = uniform({N}, kRingPeakMinHz, kRingPeakMaxHz, gen);
  // Trials: initial position, velocity, map and theta phase, then the per-bin noise.
  auto theta0 = uniform({B}, 0.0, kTwoPi, gen);
  auto v0 = torch::randn({B}, gen, torch::kFloat64) * kRingVelocitySd;
  auto map0 = torch::rand({B}, gen, torch::kFloat64) < 0.5;
  auto phase0 = uniform({B}, 0.0, kTwoPi, gen);
  auto eps = torch::randn({B, T}, gen, torch::kFloat64);
  auto flip = torch::rand({B, T}, gen, torch::kFloat64) < switch_p;

  auto position = torch::empty({B, T}, torch::kFloat64);
  auto velocity = torch::empty({B, T}, torch::kFloat64);
  auto map = torch::empty({B, T}, torch::kInt64);
  auto phase = torch::empty({B, T}, torch::kFloat64);
  {
    auto pos = position.accessor<double, 2>();
    auto vel = velocity.accessor<double, 2>();
    auto mp = map.accessor<int64_t, 2>();
    auto ph = phase.accessor<double, 2>();
    auto th0 = theta0.accessor<double, 1>();
    auto vv0 = v0.accessor<double, 1>();
    auto m0 = map0.accessor<bool, 1>();
    auto p0 = phase0.accessor<double, 1>();
    auto e = eps.accessor<double, 2>();
    auto fl = flip.accessor<bool, 2>();
    const double innovation = std::sqrt(1.0 - a * a) * kRingVelocitySd;
    for (int64_t b = 0; b < B; ++b) {
      double th = th0[b], v = vv0[b];
      int64_t m = m0[b] ? 1 : 0;
      for (int64_t t = 0; t < T; ++t) {
        if (t > 0) {
          th = std::fmod(th + v * dt, kTwoPi);
          if (th < 0) th += kTwoPi;
          v = a * v + innovation * e[b][t];
          if (fl[b][t]) m = 1 - m;
        }
        pos[b][t] = th;
        vel[b][t] = v;
        mp[b][t] = m;
        ph[b][t] = std::fmod(p0[b] + kTwoPi * o.freq_hz * dt * static_cast<double>(t), kTwoPi);
      }
    }
  }
  // rate_n(t) = (base + peak_n·exp(κ(cos(θ_t − μ_{n,m_t}) − 1))) · (1 + depth·cos(φ_t + o_n))
  auto mu = preferred.index({map});                                     // (B,T,N)
  auto tuning = torch::exp(kRingKappa * (torch::cos(position.unsqueeze(-1) - mu) - 1.0));
  auto theta_mod = 1.0 + kRingThetaDepth * torch::cos(phase.unsqueeze(-1) + offset);
  auto rates_hz = (kRingBaseHz + peak * tuning) * theta_mod;
  auto counts = poisson_counts(rates_hz * dt, gen, source);

  Dataset d;
  d.spikes_btn = counts.to(torch::kFloat32);
  d.bin_ms = o.bin_ms;
  d.neuron_ids = neuron_names(N);
  d.truth["position"] = position.to(torch::kFloat32);
  d.truth["velocity"] = velocity.to(torch::kFloat32);
  d.truth["map"] = map;
  d.truth["theta_phase"] = phase.to(torch::kFloat32);
  d.truth["frequency_hz"] = scalar(o.freq_hz);
  d.truth["rates_hz"] = rates_hz.to(torch::kFloat32);
  d.truth["preferred_angle"] = preferred;
  d.truth["phase_offset"] = offset;
  d.truth["peak_hz"] = peak;
  d.provenance = describe("ring-theta", o, s, true);
  return d;
}

Dataset lorenz(const DataOptions& o, at::Generator& gen) {
  const std::string source = "simulate lorenz";
  note_unused_frequency("lorenz", o);
  const Sizes s = resolve_sizes(source, o, kLorenzSizes);
  const int64_t B = s.trials, T = s.bins, N = s.neurons;
  if (B * T < 2)
    throw DataError(source, "data.sim_trials × data.sim_bins",
                    fmt::format("is {} × {} = {} sample, expected at least 2: the latents are "
                                "the Lorenz coordinates standardised over all trials and bins",
                                B, T, B * T));
  const double dt = o.bin_ms / 1000.0;
  auto loading = torch::randn({N, 3}, gen, torch::kFloat64) * kLorenzGainSd;
  auto bias = torch::full({N}, std::log(kLorenzRateHz * dt), torch::kFloat64);
  // Initial states around the attractor, then burn-in.
  auto init = torch::randn({B, 3}, gen, torch::kFloat64) * 10.0 +
              torch::tensor({0.0, 0.0, 25.0}, torch::kFloat64);
  auto states = torch::empty({B, T, 3}, torch::kFloat64);
  {
    auto x0 = init.accessor<double, 2>();
    auto out = states.accessor<double, 3>();
    using V = std::array<double, 3>;
    auto f = [](const V& x) {
      return V{kLorenzSigma * (x[1] - x[0]), x[0] * (kLorenzRho - x[2]) - x[1],
               x[0] * x[1] - kLorenzBeta * x[2]};
    };
    auto axpy = [](const V& x, double h, const V& k) {
      return V{x[0] + h * k[0], x[1] + h * k[1], x[2] + h * k[2]};
    };
    auto rk4 = [&](V x) {  // classical Runge–Kutta step of kLorenzStep
      const double h = kLorenzStep;
      V k1 = f(x), k2 = f(axpy(x, h / 2, k1)), k3 = f(axpy(x, h / 2, k2)), k4 = f(axpy(x, h, k3));
      for (int i = 0; i < 3; ++i) x[i] += h / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
      return x;
    };
    for (int64_t b = 0; b < B; ++b) {
      V x{x0[b][0], x0[b][1], x0[b][2]};
      for (int64_t i = 0; i < kLorenzBurnIn; ++i) x = rk4(x);
      for (int64_t t = 0; t < T; ++t) {
        if (t > 0)
          for (int64_t i = 0; i < kLorenzStepsPerBin; ++i) x = rk4(x);
        for (int k = 0; k < 3; ++k) out[b][t][k] = x[static_cast<size_t>(k)];
      }
    }
  }
  // Latents: each Lorenz coordinate standardised over the whole dataset.
  auto flat = states.reshape({-1, 3});
  auto latents = (states - flat.mean(0)) / flat.std(0);
  auto rate_bin = torch::exp(torch::matmul(latents, loading.t()) + bias);
  auto counts = poisson_counts(rate_bin, gen, source);

  Dataset d;
  d.spikes_btn = counts.to(torch::kFloat32);
  d.bin_ms = o.bin_ms;
  d.neuron_ids = neuron_names(N);
  d.truth["states"] = states.to(torch::kFloat32);
  d.truth["latents"] = latents.to(torch::kFloat32);
  d.truth["rates_hz"] = (rate_bin / dt).to(torch::kFloat32);
  d.truth["loading"] = loading;
  d.truth["bias"] = bias;
  d.truth["sigma"] = scalar(kLorenzSigma);
  d.truth["rho"] = scalar(kLorenzRho);
  d.truth["beta"] = scalar(kLorenzBeta);
  d.truth["time_units_per_bin"] = scalar(kLorenzStep * kLorenzStepsPerBin);
  d.provenance = describe("lorenz", o, s, false);
  return d;
}

}  // namespace

Dataset simulate(const std::string& kind, const DataOptions& options) {
  const std::string source = "simulate " + kind;
  if (!(options.bin_ms > 0) || !std::isfinite(options.bin_ms))
    throw DataError(source, "data.bin_ms", fmt::format("is {}, expected > 0", options.bin_ms));
  if (options.sim_seed < 0)
    throw DataError(source, "data.sim_seed",
                    fmt::format("is {}, expected a non-negative integer", options.sim_seed));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(options.sim_seed));
  if (kind == "flipflop") return flipflop(options, gen);
  if (kind == "oscillator") return oscillator(options, gen);
  if (kind == "ring-theta") return ring_theta(options, gen);
  if (kind == "lorenz") return lorenz(options, gen);
  throw DataError(source, "data.simulate",
                  fmt::format("unknown simulator '{}': expected flipflop, oscillator, ring-theta "
                              "or lorenz",
                              kind));
}

}  // namespace jslds
