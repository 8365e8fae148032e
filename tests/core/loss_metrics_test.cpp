// Loss terms (MODEL §5) and metrics (MODEL §6) on hand-computable cases.
// Legend: B trials, T bins, N neurons, n latent, m inferred inputs, O outputs.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model/jslds_model.h"
#include "core/train/loss.h"
#include "core/train/metrics.h"
#include "core/data/loaders.h"

namespace jslds {
namespace {

TEST(PoissonLoss, SumsOverTimeAndNeuronsAndAveragesOverTrials) {
  // λ = 2, y = 1 everywhere: each bin contributes 2 − ln 2; 3 bins × 4 neurons per trial.
  const at::Tensor log_rates = torch::full({2, 3, 4}, std::log(2.0));
  const at::Tensor y = torch::ones({2, 3, 4});
  EXPECT_NEAR(poisson_nll_per_trial(log_rates, y).item<double>(), 12.0 * (2.0 - std::log(2.0)), 1e-5);
}

TEST(TaskLoss, MaskedMseCountsOnlyMaskedStepsAndEveryOutput) {
  const at::Tensor out = torch::zeros({1, 3, 2});
  at::Tensor target = torch::zeros({1, 3, 2});
  target[0][0][0] = 2.0;   // masked in: contributes 4
  target[0][2][1] = 10.0;  // masked out
  const at::Tensor mask = torch::tensor({{1.0f, 1.0f, 0.0f}});
  // (4 + 0 + 0 + 0) / (2 steps · 2 outputs)
  EXPECT_NEAR(masked_mse(out, target, mask).item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(masked_mse(out, target, {}).item<double>(), (4.0 + 100.0) / 6.0, 1e-5);
}

TEST(KlTerms, InitialConditionAgainstTheN0PointOnePrior) {
  // q = prior → 0; a mean of 1 in one dimension adds ½·1/0.1 = 5.
  const at::Tensor logvar = torch::full({2, 3}, std::log(0.1));
  at::Tensor mean = torch::zeros({2, 3});
  EXPECT_NEAR(kl_initial_condition(mean, logvar, 0.1).item<double>(), 0.0, 1e-6);
  mean[0][1] = 1.0;
  mean[1][1] = 1.0;
  EXPECT_NEAR(kl_initial_condition(mean, logvar, 0.1).item<double>(), 5.0, 1e-5);
}

TEST(KlTerms, InferredInputsAgainstTheAr1Prior) {
  // One trial, one input, two steps; q has unit variance centred on the sample, so
  // log q = −½ (0 + 0) per step and KL = −log p (without the ½ log 2π that cancels).
  const double var = 0.1, tau = 10.0, phi = std::exp(-1.0 / tau);
  const double u1 = 0.3, u2 = -0.2;
  const at::Tensor u = torch::tensor({u1, u2}, torch::kFloat64).view({1, 2, 1});
  const at::Tensor logvar = torch::zeros({1, 2, 1}, torch::kFloat64);
  const double v2 = var * (1.0 - phi * phi);
  const double expected = 0.5 * (std::log(var) + u1 * u1 / var) + 0.5 * (std::log(v2) + std::pow(u2 - phi * u1, 2) / v2);
  EXPECT_NEAR(kl_inferred_inputs(u, u, logvar, tau, var).item<double>(), expected, 1e-10);
}

TEST(KlTerms, WarmupWeightFollowsTheSchedule) {
  LossOptions w;  // [500, 1000], kl_scale 1
  EXPECT_DOUBLE_EQ(kl_warmup_weight(0, w), 0.01);
  EXPECT_DOUBLE_EQ(kl_warmup_weight(500, w), 0.01);
  EXPECT_NEAR(kl_warmup_weight(750, w), 0.505, 1e-12);
  EXPECT_DOUBLE_EQ(kl_warmup_weight(1000, w), 1.0);
  EXPECT_DOUBLE_EQ(kl_warmup_weight(5000, w), 1.0);
  w.kl_scale = 2.0;
  EXPECT_NEAR(kl_warmup_weight(750, w), 1.01, 1e-12);
}

TEST(ComputeLoss, TotalIsTheWeightedSumOfTheLoggedTerms) {
  torch::manual_seed(2);
  ModelOptions mo;
  mo.latent_dim = 5;
  mo.factors_dim = 3;
  mo.encoder_dim = 4;
  mo.controller_dim = 3;
  mo.inferred_input_dim = 1;
  JsldsModel model(JsldsModelOptions(mo, ModelDims{4, 4, 0, 0}));
  Batch batch;
  batch.spikes_btn = torch::poisson(torch::full({3, 6, 4}, 0.7));
  batch.encoder_spikes_btn = batch.spikes_btn;
  ForwardOptions fo;
  fo.sample = true;
  const ModelOutput out = model->forward(batch.encoder_spikes_btn, {}, fo);
  LossOptions w;
  w.w_rnn = 1.5;
  w.w_jslds = 0.5;
  w.w_approx = 10.0;
  w.w_fp = 100.0;
  w.l2 = 0.01;
  const int64_t step = 750;
  const LossBreakdown loss = compute_loss(*model, out, batch, w, step);
  std::map<std::string, double> t;
  for (const auto& [name, value] : loss.terms) t[name] = value.item<double>();
  ASSERT_EQ(t.size(), 7u);
  const double beta = kl_warmup_weight(step, w);
  const double expected = 1.5 * t["loss_rnn"] + 0.5 * t["loss_jslds"] + 10.0 * t["loss_approx"] +
                          100.0 * t["loss_fp"] + beta * (t["loss_kl_ic"] + t["loss_kl_ii"]) + 0.01 * t["loss_l2"];
  EXPECT_NEAR(loss.total.item<double>(), expected, 1e-4 * std::abs(expected));
  // The approximation term is Σ_t ‖g_t − a_t‖² per trial.
  EXPECT_NEAR(t["loss_approx"], (out.g_btn - out.a_btn).square().sum().item<double>() / 3.0, 1e-5);
  // L2 covers the generator's recurrent weights and the controller's weight_hh.
  const double l2 = model->cell->w_rzh.square().sum().item<double>() + model->cell->w_ch.square().sum().item<double>() +
                    model->controller->cell->weight_hh.square().sum().item<double>();
  EXPECT_NEAR(t["loss_l2"], l2, 1e-4);
}

TEST(BitsPerSpike, IsZeroForTheNullModelAndPositiveForTheTrueRates) {
  DataOptions options;
  options.sim_trials = 40;
  options.sim_bins = 30;
  options.sim_neurons = 12;
  const Dataset d = simulate("oscillator", options);
  const at::Tensor null_rate = d.spikes_btn.mean(at::IntArrayRef{0, 1});
  const at::Tensor null_log_rates = torch::log(null_rate).view({1, 1, -1}).expand(d.spikes_btn.sizes());
  EXPECT_NEAR(bits_per_spike(null_log_rates, d.spikes_btn, null_rate), 0.0, 1e-9);
  const at::Tensor true_rates = d.truth.at("rates_hz") * (d.bin_ms / 1000.0);  // counts per bin
  const double truth = bits_per_spike(torch::log(true_rates), d.spikes_btn, null_rate);
  EXPECT_GT(truth, 0.05);
  // A model worse than the null model scores negative.
  EXPECT_LT(bits_per_spike(null_log_rates + 1.0, d.spikes_btn, null_rate), 0.0);
}

TEST(BitsPerSpike, SilentTrainingNeuronGivesNoNaN) {
  at::Tensor y = torch::zeros({2, 3, 2});
  y[0][0][0] = 2.0;
  y[1][2][1] = 1.0;  // neuron 1 fires in validation but its training rate is 0
  const at::Tensor null_rate = torch::tensor({0.3f, 0.0f});
  const double bps = bits_per_spike(torch::full({2, 3, 2}, std::log(0.3)), y, null_rate);
  EXPECT_TRUE(std::isfinite(bps));
  EXPECT_GT(bps, 0.0);  // the model's 0.3 beats the 1e-9 floor on neuron 1
}

TEST(StateMetrics, RelativeStateErrorAndFixedPointResidual) {
  const at::Tensor g = torch::tensor({3.0, 4.0}).view({1, 1, 2});
  const at::Tensor a = torch::tensor({3.5, 4.0}).view({1, 1, 2});
  EXPECT_NEAR(relative_state_error(g, a), 0.1, 1e-12);
  EXPECT_NEAR(fixed_point_residual(a, g), 0.125, 1e-12);
}

}  // namespace
}  // namespace jslds
