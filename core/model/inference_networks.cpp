// Legend: B trials, T bins, N held-in neurons, E encoder width, C controller width,
// d factors, m inferred inputs, n latent dimension.
#include "core/model/inference_networks.h"

#include <ostream>

#include <torch/torch.h>

namespace jslds {

namespace {

// One direction of a single-layer torch::nn::GRU over a whole sequence as ONE autograd node
// (LibTorch's CPU GRU records ~10 nodes per time step). Gates (r, z, n) as in torch::nn::GRU:
//   hh = h W_hh^T + b_hh;  r = σ(xi_r + hh_r);  z = σ(xi_z + hh_z);
//   c = tanh(xi_n + r ⊙ hh_n);  h' = (1 − z) ⊙ c + z ⊙ h,   h_0 = 0,
// where xi = x W_ih^T + b_ih (B,T,3E) is computed outside (an ordinary differentiable linear).
// Returns every state (B,T,E) in time order; `reverse` runs t = T−1 … 0. Backward is
// back-propagation through time written out (once differentiable).
struct GruSequenceFunction : public torch::autograd::Function<GruSequenceFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& xi_bt3,
                                                const at::Tensor& w_hh, const at::Tensor& b_hh, bool reverse) {
    const at::Tensor xi = xi_bt3.contiguous();
    const int64_t B = xi.size(0), T = xi.size(1), E = w_hh.size(1);
    const at::Tensor w_hh_t = w_hh.t();
    at::Tensor out = at::empty({B, T, E}, xi.options());
    // Per step, four (B,E) planes: r, z, c and hh_n (processing order). The gate
    // nonlinearities run as ATen's vectorised sigmoid_/tanh_ over whole planes: the scalar
    // libm calls they replace took about a tenth of a training step.
    at::Tensor gates = at::empty({T, 4, B, E}, xi.options());
    at::Tensor h_prev = at::zeros({T, B, E}, xi.options());      // state before each step
    at::Tensor h = at::zeros({B, E}, xi.options());
    at::Tensor hh = at::empty({B, 3 * E}, xi.options());
    const int64_t BE = B * E;
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = reverse ? T - 1 - s : s;
      at::addmm_out(hh, b_hh, h, w_hh_t);
      const at::Tensor planes = gates.select(0, s);
      AT_DISPATCH_FLOATING_TYPES(xi.scalar_type(), "gru_sequence_forward", [&] {
        using S = scalar_t;
        const S* X = xi.data_ptr<S>();
        const S* HH = hh.data_ptr<S>();
        S* H = h.data_ptr<S>();
        S* G = planes.data_ptr<S>();
        S* HP = h_prev.data_ptr<S>() + s * BE;
        S* O = out.data_ptr<S>();
        for (int64_t b = 0; b < B; ++b) {
          const S* x = X + (b * T + t) * 3 * E;
          const S* hr = HH + b * 3 * E;
          for (int64_t j = 0; j < E; ++j) {
            G[b * E + j] = x[j] + hr[j];               // r before σ
            G[BE + b * E + j] = x[E + j] + hr[E + j];  // z before σ
          }
        }
        planes.narrow(0, 0, 2).sigmoid_();
        for (int64_t b = 0; b < B; ++b) {
          const S* x = X + (b * T + t) * 3 * E;
          const S* hr = HH + b * 3 * E;
          for (int64_t j = 0; j < E; ++j) {
            G[2 * BE + b * E + j] = x[2 * E + j] + G[b * E + j] * hr[2 * E + j];  // c before tanh
            G[3 * BE + b * E + j] = hr[2 * E + j];
          }
        }
        planes.select(0, 2).tanh_();
        for (int64_t i = 0; i < BE; ++i) {
          const S hp = H[i], z = G[BE + i], c = G[2 * BE + i];
          const S hn = (S(1) - z) * c + z * hp;
          HP[i] = hp;
          H[i] = hn;
          const int64_t b = i / E, j = i % E;
          O[(b * T + t) * E + j] = hn;
        }
      });
    }
    ctx->save_for_backward({w_hh});
    ctx->saved_data["gates"] = gates;
    ctx->saved_data["h_prev"] = h_prev;
    ctx->saved_data["reverse"] = reverse;
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "Encoder: the fused GRU sequence is differentiable once only (create_graph is not supported)");
    const at::Tensor w_hh = ctx->get_saved_variables()[0];
    const at::Tensor gates = ctx->saved_data["gates"].toTensor();
    const at::Tensor h_prev = ctx->saved_data["h_prev"].toTensor();
    const bool reverse = ctx->saved_data["reverse"].toBool();
    const at::Tensor g_out = grads[0].contiguous();
    const int64_t B = g_out.size(0), T = g_out.size(1), E = g_out.size(2);
    at::Tensor g_xi = at::empty({B, T, 3 * E}, g_out.options());
    at::Tensor g_hh_all = at::empty({T, B, 3 * E}, g_out.options());  // processing order
    at::Tensor g_h = at::zeros({B, E}, g_out.options());             // carried into the previous step
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = reverse ? T - 1 - s : s;
      AT_DISPATCH_FLOATING_TYPES(g_out.scalar_type(), "gru_sequence_backward", [&] {
        using S = scalar_t;
        const S* GO = g_out.data_ptr<S>();
        const S* G = gates.data_ptr<S>() + s * 4 * B * E;  // planes r, z, c, hh_n
        const S* HP = h_prev.data_ptr<S>() + s * B * E;
        S* GH = g_h.data_ptr<S>();
        S* GX = g_xi.data_ptr<S>();
        S* GHH = g_hh_all.data_ptr<S>() + s * B * 3 * E;
        for (int64_t b = 0; b < B; ++b) {
          S* gx = GX + (b * T + t) * 3 * E;
          S* ghh = GHH + b * 3 * E;
          for (int64_t j = 0; j < E; ++j) {
            const int64_t i = b * E + j;
            const S r = G[i], z = G[B * E + i], c = G[2 * B * E + i], hn = G[3 * B * E + i];
            const S gh = GO[(b * T + t) * E + j] + GH[b * E + j];
            const S g_cpre = gh * (S(1) - z) * (S(1) - c * c);
            const S g_rpre = g_cpre * hn * r * (S(1) - r);
            const S g_zpre = gh * (HP[b * E + j] - c) * z * (S(1) - z);
            gx[j] = g_rpre;
            gx[E + j] = g_zpre;
            gx[2 * E + j] = g_cpre;
            ghh[j] = g_rpre;
            ghh[E + j] = g_zpre;
            ghh[2 * E + j] = g_cpre * r;
            GH[b * E + j] = gh * z;  // direct path; + g_hh W_hh below
          }
        }
      });
      g_h.addmm_(g_hh_all[s], w_hh);
    }
    const at::Tensor g_hh_flat = g_hh_all.view({T * B, 3 * E});
    const at::Tensor g_w_hh = at::mm(g_hh_flat.t(), h_prev.view({T * B, E}));
    const at::Tensor g_b_hh = g_hh_flat.sum(0);
    return {g_xi, g_w_hh, g_b_hh, at::Tensor()};
  }
};

}  // namespace

