// Closed-form GRU/tanh maps (core/analysis/generator_maps.h) against autograd.
// Letters: p points, n latent dimension.
#include "core/analysis/generator_maps.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace jslds::analysis {
namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

GruWeights random_gru(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  const double gain = 1.5 / std::sqrt(static_cast<double>(n));
  // Non-zero biases so that every term of the Jacobian matters.
  return {torch::randn({n, n}, kF64) * gain, torch::randn({n, n}, kF64) * gain,
          torch::randn({n, n}, kF64) * gain, 0.3 * torch::randn({n}, kF64),
          0.3 * torch::randn({n}, kF64) + 0.5, 0.3 * torch::randn({n}, kF64)};
}

double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

TEST(GeneratorMaps, GruStepIsTheResetBeforeMatmulCell) {
  GruWeights w = random_gru(6, 1);
  torch::Tensor x = torch::randn({9, 6}, kF64);
  torch::Tensor r = torch::sigmoid(x.mm(w.w_rh.t()) + w.b_r);
  torch::Tensor z = torch::sigmoid(x.mm(w.w_zh.t()) + w.b_z);
  torch::Tensor c = torch::tanh((r * x).mm(w.w_ch.t()) + w.b_c);
  torch::Tensor expected = z * x + (1 - z) * c;
  EXPECT_LT(rel_error(gru_map(w).step(x), expected), 1e-14);
}

TEST(GeneratorMaps, GruClosedFormJacobianMatchesAutograd) {
  for (int64_t n : {5, 32}) {
    AutonomousMap map = gru_map(random_gru(n, 2));
    torch::Tensor x = torch::randn({7, n}, kF64);
    EXPECT_LT(rel_error(map.jacobian(x), autograd_jacobian(map.step, x)), 1e-12) << "n = " << n;
  }
}

TEST(GeneratorMaps, GruClosedFormGradientMatchesAutograd) {
  for (int64_t n : {5, 32}) {
    AutonomousMap map = gru_map(random_gru(n, 3));
    torch::Tensor x = torch::randn({11, n}, kF64);
    auto [res, grad] = map.residual_gradient(x);
    auto [res_ag, grad_ag] = autograd_residual_gradient(map.step)(x);
    EXPECT_LT(rel_error(res, res_ag), 1e-14) << "n = " << n;
    EXPECT_LT(rel_error(grad, grad_ag), 1e-12) << "n = " << n;
    // And it is (J − I)ᵀ r with the closed-form Jacobian.
    torch::Tensor jac = map.jacobian(x) - torch::eye(n, kF64);
    torch::Tensor expected = torch::matmul(jac.transpose(1, 2), res.unsqueeze(2)).squeeze(2);
    EXPECT_LT(rel_error(grad, expected), 1e-12);
  }
}

TEST(GeneratorMaps, TanhClosedFormsMatchAutograd) {
  torch::manual_seed(4);
  const int64_t n = 12;
  AutonomousMap map = tanh_map({torch::randn({n, n}, kF64) / 2, torch::randn({n}, kF64) * 0.2});
  torch::Tensor x = torch::randn({5, n}, kF64);
  EXPECT_LT(rel_error(map.jacobian(x), autograd_jacobian(map.step, x)), 1e-12);
  auto [res, grad] = map.residual_gradient(x);
  auto [res_ag, grad_ag] = autograd_residual_gradient(map.step)(x);
  EXPECT_LT(rel_error(grad, grad_ag), 1e-12);
}

TEST(GeneratorMaps, RejectsWeightsOfTheWrongShape) {
  GruWeights w = random_gru(4, 5);
  w.b_c = torch::zeros({3}, kF64);
  try {
    gru_map(w);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("b_c has shape (3), expected (4)"), std::string::npos)
        << e.what();
  }
  AutonomousMap map = gru_map(random_gru(4, 5));
  EXPECT_THROW(map.step(torch::zeros({2, 5}, kF64)), std::invalid_argument);
}

}  // namespace
}  // namespace jslds::analysis
