// bench/train_step: training-step throughput of the co-trained model (issue 4, Performance),
// the co-training overhead (same model without the JSLDS chain) and the closed-form JVP
// against the autograd routes. Prints one JSON object.
//
//   train_step                      # the two configurations, threads 1 and 2, + JVP
//   train_step --neurons 61 --time 20 --batch 64 --latent 64 --factors 16 --inferred 0 --threads 1
//
// Data: random Poisson counts like the PyTorch reference (/work/shared/reference/ref_jslds.py
// train-bench): per-neuron rates 0.05–0.5 counts per bin modulated by a sinusoid, a pool of
// 4·batch trials. Legend: B trials, T bins, N neurons, n latent.
#include <chrono>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/model/generator_cell.h"
#include "core/train/runtime.h"
#include "core/train/trainer.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchConfig {
  int64_t neurons = 61, time = 20, batch = 64, latent = 64, factors = 16, inferred = 0;
  int64_t steps = 30, warmup = 5;
  bool fused_backward = true;  // GeneratorCell::use_fused_backward
};

jslds::Dataset random_poisson_data(const BenchConfig& b, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t pool = 4 * b.batch;
  const at::Tensor rates = 0.05 + 0.45 * torch::rand({1, 1, b.neurons}, gen);
  const at::Tensor mod = 1.0 + 0.5 * torch::sin(torch::linspace(0, 2 * M_PI, b.time)).view({1, b.time, 1}) *
                                   torch::randn({pool, 1, b.neurons}, gen).clamp(-1, 1);
  jslds::Dataset d;
  d.spikes_btn = torch::poisson((rates * mod).expand({pool, b.time, b.neurons}).contiguous(), gen);
  d.bin_ms = 20.0;
  d.provenance = "bench random poisson";
  return d;
}

double time_steps(const BenchConfig& b, int threads, bool jslds, json& extra) {
  jslds::configure_threads(threads);
  jslds::RunConfig c;
  c.model.latent_dim = b.latent;
  c.model.factors_dim = b.factors;
  c.model.inferred_input_dim = b.inferred;
  c.train.batch_size = b.batch;
  c.train.steps = b.warmup + b.steps;
  const jslds::Dataset data = random_poisson_data(b, 0);
  jslds::Split split;
  for (int64_t i = 0; i < data.spikes_btn.size(0); ++i) (i < b.batch ? split.valid_trials : split.train_trials).push_back(i);
  for (int64_t i = 0; i < b.neurons; ++i) split.heldin_neurons.push_back(i);
  jslds::TrainerOptions options;
  options.jslds_chain = jslds;
  jslds::Trainer trainer(c, data, split, options);
  trainer.model()->cell->use_fused_backward = b.fused_backward;
  trainer.model()->encoder->use_fused_gru = b.fused_backward;
  for (int64_t i = 0; i < b.warmup; ++i) trainer.train_step();
  const auto t0 = Clock::now();
  double last = 0.0;
  bool finite = true;
  for (int64_t i = 0; i < b.steps; ++i) {
    const jslds::StepResult r = trainer.train_step();
    finite = finite && r.finite;
    last = r.loss;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  extra = {{"loss_last", last}, {"loss_finite", finite}, {"parameters", [&] {
             int64_t n = 0;
             for (const auto& p : trainer.model()->parameters()) n += p.numel();
             return n;
           }()}};
  return static_cast<double>(b.steps) / seconds;
}

json bench_config(const BenchConfig& b, const std::vector<int>& threads_list) {
  json out = {{"config",
               {{"neurons", b.neurons}, {"time", b.time}, {"batch", b.batch}, {"latent", b.latent},
                {"factors", b.factors}, {"inferred", b.inferred}, {"steps", b.steps}, {"warmup", b.warmup},
                {"fused_backward", b.fused_backward}}}};
  for (const int threads : threads_list) {
    json with_extra, without_extra;
    const double with = time_steps(b, threads, true, with_extra);
    const double without = time_steps(b, threads, false, without_extra);
    out["threads_" + std::to_string(threads)] = {{"steps_per_s", with},
                                                 {"steps_per_s_no_jslds", without},
                                                 {"cotraining_cost_ratio", without / with},
                                                 {"with_jslds", with_extra}};
  }
  return out;
}

// ms per call, after a few warm-up calls.
template <typename F>
double time_ms(F&& f, int reps) {
  for (int i = 0; i < 3; ++i) f();
  const auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) f();
  return 1e3 * std::chrono::duration<double>(Clock::now() - t0).count() / reps;
}

