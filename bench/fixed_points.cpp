// Benchmark of the fixed-point search (MODEL.md §7.2–7.3) on the Python reference's problem:
// a 64-d reset-before-matmul GRU with random weights N(0,1)·0.9/√n, b_fg = 0.5, float32;
// states from 64 simulated 50-step trajectories; 1024 starts = sampled states + N(0, 0.5²).
// The weights, states and starts are drawn with the same LibTorch generator calls as
// ../shared/reference/ref_fixed_points.py (seed, seed+1, seed+2), so both programs solve the
// identical problem. Prints one JSON object: per thread count and search variant, seconds to
// converge, iterations, ms per iteration, converged points, and the post-search analysis time.
//
// Letters: p points, n latent dimension, t time steps.
#include <malloc.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/analysis/eigenmodes.h"
#include "core/analysis/fixed_points.h"
#include "core/analysis/generator_maps.h"

namespace {

using jslds::analysis::AutonomousMap;
using jslds::analysis::FixedPointSearchOptions;
using jslds::analysis::Reduction;

/// The shared object serving BLAS calls, read from /proc/self/maps (STYLE.md hazard: the
/// reference BLAS is 15× slower than OpenBLAS).
std::string active_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto pos = line.find('/');
    if (pos == std::string::npos) continue;
    std::string path = line.substr(pos);
    if (path.find("blas") != std::string::npos || path.find("mkl") != std::string::npos)
      return path;
  }
  return "unknown";
}

struct Problem {
  AutonomousMap map;
  torch::Tensor x0_pn;
};

Problem make_problem(int64_t n, int64_t inits, uint64_t seed) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  at::Generator g = at::detail::createCPUGenerator(seed);
  const double s = 0.9 / std::sqrt(static_cast<double>(n));
  std::vector<torch::Tensor> w;
  for (int i = 0; i < 3; ++i) w.push_back(torch::randn({n, n}, g, f32) * s);
  torch::Tensor zero = torch::zeros({n}, f32);
  Problem p;
  p.map = jslds::analysis::gru_map({w[0], w[1], w[2], zero, zero + 0.5, zero});
  // simulate_states: 64 trajectories of 50 steps from N(0, 1) starts.
  at::Generator g1 = at::detail::createCPUGenerator(seed + 1);
  torch::Tensor x = torch::randn({64, n}, g1, f32);
  std::vector<torch::Tensor> states;
  for (int t = 0; t < 50; ++t) {
    x = p.map.step(x);
    states.push_back(x);
  }
  torch::Tensor flat = torch::stack(states, 1).reshape({-1, n});
  // sample_starts: indices, then noise, from one generator.
  at::Generator g2 = at::detail::createCPUGenerator(seed + 2);
  torch::Tensor idx = torch::randint(flat.size(0), {inits}, g2);
  p.x0_pn = flat.index_select(0, idx) + 0.5 * torch::randn({inits, n}, g2, f32);
  return p;
}

/// CPU seconds (user + system) of this process so far: robust to other processes sharing
/// the cores, unlike wall time.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

