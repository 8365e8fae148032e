// Closed forms of the autonomous generator cells of MODEL.md §2 (u = 0): the step F(x), the
// batched Jacobian J_h(x) and the residual/gradient pair that drives the fixed-point search.
//
// Letters: p points, n latent dimension. Weights follow the (out, in) convention of
// torch::nn::Linear: F's pre-activations are W x + b for a column state x.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/analysis/fixed_points.h"

namespace jslds::analysis {

/// The three functions the analysis uses on an autonomous map. `jacobian` and
/// `residual_gradient` may be empty (the analysis then uses autograd through `step`).
struct AutonomousMap {
  StepFn step;
  JacobianFn jacobian;
  ResidualGradientFn residual_gradient;
};

/// Reset-before-matmul GRU of MODEL §2 at u = 0:
///   r = σ(W_rh x + b_r), z = σ(W_zh x + b_z), c = tanh(W_ch (r ⊙ x) + b_c),
///   F(x) = z ⊙ x + (1 − z) ⊙ c.
/// b_z must already include the update-gate offset b_fg (0.5 in poisson mode).
struct GruWeights {
  at::Tensor w_rh, w_zh, w_ch;  // (n, n)
  at::Tensor b_r, b_z, b_c;     // (n)
};

/// F(x) = tanh(W_h x + b) (MODEL §2, cell = "tanh", u = 0).
struct TanhWeights {
  at::Tensor w_h;  // (n, n)
  at::Tensor b;    // (n)
};

/// Closed-form functions of the GRU cell. The Jacobian is
///   J = diag(z) + diag((x − c) ⊙ z(1 − z)) W_zh
///       + diag((1 − z) ⊙ (1 − c²)) W_ch [diag(r) + diag(x ⊙ r(1 − r)) W_rh],
/// and the gradient of q = ½‖F(x) − x‖² is the vector–Jacobian product (J − I)ᵀ (F(x) − x),
/// computed without forming J (six n×n matrix products per point, as forward + backward).
/// Weights are copied (detached) and must share one dtype and device with the states.
/// Throws std::invalid_argument on shapes that do not match (n, n) / (n).
AutonomousMap gru_map(const GruWeights& weights);

/// Closed-form functions of the tanh cell: J = diag(1 − F²) W_h,
/// gradient of q = W_hᵀ((1 − F²) ⊙ r) − r with r = F(x) − x.
AutonomousMap tanh_map(const TanhWeights& weights);

/// Batched Jacobians by autograd with the sum trick: row i of every J is ∂(Σ_p F(x)_{p,i})/∂x
/// (n backward passes for the whole batch; valid because row p of F depends only on row p
/// of x). `step` must be differentiable with torch ops. Returns (p, n, n).
at::Tensor autograd_jacobian(const StepFn& step, const at::Tensor& x_pn);

}  // namespace jslds::analysis
