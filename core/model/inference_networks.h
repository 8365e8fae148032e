// The approximate posterior of the poisson (LFADS-style) mode, MODEL.md §4:
//  - Encoder: a bidirectional GRU over log(1 + y) of the held-in neurons, and the
//    initial-condition posterior q(g_0) = N(μ_0, σ_0²) read from [final forward state;
//    final backward state].
//  - Controller (only with inferred inputs, m > 0): a GRU cell over [per-step encoder
//    outputs; f_{t−1}] whose state gives q(u_t) = N(μ_t, σ_t²).
//
// Legend: B trials, T bins, N held-in neurons, E encoder width (per direction),
// C controller width, d factors, m inferred inputs, n latent dimension.
#pragma once

#include <cstdint>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace jslds {

struct EncoderOptions {
  EncoderOptions(int64_t neurons, int64_t encoder_dim, int64_t latent_dim)
      : neurons_(neurons), encoder_dim_(encoder_dim), latent_dim_(latent_dim) {}
  /// Number of held-in neurons N the encoder reads (≥ 1).
  TORCH_ARG(int64_t, neurons);
  /// Width E of each GRU direction (model.encoder_dim).
  TORCH_ARG(int64_t, encoder_dim);
  /// Latent dimension n of the initial condition g_0.
  TORCH_ARG(int64_t, latent_dim);
};

struct EncoderOutput {
  torch::Tensor per_step_bte;  // (B,T,2E) encoder outputs, input of the controller
  torch::Tensor ic_mean_bn;    // μ_0 (B,n)
  torch::Tensor ic_logvar_bn;  // log σ_0² (B,n)
};

class EncoderImpl : public torch::nn::Cloneable<EncoderImpl> {
 public:
  explicit EncoderImpl(const EncoderOptions& options);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  /// spikes_btn: counts (B,T,N) of the held-in neurons. Throws c10::Error on a wrong shape.
  EncoderOutput forward(const torch::Tensor& spikes_btn);

  EncoderOptions options;
  torch::nn::GRU gru{nullptr};
  /// On the CPU (float/double) run each direction of `gru` as one autograd node with a
  /// hand-written backward through time (same parameters and math as torch::nn::GRU,
  /// differentiable once). False: call torch::nn::GRU itself.
  bool use_fused_gru = true;
  torch::nn::Linear ic{nullptr};  // 2E → 2n: [μ_0; log σ_0²]
};
TORCH_MODULE(Encoder);

struct ControllerOptions {
  ControllerOptions(int64_t input_dim, int64_t controller_dim, int64_t inferred_input_dim)
      : input_dim_(input_dim), controller_dim_(controller_dim), inferred_input_dim_(inferred_input_dim) {}
  /// Width of [encoder output; f_{t−1}]: 2E + d.
  TORCH_ARG(int64_t, input_dim);
  /// GRU width C (model.controller_dim).
  TORCH_ARG(int64_t, controller_dim);
  /// Number m of inferred inputs (≥ 1).
  TORCH_ARG(int64_t, inferred_input_dim);
};

/// One controller step: its new state and the posterior q(u_t) = N(mean, exp(logvar)).
struct ControllerStep {
  torch::Tensor state_bc;
  torch::Tensor mean_bm;
  torch::Tensor logvar_bm;
};

class ControllerImpl : public torch::nn::Cloneable<ControllerImpl> {
 public:
  explicit ControllerImpl(const ControllerOptions& options);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  /// One step: encoder output (B,2E), previous factors f_{t−1} (B,d), state (B,C).
  ControllerStep forward(const torch::Tensor& encoder_bx, const torch::Tensor& factors_bd,
                         const torch::Tensor& state_bc);

  ControllerOptions options;
  torch::nn::GRUCell cell{nullptr};
  torch::nn::Linear posterior{nullptr};  // C → 2m: [μ_t; log σ_t²]
};
TORCH_MODULE(Controller);

}  // namespace jslds
