// CPU float32 kernels of the fixed-point search's inner loop (MODEL.md §7.2): the GRU's
// residual/gradient pair and the Adam step, each iteration's hot path on the analysis of a
// trained model. The matrix products go through oneDNN's dnnl_sgemm (its JIT kernels pick the
// CPU's widest vector unit at run time: AVX-512 on Zen 4 and Skylake-X, where Debian's OpenBLAS
// 0.3.21 runs its AVX2 kernels), and the element-wise work between them is fused into single
// loops instead of one pass per tensor op. The arithmetic is the same as the tensor-op path of
// core/analysis/generator_maps.cpp and fixed_points.cpp, to float32 rounding.
//
// Everything here takes contiguous CPU float32 tensors (`dense_cpu_float32`); the callers fall
// back to tensor ops for any other dtype, layout or device (CUDA, float64).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace jslds::analysis::cpu {

/// True when `t` is a defined, contiguous CPU float32 tensor: the domain of these kernels.
bool dense_cpu_float32(const at::Tensor& t);

/// Weights of the reset-before-matmul GRU at u = 0 (core/analysis/generator_maps.h) laid out
/// for the search: row states multiply the "_t" (in, out) matrices directly.
struct GruSearchWeights {
  at::Tensor w_rzh_t;  // (n, 2n): [W_rh; W_zh]ᵀ
  at::Tensor w_rzh;    // (2n, n): [W_rh; W_zh]
  at::Tensor b_rz;     // (2n): [b_r; b_z]
  at::Tensor w_ch_t2;  // (n, n): 2·W_chᵀ (c = tanh(y) = 2σ(2y) − 1)
  at::Tensor b_c2;     // (n): 2·b_c
  at::Tensor w_ch;     // (n, n): W_ch
};

/// The residual F(x) − x and the gradient (J − I)ᵀ(F(x) − x) of q = ½‖F(x) − x‖² for states
/// x_pn (p, n), the same closed form as gru_map's residual_gradient (generator_maps.cpp):
/// four matrix products (oneDNN's dnnl_sgemm) and three fused element-wise passes. Threads
/// (at::set_num_threads, OpenMP) split the rows into blocks of at least 64, each taken through
/// the whole chain with single-threaded products. Each thread keeps 7·(rows in its block)·n
/// floats of scratch, the largest it has needed, until it exits. Returns {residual, gradient},
/// both (p, n). Throws std::invalid_argument unless states and weights are dense CPU float32 of
/// matching n, std::runtime_error when oneDNN reports a failure.
std::pair<at::Tensor, at::Tensor> gru_residual_gradient(const GruSearchWeights& w,
                                                         const at::Tensor& x_pn);

/// Σ_i r_pi² of each row of r_pn (p, n, dense CPU float32), accumulated in float64; returns (p)
/// float64 (finite for any finite residual, where a float32 sum overflows above ~1.8e19 per
/// entry). Throws std::invalid_argument on other input.
at::Tensor row_squared_norms(const at::Tensor& r_pn);

/// One Adam update (Kingma & Ba 2015, as torch::optim::Adam without weight decay) in one pass:
///   m ← β₁m + g1·g,  v ← β₂v + g2·g²,  x ← x + step·m / (√v + eps_hat)
/// with the caller's folded constants (fixed_points.cpp: g1 = (1 − β₁)·scale,
/// g2 = (1 − β₂)·scale², step = −lr·√b₂/b₁, eps_hat = ε·√b₂). All four tensors of one shape,
/// dense CPU float32; throws std::invalid_argument otherwise.
struct AdamConstants {
  float beta1, beta2, g1, g2, step, eps_hat;
};
void adam_step(at::Tensor& x, at::Tensor& m, at::Tensor& v, const at::Tensor& grad,
               const AdamConstants& c);

}  // namespace jslds::analysis::cpu
