// Small in-memory datasets and helpers shared by the model and training tests.
// Legend: B trials, T bins, N neurons, K input channels, O targets.
#pragma once

#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include <torch/torch.h>

#include "core/config.h"
#include "core/data/dataset.h"

namespace jslds::testing {

/// A latent damped oscillator at `freq_hz` (random phase and amplitude per trial) driving
/// Poisson neurons through log-rates b + C x; spike counts (B,T,N) float32.
inline Dataset oscillator_data(int64_t trials, int64_t bins, int64_t neurons, double freq_hz, double bin_ms,
                               uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const double dt = bin_ms / 1000.0;
  const double omega = 2.0 * M_PI * freq_hz * dt;
  const at::Tensor t = torch::arange(bins, torch::kFloat64).view({1, bins});
  const at::Tensor phase = torch::rand({trials, 1}, gen, torch::kFloat64) * (2.0 * M_PI);
  const at::Tensor amplitude = 0.6 + 0.8 * torch::rand({trials, 1}, gen, torch::kFloat64);
  const at::Tensor decay = torch::exp(-0.01 * t);
  const at::Tensor x = torch::stack({amplitude * decay * torch::cos(omega * t + phase),
                                     amplitude * decay * torch::sin(omega * t + phase)},
                                    /*dim=*/2);  // (B,T,2)
  const at::Tensor c = torch::randn({2, neurons}, gen, torch::kFloat64) * 0.8;
  const at::Tensor b = std::log(0.3) + 0.3 * torch::randn({neurons}, gen, torch::kFloat64);
  const at::Tensor rates = torch::exp(torch::matmul(x, c) + b);
  Dataset d;
  d.spikes_btn = torch::poisson(rates, gen).to(torch::kFloat32);
  d.truth["rates_btn"] = rates.to(torch::kFloat32);
  d.bin_ms = bin_ms;
  d.provenance = "test oscillator";
  return d;
}

/// The 3-bit flip-flop (Sussillo & Barak 2013): K = 3 channels of ±1 pulses (probability
/// `pulse_prob` per bin and channel), targets O = 3 hold the sign of each channel's last
/// pulse (0 before the first).
inline Dataset flipflop_data(int64_t trials, int64_t bins, double pulse_prob, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t bits = 3;
  const at::Tensor pulse = (torch::rand({trials, bins, bits}, gen) < pulse_prob).to(torch::kFloat32);
  const at::Tensor sign = torch::where(torch::rand({trials, bins, bits}, gen) < 0.5, -1.0, 1.0).to(torch::kFloat32);
  const at::Tensor inputs = pulse * sign;
  at::Tensor targets = torch::zeros({trials, bins, bits});
  at::Tensor state = torch::zeros({trials, bits});
  for (int64_t t = 0; t < bins; ++t) {
    const at::Tensor in_t = inputs.select(1, t);
    state = torch::where(in_t != 0, in_t, state);
    targets.select(1, t).copy_(state);
  }
  Dataset d;
  d.inputs_btk = inputs;
  d.targets_bto = targets;
  d.bin_ms = 10.0;
  d.provenance = "test flipflop";
  return d;
}

/// First `valid` trials validate, the rest train; neurons: the last `heldout` are held out.
inline Split simple_split(int64_t trials, int64_t valid, int64_t neurons = 0, int64_t heldout = 0) {
  Split s;
  for (int64_t i = 0; i < trials; ++i) (i < valid ? s.valid_trials : s.train_trials).push_back(i);
  for (int64_t i = 0; i < neurons; ++i) (i < neurons - heldout ? s.heldin_neurons : s.heldout_neurons).push_back(i);
  return s;
}

}  // namespace jslds::testing
