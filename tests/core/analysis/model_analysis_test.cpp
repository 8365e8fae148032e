// The analysis glue for a JsldsModel (core/analysis/model_analysis.h): the closed-form map
// built from the fused cell weights against autograd through JsldsModelImpl::generator_step,
// the collection of e*_t and g_t, and a model whose fixed point and spectrum are known.
// Letters: B trials, T bins, N neurons, k inputs, n latent, p points.
#include "core/analysis/model_analysis.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model/jslds_model.h"
#include "core/train/loss.h"

namespace jslds::analysis {
namespace {

double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

JsldsModel make_model(const std::string& mode, const std::string& cell, int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  ModelOptions mo;
  mo.mode = mode;
  mo.cell = cell;
  mo.latent_dim = n;
  mo.factors_dim = 4;
  mo.encoder_dim = 8;
  ModelDims dims;
  if (mode == "poisson") {
    dims.neurons = dims.heldin_neurons = 5;
  } else {
    dims.external_inputs = 2;
    dims.outputs = 3;
  }
  JsldsModel model(JsldsModelOptions(mo, dims));
  // Non-zero biases, so that the bias layout (b_rz + fg_bias) matters.
  torch::NoGradGuard no_grad;
  for (auto& p : model->cell->named_parameters()) {
    if (p.key().rfind("b", 0) == 0) p.value().normal_(0.0, 0.3);
  }
  return model;
}

// F, J and the search gradient of generator_map against autograd through the model's own
// generator_step (u = 0), in float64, for both cells and both modes (b_fg = 0.5 in poisson mode).
TEST(ModelAnalysis, GeneratorMapMatchesAutogradThroughGeneratorStep) {
  struct Case {
    const char* mode;
    const char* cell;
  };
  for (const Case& c : {Case{"poisson", "gru"}, Case{"task", "gru"}, Case{"poisson", "tanh"}}) {
    SCOPED_TRACE(std::string(c.mode) + " " + c.cell);
    const int64_t n = 12;
    JsldsModel model = make_model(c.mode, c.cell, n, 7);
    model->to(torch::kFloat64);
    const AutonomousMap map = generator_map(*model);
    const StepFn model_step = [&](const torch::Tensor& x) { return model->generator_step(x); };
    torch::Tensor x = 1.5 * torch::randn({9, n}, torch::kFloat64);

    EXPECT_LT(rel_error(map.step(x), model->generator_step(x).detach()), 1e-14);
    const torch::Tensor j_autograd = autograd_jacobian(model_step, x);
    EXPECT_LT(rel_error(map.jacobian(x), j_autograd), 1e-12);
    // The model's own closed-form Jacobian (its JVP along the basis) agrees too.
    EXPECT_LT(rel_error(model->jacobian(x).detach(), j_autograd), 1e-12);
    auto [res, grad] = map.residual_gradient(x);
    auto [res_ag, grad_ag] = autograd_residual_gradient(model_step)(x);
    EXPECT_LT(rel_error(res, res_ag), 1e-14);
    EXPECT_LT(rel_error(grad, grad_ag), 1e-12);
  }
}

TEST(ModelAnalysis, MapIsASnapshotOfTheWeights) {
  JsldsModel model = make_model("poisson", "gru", 6, 3);
  const AutonomousMap map = generator_map(*model);
  torch::Tensor x = torch::randn({4, 6});
  const torch::Tensor before = map.step(x);
  {
    torch::NoGradGuard no_grad;
    model->cell->w_ch.add_(1.0);
  }
  EXPECT_TRUE(torch::equal(map.step(x), before));
  EXPECT_GT(rel_error(generator_map(*model).step(x), before), 1e-3);
}

TEST(ModelAnalysis, CollectsExpansionPointsAndStatesOfTheEvaluationPass) {
  const int64_t n = 6, B = 5, T = 7;
  JsldsModel model = make_model("poisson", "gru", n, 11);
  Batch trials;
  trials.spikes_btn = torch::poisson(torch::full({B, T, 5}, 0.7));
  trials.encoder_spikes_btn = trials.spikes_btn;
  model->train();
  // Chunks of 2 trials must give exactly the one-pass result.
  const CollectedStates got = collect_states(*model, trials, /*chunk_trials=*/2);
  EXPECT_TRUE(model->is_training());  // the module's mode is restored
  torch::NoGradGuard no_grad;
  model->eval();
  ForwardOptions fo;
  fo.sample = false;
  const ModelOutput out = model->forward(trials.encoder_spikes_btn, trials.inputs_btk, fo);
  ASSERT_EQ(got.states_pn.sizes(), (at::IntArrayRef{B * T, n}));
  ASSERT_EQ(got.expansion_points_pn.sizes(), (at::IntArrayRef{B * T, n}));
  EXPECT_LT(rel_error(got.states_pn, out.g_btn.reshape({B * T, n})), 1e-6);
  EXPECT_LT(rel_error(got.expansion_points_pn, out.estar_btn.reshape({B * T, n})), 1e-6);
  // Row b·T + t is trial b, bin t.
  EXPECT_TRUE(torch::allclose(got.states_pn[3 * T + 4], out.g_btn[3][4], 1e-6, 1e-6));
}

TEST(ModelAnalysis, RefusesTrialsWithoutTheModelsInput) {
  JsldsModel model = make_model("task", "gru", 4, 1);
  Batch trials;  // no inputs
  EXPECT_THROW(collect_states(*model, trials), std::invalid_argument);
}

// A GRU with zero recurrent weights: F(x) = z ⊙ x + (1 − z) ⊙ tanh(b_c) with z = σ(b_z + b_fg)
// constant, so the only fixed point is x* = tanh(b_c) and J = diag(σ(b_z + b_fg)) everywhere:
// in poisson mode (b_fg = 0.5) with b_z = 0 every eigenvalue is σ(0.5) ≈ 0.6225, a stable node
// with τ = −Δt/ln σ(0.5).
TEST(ModelAnalysis, KnownFixedPointAndSpectrumThroughTheModel) {
  const int64_t n = 5;
  JsldsModel model = make_model("poisson", "gru", n, 5);
  const torch::Tensor b_c = torch::linspace(-0.8, 0.8, n);
  {
    torch::NoGradGuard no_grad;
    model->cell->w_rzh.zero_();
    model->cell->w_ch.zero_();
    model->cell->b_rz.zero_();
    model->cell->b_c.copy_(b_c);
  }
  Batch trials;
  trials.spikes_btn = torch::poisson(torch::full({6, 10, 5}, 1.0));
  trials.encoder_spikes_btn = trials.spikes_btn;
  AnalysisOptions options;
  options.n_inits = 64;
  options.fp_tol = 1e-10;  // ‖x − x*‖ ≤ √(n·fp_tol)/(1 − σ(0.5)) ≈ 6e-5 at convergence
  const double bin_ms = 10.0;
  const AnalysisResult r = analyse_model(*model, trials, options, bin_ms, /*seed=*/3);

  ASSERT_EQ(r.fixed_points.size(), 1u);
  const PointAnalysis& fp = r.fixed_points[0];
  const torch::Tensor x = torch::tensor(fp.coords, torch::kFloat64);
  EXPECT_LT((x - torch::tanh(b_c).to(torch::kFloat64)).abs().max().item<double>(), 1e-4);
  const double lambda = 1.0 / (1.0 + std::exp(-0.5));
  EXPECT_NEAR(fp.max_abs_eig, lambda, 1e-5);
  EXPECT_EQ(fp.stability, Stability::kStable);
  EXPECT_NEAR(fp.modes.at(0).tau_s, -bin_ms * 1e-3 / std::log(lambda), 1e-5);
  EXPECT_EQ(r.summary.at("n_stable"), 1.0);
  EXPECT_EQ(r.summary.at("n_stable_clusters"), 1.0);
  // Every expansion point has the same spectrum (J is constant).
  ASSERT_FALSE(r.expansion_points.empty());
  for (const auto& p : r.expansion_points) EXPECT_NEAR(p.max_abs_eig, lambda, 1e-5);
}

}  // namespace
}  // namespace jslds::analysis
