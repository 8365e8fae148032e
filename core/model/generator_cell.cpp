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

// ---------------------------------------------------------------------------------------------
// Fused GRU co-training step with a hand-written backward (one autograd node per time step).
//
// Forward (MODEL §2-3; pre_x = x W_rzh^T + drive_x[:2n] for x ∈ {h, e}, σ' = σ(1 − σ)):
//   [r_h, z_h] = σ(pre_h)          c_h = tanh((r_h ⊙ h) W_ch^T + drive_h[2n:])
//   [r_e, z_e] = σ(pre_e)          c_e = tanh((r_e ⊙ e) W_ch^T + drive_e[2n:])
//   δpre = δh W_rzh^T + δuw[:2n]   [δr, δz] = σ'(pre_e) ⊙ δpre
//   x = δr ⊙ e + r_e ⊙ δh          k = x W_ch^T + δuw[2n:]      δc = (1 − c_e²) ⊙ k
//   F(h) = z_h h + (1 − z_h) c_h   F(e) = z_e e + (1 − z_e) c_e
//   JVP  = z_e δh + (1 − z_e) δc + δz ⊙ (e − c_e)
// The backward is the exact reverse of these formulas, including the second derivatives of σ
// and tanh through the JVP (σ'' = σ'(1 − 2σ), d/dc (1 − c²) = −2c). All products with a
// weight matrix run as one stacked GEMM over the rows [h; e; δh]; the elementwise work is two
// loops over (B,n) in each direction. It is used on the CPU for float/double tensors; it is
// once differentiable (create_graph through it is refused).
//
// Inputs: h, e, dh (B,n) contiguous; drive_h, drive_e: (3n) or (B,3n) with biases included;
// duw: (B,3n) or an empty tensor (δuw = 0); w1t = W_rzh^T (n,2n); w2t = W_ch^T (n,n).
// Outputs: F(h), F(e), JVP, each (B,n).

// Row pointer of a (3n) or (B,rows-strided,3n) drive; contiguous last dimension.
template <typename T>
struct RowView {
  const T* base = nullptr;
  int64_t row_stride = 0;
  const T* row(int64_t b) const { return base == nullptr ? nullptr : base + b * row_stride; }
};

template <typename T>
RowView<T> row_view(const at::Tensor& t) {
  if (!t.defined()) return {};
  return {t.data_ptr<T>(), t.dim() == 1 ? 0 : t.stride(0)};
}

at::Tensor rows_contiguous(const at::Tensor& t) {
  if (!t.defined()) return t;
  return t.stride(-1) == 1 ? t : t.contiguous();
}