json bench_jvp(int64_t n, int64_t B, int reps) {
  jslds::configure_threads(1);
  torch::manual_seed(0);
  jslds::GeneratorCell cell(jslds::GeneratorCellOptions(n, 0).forget_bias(0.5));
  const at::Tensor e = (torch::randn({B, n}) * 0.5).requires_grad_(true);  // stands in for e*
  const at::Tensor dh = (torch::randn({B, n}) * 0.1).requires_grad_(true);
  auto step = [&](const at::Tensor& x) { return cell->step(x, {}, cell->pack()); };
  auto closed = [&] {
    const jslds::CellJvp j = cell->jvp(e, dh, {}, {}, cell->pack());
    return std::make_pair(j.f_e_bn, j.jvp_bn);
  };
  // J dh by the double-backward trick: g(v) = J^T v, then J dh = ∂(g·dh)/∂v.
  auto double_backward = [&] {
    const at::Tensor f = step(e);
    const at::Tensor v = torch::zeros_like(f).requires_grad_(true);
    const at::Tensor jt_v = torch::autograd::grad({f}, {e}, {v}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    const at::Tensor jvp = torch::autograd::grad({jt_v}, {v}, {dh}, true, true)[0];
    return std::make_pair(f, jvp);
  };
  // The full (B,n,n) Jacobian by autograd (one backward per output row, graph kept), then bmm.
  auto full_jacobian = [&] {
    const at::Tensor f = step(e);
    std::vector<at::Tensor> rows;
    for (int64_t i = 0; i < n; ++i) {
      rows.push_back(torch::autograd::grad({f.select(1, i).sum()}, {e}, {}, true, true)[0]);
    }
    const at::Tensor jac = torch::stack(rows, 1);  // (B,n,n)
    return std::make_pair(f, torch::bmm(jac, dh.unsqueeze(2)).squeeze(2));
  };
  const at::Tensor ref = closed().second.detach();
  json out = {{"config", {{"latent", n}, {"batch", B}, {"reps", reps}, {"cell", "gru"}, {"dtype", "float32"}}}};
  auto route = [&](const char* name, auto fn, int route_reps) {
    const at::Tensor diff = fn().second.detach() - ref;
    const double rel = (diff.norm() / ref.norm()).item().toDouble();
    const double fwd = time_ms([&] { fn(); }, route_reps);
    const double fwd_bwd = time_ms(
        [&] {
          auto [f, j] = fn();
          (j.square().sum() + f.sum()).backward();
        },
        route_reps);
    out["routes"][name] = {{"forward_ms", fwd}, {"forward_backward_ms", fwd_bwd}, {"rel_diff_vs_closed", rel}};
  };
  route("closed_form", closed, reps);
  route("autograd_double_backward", double_backward, reps);
  route("autograd_full_jacobian", full_jacobian, std::max(1, reps / 20));
  const double base = out["routes"]["closed_form"]["forward_backward_ms"].get<double>();
  for (auto& [name, r] : out["routes"].items()) {
    r["forward_backward_slowdown_vs_closed"] = r["forward_backward_ms"].get<double>() / base;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Training-step throughput, co-training overhead and JVP routes; prints one JSON object"};
  BenchConfig custom;
  std::vector<int> threads;
  bool single = false;
  bool skip_jvp = false;
  app.add_flag("--single", single, "time only the configuration given by the flags below (default: the issue's suite)");
  app.add_option("--neurons", custom.neurons, "N");
  app.add_option("--time", custom.time, "T, bins per trial");
  app.add_option("--batch", custom.batch, "B, trials per step");
  app.add_option("--latent", custom.latent, "n");
  app.add_option("--factors", custom.factors, "d");
  app.add_option("--inferred", custom.inferred, "m, inferred inputs");
  app.add_option("--steps", custom.steps, "timed steps");
  app.add_option("--warmup", custom.warmup, "untimed steps first");
  app.add_option("--threads", threads, "intra-op thread counts to time (default: 1 2)");
  app.add_flag("--no-jvp", skip_jvp, "skip the JVP route comparison");
  bool plain_autograd = false;
  app.add_flag("--plain-autograd", plain_autograd,
               "build the GRU co-training step and the encoder GRU from ordinary autograd ops (torch::nn::GRU) "
               "instead of the single nodes with hand-written backwards (to measure what they gain)");
  CLI11_PARSE(app, argc, argv);
  if (threads.empty()) threads = {1, 2};
  custom.fused_backward = !plain_autograd;

  const bool tuned = jslds::tune_malloc();
  json result = {{"impl", "jslds-cpp-libtorch"}, {"bench", "train_step"}, {"torch", TORCH_VERSION},
                 {"blas", jslds::blas_library()}, {"malloc_tuned", tuned}};
  if (single) {
    result["configs"] = json::array({bench_config(custom, threads)});
  } else {
    BenchConfig c1;  // issue: N 61, T 20, batch 64, latent 64, factors 16, no inferred inputs
    BenchConfig c2{60, 100, 32, 128, 16, 2, 10, 3, !plain_autograd};  // N 60, T 100, batch 32, latent 128, inferred 2
    c1.fused_backward = !plain_autograd;
    result["configs"] = json::array({bench_config(c1, threads), bench_config(c2, threads)});
  }
  if (!skip_jvp) result["jvp"] = bench_jvp(64, 64, 200);
  std::cout << result.dump() << std::endl;
  return 0;
}
