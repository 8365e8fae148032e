// Legend: B trials, T bins, N neurons, N_in held-in neurons, n latent, p = m + k inputs,
// m inferred inputs, k external inputs, d factors, O task outputs, q cell input drive width.
#include "core/model/jslds_model.h"

#include <cmath>
#include <ostream>

#include <torch/torch.h>

namespace jslds {

JsldsModelImpl::JsldsModelImpl(const JsldsModelOptions& options_) : options(options_) { reset(); }

void JsldsModelImpl::reset() {
  const ModelOptions& mo = options.model;
  const ModelDims& dims = options.dims;
  const bool poisson = poisson_mode();
  TORCH_CHECK(poisson || mo.mode == "task", "JsldsModel: model.mode must be poisson or task, got '",
              mo.mode, "'");
  const int64_t n = mo.latent_dim;
  const int64_t m = poisson ? mo.inferred_input_dim : 0;
  TORCH_CHECK(poisson || mo.inferred_input_dim == 0,
              "JsldsModel: inferred inputs (model.inferred_input_dim = ", mo.inferred_input_dim,
              ") need model.mode = poisson; task mode is driven by the external inputs only");
  if (poisson) {
    TORCH_CHECK(dims.neurons >= 1 && dims.heldin_neurons >= 1 && dims.heldin_neurons <= dims.neurons,
                "JsldsModel: poisson mode needs >= 1 neurons and 1..N held-in neurons, got N = ",
                dims.neurons, ", held-in ", dims.heldin_neurons);
  } else {
    TORCH_CHECK(dims.outputs >= 1 && dims.external_inputs >= 1,
                "JsldsModel: task mode needs >= 1 input channels and >= 1 targets, got ",
                dims.external_inputs, " inputs and ", dims.outputs, " targets");
  }
  const int64_t p = m + dims.external_inputs;
  const bool learned = learned_input_expansion();
  TORCH_CHECK(!learned || p >= 1,
              "JsldsModel: model.input_expansion = \"learned\" needs generator inputs, but there are "
              "no inferred or external inputs");

  cell = register_module("cell", GeneratorCell(GeneratorCellOptions(n, p)
                                                   .kind(parse_cell_kind(mo.cell))
                                                   .forget_bias(poisson ? 0.5 : 0.0)));
  expansion = register_module(
      "expansion", ExpansionNetwork(ExpansionNetworkOptions(n, mo.expansion_layers)
                                        .input_dim(p)
                                        .learned_input(learned)));
  if (poisson) {
    encoder = register_module("encoder", Encoder(EncoderOptions(dims.heldin_neurons, mo.encoder_dim, n)));
    if (m > 0) {
      controller = register_module(
          "controller", Controller(ControllerOptions(2 * mo.encoder_dim + mo.factors_dim,
                                                     mo.controller_dim, m)));
    }
    factor_weights = register_parameter(
        "factor_weights", torch::randn({mo.factors_dim, n}) / std::sqrt(static_cast<double>(n)));
    rate_readout = register_module("rate_readout", torch::nn::Linear(mo.factors_dim, dims.neurons));
    torch::NoGradGuard no_grad;
    rate_readout->weight.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(mo.factors_dim)));
    rate_readout->bias.zero_();
  } else {
    h0 = register_parameter("h0", torch::zeros({n}));
    output_readout = register_module("output_readout", torch::nn::Linear(n, dims.outputs));
  }
}

void JsldsModelImpl::pretty_print(std::ostream& stream) const {
  const ModelOptions& mo = options.model;
  stream << "jslds::JsldsModel(mode=" << mo.mode << ", cell=" << mo.cell << ", latent_dim=" << mo.latent_dim
         << ", inputs=" << input_dim() << ", input_expansion=" << mo.input_expansion;
  if (poisson_mode()) {
    stream << ", neurons=" << options.dims.neurons << ", heldin_neurons=" << options.dims.heldin_neurons
           << ", factors_dim=" << mo.factors_dim << ", inferred_input_dim=" << mo.inferred_input_dim;
  } else {
    stream << ", outputs=" << options.dims.outputs;
  }
  stream << ")";
}