nlohmann::json run_variant(const Problem& p, const FixedPointSearchOptions& o, int64_t n) {
  torch::NoGradGuard no_grad;
  const double cpu0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  auto found = jslds::analysis::search_fixed_points(p.map.residual_gradient, p.x0_pn, o);
  const double t_search = seconds_since(t0);
  // The rest of the reference's timed section: keep converged, merge, drop outliers,
  // Jacobians (closed form) and eigenvalues.
  auto t1 = std::chrono::steady_clock::now();
  torch::Tensor conv = found.converged_p.nonzero().squeeze(1);
  torch::Tensor xc = found.x_pn.index_select(0, conv), qc = found.q_p.index_select(0, conv);
  torch::Tensor unique = jslds::analysis::merge_duplicates(xc, qc, 1e-2 * std::sqrt(double(n)));
  torch::Tensor xu = xc.index_select(0, unique);
  torch::Tensor fps = xu.index_select(0, jslds::analysis::inlier_indices(xu, p.x0_pn, 10.0));
  auto spectrum = jslds::analysis::sorted_spectrum(p.map.jacobian(fps));
  const double t_analysis = seconds_since(t1);
  const double cpu = cpu_seconds() - cpu0;
  torch::Tensor rho = spectrum.eigenvalues_pn.abs().select(1, 0);
  return {{"reduction", o.reduction == Reduction::kSum ? "sum" : "mean"},
          {"freeze_converged", o.freeze_converged},
          {"seconds", t_search + t_analysis},
          {"seconds_optimize", t_search},
          {"cpu_seconds", cpu},
          {"seconds_analysis", t_analysis},
          {"iterations", found.iterations},
          {"ms_per_iteration", 1e3 * t_search / std::max<int64_t>(1, found.iterations)},
          {"point_iterations", found.point_iterations},
          {"stop_reason", found.stop_reason},
          {"lr_final", found.final_lr},
          {"n_converged", conv.numel()},
          {"n_unique", unique.numel()},
          {"n_fixed_points", fps.size(0)},
          {"spectral_radius_max", rho.numel() ? rho.max().item<double>() : NAN}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Benchmark of the fixed-point search on the Python reference's random GRU; "
               "prints one JSON object"};
  int64_t latent = 64, inits = 1024, max_iters = 5000;
  uint64_t seed = 0;
  std::vector<int> threads = {1, 2};
  std::vector<std::string> variants = {"mean", "mean-freeze", "sum"};
  bool malloc_tune = true;
  app.add_option("--latent", latent, "latent dimension n")->capture_default_str();
  app.add_option("--inits", inits, "starting states")->capture_default_str();
  app.add_option("--max-iters", max_iters, "iteration cap")->capture_default_str();
  app.add_option("--seed", seed, "seed of weights (seed), states (seed+1), starts (seed+2)")
      ->capture_default_str();
  app.add_option("--threads", threads, "intra-op thread counts to run")->capture_default_str();
  app.add_option("--variants", variants,
                 "search variants: mean (the default options: every point every iteration until all "
                 "have converged, like the reference), mean-freeze (converged points leave the "
                 "batch), sum (MODEL's literal objective)")
      ->capture_default_str();
  app.add_flag("!--no-malloc-tune", malloc_tune,
               "keep glibc's default mmap/trim thresholds (default: raise them, STYLE.md)");
  CLI11_PARSE(app, argc, argv);

  // STYLE.md hazard: keep tensor-sized blocks on the heap instead of mmap/munmap per op.
  if (malloc_tune) {
    mallopt(M_MMAP_THRESHOLD, 1 << 25);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  Problem problem = make_problem(latent, inits, seed);
  nlohmann::json runs = nlohmann::json::array();
  for (int t : threads) {
    torch::set_num_threads(t);
    for (const auto& v : variants) {
      FixedPointSearchOptions o;
      o.max_iters = max_iters;
      o.reduction = v == "sum" ? Reduction::kSum : Reduction::kMean;
      o.freeze_converged = v == "mean-freeze";
      nlohmann::json r = run_variant(problem, o, latent);
      r["threads"] = t;
      r["variant"] = v;
      runs.push_back(r);
    }
  }
  nlohmann::json out = {{"impl", "jslds-cpp"},
                        {"bench", "fixed_points"},
                        {"config",
                         {{"cell", "gru"}, {"latent", latent}, {"inits", inits},
                          {"max_iters", max_iters}, {"lr", 1.0}, {"adam_eps", 1e-2},
                          {"fp_tol", 1e-7}, {"init_noise", 0.5}, {"gain", 0.9}, {"b_fg", 0.5},
                          {"dtype", "float32"}, {"jacobian", "closed"}, {"seed", seed}}},
                        {"runs", runs},
                        {"malloc", {{"tuned", malloc_tune},
                                    {"mmap_threshold", malloc_tune ? 1 << 25 : 0},
                                    {"trim_threshold", malloc_tune ? 1 << 30 : 0}}},
                        {"blas", active_blas()},
                        // With 2 threads on cores shared with other work, OpenMP's default
                        // spinning wait can make each iteration 10–50× slower; compare with
                        // OMP_WAIT_POLICY=PASSIVE there.
                        {"omp_wait_policy", std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : ""},
                        {"torch", TORCH_VERSION}};
  std::cout << out.dump() << std::endl;
  return 0;
}
