// Legend: B batch, n latent dimension, p input dimension, q = 3n (gru) or n (tanh).
#include "core/model/generator_cell.h"

#include <cmath>
#include <ostream>
#include <stdexcept>

#include <torch/torch.h>

namespace jslds {

CellKind parse_cell_kind(const std::string& name) {
  if (name == "gru") return CellKind::kGru;
  if (name == "tanh") return CellKind::kTanh;
  throw std::invalid_argument("unknown generator cell '" + name + "' (expected gru or tanh)");
}

const char* cell_kind_name(CellKind kind) { return kind == CellKind::kGru ? "gru" : "tanh"; }

GeneratorCellImpl::GeneratorCellImpl(const GeneratorCellOptions& options_) : options(options_) {
  reset();
}

void GeneratorCellImpl::reset() {
  const int64_t n = options.latent_dim();
  const int64_t p = options.input_dim();
  TORCH_CHECK(n >= 1, "GeneratorCell: latent_dim must be >= 1, got ", n);
  TORCH_CHECK(p >= 0, "GeneratorCell: input_dim must be >= 0, got ", p);
  w_rzh = w_ch = b_rz = b_c = fg_bias = w_h = b = w_u = torch::Tensor();
  if (options.kind() == CellKind::kGru) {
    w_rzh = register_parameter("w_rzh", torch::empty({2 * n, n}));
    w_ch = register_parameter("w_ch", torch::empty({n, n}));
    if (p > 0) w_u = register_parameter("w_u", torch::empty({3 * n, p}));
    b_rz = register_parameter("b_rz", torch::empty({2 * n}));
    b_c = register_parameter("b_c", torch::empty({n}));
    fg_bias = register_buffer(
        "fg_bias", torch::cat({torch::zeros({n}), torch::full({n}, options.forget_bias())}));
  } else {
    w_h = register_parameter("w_h", torch::empty({n, n}));
    if (p > 0) w_u = register_parameter("w_u", torch::empty({n, p}));
    b = register_parameter("b", torch::empty({n}));
  }
  reset_parameters();
}

void GeneratorCellImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double n = static_cast<double>(options.latent_dim());
  const double rec_scale = options.recurrent_gain() / std::sqrt(n);
  for (auto* w : {&w_rzh, &w_ch, &w_h}) {
    if (w->defined()) w->normal_(0.0, rec_scale);
  }
  if (w_u.defined()) w_u.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(options.input_dim())));
  for (auto* bias : {&b_rz, &b_c, &b}) {
    if (bias->defined()) bias->zero_();
  }
}

void GeneratorCellImpl::pretty_print(std::ostream& stream) const {
  stream << "jslds::GeneratorCell(kind=" << cell_kind_name(options.kind())
         << ", latent_dim=" << options.latent_dim() << ", input_dim=" << options.input_dim();
  if (options.kind() == CellKind::kGru) stream << ", forget_bias=" << options.forget_bias();
  stream << ")";
}

int64_t GeneratorCellImpl::drive_dim() const {
  return options.kind() == CellKind::kGru ? 3 * options.latent_dim() : options.latent_dim();
}

PackedCell GeneratorCellImpl::pack() const {
  PackedCell packed;
  if (options.kind() == CellKind::kGru) {
    packed.w_rec_t = w_rzh.t();
    packed.w_ch_t = w_ch.t();
    packed.bias_rz = b_rz + fg_bias;
    packed.bias_c = b_c;
    packed.bias = torch::cat({packed.bias_rz, b_c});
  } else {
    packed.w_rec_t = w_h.t();
    packed.bias = b;
  }
  return packed;
}

torch::Tensor GeneratorCellImpl::input_drive(const torch::Tensor& u) const {
  if (!u.defined() || !w_u.defined()) return {};
  TORCH_CHECK(u.size(-1) == options.input_dim(), "GeneratorCell: expected inputs with ",
              options.input_dim(), " channels in the last dimension, got shape ", u.sizes());
  return torch::matmul(u, w_u.t());
}

