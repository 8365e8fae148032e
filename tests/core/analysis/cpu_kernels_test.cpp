// The search's CPU float32 kernels (core/analysis/cpu_kernels.h) against the float64 tensor-op
// closed forms and torch::optim::Adam. Letters: p points, n latent dimension.
#include "core/analysis/cpu_kernels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/analysis/fixed_points.h"
#include "core/analysis/generator_maps.h"

namespace jslds::analysis {
namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

GruWeights random_gru(int64_t n, uint64_t seed, double gain_scale = 1.5) {
  torch::manual_seed(seed);
  const double gain = gain_scale / std::sqrt(static_cast<double>(n));
  return {torch::randn({n, n}, kF64) * gain, torch::randn({n, n}, kF64) * gain,
          torch::randn({n, n}, kF64) * gain, 0.3 * torch::randn({n}, kF64),
          0.3 * torch::randn({n}, kF64) + 0.5, 0.3 * torch::randn({n}, kF64)};
}

GruWeights to_float(const GruWeights& w) {
  auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat32); };
  return {f(w.w_rh), f(w.w_zh), f(w.w_ch), f(w.b_r), f(w.b_z), f(w.b_c)};
}

double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm())
      .item<double>();
}

// n = 5 and 37 leave remainders after every vector width; 64 is the benchmark's size. The
// float64 map runs the tensor-op closed form (checked against autograd in
// generator_maps_test.cpp), the float32 map the fused kernels.
TEST(CpuKernels, FusedGruResidualAndGradientMatchTheFloat64ClosedForm) {
  for (int64_t n : {5, 37, 64}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    GruWeights w64 = random_gru(n, 20 + static_cast<uint64_t>(n));
    torch::Tensor x64 = torch::randn({131, n}, kF64);
    auto [res64, grad64] = gru_map(w64).residual_gradient(x64);
    torch::Tensor x32 = x64.to(torch::kFloat32);
    ASSERT_TRUE(cpu::dense_cpu_float32(x32));
    auto [res32, grad32] = gru_map(to_float(w64)).residual_gradient(x32);
    EXPECT_EQ(res32.scalar_type(), torch::kFloat32);
    EXPECT_LT(rel_error(res32, res64), 2e-6);
    EXPECT_LT(rel_error(grad32, grad64), 2e-6);
    EXPECT_GT(grad64.abs().max().item<double>(), 1e-2);  // a gradient worth comparing
    // A second call (scratch reused) with fewer points gives the same rows.
    auto [res_head, grad_head] = gru_map(to_float(w64)).residual_gradient(x32.narrow(0, 0, 17).contiguous());
    EXPECT_TRUE(torch::equal(res_head, res32.narrow(0, 0, 17)));
    EXPECT_TRUE(torch::equal(grad_head, grad32.narrow(0, 0, 17)));
  }
}

TEST(CpuKernels, FusedGruMatchesAutogradInFloat32) {
  const int64_t n = 24;
  AutonomousMap map = gru_map(to_float(random_gru(n, 31)));
  torch::Tensor x = torch::randn({50, n});
  auto [res, grad] = map.residual_gradient(x);
  auto [res_ag, grad_ag] = autograd_residual_gradient(map.step)(x);
  EXPECT_LT(rel_error(res, res_ag), 2e-6);
  EXPECT_LT(rel_error(grad, grad_ag), 2e-6);
}

TEST(CpuKernels, RowSquaredNormsAccumulateInFloat64) {
  torch::Tensor r = torch::randn({9, 77});
  torch::Tensor sq = cpu::row_squared_norms(r);
  EXPECT_EQ(sq.scalar_type(), torch::kFloat64);
  EXPECT_LT(rel_error(sq, r.to(torch::kFloat64).square().sum(1)), 1e-15);
  // A row with one value of 1e-4 among 1s: the float64 sum keeps the 1e-8.
  torch::Tensor ones = torch::ones({1, 100});
  ones[0][0] = 1e-4f;
  EXPECT_DOUBLE_EQ(cpu::row_squared_norms(ones)[0].item<double>(),
                   99.0 + static_cast<double>(1e-4f) * static_cast<double>(1e-4f));
}

