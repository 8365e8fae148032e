// The expansion network E(·; φ) of MODEL.md §3: a residual tanh MLP that maps the previous
// JSLDS state a_{t−1} to the expansion point e*_t around which the generator is linearised.
//
//   y_0 = a_{t−1}  (or [a_{t−1}; u_t] with a learned input expansion point)
//   y_{l+1} = tanh(y_l + W_l y_l + b_l),  l = 0 … L−1,  weights and biases initialised to 0
//   e*_t = y_L[:n]   (u*_t = y_L[n:] when the input expansion point is learned, else 0)
//
// Legend: B batch, n latent dimension, p generator input dimension, w = n (+ p) width.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace jslds {

struct ExpansionNetworkOptions {
  ExpansionNetworkOptions(int64_t latent_dim, int64_t layers) : latent_dim_(latent_dim), layers_(layers) {}
  /// Latent dimension n (≥ 1).
  TORCH_ARG(int64_t, latent_dim);
  /// Number L of residual tanh layers (≥ 1; reference 2).
  TORCH_ARG(int64_t, layers);
  /// Generator input dimension p; used only when `learned_input` is true.
  TORCH_ARG(int64_t, input_dim) = 0;
  /// model.input_expansion = "learned": read [a; u] and also output the input expansion
  /// point u*. False ("zero"): u* = 0 and the network reads a only.
  TORCH_ARG(bool, learned_input) = false;
};

/// Per-sequence precomputed layer maps: y ↦ tanh(y M_l + b_l) with M_l = (I + W_l)^T.
struct PackedExpansion {
  std::vector<std::pair<torch::Tensor, torch::Tensor>> layers;  // (M_l (w,w), b_l (w))
};

/// e*_t (B,n) and u*_t (B,p) (undefined with a zero input expansion point).
struct ExpansionPoint {
  torch::Tensor estar_bn;
  torch::Tensor ustar_bp;
};

class ExpansionNetworkImpl : public torch::nn::Cloneable<ExpansionNetworkImpl> {
 public:
  ExpansionNetworkImpl(int64_t latent_dim, int64_t layers)
      : ExpansionNetworkImpl(ExpansionNetworkOptions(latent_dim, layers)) {}
  explicit ExpansionNetworkImpl(const ExpansionNetworkOptions& options);

  void reset() override;
  void pretty_print(std::ostream& stream) const override;

  PackedExpansion pack() const;

  /// Expansion point for the previous JSLDS state a (B,n) and, with a learned input
  /// expansion point, the current input u (B,p) (required then; ignored otherwise).
  ExpansionPoint step(const torch::Tensor& a_bn, const torch::Tensor& u_bp,
                      const PackedExpansion& packed) const;

  /// Convenience: step() with a fresh pack().
  ExpansionPoint forward(const torch::Tensor& a_bn, const torch::Tensor& u_bp = {});

  /// Width w of the layers: n, or n + p with a learned input expansion point.
  int64_t width() const;

  ExpansionNetworkOptions options;
  std::vector<torch::Tensor> weights;  // W_l (w,w), registered as "w0", "w1", …
  std::vector<torch::Tensor> biases;   // b_l (w), registered as "b0", "b1", …
  torch::Tensor identity;              // buffer I (w,w)
};
TORCH_MODULE(ExpansionNetwork);

}  // namespace jslds