torch::Tensor GeneratorCellImpl::input_drive_columns(const torch::Tensor& u, int64_t first,
                                                     int64_t count) const {
  if (!u.defined() || !w_u.defined() || count == 0) return {};
  TORCH_CHECK(first >= 0 && first + count <= options.input_dim(),
              "GeneratorCell: input columns [", first, ", ", first + count,
              ") outside the cell's ", options.input_dim(), " inputs");
  TORCH_CHECK(u.size(-1) == count, "GeneratorCell: expected ", count,
              " input channels in the last dimension, got shape ", u.sizes());
  return torch::matmul(u, w_u.narrow(1, first, count).t());
}

namespace {

// drive = W_u u + biases, (B,q) or (q) when there is no input.
torch::Tensor with_bias(const torch::Tensor& uw_bq, const torch::Tensor& bias) {
  return uw_bq.defined() ? uw_bq + bias : bias;
}

}  // namespace

torch::Tensor GeneratorCellImpl::step(const torch::Tensor& h_bn, const torch::Tensor& uw_bq,
                                      const PackedCell& packed) const {
  const int64_t n = options.latent_dim();
  const torch::Tensor drive = with_bias(uw_bq, packed.bias);
  if (options.kind() == CellKind::kTanh) {
    return torch::tanh(torch::addmm(drive, h_bn, packed.w_rec_t));
  }
  // split/chunk rather than narrow: their backward is one concatenation, not a zero fill per part.
  const std::vector<torch::Tensor> drive_parts = drive.split({2 * n, n}, -1);
  const std::vector<torch::Tensor> rz = torch::sigmoid(torch::addmm(drive_parts[0], h_bn, packed.w_rec_t)).chunk(2, 1);
  const torch::Tensor c = torch::tanh(torch::addmm(drive_parts[1], rz[0] * h_bn, packed.w_ch_t));
  return torch::lerp(c, h_bn, rz[1]);  // z ⊙ h + (1 − z) ⊙ c
}

CellJvp GeneratorCellImpl::jvp(const torch::Tensor& e_bn, const torch::Tensor& dh_bn,
                               const torch::Tensor& duw_bq, const torch::Tensor& ustar_drive_bq,
                               const PackedCell& packed) const {
  const int64_t n = options.latent_dim();
  const torch::Tensor drive = with_bias(ustar_drive_bq, packed.bias);
  if (options.kind() == CellKind::kTanh) {
    // s = W_h e + W_u u* + b;  JVP = (1 − tanh² s) ⊙ (W_h δh + W_u δu)
    const torch::Tensor t = torch::tanh(torch::addmm(drive, e_bn, packed.w_rec_t));
    const torch::Tensor ds = duw_bq.defined() ? torch::addmm(duw_bq, dh_bn, packed.w_rec_t)
                                              : torch::mm(dh_bn, packed.w_rec_t);
    return {t, (1.0 - t.square()) * ds};
  }
  // Gates at (e, u*).
  const torch::Tensor rz = torch::sigmoid(torch::addmm(drive.narrow(-1, 0, 2 * n), e_bn, packed.w_rec_t));
  // δ(pre-activations of r, z) = W_{rz}h δh + W_{rz}u δu; δ(rz) = rz(1 − rz) ⊙ that.
  const torch::Tensor dpre = duw_bq.defined()
                                 ? torch::addmm(duw_bq.narrow(1, 0, 2 * n), dh_bn, packed.w_rec_t)
                                 : torch::mm(dh_bn, packed.w_rec_t);
  const torch::Tensor drz = dpre * rz * (1.0 - rz);
  const torch::Tensor r = rz.narrow(1, 0, n);
  const torch::Tensor z = rz.narrow(1, n, n);
  const torch::Tensor dr = drz.narrow(1, 0, n);
  const torch::Tensor dz = drz.narrow(1, n, n);
  const torch::Tensor c = torch::tanh(torch::addmm(drive.narrow(-1, 2 * n, n), r * e_bn, packed.w_ch_t));
  // δc = (1 − c²) ⊙ (W_ch (δr ⊙ e + r ⊙ δh) + W_cu δu)
  const torch::Tensor dc_in = dr * e_bn + r * dh_bn;
  const torch::Tensor dcpre = duw_bq.defined()
                                  ? torch::addmm(duw_bq.narrow(1, 2 * n, n), dc_in, packed.w_ch_t)
                                  : torch::mm(dc_in, packed.w_ch_t);
  const torch::Tensor dc = (1.0 - c.square()) * dcpre;
  // F(e) = z ⊙ e + (1 − z) ⊙ c;  JVP = δz ⊙ (e − c) + z ⊙ δh + (1 − z) ⊙ δc
  return {torch::lerp(c, e_bn, z), torch::lerp(dc, dh_bn, z) + dz * (e_bn - c)};
}

