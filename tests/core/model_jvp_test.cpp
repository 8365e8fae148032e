// Closed-form Jacobian-vector products of the generator cells (MODEL §3) against autograd,
// gradients through the JSLDS step against finite differences, and the model's wiring.
// Legend: B batch, T bins, n latent, p inputs, d factors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model/expansion_network.h"
#include "core/model/generator_cell.h"
#include "core/model/inference_networks.h"
#include "core/model/jslds_model.h"
#include "core/train/loss.h"

namespace jslds {
namespace {

// Random non-zero biases so that every term of the closed form matters.
GeneratorCell make_cell(CellKind kind, int64_t n, int64_t p, double forget_bias) {
  GeneratorCell cell(GeneratorCellOptions(n, p).kind(kind).forget_bias(forget_bias));
  cell->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  for (auto& param : cell->parameters()) {
    if (param.dim() == 1) param.normal_(0.0, 0.3);
  }
  return cell;
}

// Per-sample Jacobians of F(e, u) by autograd: rows are independent across the batch, so the
// gradient of Σ_b F_i(e_b, u_b) w.r.t. (e, u) gives row i of every sample's Jacobian.
std::pair<at::Tensor, at::Tensor> autograd_jacobians(GeneratorCell& cell, const at::Tensor& e, const at::Tensor& u) {
  const int64_t B = e.size(0);
  const int64_t n = e.size(1);
  const int64_t p = u.defined() ? u.size(1) : 0;
  at::Tensor ex = e.detach().requires_grad_(true);
  at::Tensor ux = p > 0 ? u.detach().requires_grad_(true) : at::Tensor();
  const at::Tensor f = cell->step(ex, cell->input_drive(ux), cell->pack());
  at::Tensor jh = torch::zeros({B, n, n}, e.options());
  at::Tensor ju = torch::zeros({B, n, std::max<int64_t>(p, 1)}, e.options());
  for (int64_t i = 0; i < n; ++i) {
    std::vector<at::Tensor> inputs{ex};
    if (p > 0) inputs.push_back(ux);
    auto grads = torch::autograd::grad({f.select(1, i).sum()}, inputs, {}, /*retain_graph=*/true);
    jh.select(1, i).copy_(grads[0]);
    if (p > 0) ju.select(1, i).copy_(grads[1]);
  }
  return {jh, ju};
}

struct JvpCase {
  CellKind kind;
  int64_t n, p, batch;
  bool random_ustar;
};

class ClosedFormJvp : public ::testing::TestWithParam<JvpCase> {};

TEST_P(ClosedFormJvp, MatchesAutogradJacobianInDoublePrecision) {
  const JvpCase c = GetParam();
  torch::manual_seed(1234);
  GeneratorCell cell = make_cell(c.kind, c.n, c.p, /*forget_bias=*/0.5);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const at::Tensor e = torch::randn({c.batch, c.n}, f64);
  const at::Tensor dh = torch::randn({c.batch, c.n}, f64);
  at::Tensor ustar, du;
  if (c.p > 0) {
    ustar = c.random_ustar ? torch::randn({c.batch, c.p}, f64) : torch::zeros({c.batch, c.p}, f64);
    du = torch::randn({c.batch, c.p}, f64);
  }
  auto [jh, ju] = autograd_jacobians(cell, e, ustar);
  at::Tensor want = torch::bmm(jh, dh.unsqueeze(2)).squeeze(2);
  if (c.p > 0) want = want + torch::bmm(ju, du.unsqueeze(2)).squeeze(2);
  const at::Tensor want_f = cell->step(e, cell->input_drive(ustar), cell->pack());

  const CellJvp got = cell->jvp(e, dh, cell->input_drive(du), c.random_ustar ? cell->input_drive(ustar) : at::Tensor(),
                                cell->pack());
  const double rel = ((got.jvp_bn - want).norm(2, {1}).max() / want.norm(2, {1}).min()).item<double>();
  const double rel_f = ((got.f_e_bn - want_f).norm() / want_f.norm()).item<double>();
  EXPECT_LT(rel, 1e-5) << cell_kind_name(c.kind) << " n=" << c.n << " p=" << c.p;
  EXPECT_LT(rel_f, 1e-12);
  // The Jacobian is far from trivial: the JVP is not dh itself nor zero.
  EXPECT_GT((want - dh).norm().item<double>(), 1e-2);
}

TEST_P(ClosedFormJvp, FusedCoStepEqualsStepAndJvp) {
  const JvpCase c = GetParam();
  torch::manual_seed(77);
  GeneratorCell cell = make_cell(c.kind, c.n, c.p, /*forget_bias=*/0.5);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const at::Tensor h = torch::randn({c.batch, c.n}, f64);
  const at::Tensor e = torch::randn({c.batch, c.n}, f64);
  const at::Tensor dh = torch::randn({c.batch, c.n}, f64);
  at::Tensor uw, ustar_drive;
  if (c.p > 0) {
    uw = cell->input_drive(torch::randn({c.batch, c.p}, f64));
    if (c.random_ustar) ustar_drive = cell->input_drive(torch::randn({c.batch, c.p}, f64));
  }
  const PackedCell packed = cell->pack();
  const CellCoStep fused = cell->co_step(h, uw, e, dh, uw, ustar_drive, packed);
  const CellJvp separate = cell->jvp(e, dh, uw, ustar_drive, packed);
  EXPECT_LT((fused.f_h_bn - cell->step(h, uw, packed)).abs().max().item<double>(), 1e-13);
  EXPECT_LT((fused.f_e_bn - separate.f_e_bn).abs().max().item<double>(), 1e-13);
  EXPECT_LT((fused.jvp_bn - separate.jvp_bn).abs().max().item<double>(), 1e-13);
}

INSTANTIATE_TEST_SUITE_P(BothCells, ClosedFormJvp,
                         ::testing::Values(JvpCase{CellKind::kGru, 7, 3, 5, false}, JvpCase{CellKind::kGru, 7, 3, 5, true},
                                           JvpCase{CellKind::kGru, 48, 0, 6, false},
                                           JvpCase{CellKind::kTanh, 7, 3, 5, false},
                                           JvpCase{CellKind::kTanh, 7, 3, 5, true},
                                           JvpCase{CellKind::kTanh, 48, 0, 6, false}),
                         [](const ::testing::TestParamInfo<JvpCase>& info) {
                           const JvpCase& c = info.param;
                           return std::string(cell_kind_name(c.kind)) + "_n" + std::to_string(c.n) + "_p" +
                                  std::to_string(c.p) + (c.random_ustar ? "_random_ustar" : "_zero_ustar");
                         });

// The GRU co_step's hand-written backward (one autograd node) against the plain autograd
// composition of the same formulas: gradients of a random linear functional of
// (F(h), F(e*), JVP) w.r.t. every input and parameter, double precision, relative 1e-8.
struct FusedBackwardCase {
  int64_t n, p, batch;
  bool ustar;      // a learned input expansion point u* (else u* = 0)
  bool duw_is_uw;  // δu = u (the model passes the same tensor when u* = 0)
};

void check_fused_backward(const FusedBackwardCase& c) {
  torch::manual_seed(4242);
  GeneratorCell cell = make_cell(CellKind::kGru, c.n, c.p, /*forget_bias=*/0.5);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const at::Tensor h = torch::randn({c.batch, c.n}, f64).requires_grad_(true);
  const at::Tensor e = torch::randn({c.batch, c.n}, f64).requires_grad_(true);
  const at::Tensor dh = torch::randn({c.batch, c.n}, f64).requires_grad_(true);
  const at::Tensor u = torch::randn({c.batch, c.p}, f64).requires_grad_(true);
  const at::Tensor du = torch::randn({c.batch, c.p}, f64).requires_grad_(true);
  const at::Tensor us = torch::randn({c.batch, c.p}, f64).requires_grad_(true);
  const at::Tensor wa = torch::randn({c.batch, c.n}, f64);
  const at::Tensor wb = torch::randn({c.batch, c.n}, f64);
  const at::Tensor wc = torch::randn({c.batch, c.n}, f64);
  std::vector<at::Tensor> inputs{h, e, dh};
  if (c.p > 0) {
    inputs.push_back(u);
    if (!c.duw_is_uw) inputs.push_back(du);
    if (c.ustar) inputs.push_back(us);
  }
  for (const auto& param : cell->parameters()) inputs.push_back(param);
  auto gradients = [&](bool fused) {
    cell->use_fused_backward = fused;
    const PackedCell packed = cell->pack();
    const at::Tensor uw = cell->input_drive(c.p > 0 ? u : at::Tensor());
    const at::Tensor duw = c.duw_is_uw ? uw : cell->input_drive(c.p > 0 ? du : at::Tensor());
    const at::Tensor ustar_drive = c.ustar ? cell->input_drive(us) : at::Tensor();
    const CellCoStep s = cell->co_step(h, uw, e, dh, duw, ustar_drive, packed);
    const at::Tensor loss = (wa * s.f_h_bn).sum() + (wb * s.f_e_bn).sum() + (wc * s.jvp_bn).sum();
    return std::make_pair(torch::autograd::grad({loss}, inputs), torch::stack({s.f_h_bn, s.f_e_bn, s.jvp_bn}));
  };
  const auto [want, want_out] = gradients(false);
  const auto [got, got_out] = gradients(true);
  cell->use_fused_backward = true;
  const std::string where = "n=" + std::to_string(c.n) + " p=" + std::to_string(c.p) +
                            (c.ustar ? " learned u*" : " u*=0") + (c.duw_is_uw ? " du=u" : "");
  EXPECT_LT(((got_out - want_out).abs().max() / want_out.abs().max()).item<double>(), 1e-12) << where;
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(got[i].defined() && want[i].defined()) << where << " input " << i;
    const double scale = want[i].abs().max().item<double>();
    EXPECT_GT(scale, 1e-6) << where << " input " << i << " has a vanishing gradient: the check would be empty";
    EXPECT_LT(((got[i] - want[i]).abs().max()).item<double>() / scale, 1e-8) << where << " input " << i
                                                                              << " of shape " << want[i].sizes();
  }
}

TEST(FusedGruCoStep, BackwardMatchesAutogradInDoublePrecision) {
  for (const FusedBackwardCase& c : {FusedBackwardCase{7, 3, 5, false, false}, FusedBackwardCase{7, 3, 5, true, false},
                                     FusedBackwardCase{7, 3, 5, false, true}, FusedBackwardCase{16, 0, 4, false, false}}) {
    check_fused_backward(c);
  }
}

TEST(FusedGruCoStep, RefusesASecondDerivative) {
  GeneratorCell cell = make_cell(CellKind::kGru, 4, 0, 0.5);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const at::Tensor e = torch::randn({2, 4}, f64).requires_grad_(true);
  const CellCoStep s = cell->co_step(e, {}, e, e, {}, {}, cell->pack());
  EXPECT_THROW(torch::autograd::grad({s.jvp_bn.sum()}, {e}, {}, /*retain_graph=*/true, /*create_graph=*/true),
               c10::Error);
}

// The encoder's fused GRU sequence (one node per direction, hand-written backward through
// time) against torch::nn::GRU: outputs and every parameter gradient, double precision.
TEST(FusedEncoderGru, MatchesTorchGruInDoublePrecision) {
  torch::manual_seed(31);
  Encoder encoder(EncoderOptions(/*neurons=*/6, /*encoder_dim=*/5, /*latent_dim=*/4));
  encoder->to(torch::kFloat64);
  const at::Tensor spikes = torch::poisson(torch::full({3, 7, 6}, 1.5, torch::kFloat64));
  const at::Tensor w_seq = torch::randn({3, 7, 10}, torch::kFloat64);
  const at::Tensor w_mean = torch::randn({3, 4}, torch::kFloat64);
  const at::Tensor w_logvar = torch::randn({3, 4}, torch::kFloat64);
  const std::vector<at::Tensor> params = encoder->parameters();
  auto run = [&](bool fused) {
    encoder->use_fused_gru = fused;
    const EncoderOutput out = encoder->forward(spikes);
    const at::Tensor loss = (w_seq * out.per_step_bte).sum() + (w_mean * out.ic_mean_bn).sum() +
                            (w_logvar * out.ic_logvar_bn).sum();
    return std::make_pair(torch::autograd::grad({loss}, params),
                          torch::cat({out.per_step_bte.flatten(), out.ic_mean_bn.flatten(), out.ic_logvar_bn.flatten()}));
  };
  const auto [want, want_out] = run(false);
  const auto [got, got_out] = run(true);
  EXPECT_LT(((got_out - want_out).abs().max() / want_out.abs().max()).item<double>(), 1e-12);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const double scale = want[i].abs().max().item<double>();
    EXPECT_GT(scale, 1e-6) << "parameter " << i;
    EXPECT_LT((got[i] - want[i]).abs().max().item<double>() / scale, 1e-8) << "parameter " << i << " of shape "
                                                                           << want[i].sizes();
  }
}

