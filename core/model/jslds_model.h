// JsldsModel: a nonlinear latent dynamics model co-trained with a parameter-tied Jacobian
// switching linear dynamical system (Smith, Linderman & Sussillo 2021; MODEL.md §1–4).
//
// One forward pass runs two chains side by side from the same initial state:
//   nonlinear chain   g_t = F(g_{t−1}, u_t)
//   JSLDS chain       e*_t = E(a_{t−1}),  a_t = e*_t + J_h(e*_t,u*)(a_{t−1} − e*_t) + J_u(e*_t,u*)(u_t − u*)
// (the Jacobian products in closed form, GeneratorCell::jvp) and reads both out through the
// same layers with the same dropout mask.
//
// Modes (model.mode):
//   poisson  encoder → q(g_0); controller → inferred inputs (m > 0); external inputs (k > 0);
//            factors f = Ŵ_f g (unit-norm rows); log-rates W_r f + b_r (counts per bin).
//   task     learned initial state h0; external inputs (k ≥ 1); linear readout o = W_o h + b_o.
//
// Legend: B trials, T bins, N neurons (readout), N_in held-in neurons (encoder), n latent,
// p = m + k generator inputs, m inferred inputs, k external inputs, d factors, O task outputs.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "core/config.h"
#include "core/model/expansion_network.h"
#include "core/model/generator_cell.h"
#include "core/model/inference_networks.h"

namespace jslds {

/// Sizes the data fixes (the rest of the architecture comes from ModelOptions).
struct ModelDims {
  int64_t neurons = 0;          // N: neurons the log-rate readout predicts (poisson; 0 in task mode)
  int64_t heldin_neurons = 0;   // N_in: neurons the encoder reads (poisson; = N without co-smoothing)
  int64_t external_inputs = 0;  // k: external input channels (task mode: ≥ 1)
  int64_t outputs = 0;          // O: task targets (task mode; 0 in poisson mode)
};

struct JsldsModelOptions {
  JsldsModelOptions(ModelOptions model_, ModelDims dims_) : model(std::move(model_)), dims(dims_) {}
  ModelOptions model;  // architecture, as validated by core/config
  ModelDims dims;
};

struct ForwardOptions {
  /// Training pass: sample q(g_0) and q(u_t) and apply dropout (global Torch RNG). False:
  /// posterior means and no dropout (evaluation, analysis).
  bool sample = false;
  /// Run the JSLDS chain. False only to measure the co-training overhead (bench/).
  bool jslds = true;
};

/// Everything the losses, metrics and analysis need. Undefined tensors are absent pieces
/// (e.g. the JSLDS chain with ForwardOptions::jslds = false, inferred inputs when m = 0).
struct ModelOutput {
  torch::Tensor g0_bn;            // shared initial state (B,n)
  torch::Tensor g_btn;            // nonlinear states g_1 … g_T (B,T,n)
  torch::Tensor a_btn;            // JSLDS states a_1 … a_T (B,T,n)
  torch::Tensor estar_btn;        // expansion points e*_1 … e*_T (B,T,n)
  torch::Tensor f_estar_btn;      // F(e*_t, u*_t) (B,T,n), for the fixed-point penalty
  torch::Tensor ustar_btp;        // learned input expansion points u*_t (B,T,p); undefined when u* = 0
  torch::Tensor u_btp;            // generator inputs [inferred; external] (B,T,p); undefined when p = 0
  // poisson mode
  torch::Tensor ic_mean_bn, ic_logvar_bn;                     // q(g_0)
  torch::Tensor inferred_btm, inferred_mean_btm, inferred_logvar_btm;  // u_t samples and q(u_t)
  torch::Tensor factors_btd, factors_a_btd;                   // f_t, fa_t
  torch::Tensor log_rates_btn, log_rates_a_btn;               // log λ_t, log λa_t (counts per bin)
  // task mode
  torch::Tensor outputs_bto, outputs_a_bto;                   // o_t, oa_t
};

class JsldsModelImpl : public torch::nn::Cloneable<JsldsModelImpl> {
 public:
  explicit JsldsModelImpl(const JsldsModelOptions& options);

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  /// Runs both chains. poisson: `encoder_spikes_btn` (B,T,N_in) held-in counts are required,
  /// `inputs_btk` (B,T,k) when k > 0. task: `inputs_btk` (B,T,k) required, spikes ignored.
  /// Throws c10::Error with the expected and found shapes on bad input.
  ModelOutput forward(const torch::Tensor& encoder_spikes_btn, const torch::Tensor& inputs_btk,
                      const ForwardOptions& forward_options = {});

  /// F(h, u) of MODEL §2 for states h (B,n) and generator inputs u (B,p) (undefined = zero
  /// input), differentiable.
  torch::Tensor generator_step(const torch::Tensor& h_bn, const torch::Tensor& u_bp = {}) const;

  /// e* = E(a) of MODEL §3 at zero input, for JSLDS states a (B,n); differentiable.
  torch::Tensor expansion_point(const torch::Tensor& a_bn) const;

  /// The Jacobians J_h(h, u = 0) (B,n,n) (J[b][i][j] = ∂F_i/∂h_j) from the closed-form JVP
  /// along the n basis vectors (no autograd graph of F is built beyond ordinary ops).
  torch::Tensor jacobian(const torch::Tensor& h_bn) const;

  /// Readout bias b_r = log(mean rate) (counts per bin, floored at 1e-3): poisson mode only.
  void set_log_rate_bias(const torch::Tensor& mean_rate_n);

  /// The weights the L2 penalty covers (MODEL §5): poisson: the generator's recurrent
  /// weights and the controller's recurrent weights; task: every generator parameter θ.
  std::vector<torch::Tensor> l2_weights() const;

  int64_t latent_dim() const { return options.model.latent_dim; }
  int64_t input_dim() const { return options.model.inferred_input_dim + options.dims.external_inputs; }
  bool poisson_mode() const { return options.model.mode == "poisson"; }
  bool learned_input_expansion() const { return options.model.input_expansion == "learned"; }

  JsldsModelOptions options;
  GeneratorCell cell{nullptr};
  ExpansionNetwork expansion{nullptr};
  // poisson mode
  Encoder encoder{nullptr};
  Controller controller{nullptr};         // only when m > 0
  torch::Tensor factor_weights;           // W_f (d,n), rows normalised in use
  torch::nn::Linear rate_readout{nullptr};  // d → N log-rates
  // task mode
  torch::Tensor h0;                        // learned initial state (n)
  torch::nn::Linear output_readout{nullptr};  // n → O
};
TORCH_MODULE(JsldsModel);

}  // namespace jslds
