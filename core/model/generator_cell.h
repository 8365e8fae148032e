// The generator cell F(h, u; θ) of MODEL.md §2 and its closed-form Jacobian-vector product
// (MODEL.md §3), for both cells:
//
//   gru  (reset BEFORE the matmul, as in the JSLDS reference; LibTorch's GRUCell differs):
//        r = σ(W_rh h + W_ru u + b_r)
//        z = σ(W_zh h + W_zu u + b_z + b_fg)
//        c = tanh(W_ch (r ⊙ h) + W_cu u + b_c)
//        F = z ⊙ h + (1 − z) ⊙ c
//   tanh: F = tanh(W_h h + W_u u + b)
//
// Legend: B batch (trials or points), n latent dimension, p generator input dimension,
// q = 3n (gru) or n (tanh): the width of the input drive W_u u.
//
// Parameters are stored fused so that a step needs few, large matrix products:
//   gru:  w_rzh (2n,n) = [W_rh; W_zh], w_ch (n,n), w_u (3n,p) = [W_ru; W_zu; W_cu],
//         b_rz (2n) = [b_r; b_z], b_c (n), and the constant buffer fg_bias (2n) = [0; b_fg].
//   tanh: w_h (n,n), w_u (n,p), b (n).
// Init (MODEL §2, reference): recurrent weights N(0,1)·gain/√n (gain 0.9), input weights
// N(0,1)/√p, biases 0.
//
// The time loop calls `pack()` once per sequence (transposes, fused biases) and then
// `step`/`jvp` per time step with the input drive W_u u_t computed by `input_drive`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace jslds {

enum class CellKind { kGru, kTanh };

/// Parses "gru" | "tanh"; throws std::invalid_argument naming the expected values.
CellKind parse_cell_kind(const std::string& name);
const char* cell_kind_name(CellKind kind);

struct GeneratorCellOptions {
  GeneratorCellOptions(int64_t latent_dim, int64_t input_dim) : latent_dim_(latent_dim), input_dim_(input_dim) {}
  /// Latent (generator) dimension n, ≥ 1.
  TORCH_ARG(int64_t, latent_dim);
  /// Generator input dimension p = inferred + external inputs, ≥ 0 (0: autonomous cell).
  TORCH_ARG(int64_t, input_dim);
  /// Which cell (MODEL §2).
  TORCH_ARG(CellKind, kind) = CellKind::kGru;
  /// b_fg, a constant added to the GRU update-gate pre-activation (0.5 in poisson mode,
  /// 0 in task mode; reference). Ignored by the tanh cell.
  TORCH_ARG(double, forget_bias) = 0.0;
  /// Scale of the recurrent weight init N(0,1)·gain/√n.
  TORCH_ARG(double, recurrent_gain) = 0.9;
};

/// Per-sequence precomputed weights: transposes and fused biases. Valid until the
/// parameters change (i.e. for one forward pass); differentiable w.r.t. the parameters.
struct PackedCell {
  torch::Tensor w_rec_t;  // gru: w_rzh^T (n,2n); tanh: w_h^T (n,n)
  torch::Tensor w_ch_t;   // gru: w_ch^T (n,n); tanh: undefined
  torch::Tensor bias;     // gru: b_rz + fg_bias followed by b_c (3n); tanh: b (n)
  torch::Tensor bias_rz;  // gru: b_rz + fg_bias (2n)
  torch::Tensor bias_c;   // gru: b_c (n)
};

/// F(e, u*) and J_h(e,u*) δh + J_u(e,u*) δu, both (B,n).
struct CellJvp {
  torch::Tensor f_e_bn;
  torch::Tensor jvp_bn;
};

/// One co-training time step: the nonlinear chain's F(h, u) and the JSLDS chain's
/// F(e*, u*) and JVP, all (B,n).
struct CellCoStep {
  torch::Tensor f_h_bn;
  torch::Tensor f_e_bn;
  torch::Tensor jvp_bn;
};