struct GruCoStepFunction : public torch::autograd::Function<GruCoStepFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h,
                                                const at::Tensor& e, const at::Tensor& dh, const at::Tensor& drive_h,
                                                const at::Tensor& drive_e, const at::Tensor& duw, const at::Tensor& w1t,
                                                const at::Tensor& w2t) {
    const int64_t B = h.size(0);
    const int64_t n = h.size(1);
    const at::Tensor hc = h.contiguous(), ec = e.contiguous(), dhc = dh.contiguous();
    const at::Tensor dvh = rows_contiguous(drive_h), dve = rows_contiguous(drive_e);
    const at::Tensor duc = duw.numel() > 0 ? rows_contiguous(duw) : at::Tensor();
    const at::Tensor rec = at::mm(at::cat({hc, ec, dhc}, 0), w1t);  // (3B,2n)
    at::Tensor rz_h = at::empty({B, 2 * n}, h.options());
    at::Tensor rz_e = at::empty({B, 2 * n}, h.options());
    at::Tensor dpre = at::empty({B, 2 * n}, h.options());
    at::Tensor x2 = at::empty({3 * B, n}, h.options());  // [r_h h; r_e e; x]
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gru_co_step_forward_gates", [&] {
      using T = scalar_t;
      const RowView<T> vh = row_view<T>(dvh), ve = row_view<T>(dve), vd = row_view<T>(duc);
      const T* R = rec.data_ptr<T>();
      const T* H = hc.data_ptr<T>();
      const T* E = ec.data_ptr<T>();
      const T* D = dhc.data_ptr<T>();
      T* RZH = rz_h.data_ptr<T>();
      T* RZE = rz_e.data_ptr<T>();
      T* DP = dpre.data_ptr<T>();
      T* X = x2.data_ptr<T>();
      for (int64_t b = 0; b < B; ++b) {
        const T* rh = R + b * 2 * n;
        const T* re = R + (B + b) * 2 * n;
        const T* rd = R + (2 * B + b) * 2 * n;
        const T* ah = vh.row(b);
        const T* ae = ve.row(b);
        const T* ad = vd.row(b);
        T* gh = RZH + b * 2 * n;
        T* ge = RZE + b * 2 * n;
        T* dp = DP + b * 2 * n;
        for (int64_t j = 0; j < 2 * n; ++j) {
          gh[j] = rh[j] + ah[j];  // before σ
          ge[j] = re[j] + ae[j];
          dp[j] = ad != nullptr ? rd[j] + ad[j] : rd[j];
        }
      }
      // ATen's vectorised σ over whole (B,2n) blocks (scalar libm calls cost several times more).
      rz_h.sigmoid_();
      rz_e.sigmoid_();
      for (int64_t b = 0; b < B; ++b) {
        const T* gh = RZH + b * 2 * n;
        const T* ge = RZE + b * 2 * n;
        const T* dp = DP + b * 2 * n;
        const T* hb = H + b * n;
        const T* eb = E + b * n;
        const T* db = D + b * n;
        for (int64_t j = 0; j < n; ++j) {
          const T r_e = ge[j];
          const T dr = r_e * (T(1) - r_e) * dp[j];
          X[b * n + j] = gh[j] * hb[j];
          X[(B + b) * n + j] = r_e * eb[j];
          X[(2 * B + b) * n + j] = dr * eb[j] + r_e * db[j];
        }
      }
    });
    const at::Tensor cand = at::mm(x2, w2t);  // (3B,n)
    at::Tensor f_h = at::empty({B, n}, h.options());
    at::Tensor f_e = at::empty({B, n}, h.options());
    at::Tensor jvp = at::empty({B, n}, h.options());
    at::Tensor c_h = at::empty({B, n}, h.options());
    at::Tensor c_e = at::empty({B, n}, h.options());
    at::Tensor kk = at::empty({B, n}, h.options());
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gru_co_step_forward_out", [&] {
      using T = scalar_t;
      const RowView<T> vh = row_view<T>(dvh), ve = row_view<T>(dve), vd = row_view<T>(duc);
      const T* C = cand.data_ptr<T>();
      const T* H = hc.data_ptr<T>();
      const T* E = ec.data_ptr<T>();
      const T* D = dhc.data_ptr<T>();
      const T* RZH = rz_h.data_ptr<T>();
      const T* RZE = rz_e.data_ptr<T>();
      const T* DP = dpre.data_ptr<T>();
      T* FH = f_h.data_ptr<T>();
      T* FE = f_e.data_ptr<T>();
      T* J = jvp.data_ptr<T>();
      T* CH = c_h.data_ptr<T>();
      T* CE = c_e.data_ptr<T>();
      T* K = kk.data_ptr<T>();
      for (int64_t b = 0; b < B; ++b) {
        const T* ah = vh.row(b) + 2 * n;
        const T* ae = ve.row(b) + 2 * n;
        for (int64_t j = 0; j < n; ++j) {
          const int64_t i = b * n + j;
          CH[i] = C[i] + ah[j];  // before tanh
          CE[i] = C[B * n + i] + ae[j];
        }
      }
      c_h.tanh_();  // vectorised, as σ above
      c_e.tanh_();
      for (int64_t b = 0; b < B; ++b) {
        const T* ad = vd.row(b) != nullptr ? vd.row(b) + 2 * n : nullptr;
        for (int64_t j = 0; j < n; ++j) {
          const int64_t i = b * n + j;
          const T z_h = RZH[b * 2 * n + n + j];
          const T z_e = RZE[b * 2 * n + n + j];
          const T dz = z_e * (T(1) - z_e) * DP[b * 2 * n + n + j];
          const T ch = CH[i];
          const T ce = CE[i];
          const T k = ad != nullptr ? C[2 * B * n + i] + ad[j] : C[2 * B * n + i];
          const T dc = (T(1) - ce * ce) * k;
          K[i] = k;
          FH[i] = z_h * H[i] + (T(1) - z_h) * ch;
          FE[i] = z_e * E[i] + (T(1) - z_e) * ce;
          J[i] = z_e * D[i] + (T(1) - z_e) * dc + dz * (E[i] - ce);
        }
      }
    });
    ctx->save_for_backward({hc, ec, dhc, w1t, w2t});
    ctx->saved_data["rz_h"] = rz_h;
    ctx->saved_data["rz_e"] = rz_e;
    ctx->saved_data["dpre"] = dpre;
    ctx->saved_data["x2"] = x2;
    ctx->saved_data["c_h"] = c_h;
    ctx->saved_data["c_e"] = c_e;
    ctx->saved_data["k"] = kk;
    ctx->saved_data["drive_h_1d"] = drive_h.dim() == 1;
    ctx->saved_data["drive_e_1d"] = drive_e.dim() == 1;
    ctx->saved_data["has_duw"] = duw.numel() > 0;
    return {f_h, f_e, jvp};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "GeneratorCell::co_step: the fused GRU step is differentiable once only (create_graph is "
                "not supported); use step() and jvp() for higher derivatives");
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &hc = saved[0], &ec = saved[1], &dhc = saved[2], &w1t = saved[3], &w2t = saved[4];
    const at::Tensor rz_h = ctx->saved_data["rz_h"].toTensor();
    const at::Tensor rz_e = ctx->saved_data["rz_e"].toTensor();
    const at::Tensor dpre = ctx->saved_data["dpre"].toTensor();
    const at::Tensor x2 = ctx->saved_data["x2"].toTensor();
    const at::Tensor c_h = ctx->saved_data["c_h"].toTensor();
    const at::Tensor c_e = ctx->saved_data["c_e"].toTensor();
    const at::Tensor kk = ctx->saved_data["k"].toTensor();
    const int64_t B = hc.size(0);
    const int64_t n = hc.size(1);
    const at::Tensor gfh = grads[0].contiguous(), gfe = grads[1].contiguous(), gj = grads[2].contiguous();

    // Pass 1: gradients w.r.t. the candidate pre-activations G2 = [h; e; δ] rows, and the
    // direct parts of g_h, g_e, g_δh, plus g_z_h, g_z_e, g_δz for pass 2.
    at::Tensor g2 = at::empty({3 * B, n}, hc.options());
    at::Tensor g_h = at::empty({B, n}, hc.options());
    at::Tensor g_e = at::empty({B, n}, hc.options());
    at::Tensor g_d = at::empty({B, n}, hc.options());
    at::Tensor g_z = at::empty({3 * B, n}, hc.options());  // rows: g_z_h, g_z_e, g_δz
    AT_DISPATCH_FLOATING_TYPES(hc.scalar_type(), "gru_co_step_backward_out", [&] {
      using T = scalar_t;
      const T* GFH = gfh.data_ptr<T>();
      const T* GFE = gfe.data_ptr<T>();
      const T* GJ = gj.data_ptr<T>();
      const T* H = hc.data_ptr<T>();
      const T* E = ec.data_ptr<T>();
      const T* D = dhc.data_ptr<T>();
      const T* RZH = rz_h.data_ptr<T>();
      const T* RZE = rz_e.data_ptr<T>();
      const T* DP = dpre.data_ptr<T>();
      const T* CH = c_h.data_ptr<T>();
      const T* CE = c_e.data_ptr<T>();
      const T* K = kk.data_ptr<T>();
      T* G2 = g2.data_ptr<T>();
      T* GH = g_h.data_ptr<T>();
      T* GE = g_e.data_ptr<T>();
      T* GD = g_d.data_ptr<T>();
      T* GZ = g_z.data_ptr<T>();
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t j = 0; j < n; ++j) {
          const int64_t i = b * n + j;
          const T z_h = RZH[b * 2 * n + n + j];
          const T z_e = RZE[b * 2 * n + n + j];
          const T dz = z_e * (T(1) - z_e) * DP[b * 2 * n + n + j];
          const T ch = CH[i], ce = CE[i], k = K[i];
          const T one_m_ce2 = T(1) - ce * ce;
          const T dc = one_m_ce2 * k;
          // nonlinear chain
          GZ[i] = GFH[i] * (H[i] - ch);
          GH[i] = GFH[i] * z_h;
          G2[i] = GFH[i] * (T(1) - z_h) * (T(1) - ch * ch);
          // JSLDS chain: F(e) and the JVP
          const T g_dc = GJ[i] * (T(1) - z_e);
          const T g_ce = GFE[i] * (T(1) - z_e) - GJ[i] * dz - T(2) * g_dc * ce * k;
          GZ[B * n + i] = GJ[i] * (D[i] - dc) + GFE[i] * (E[i] - ce);
          GZ[2 * B * n + i] = GJ[i] * (E[i] - ce);
          GE[i] = GJ[i] * dz + GFE[i] * z_e;
          GD[i] = GJ[i] * z_e;
          G2[B * n + i] = g_ce * one_m_ce2;
          G2[2 * B * n + i] = g_dc * one_m_ce2;
        }
      }
    });
    const at::Tensor m2 = at::mm(g2, w2t.t());  // (3B,n): g(r_h h), g(r_e e), g_x
    at::Tensor g1 = at::empty({3 * B, 2 * n}, hc.options());  // rows: g pre_h, g pre_e, g δpre
    AT_DISPATCH_FLOATING_TYPES(hc.scalar_type(), "gru_co_step_backward_gates", [&] {
      using T = scalar_t;
      const T* M = m2.data_ptr<T>();
      const T* H = hc.data_ptr<T>();
      const T* E = ec.data_ptr<T>();
      const T* D = dhc.data_ptr<T>();
      const T* RZH = rz_h.data_ptr<T>();
      const T* RZE = rz_e.data_ptr<T>();
      const T* DP = dpre.data_ptr<T>();
      const T* GZ = g_z.data_ptr<T>();
      T* G1 = g1.data_ptr<T>();
      T* GH = g_h.data_ptr<T>();
      T* GE = g_e.data_ptr<T>();
      T* GD = g_d.data_ptr<T>();
      for (int64_t b = 0; b < B; ++b) {
        T* g1h = G1 + b * 2 * n;
        T* g1e = G1 + (B + b) * 2 * n;
        T* g1d = G1 + (2 * B + b) * 2 * n;
        const T* rzh = RZH + b * 2 * n;
        const T* rze = RZE + b * 2 * n;
        const T* dp = DP + b * 2 * n;
        for (int64_t j = 0; j < n; ++j) {
          const int64_t i = b * n + j;
          const T m_h = M[i], m_e = M[B * n + i], g_x = M[2 * B * n + i];
          // nonlinear chain: r_h h
          const T r_h = rzh[j], z_h = rzh[n + j];
          GH[i] += m_h * r_h;
          g1h[j] = m_h * H[i] * r_h * (T(1) - r_h);
          g1h[n + j] = GZ[i] * z_h * (T(1) - z_h);
          // JSLDS chain: r_e e, x = δr e + r_e δh, [δr, δz] = σ'(pre_e) δpre
          const T r_e = rze[j], z_e = rze[n + j];
          const T q_r = r_e * (T(1) - r_e), q_z = z_e * (T(1) - z_e);
          const T dr = q_r * dp[j];
          const T g_dr = g_x * E[i];
          const T g_re = g_x * D[i] + m_e * E[i];
          const T g_dz = GZ[2 * B * n + i];
          GE[i] += g_x * dr + m_e * r_e;
          GD[i] += g_x * r_e;
          g1e[j] = q_r * (g_re + g_dr * dp[j] * (T(1) - T(2) * r_e));
          g1e[n + j] = q_z * (GZ[B * n + i] + g_dz * dp[n + j] * (T(1) - T(2) * z_e));
          g1d[j] = q_r * g_dr;
          g1d[n + j] = q_z * g_dz;
        }
      }
    });
    const at::Tensor m1 = at::mm(g1, w1t.t());  // (3B,n)
    const std::vector<at::Tensor> m1_parts = m1.split(B, 0);
    g_h.add_(m1_parts[0]);
    g_e.add_(m1_parts[1]);
    g_d.add_(m1_parts[2]);
    const at::Tensor g_w1t = at::mm(at::cat({hc, ec, dhc}, 0).t(), g1);  // (n,2n)
    const at::Tensor g_w2t = at::mm(x2.t(), g2);                         // (n,n)
    const std::vector<at::Tensor> g1_parts = g1.split(B, 0);
    const std::vector<at::Tensor> g2_parts = g2.split(B, 0);
    auto drive_grad = [&](int part, bool one_d) {
      at::Tensor g = at::cat({g1_parts[part], g2_parts[part]}, 1);  // (B,3n)
      return one_d ? g.sum(0) : g;
    };
    const at::Tensor g_drive_h = drive_grad(0, ctx->saved_data["drive_h_1d"].toBool());
    const at::Tensor g_drive_e = drive_grad(1, ctx->saved_data["drive_e_1d"].toBool());
    const at::Tensor g_duw = ctx->saved_data["has_duw"].toBool() ? drive_grad(2, false) : at::Tensor();
    return {g_h, g_e, g_d, g_drive_h, g_drive_e, g_duw, g_w1t, g_w2t};
  }
};

}  // namespace