ModelOutput JsldsModelImpl::forward(const torch::Tensor& encoder_spikes_btn, const torch::Tensor& inputs_btk,
                                    const ForwardOptions& fo) {
  const ModelOptions& mo = options.model;
  const bool poisson = poisson_mode();
  const int64_t n = mo.latent_dim;
  const int64_t m = poisson ? mo.inferred_input_dim : 0;
  const int64_t k = options.dims.external_inputs;
  const bool learned = learned_input_expansion();

  int64_t B = 0;
  int64_t T = 0;
  if (poisson) {
    TORCH_CHECK(encoder_spikes_btn.defined() && encoder_spikes_btn.dim() == 3 &&
                    encoder_spikes_btn.size(2) == options.dims.heldin_neurons,
                "JsldsModel: expected held-in spike counts (B,T,", options.dims.heldin_neurons, "), got ",
                encoder_spikes_btn.defined() ? c10::str(encoder_spikes_btn.sizes()) : "none");
    B = encoder_spikes_btn.size(0);
    T = encoder_spikes_btn.size(1);
  } else {
    TORCH_CHECK(inputs_btk.defined() && inputs_btk.dim() == 3,
                "JsldsModel: task mode needs the external inputs (B,T,", k, ")");
    B = inputs_btk.size(0);
    T = inputs_btk.size(1);
  }
  TORCH_CHECK(T >= 1 && B >= 1, "JsldsModel: empty batch (B = ", B, ", T = ", T, ")");
  if (k > 0) {
    TORCH_CHECK(inputs_btk.defined() && inputs_btk.dim() == 3 && inputs_btk.size(0) == B &&
                    inputs_btk.size(1) == T && inputs_btk.size(2) == k,
                "JsldsModel: expected external inputs (", B, ",", T, ",", k, "), got ",
                inputs_btk.defined() ? c10::str(inputs_btk.sizes()) : "none");
  }

  ModelOutput out;
  std::vector<torch::Tensor> encoder_steps;  // T × (B,2E), only with a controller
  torch::Tensor g0;
  if (poisson) {
    EncoderOutput enc = encoder->forward(encoder_spikes_btn);
    out.ic_mean_bn = enc.ic_mean_bn;
    out.ic_logvar_bn = enc.ic_logvar_bn;
    g0 = fo.sample ? enc.ic_mean_bn + torch::exp(0.5 * enc.ic_logvar_bn) * torch::randn_like(enc.ic_mean_bn)
                   : enc.ic_mean_bn;
    if (m > 0) encoder_steps = enc.per_step_bte.unbind(1);
  } else {
    g0 = h0.unsqueeze(0).expand({B, n});
  }
  out.g0_bn = g0;

  // Dropout on the generator state before the readout, one mask shared by both chains.
  torch::Tensor mask_btn;  // (B,T+1,n): index 0 masks g_0 (controller input), t masks g_t
  std::vector<torch::Tensor> masks;
  if (poisson && fo.sample && mo.dropout > 0.0) {
    const double keep = 1.0 - mo.dropout;
    mask_btn = torch::empty({B, T + 1, n}, g0.options()).bernoulli_(keep).div_(keep);
    masks = mask_btn.unbind(1);
  }
  auto masked = [&](const torch::Tensor& state, int64_t t) { return masks.empty() ? state : state * masks[t]; };

  const PackedCell packed = cell->pack();
  PackedExpansion packed_expansion;
  if (fo.jslds) packed_expansion = expansion->pack();
  torch::Tensor factor_map_nd;  // Ŵ_f^T
  if (poisson) factor_map_nd = torch::nn::functional::normalize(
                   factor_weights, torch::nn::functional::NormalizeFuncOptions().dim(1)).t();

  // Inputs are unbound once: slicing [:, t] in the loop makes every backward step fill a
  // zero tensor of the whole sequence (STYLE.md, Known hazards).
  std::vector<torch::Tensor> external_drive, external_steps;
  if (k > 0) {
    external_drive = cell->input_drive_columns(inputs_btk, m, k).unbind(1);
    if (learned) external_steps = inputs_btk.unbind(1);
  }
  torch::Tensor inferred_map_mq;  // W_u[:, :m]^T
  if (m > 0) inferred_map_mq = cell->w_u.narrow(1, 0, m).t();

  std::vector<torch::Tensor> gs, as, es, fes, ustars, us, mus, logvars, fs;
  gs.reserve(T);
  torch::Tensor g = g0;
  torch::Tensor a = g0;
  torch::Tensor controller_state, factors_prev;
  if (m > 0) {
    controller_state = torch::zeros({B, mo.controller_dim}, g0.options());
    factors_prev = torch::mm(masked(g0, 0), factor_map_nd);
  }
  for (int64_t t = 0; t < T; ++t) {
    torch::Tensor uw;    // W_u u_t (B,q), no bias
    torch::Tensor u_in;  // u_t (B,p), only needed by a learned input expansion point
    if (m > 0) {
      ControllerStep cs = controller->forward(encoder_steps[t], factors_prev, controller_state);
      controller_state = cs.state_bc;
      torch::Tensor u_t = fo.sample ? cs.mean_bm + torch::exp(0.5 * cs.logvar_bm) * torch::randn_like(cs.mean_bm)
                                    : cs.mean_bm;
      us.push_back(u_t);
      mus.push_back(cs.mean_bm);
      logvars.push_back(cs.logvar_bm);
      uw = k > 0 ? torch::addmm(external_drive[t], u_t, inferred_map_mq) : torch::mm(u_t, inferred_map_mq);
      if (learned) u_in = k > 0 ? torch::cat({u_t, external_steps[t]}, /*dim=*/1) : u_t;
    } else if (k > 0) {
      uw = external_drive[t];
      if (learned) u_in = external_steps[t];
    }

    if (fo.jslds) {
      ExpansionPoint ep = expansion->step(a, u_in, packed_expansion);
      torch::Tensor duw = uw;  // W_u (u_t − u*)
      torch::Tensor ustar_drive;
      if (ep.ustar_bp.defined()) {
        ustar_drive = cell->input_drive(ep.ustar_bp);
        duw = uw - ustar_drive;
        ustars.push_back(ep.ustar_bp);
      }
      // g_t = F(g_{t−1}, u_t) and a_t = e*_t + J(e*_t)(a_{t−1} − e*_t) + J_u (u_t − u*) together.
      CellCoStep cs = cell->co_step(g, uw, ep.estar_bn, a - ep.estar_bn, duw, ustar_drive, packed);
      g = cs.f_h_bn;
      a = ep.estar_bn + cs.jvp_bn;
      as.push_back(a);
      es.push_back(ep.estar_bn);
      fes.push_back(cs.f_e_bn);
    } else {
      g = cell->step(g, uw, packed);
    }
    gs.push_back(g);
    if (m > 0) {
      factors_prev = torch::mm(masked(g, t + 1), factor_map_nd);
      fs.push_back(factors_prev);
    }
  }

  out.g_btn = torch::stack(gs, /*dim=*/1);
  if (fo.jslds) {
    out.a_btn = torch::stack(as, 1);
    out.estar_btn = torch::stack(es, 1);
    out.f_estar_btn = torch::stack(fes, 1);
    if (!ustars.empty()) out.ustar_btp = torch::stack(ustars, 1);
  }
  if (m > 0) {
    out.inferred_btm = torch::stack(us, 1);
    out.inferred_mean_btm = torch::stack(mus, 1);
    out.inferred_logvar_btm = torch::stack(logvars, 1);
  }
  if (m > 0 && k > 0) {
    out.u_btp = torch::cat({out.inferred_btm, inputs_btk}, /*dim=*/2);
  } else if (m > 0) {
    out.u_btp = out.inferred_btm;
  } else if (k > 0) {
    out.u_btp = inputs_btk;
  }

  if (poisson) {
    const torch::Tensor mask_steps = mask_btn.defined() ? mask_btn.narrow(1, 1, T) : torch::Tensor();
    auto apply_mask = [&](const torch::Tensor& s) { return mask_steps.defined() ? s * mask_steps : s; };
    out.factors_btd = m > 0 ? torch::stack(fs, 1) : torch::matmul(apply_mask(out.g_btn), factor_map_nd);
    out.log_rates_btn = rate_readout->forward(out.factors_btd);
    if (fo.jslds) {
      out.factors_a_btd = torch::matmul(apply_mask(out.a_btn), factor_map_nd);
      out.log_rates_a_btn = rate_readout->forward(out.factors_a_btd);
    }
  } else {
    out.outputs_bto = output_readout->forward(out.g_btn);
    if (fo.jslds) out.outputs_a_bto = output_readout->forward(out.a_btn);
  }
  return out;
}

