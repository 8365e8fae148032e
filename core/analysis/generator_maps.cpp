// Closed-form autonomous generator maps (MODEL.md §2–3 at u = 0).
// Letters: p points, n latent dimension; "_t" marks a transposed (in, out) weight so that a
// batch of row states multiplies it directly.
#include "core/analysis/generator_maps.h"

#include "core/analysis/cpu_kernels.h"

#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <torch/torch.h>

namespace jslds::analysis {
namespace {

std::string shape_text(const at::Tensor& t) {
  return t.defined() ? fmt::format("({})", fmt::join(t.sizes(), ", ")) : "undefined";
}

void require_shape(const at::Tensor& t, std::vector<int64_t> shape, const char* cell,
                   const char* name) {
  if (!t.defined() || t.sizes() != at::IntArrayRef(shape))
    throw std::invalid_argument(fmt::format("{} map: weight {} has shape {}, expected ({})",
                                            cell, name, shape_text(t), fmt::join(shape, ", ")));
}

void require_states(const at::Tensor& x_pn, int64_t n, const char* cell) {
  if (!x_pn.defined() || x_pn.dim() != 2 || x_pn.size(1) != n)
    throw std::invalid_argument(fmt::format("{} map: states have shape {}, expected (points, {})",
                                            cell, shape_text(x_pn), n));
}

}  // namespace

AutonomousMap gru_map(const GruWeights& w) {
  const int64_t n = w.w_ch.defined() && w.w_ch.dim() == 2 ? w.w_ch.size(0) : -1;
  require_shape(w.w_ch, {n, n}, "GRU", "W_ch");
  require_shape(w.w_rh, {n, n}, "GRU", "W_rh");
  require_shape(w.w_zh, {n, n}, "GRU", "W_zh");
  require_shape(w.b_r, {n}, "GRU", "b_r");
  require_shape(w.b_z, {n}, "GRU", "b_z");
  require_shape(w.b_c, {n}, "GRU", "b_c");
  torch::NoGradGuard no_grad;
  // Packed so that the reset and update pre-activations are one product.
  const at::Tensor w_rzh = torch::cat({w.w_rh, w.w_zh}).detach().contiguous();  // (2n, n)
  const at::Tensor w_rzh_t = w_rzh.t().contiguous();                             // (n, 2n)
  const at::Tensor b_rz = torch::cat({w.b_r, w.b_z}).detach();                   // (2n)
  const at::Tensor w_ch = w.w_ch.detach().contiguous();                          // (n, n)
  const at::Tensor w_ch_t = w_ch.t().contiguous();
  const at::Tensor w_rh = w.w_rh.detach().contiguous();
  const at::Tensor w_zh = w.w_zh.detach().contiguous();
  const at::Tensor b_c = w.b_c.detach();

  AutonomousMap map;
  map.step = [=](const at::Tensor& x_pn) {
    require_states(x_pn, n, "GRU");
    at::Tensor rz = torch::sigmoid(torch::addmm(b_rz, x_pn, w_rzh_t));
    at::Tensor r = rz.narrow(1, 0, n), z = rz.narrow(1, n, n);
    at::Tensor c = torch::tanh(torch::addmm(b_c, r * x_pn, w_ch_t));
    return torch::lerp(c, x_pn, z);  // z ⊙ x + (1 − z) ⊙ c
  };
  map.jacobian = [=](const at::Tensor& x_pn) {
    require_states(x_pn, n, "GRU");
    torch::NoGradGuard guard;
    at::Tensor rz = torch::sigmoid(torch::addmm(b_rz, x_pn, w_rzh_t));
    at::Tensor r = rz.narrow(1, 0, n), z = rz.narrow(1, n, n);
    at::Tensor c = torch::tanh(torch::addmm(b_c, r * x_pn, w_ch_t));
    at::Tensor s = x_pn * r * (1 - r);
    // ∂c_pre/∂x = W_ch [diag(r) + diag(x ⊙ r(1−r)) W_rh], per point (p, n, n).
    at::Tensor jc_pnn = w_ch * r.unsqueeze(1) + torch::matmul(w_ch * s.unsqueeze(1), w_rh);
    return torch::diag_embed(z) + ((x_pn - c) * z * (1 - z)).unsqueeze(2) * w_zh +
           ((1 - z) * (1 - c.square())).unsqueeze(2) * jc_pnn;
  };
  // For the search: c = tanh(y) = 2σ(2y) − 1 with the factor 2 folded into the weights.
  // LibTorch 1.13's vectorised float tanh (Sleef, 1 ulp) costs about five times its sigmoid
  // and was 13% of a search iteration; the identity loses a few ulp of 1 in absolute terms,
  // far below the fixed-point tolerance. It also gives x − c = x + 1 − 2s and
  // 1 − c² = 4s(1 − s) directly from s = σ(2y).
  const at::Tensor w_ch_t2 = 2 * w_ch_t;
  const at::Tensor b_c2 = 2 * b_c;
  // On the CPU in float32 the same closed form runs as fused loops and oneDNN products
  // (cpu_kernels.h): the search's hot path on trained models.
  cpu::GruSearchWeights fused{w_rzh_t, w_rzh, b_rz.contiguous(), w_ch_t2, b_c2.contiguous(), w_ch};
  const bool fused_weights = cpu::dense_cpu_float32(fused.w_rzh_t) &&
                             cpu::dense_cpu_float32(fused.b_rz) &&
                             cpu::dense_cpu_float32(fused.b_c2);
  map.residual_gradient = [=](const at::Tensor& x_pn) {
    require_states(x_pn, n, "GRU");
    torch::NoGradGuard guard;
    if (fused_weights && cpu::dense_cpu_float32(x_pn)) return cpu::gru_residual_gradient(fused, x_pn);
    const int64_t p = x_pn.size(0);
    at::Tensor rz = torch::addmm(b_rz, x_pn, w_rzh_t).sigmoid_();
    at::Tensor r = rz.narrow(1, 0, n), z = rz.narrow(1, n, n);
    at::Tensor s = torch::addmm(b_c2, r * x_pn, w_ch_t2).sigmoid_();  // c = 2s − 1
    at::Tensor x_minus_c = torch::add(x_pn, s, -2).add_(1);
    at::Tensor z_minus_1 = z - 1;
    at::Tensor residual = z_minus_1 * x_minus_c;  // F(x) − x = (1 − z) ⊙ (c − x)
    // Vector–Jacobian product Jᵀv with v = residual, in row form (v ↦ v W is Wᵀ v):
    //   Jᵀv = z⊙v + W_zhᵀ[(x−c)⊙z(1−z)⊙v] + r⊙b + W_rhᵀ[x⊙r(1−r)⊙b],
    //   b = W_chᵀ[(1−z)⊙(1−c²)⊙v] = −4·W_chᵀ[s(1−s)⊙(z−1)⊙v];
    // the two W_{r,z}h products are one (p,2n)·(2n,n) product.
    at::Tensor a = torch::addcmul(s, s, s, -1).mul_(z_minus_1).mul_(residual);
    at::Tensor b = torch::addmm(a, a, w_ch, /*beta=*/0, /*alpha=*/-4);
    at::Tensor h = torch::empty({p, 2 * n}, x_pn.options());
    at::Tensor h_r = h.narrow(1, 0, n), h_z = h.narrow(1, n, n);
    torch::mul_out(h_r, x_pn, b);
    torch::mul_out(h_z, x_minus_c, residual);
    h.mul_(torch::addcmul(rz, rz, rz, -1));  // r(1−r) | z(1−z)
    at::Tensor grad = z_minus_1 * residual;  // Jᵀv − v, the "− v" folded into z − 1
    grad.addcmul_(r, b).addmm_(h, w_rzh);
    return std::pair<at::Tensor, at::Tensor>{residual, grad};
  };
  return map;
}

AutonomousMap tanh_map(const TanhWeights& w) {
  const int64_t n = w.w_h.defined() && w.w_h.dim() == 2 ? w.w_h.size(0) : -1;
  require_shape(w.w_h, {n, n}, "tanh", "W_h");
  require_shape(w.b, {n}, "tanh", "b");
  torch::NoGradGuard no_grad;
  const at::Tensor w_h = w.w_h.detach().contiguous();
  const at::Tensor w_h_t = w_h.t().contiguous();
  const at::Tensor b = w.b.detach();
  AutonomousMap map;
  map.step = [=](const at::Tensor& x_pn) {
    require_states(x_pn, n, "tanh");
    return torch::tanh(torch::addmm(b, x_pn, w_h_t));
  };
  map.jacobian = [=](const at::Tensor& x_pn) {
    require_states(x_pn, n, "tanh");
    torch::NoGradGuard guard;
    at::Tensor f = torch::tanh(torch::addmm(b, x_pn, w_h_t));
    return (1 - f.square()).unsqueeze(2) * w_h;
  };
  map.residual_gradient = [=](const at::Tensor& x_pn) {
    require_states(x_pn, n, "tanh");
    torch::NoGradGuard guard;
    at::Tensor f = torch::addmm(b, x_pn, w_h_t).tanh_();
    at::Tensor residual = f - x_pn;
    at::Tensor grad = (1 - f.square()).mul_(residual).mm(w_h).sub_(residual);
    return std::pair<at::Tensor, at::Tensor>{residual, grad};
  };
  return map;
}

at::Tensor autograd_jacobian(const StepFn& step, const at::Tensor& x_pn) {
  if (!x_pn.defined() || x_pn.dim() != 2)
    throw std::invalid_argument(fmt::format(
        "autograd_jacobian: expected states of shape (points, n), got {}", shape_text(x_pn)));
  const int64_t p = x_pn.size(0), n = x_pn.size(1);
  at::Tensor jac_pnn = torch::zeros({p, n, n}, x_pn.options());
  if (p == 0) return jac_pnn;
  torch::AutoGradMode enable_grad(true);
  at::Tensor x = x_pn.detach().requires_grad_(true);
  at::Tensor y = step(x);
  if (y.sizes() != x.sizes())
    throw std::invalid_argument(fmt::format(
        "autograd_jacobian: the step maps states {} to {}; expected the same shape",
        shape_text(x), shape_text(y)));
  for (int64_t i = 0; i < n; ++i) {
    auto g = torch::autograd::grad({y.select(1, i).sum()}, {x}, /*grad_outputs=*/{},
                                   /*retain_graph=*/true, /*create_graph=*/false,
                                   /*allow_unused=*/true);
    if (g[0].defined()) jac_pnn.select(1, i).copy_(g[0]);
  }
  return jac_pnn;
}

}  // namespace jslds::analysis