CellCoStep GeneratorCellImpl::co_step(const torch::Tensor& h_bn, const torch::Tensor& uw_bq, const torch::Tensor& e_bn,
                                      const torch::Tensor& dh_bn, const torch::Tensor& duw_bq,
                                      const torch::Tensor& ustar_drive_bq, const PackedCell& packed) const {
  const int64_t B = h_bn.size(0);
  const int64_t n = options.latent_dim();
  // Rows [h; e; δh] share every product with the recurrent weights.
  const std::vector<torch::Tensor> rec = torch::mm(torch::cat({h_bn, e_bn, dh_bn}, 0), packed.w_rec_t).split(B, 0);
  const torch::Tensor drive_h = with_bias(uw_bq, packed.bias);
  const torch::Tensor drive_e = with_bias(ustar_drive_bq, packed.bias);
  if (options.kind() == CellKind::kTanh) {
    const torch::Tensor t_e = torch::tanh(rec[1] + drive_e);
    const torch::Tensor ds = duw_bq.defined() ? rec[2] + duw_bq : rec[2];
    return {torch::tanh(rec[0] + drive_h), t_e, at::tanh_backward(ds, t_e)};
  }
  const std::vector<torch::Tensor> dh_parts = drive_h.split({2 * n, n}, -1);
  const std::vector<torch::Tensor> de_parts = drive_e.split({2 * n, n}, -1);
  const torch::Tensor rz_h = torch::sigmoid(rec[0] + dh_parts[0]);
  const torch::Tensor rz_e = torch::sigmoid(rec[1] + de_parts[0]);
  std::vector<torch::Tensor> duw_parts;
  if (duw_bq.defined()) duw_parts = duw_bq.split({2 * n, n}, 1);
  const torch::Tensor dpre = duw_bq.defined() ? rec[2] + duw_parts[0] : rec[2];
  const torch::Tensor drz = at::sigmoid_backward(dpre, rz_e);  // rz(1 − rz) ⊙ δpre
  const std::vector<torch::Tensor> g_h = rz_h.chunk(2, 1);      // r_h, z_h
  const std::vector<torch::Tensor> g_e = rz_e.chunk(2, 1);      // r_e, z_e
  const std::vector<torch::Tensor> d_e = drz.chunk(2, 1);       // δr, δz
  const std::vector<torch::Tensor> cand =
      torch::mm(torch::cat({g_h[0] * h_bn, g_e[0] * e_bn, torch::addcmul(d_e[0] * e_bn, g_e[0], dh_bn)}, 0),
                packed.w_ch_t)
          .split(B, 0);
  const torch::Tensor c_h = torch::tanh(cand[0] + dh_parts[1]);
  const torch::Tensor c_e = torch::tanh(cand[1] + de_parts[1]);
  const torch::Tensor dc = at::tanh_backward(duw_bq.defined() ? cand[2] + duw_parts[1] : cand[2], c_e);
  return {torch::lerp(c_h, h_bn, g_h[1]), torch::lerp(c_e, e_bn, g_e[1]),
          torch::addcmul(torch::lerp(dc, dh_bn, g_e[1]), d_e[1], e_bn - c_e)};
}

torch::Tensor GeneratorCellImpl::forward(const torch::Tensor& h_bn, const torch::Tensor& u_bp) {
  TORCH_CHECK(h_bn.dim() == 2 && h_bn.size(1) == options.latent_dim(),
              "GeneratorCell: expected states (B,", options.latent_dim(), "), got shape ", h_bn.sizes());
  return step(h_bn, input_drive(u_bp), pack());
}

std::vector<torch::Tensor> GeneratorCellImpl::recurrent_weights() const {
  if (options.kind() == CellKind::kGru) return {w_rzh, w_ch};
  return {w_h};
}

}  // namespace jslds