class GeneratorCellImpl : public torch::nn::Cloneable<GeneratorCellImpl> {
 public:
  GeneratorCellImpl(int64_t latent_dim, int64_t input_dim)
      : GeneratorCellImpl(GeneratorCellOptions(latent_dim, input_dim)) {}
  explicit GeneratorCellImpl(const GeneratorCellOptions& options);

  void reset() override;
  /// Re-draws the parameters with the MODEL §2 init (uses the global Torch RNG).
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;

  /// Transposed weights and fused biases for one sequence.
  PackedCell pack() const;

  /// The input drive W_u u (…,q) WITHOUT biases, for u (…,p). Returns an undefined tensor
  /// when p = 0 or `u` is undefined (no input).
  torch::Tensor input_drive(const torch::Tensor& u) const;
  /// The input drive of the inputs columns [first, first+count) only, for u (…,count): used to
  /// project the external inputs (the last k columns) of a whole sequence at once.
  torch::Tensor input_drive_columns(const torch::Tensor& u, int64_t first, int64_t count) const;

  /// F(h, u) for h (B,n) and the input drive uw = W_u u (B,q) (undefined = zero input).
  torch::Tensor step(const torch::Tensor& h_bn, const torch::Tensor& uw_bq, const PackedCell& packed) const;

  /// Closed-form JVP of F at (e, u*) along (δh, δu) (MODEL §3) with ordinary differentiable
  /// ops, so gradients reach θ through the Jacobian and e through both arguments.
  /// `duw_bq` = W_u δu (undefined: δu = 0); `ustar_drive_bq` = W_u u* (undefined: u* = 0).
  CellJvp jvp(const torch::Tensor& e_bn, const torch::Tensor& dh_bn, const torch::Tensor& duw_bq,
              const torch::Tensor& ustar_drive_bq, const PackedCell& packed) const;

  /// step(h, uw) and jvp(e, δh, duw, u* drive) in one pass, equal to calling both: the three
  /// products with each recurrent weight matrix (h, e and δh) run as one stacked matrix
  /// product. This is what the co-training time loop calls. For the GRU on the CPU (float or
  /// double, `use_fused_backward` true) the whole step is ONE autograd node with a
  /// hand-written backward (exact, including the second derivatives of σ and tanh that the
  /// JVP's gradient needs); it is differentiable once (a create_graph backward through it
  /// throws c10::Error). Otherwise (tanh cell, CUDA, `use_fused_backward` false) it is
  /// built from ordinary differentiable ops with the fused sigmoid/tanh backward kernels.
  CellCoStep co_step(const torch::Tensor& h_bn, const torch::Tensor& uw_bq, const torch::Tensor& e_bn,
                     const torch::Tensor& dh_bn, const torch::Tensor& duw_bq, const torch::Tensor& ustar_drive_bq,
                     const PackedCell& packed) const;

  /// Convenience: F(h, u) with u (B,p) or undefined (zero input).
  torch::Tensor forward(const torch::Tensor& h_bn, const torch::Tensor& u_bp = {});

  /// The weights the poisson-mode L2 penalty covers (MODEL §5): gru w_rzh, w_ch; tanh w_h.
  std::vector<torch::Tensor> recurrent_weights() const;

  /// Width q of the input drive: 3n (gru) or n (tanh).
  int64_t drive_dim() const;

 private:
  bool fused_backward_eligible(const torch::Tensor& h_bn, const torch::Tensor& e_bn, const torch::Tensor& dh_bn,
                               const torch::Tensor& uw_bq, const torch::Tensor& duw_bq,
                               const torch::Tensor& ustar_drive_bq) const;

 public:

  GeneratorCellOptions options;
  /// co_step's single-node GRU path with the hand-written backward (default). False selects
  /// the plain autograd composition (the reference the tests compare it against).
  bool use_fused_backward = true;
  // gru
  torch::Tensor w_rzh, w_ch, b_rz, b_c, fg_bias;
  // tanh
  torch::Tensor w_h, b;
  // both (undefined when p = 0)
  torch::Tensor w_u;
};
TORCH_MODULE(GeneratorCell);

}  // namespace jslds