EncoderImpl::EncoderImpl(const EncoderOptions& options_) : options(options_) { reset(); }

void EncoderImpl::reset() {
  TORCH_CHECK(options.neurons() >= 1, "Encoder: needs at least one held-in neuron, got ", options.neurons());
  TORCH_CHECK(options.encoder_dim() >= 1, "Encoder: encoder_dim must be >= 1, got ", options.encoder_dim());
  gru = register_module(
      "gru", torch::nn::GRU(torch::nn::GRUOptions(options.neurons(), options.encoder_dim())
                                .batch_first(true)
                                .bidirectional(true)));
  ic = register_module("ic", torch::nn::Linear(2 * options.encoder_dim(), 2 * options.latent_dim()));
}

void EncoderImpl::pretty_print(std::ostream& stream) const {
  stream << "jslds::Encoder(neurons=" << options.neurons() << ", encoder_dim=" << options.encoder_dim()
         << ", latent_dim=" << options.latent_dim() << ")";
}

EncoderOutput EncoderImpl::forward(const torch::Tensor& spikes_btn) {
  TORCH_CHECK(spikes_btn.dim() == 3 && spikes_btn.size(2) == options.neurons(),
              "Encoder: expected spike counts (B,T,", options.neurons(), "), got shape ",
              spikes_btn.sizes());
  const torch::Tensor x = torch::log1p(spikes_btn);
  const auto dtype = x.scalar_type();
  torch::Tensor out_bte, final_bx;
  const auto w = gru->named_parameters(/*recurse=*/false);
  if (use_fused_gru && x.device().is_cpu() && (dtype == torch::kFloat32 || dtype == torch::kFloat64) &&
      w["weight_ih_l0"].scalar_type() == dtype) {
    // Both directions as one node each (GruSequenceFunction), identical math to torch::nn::GRU.
    const torch::Tensor fwd = GruSequenceFunction::apply(torch::linear(x, w["weight_ih_l0"], w["bias_ih_l0"]),
                                                         w["weight_hh_l0"], w["bias_hh_l0"], false)[0];
    const torch::Tensor bwd =
        GruSequenceFunction::apply(torch::linear(x, w["weight_ih_l0_reverse"], w["bias_ih_l0_reverse"]),
                                   w["weight_hh_l0_reverse"], w["bias_hh_l0_reverse"], true)[0];
    out_bte = torch::cat({fwd, bwd}, /*dim=*/2);
    final_bx = torch::cat({fwd.select(1, fwd.size(1) - 1), bwd.select(1, 0)}, /*dim=*/1);
  } else {
    auto [out, h_n] = gru->forward(x);  // h_n (2,B,E)
    out_bte = out;
    final_bx = torch::cat({h_n[0], h_n[1]}, /*dim=*/1);
  }
  auto chunks = ic->forward(final_bx).chunk(2, /*dim=*/1);
  return {out_bte, chunks[0], chunks[1]};
}

ControllerImpl::ControllerImpl(const ControllerOptions& options_) : options(options_) { reset(); }

void ControllerImpl::reset() {
  TORCH_CHECK(options.inferred_input_dim() >= 1, "Controller: inferred_input_dim must be >= 1, got ",
              options.inferred_input_dim());
  TORCH_CHECK(options.controller_dim() >= 1, "Controller: controller_dim must be >= 1, got ",
              options.controller_dim());
  cell = register_module("cell", torch::nn::GRUCell(options.input_dim(), options.controller_dim()));
  posterior = register_module(
      "posterior", torch::nn::Linear(options.controller_dim(), 2 * options.inferred_input_dim()));
}

void ControllerImpl::pretty_print(std::ostream& stream) const {
  stream << "jslds::Controller(input_dim=" << options.input_dim()
         << ", controller_dim=" << options.controller_dim()
         << ", inferred_input_dim=" << options.inferred_input_dim() << ")";
}

ControllerStep ControllerImpl::forward(const torch::Tensor& encoder_bx, const torch::Tensor& factors_bd,
                                       const torch::Tensor& state_bc) {
  const torch::Tensor state = cell->forward(torch::cat({encoder_bx, factors_bd}, /*dim=*/1), state_bc);
  auto chunks = posterior->forward(state).chunk(2, /*dim=*/1);
  return {state, chunks[0], chunks[1]};
}

}  // namespace jslds