namespace {

// drive = W_u u + biases, (B,q) or (q) when there is no input.
torch::Tensor with_bias(const torch::Tensor& uw_bq, const torch::Tensor& bias) {
  return uw_bq.defined() ? uw_bq + bias : bias;
}

}  // namespace

bool GeneratorCellImpl::fused_backward_eligible(const torch::Tensor& h_bn, const torch::Tensor& e_bn,
                                                const torch::Tensor& dh_bn, const torch::Tensor& uw_bq,
                                                const torch::Tensor& duw_bq,
                                                const torch::Tensor& ustar_drive_bq) const {
  if (!use_fused_backward || options.kind() != CellKind::kGru || !h_bn.device().is_cpu()) return false;
  const auto dtype = h_bn.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64) return false;
  for (const torch::Tensor* t : {&e_bn, &dh_bn, &uw_bq, &duw_bq, &ustar_drive_bq, &w_rzh}) {
    if (t->defined() && (t->scalar_type() != dtype || !t->device().is_cpu())) return false;
  }
  return true;
}

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
  if (fused_backward_eligible(h_bn, e_bn, dh_bn, uw_bq, duw_bq, ustar_drive_bq)) {
    const torch::autograd::variable_list out =
        GruCoStepFunction::apply(h_bn, e_bn, dh_bn, with_bias(uw_bq, packed.bias), with_bias(ustar_drive_bq, packed.bias),
                                 // autograd functions take no undefined tensors: δuw = 0 is an empty tensor
                                 duw_bq.defined() ? duw_bq : at::empty({0}, h_bn.options()), packed.w_rec_t,
                                 packed.w_ch_t);
    return {out[0], out[1], out[2]};
  }
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