// L(θ, φ) = Σ a² + Σ (F(e*) − e*)² for one JSLDS step a = e* + J(e*)(a_prev − e*) + J_u u,
// e* = E(a_prev): autograd gradients w.r.t. every parameter vs central differences.
void check_jslds_step_gradient(CellKind kind) {
  torch::manual_seed(99);
  const int64_t n = 5, p = 2, B = 3;
  GeneratorCell cell = make_cell(kind, n, p, 0.5);
  ExpansionNetwork expansion(ExpansionNetworkOptions(n, 2));
  expansion->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    for (auto& w : expansion->parameters()) w.normal_(0.0, 0.3);  // leave the zero init
  }
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const at::Tensor a_prev = torch::randn({B, n}, f64);
  const at::Tensor u = torch::randn({B, p}, f64);
  auto loss = [&]() {
    const at::Tensor e = expansion->forward(a_prev).estar_bn;
    const CellJvp j = cell->jvp(e, a_prev - e, cell->input_drive(u), {}, cell->pack());
    const at::Tensor a = e + j.jvp_bn;
    return a.square().sum() + (j.f_e_bn - e).square().sum();
  };
  std::vector<at::Tensor> params = cell->parameters();
  for (auto& w : expansion->parameters()) params.push_back(w);
  for (auto& w : params) w.mutable_grad() = at::Tensor();
  loss().backward();
  const double eps = 1e-6;
  int checked = 0;
  for (auto& w : params) {
    const at::Tensor grad = w.grad().clone();
    at::Tensor flat = w.detach().view({-1});
    const at::Tensor grad_flat = grad.view({-1});
    for (int64_t i = 0; i < flat.numel(); i += std::max<int64_t>(1, flat.numel() / 4)) {
      const double orig = flat[i].item<double>();
      double plus, minus;
      {
        torch::NoGradGuard no_grad;
        flat[i] = orig + eps;
        plus = loss().item<double>();
        flat[i] = orig - eps;
        minus = loss().item<double>();
        flat[i] = orig;
      }
      const double numeric = (plus - minus) / (2 * eps);
      const double analytic = grad_flat[i].item<double>();
      EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
          << cell_kind_name(kind) << " parameter entry " << i << " of shape " << w.sizes();
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

TEST(JsldsStep, GradientMatchesFiniteDifferencesGru) { check_jslds_step_gradient(CellKind::kGru); }
TEST(JsldsStep, GradientMatchesFiniteDifferencesTanh) { check_jslds_step_gradient(CellKind::kTanh); }

TEST(ExpansionNetwork, ZeroInitialisedResidualMapIsTanhOfTanh) {
  ExpansionNetwork net(ExpansionNetworkOptions(4, 2));
  const at::Tensor a = torch::randn({3, 4});
  EXPECT_TRUE(torch::allclose(net->forward(a).estar_bn, torch::tanh(torch::tanh(a))));
  ExpansionNetwork learned(ExpansionNetworkOptions(4, 1).input_dim(2).learned_input(true));
  const at::Tensor u = torch::randn({3, 2});
  const ExpansionPoint ep = learned->forward(a, u);
  EXPECT_TRUE(torch::allclose(ep.estar_bn, torch::tanh(a)));
  EXPECT_TRUE(torch::allclose(ep.ustar_bp, torch::tanh(u)));
}

ModelOptions small_poisson_options() {
  ModelOptions mo;
  mo.latent_dim = 6;
  mo.factors_dim = 6;
  mo.encoder_dim = 5;
  mo.controller_dim = 4;
  mo.inferred_input_dim = 2;
  return mo;
}

TEST(JsldsModel, PoissonForwardShapesAndSharedInitialState) {
  torch::manual_seed(0);
  ModelDims dims{/*neurons=*/9, /*heldin_neurons=*/7, /*external_inputs=*/1, /*outputs=*/0};
  JsldsModel model(JsldsModelOptions(small_poisson_options(), dims));
  const at::Tensor spikes = torch::poisson(torch::full({3, 8, 7}, 0.5));
  const at::Tensor inputs = torch::randn({3, 8, 1});
  const ModelOutput out = model->forward(spikes, inputs);
  EXPECT_EQ(out.g_btn.sizes(), (std::vector<int64_t>{3, 8, 6}));
  EXPECT_EQ(out.a_btn.sizes(), out.g_btn.sizes());
  EXPECT_EQ(out.estar_btn.sizes(), out.g_btn.sizes());
  EXPECT_EQ(out.log_rates_btn.sizes(), (std::vector<int64_t>{3, 8, 9}));
  EXPECT_EQ(out.log_rates_a_btn.sizes(), out.log_rates_btn.sizes());
  EXPECT_EQ(out.u_btp.sizes(), (std::vector<int64_t>{3, 8, 3}));
  // Evaluation uses the posterior mean as the shared initial state: e*_1 = E(g_0).
  EXPECT_TRUE(torch::equal(out.g0_bn, out.ic_mean_bn));
  EXPECT_TRUE(torch::allclose(out.estar_btn.select(1, 0), model->expansion_point(out.g0_bn)));
  // The first nonlinear state is F(g_0, u_1).
  EXPECT_TRUE(torch::allclose(out.g_btn.select(1, 0), model->generator_step(out.g0_bn, out.u_btp.select(1, 0)),
                              1e-5, 1e-6));
}

TEST(JsldsModel, BothChainsShareTheDropoutMask) {
  torch::manual_seed(3);
  ModelOptions mo = small_poisson_options();
  mo.inferred_input_dim = 0;
  mo.dropout = 0.5;
  JsldsModel model(JsldsModelOptions(mo, ModelDims{5, 5, 0, 0}));
  {
    torch::NoGradGuard no_grad;
    model->factor_weights.copy_(torch::eye(6));  // factors = masked states
  }
  ForwardOptions fo;
  fo.sample = true;
  const ModelOutput out = model->forward(torch::poisson(torch::full({4, 10, 5}, 0.5)), {}, fo);
  const at::Tensor dropped = out.factors_btd == 0;
  const double fraction = dropped.to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(fraction, 0.3);
  EXPECT_LT(fraction, 0.7);
  EXPECT_TRUE(torch::equal(dropped, out.factors_a_btd == 0));
}

TEST(JsldsModel, TaskModeStartsBothChainsFromLearnedH0) {
  torch::manual_seed(5);
  ModelOptions mo;
  mo.mode = "task";
  mo.latent_dim = 8;
  JsldsModel model(JsldsModelOptions(mo, ModelDims{0, 0, 3, 2}));
  {
    torch::NoGradGuard no_grad;
    model->h0.normal_();
  }
  const ModelOutput out = model->forward({}, torch::randn({4, 6, 3}));
  EXPECT_EQ(out.outputs_bto.sizes(), (std::vector<int64_t>{4, 6, 2}));
  EXPECT_EQ(out.outputs_a_bto.sizes(), out.outputs_bto.sizes());
  EXPECT_TRUE(torch::equal(out.g0_bn, model->h0.expand({4, 8})));
  EXPECT_TRUE(torch::allclose(out.estar_btn.select(1, 0), torch::tanh(torch::tanh(model->h0)).expand({4, 8})));
}

TEST(JsldsModel, LearnedInputExpansionPointLinearisesAroundUStar) {
  torch::manual_seed(8);
  ModelOptions mo;
  mo.mode = "task";
  mo.latent_dim = 6;
  mo.cell = "tanh";
  mo.input_expansion = "learned";
  JsldsModel model(JsldsModelOptions(mo, ModelDims{0, 0, 2, 1}));
  model->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    for (auto& w : model->expansion->parameters()) w.normal_(0.0, 0.3);
  }
  const at::Tensor inputs = torch::randn({3, 4, 2}, torch::kFloat64);
  const ModelOutput out = model->forward({}, inputs);
  ASSERT_TRUE(out.ustar_btp.defined());
  EXPECT_EQ(out.ustar_btp.sizes(), (std::vector<int64_t>{3, 4, 2}));
  // a_1 = e*_1 + J_h(e*,u*)(a_0 − e*_1) + J_u(e*,u*)(u_1 − u*_1), checked with autograd Jacobians.
  const at::Tensor e = out.estar_btn.select(1, 0);
  const at::Tensor ustar = out.ustar_btp.select(1, 0);
  auto [jh, ju] = autograd_jacobians(model->cell, e, ustar);
  const at::Tensor dh = (out.g0_bn - e).unsqueeze(2);
  const at::Tensor du = (inputs.select(1, 0) - ustar).unsqueeze(2);
  const at::Tensor want = e + torch::bmm(jh, dh).squeeze(2) + torch::bmm(ju, du).squeeze(2);
  EXPECT_LT((out.a_btn.select(1, 0) - want).abs().max().item<double>(), 1e-12);
  // Its penalty is logged.
  Batch batch;
  batch.inputs_btk = inputs;
  batch.targets_bto = torch::zeros({3, 4, 1}, torch::kFloat64);
  const LossBreakdown loss = compute_loss(*model, out, batch, LossOptions{}, 1);
  EXPECT_EQ(loss.terms.back().first, "loss_xe");
  EXPECT_NEAR(loss.terms.back().second.item<double>(),
              (out.ustar_btp - inputs.mean(1, true)).square().mean().item<double>(), 1e-12);
}

TEST(JsldsModel, ClosedFormJacobianMatchesAutograd) {
  torch::manual_seed(11);
  ModelOptions mo;
  mo.mode = "task";
  mo.latent_dim = 10;
  JsldsModel model(JsldsModelOptions(mo, ModelDims{0, 0, 2, 1}));
  model->to(torch::kFloat64);
  const at::Tensor h = torch::randn({3, 10}, torch::kFloat64);
  const at::Tensor jac = model->jacobian(h);
  auto [jh, ju] = autograd_jacobians(model->cell, h, torch::zeros({3, 2}, torch::kFloat64));
  EXPECT_LT((jac - jh).abs().max().item<double>(), 1e-12);
}

TEST(JsldsModel, RejectsInputsOfTheWrongShapeWithAClearMessage) {
  JsldsModel model(JsldsModelOptions(small_poisson_options(), ModelDims{9, 7, 1, 0}));
  try {
    model->forward(torch::zeros({2, 5, 9}), torch::zeros({2, 5, 1}));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected held-in spike counts (B,T,7)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace jslds