TEST(CpuKernels, AdamStepIsTheFoldedUpdate) {
  torch::manual_seed(32);
  torch::Tensor x = torch::randn({33, 19}), m = torch::randn({33, 19}) * 0.1,
                v = torch::rand({33, 19}) * 0.1, g = torch::randn({33, 19});
  const cpu::AdamConstants c{0.9f, 0.999f, 0.1f * 0.5f, 0.001f * 0.25f, -0.7f, 0.003f};
  torch::Tensor m_ref = 0.9 * m.to(torch::kFloat64) + 0.05 * g.to(torch::kFloat64);
  torch::Tensor v_ref = 0.999 * v.to(torch::kFloat64) + 0.00025 * g.to(torch::kFloat64).square();
  torch::Tensor x_ref = x.to(torch::kFloat64) - 0.7 * m_ref / (v_ref.sqrt() + 0.003);
  cpu::adam_step(x, m, v, g, c);
  EXPECT_LT(rel_error(m, m_ref), 1e-6);
  EXPECT_LT(rel_error(v, v_ref), 1e-6);
  EXPECT_LT(rel_error(x, x_ref), 1e-6);
}

// The benchmark's kind of problem in float32 (fused) and float64 (tensor ops): the same
// fixed point, reached in about the same number of iterations.
TEST(CpuKernels, Float32SearchFindsTheFloat64FixedPoints) {
  const int64_t n = 32;
  GruWeights w64 = random_gru(n, 35, 0.9);
  torch::Tensor x0 = 0.5 * torch::randn({256, n}, kF64);
  FixedPointSearchOptions o;
  FixedPointSearchResult f64 = search_fixed_points(gru_map(w64).residual_gradient, x0, o);
  FixedPointSearchResult f32 =
      search_fixed_points(gru_map(to_float(w64)).residual_gradient, x0.to(torch::kFloat32), o);
  ASSERT_EQ(f64.stop_reason, "all_converged");
  EXPECT_EQ(f32.stop_reason, "all_converged");
  EXPECT_NEAR(static_cast<double>(f32.iterations), static_cast<double>(f64.iterations),
              0.05 * static_cast<double>(f64.iterations));
  // One fixed point, approached from every start to within the tolerance's reach; each start
  // ends where its float64 twin does.
  torch::Tensor fp = f64.x_pn.mean(0);
  EXPECT_LT((f64.x_pn - fp).abs().max().item<double>(), 2e-2);
  EXPECT_LT((f32.x_pn.to(torch::kFloat64) - fp).abs().max().item<double>(), 2e-2);
  EXPECT_LT((f32.x_pn.to(torch::kFloat64) - f64.x_pn).abs().max().item<double>(), 1e-5);
}

TEST(CpuKernels, RejectOtherDtypesLayoutsAndShapes) {
  EXPECT_FALSE(cpu::dense_cpu_float32(torch::zeros({3, 4}, kF64)));
  EXPECT_FALSE(cpu::dense_cpu_float32(torch::zeros({4, 3}).t()));
  EXPECT_FALSE(cpu::dense_cpu_float32(torch::Tensor()));
  EXPECT_THROW(cpu::row_squared_norms(torch::zeros({3, 4}, kF64)), std::invalid_argument);
  torch::Tensor x = torch::zeros({3, 4}), x5 = torch::zeros({3, 5});
  EXPECT_THROW(cpu::adam_step(x, x5, x5, x5, {}), std::invalid_argument);
  GruWeights w = to_float(random_gru(4, 36));
  cpu::GruSearchWeights sw{torch::cat({w.w_rh, w.w_zh}).t().contiguous(),
                           torch::cat({w.w_rh, w.w_zh}).contiguous(), torch::cat({w.b_r, w.b_z}),
                           (2 * w.w_ch.t()).contiguous(), 2 * w.b_c, w.w_ch.contiguous()};
  EXPECT_NO_THROW(cpu::gru_residual_gradient(sw, torch::zeros({2, 4})));
  try {
    cpu::gru_residual_gradient(sw, torch::zeros({2, 5}));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("w_rzh_t is (4, 8), expected (5, 10)"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace jslds::analysis