torch::Tensor JsldsModelImpl::generator_step(const torch::Tensor& h_bn, const torch::Tensor& u_bp) const {
  TORCH_CHECK(h_bn.dim() == 2 && h_bn.size(1) == latent_dim(), "JsldsModel::generator_step: expected states (B,",
              latent_dim(), "), got shape ", h_bn.sizes());
  return cell->step(h_bn, cell->input_drive(u_bp), cell->pack());
}

torch::Tensor JsldsModelImpl::expansion_point(const torch::Tensor& a_bn) const {
  TORCH_CHECK(a_bn.dim() == 2 && a_bn.size(1) == latent_dim(),
              "JsldsModel::expansion_point: expected JSLDS states (B,", latent_dim(), "), got shape ",
              a_bn.sizes());
  torch::Tensor u_zero;
  if (learned_input_expansion()) u_zero = torch::zeros({a_bn.size(0), input_dim()}, a_bn.options());
  return expansion->step(a_bn, u_zero, expansion->pack()).estar_bn;
}

torch::Tensor JsldsModelImpl::jacobian(const torch::Tensor& h_bn) const {
  TORCH_CHECK(h_bn.dim() == 2 && h_bn.size(1) == latent_dim(), "JsldsModel::jacobian: expected states (B,",
              latent_dim(), "), got shape ", h_bn.sizes());
  const int64_t B = h_bn.size(0);
  const int64_t n = latent_dim();
  // Row (b, j) of the batched JVP is J_b e_j, the j-th column of J_b.
  const torch::Tensor e = h_bn.repeat_interleave(n, /*dim=*/0);
  const torch::Tensor basis = torch::eye(n, h_bn.options()).repeat({B, 1});
  const torch::Tensor columns = cell->jvp(e, basis, {}, {}, cell->pack()).jvp_bn;
  return columns.view({B, n, n}).transpose(1, 2).contiguous();
}

void JsldsModelImpl::set_log_rate_bias(const torch::Tensor& mean_rate_n) {
  TORCH_CHECK(poisson_mode(), "JsldsModel::set_log_rate_bias: only poisson mode has a rate readout");
  TORCH_CHECK(mean_rate_n.dim() == 1 && mean_rate_n.size(0) == options.dims.neurons,
              "JsldsModel::set_log_rate_bias: expected mean rates (", options.dims.neurons, "), got shape ",
              mean_rate_n.sizes());
  torch::NoGradGuard no_grad;
  rate_readout->bias.copy_(torch::log(mean_rate_n.clamp_min(1e-3)));
}

std::vector<torch::Tensor> JsldsModelImpl::l2_weights() const {
  if (!poisson_mode()) return cell->parameters();
  std::vector<torch::Tensor> weights = cell->recurrent_weights();
  if (controller) weights.push_back(controller->cell->weight_hh);
  return weights;
}

}  // namespace jslds
