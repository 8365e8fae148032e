// Fixed-point search and point-set reductions (MODEL.md §7.1–7.2).
// Letters: p points, a active points (not yet converged), n latent dimension.
#include "core/analysis/fixed_points.h"

#include "core/analysis/cpu_kernels.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

namespace jslds::analysis {
namespace {

void require_points(const at::Tensor& t, const char* what) {
  if (!t.defined() || t.dim() != 2 || !t.is_floating_point())
    throw std::invalid_argument(fmt::format(
        "{}: expected a 2-D floating tensor (points, latent_dim), got {}", what,
        t.defined() ? fmt::format("{}-D {}", t.dim(), std::string(t.dtype().name()))
                    : std::string("an undefined tensor")));
}

/// PyTorch's ReduceLROnPlateau in mode "min" with a relative threshold and no cooldown:
/// the learning rate is multiplied by `factor` (floored at min_lr) once the objective has not
/// improved on its best value by the fraction `threshold` for more than `patience` calls.
class PlateauDecay {
 public:
  PlateauDecay(double lr, const FixedPointSearchOptions& o)
      : lr_(lr), factor_(o.plateau_factor), threshold_(o.plateau_threshold),
        min_lr_(o.min_lr), patience_(o.plateau_patience) {}

  double lr() const { return lr_; }

  void step(double objective) {
    if (objective < best_ * (1.0 - threshold_)) {
      best_ = objective;
      bad_ = 0;
    } else {
      ++bad_;
    }
    if (bad_ > patience_) {
      double next = std::max(lr_ * factor_, min_lr_);
      if (lr_ - next > 1e-8) lr_ = next;
      bad_ = 0;
    }
  }

 private:
  double lr_, factor_, threshold_, min_lr_;
  int64_t patience_;
  double best_ = std::numeric_limits<double>::infinity();
  int64_t bad_ = 0;
};

}  // namespace

FixedPointSearchOptions FixedPointSearchOptions::from_config(const AnalysisOptions& options) {
  FixedPointSearchOptions o;
  o.max_iters = options.max_iters;
  o.fp_tol = options.fp_tol;
  if (options.fp_reduction == "mean") {
    o.reduction = Reduction::kMean;
  } else if (options.fp_reduction == "sum") {
    o.reduction = Reduction::kSum;
  } else {
    throw std::invalid_argument("analysis.fp_reduction = \"" + options.fp_reduction +
                                "\": expected \"mean\" or \"sum\"");
  }
  return o;
}

ResidualGradientFn autograd_residual_gradient(StepFn step) {
  return [step = std::move(step)](const at::Tensor& x_pn) {
    torch::AutoGradMode enable_grad(true);
    at::Tensor x = x_pn.detach().requires_grad_(true);
    at::Tensor residual = step(x) - x;
    at::Tensor q = 0.5 * residual.square().sum();
    auto grads = torch::autograd::grad({q}, {x}, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
    at::Tensor g = grads[0].defined() ? grads[0] : torch::zeros_like(x_pn);
    return std::pair<at::Tensor, at::Tensor>{residual.detach(), g};
  };
}

FixedPointSearchResult search_fixed_points(const ResidualGradientFn& residual_gradient,
                                           const at::Tensor& x0_pn,
                                           const FixedPointSearchOptions& o,
                                           const SearchProgressFn& progress,
                                           int64_t progress_every) {
  require_points(x0_pn, "fixed-point search starting states");
  if (!residual_gradient)
    throw std::invalid_argument("fixed-point search: no residual/gradient function given");
  if (!torch::isfinite(x0_pn).all().item<bool>())
    throw std::invalid_argument("fixed-point search: starting states contain NaN or Inf");
  torch::NoGradGuard no_grad;
  const int64_t P = x0_pn.size(0);
  const int64_t n = x0_pn.size(1);
  FixedPointSearchResult out;
  out.x_pn = x0_pn.detach().clone();
  out.final_lr = o.lr;
  auto finish = [&] {
    if (P > 0) {
      at::Tensor residual = residual_gradient(out.x_pn).first;
      at::Tensor sq_p = residual.to(torch::kFloat64).square().sum(1);
      out.q_p = 0.5 * sq_p;
      out.converged_p = sq_p < static_cast<double>(n) * o.fp_tol;
    } else {
      out.q_p = torch::zeros({0}, torch::kFloat64);
      out.converged_p = torch::zeros({0}, torch::kBool);
    }
    return out;
  };
  if (P == 0) {
    out.stop_reason = "no_points";
    return finish();
  }

  // Row p has converged when Σ_i r_pi² < n·fp_tol (mean-over-dims squared speed < fp_tol).
  const double sq_tol = static_cast<double>(n) * o.fp_tol;
  const double grad_scale = o.reduction == Reduction::kMean ? 1.0 / static_cast<double>(P) : 1.0;
  at::Tensor x = out.x_pn.clone();  // the active points
  at::Tensor rows = torch::arange(P, torch::TensorOptions().dtype(torch::kLong));
  at::Tensor m = torch::zeros_like(x);  // Adam first moment
  at::Tensor v = torch::zeros_like(x);  // Adam second moment
  PlateauDecay plateau(o.lr, o);
  out.stop_reason = "max_iters";

  for (int64_t it = 1; it <= o.max_iters; ++it) {
    auto [residual, grad] = residual_gradient(x);
    if (residual.sizes() != x.sizes() || grad.sizes() != x.sizes())
      throw std::invalid_argument(fmt::format(
          "fixed-point search: the residual/gradient function returned shapes {} and {} for "
          "states of shape {}; expected both equal to the states' shape",
          fmt::join(residual.sizes(), "x"), fmt::join(grad.sizes(), "x"),
          fmt::join(x.sizes(), "x")));
    const int64_t a = x.size(0);
    out.iterations = it;
    out.point_iterations += a;
    const bool fused = cpu::dense_cpu_float32(x) && cpu::dense_cpu_float32(residual) &&
                       cpu::dense_cpu_float32(grad);
    at::Tensor sq_a = fused ? cpu::row_squared_norms(residual)
                            : at::linalg_vector_norm(residual, 2, {1}).square();
    // The plateau decay watches the objective over the points still in the batch: frozen
    // points would add a constant floor that hides the remaining points' progress.
    int64_t n_conv = 0;
    double objective = 0.0;
    if (fused) {  // a float64 vector on the CPU: a plain loop beats three tensor ops
      const double* sq = sq_a.data_ptr<double>();
      for (int64_t i = 0; i < a; ++i) {
        n_conv += sq[i] < sq_tol;
        objective += sq[i];
      }
      objective *= 0.5;
    } else {
      n_conv = (sq_a < sq_tol).sum().item<int64_t>();
      objective = 0.5 * sq_a.sum().item<double>();
    }
    if (!std::isfinite(objective))
      throw std::runtime_error(fmt::format(
          "fixed-point search: q became non-finite at iteration {} (lr {}); the map diverges "
          "from some starting states",
          it, plateau.lr()));
    if (o.stop_requested && o.stop_requested())
      throw SearchInterrupted(fmt::format("fixed-point search stopped at iteration {} of at most {}", it,
                                          o.max_iters));
    const bool report = progress && (it % progress_every == 0 || n_conv == a);
    if (report) progress(it, a - n_conv, plateau.lr(), 0.5 * sq_a.max().item<double>());
    if (n_conv == a) {
      out.stop_reason = "all_converged";
      break;
    }
    // Freeze converged points once enough of them have accumulated to pay for the gather.
    if (o.freeze_converged && n_conv > 0 && n_conv * 16 >= a) {
      const at::Tensor conv_a = sq_a < sq_tol;
      at::Tensor done = conv_a.nonzero().squeeze(1);
      at::Tensor keep = torch::logical_not(conv_a).nonzero().squeeze(1);
      out.x_pn.index_copy_(0, rows.index_select(0, done), x.index_select(0, done));
      x = x.index_select(0, keep);
      m = m.index_select(0, keep);
      v = v.index_select(0, keep);
      grad = grad.index_select(0, keep);
      rows = rows.index_select(0, keep);
    }
    // Adam (Kingma & Ba 2015; the same update as torch::optim::Adam without weight decay),
    // written out with tensor ops so the moments can follow the batch when it shrinks.
    // m/(√(v/b₂) + ε) is rewritten as √b₂·m/(√v + ε√b₂) to save one pass over the batch.
    // The reduction's factor (1/P for the mean) is folded into the moment updates.
    // On the CPU in float32 the update is one fused pass (cpu_kernels.h).
    const double g1 = (1.0 - o.adam_beta1) * grad_scale;
    const double g2 = (1.0 - o.adam_beta2) * grad_scale * grad_scale;
    const double bias1 = 1.0 - std::pow(o.adam_beta1, static_cast<double>(it));
    const double sqrt_bias2 = std::sqrt(1.0 - std::pow(o.adam_beta2, static_cast<double>(it)));
    const double step = -plateau.lr() * sqrt_bias2 / bias1;
    const double eps_hat = o.adam_eps * sqrt_bias2;
    if (cpu::dense_cpu_float32(x) && cpu::dense_cpu_float32(grad) && cpu::dense_cpu_float32(m) &&
        cpu::dense_cpu_float32(v)) {
      cpu::adam_step(x, m, v, grad,
                     {static_cast<float>(o.adam_beta1), static_cast<float>(o.adam_beta2),
                      static_cast<float>(g1), static_cast<float>(g2), static_cast<float>(step),
                      static_cast<float>(eps_hat)});
    } else {
      m.mul_(o.adam_beta1).add_(grad, g1);  // (lerp_ is 4× slower)
      v.mul_(o.adam_beta2).addcmul_(grad, grad, g2);
      x.addcdiv_(m, v.sqrt().add_(eps_hat), step);
    }
    plateau.step(o.reduction == Reduction::kMean ? objective / static_cast<double>(P)
                                                 : objective);
  }
  out.x_pn.index_copy_(0, rows, x);
  out.final_lr = plateau.lr();
  return finish();
}

NewtonRefineResult refine_fixed_points(const StepFn& step, const JacobianFn& jacobian,
                                       const at::Tensor& x_pn, const NewtonRefineOptions& o) {
  require_points(x_pn, "Newton refinement points");
  if (!step || !jacobian)
    throw std::invalid_argument("Newton refinement: a step and a Jacobian function are needed");
  torch::NoGradGuard no_grad;
  const int64_t P = x_pn.size(0);
  const int64_t n = x_pn.size(1);
  const at::TensorOptions f64 = x_pn.options().dtype(torch::kFloat64);
  const double sq_tol = static_cast<double>(n) * o.tol;
  // ‖F(x) − x‖² and the squared rounding scale max(‖|x| + |F(x)|‖, 1)² of each row, in
  // float64 (the floor of 1: near the origin both shrink, and a fixed point at 0 would otherwise
  // be refined only once x underflows).
  auto residual = [&](const at::Tensor& pts) {
    at::Tensor f = step(pts);
    at::Tensor sq_p = (f - pts).to(torch::kFloat64).square().sum(1);
    at::Tensor scale_p = (pts.abs() + f.abs()).to(torch::kFloat64).square().sum(1).clamp_min(1.0);
    return std::pair<at::Tensor, at::Tensor>{sq_p, scale_p};
  };
  // A row is refined once its residual is below the tolerance and at the rounding level of the
  // states' dtype: ‖F(x) − x‖ ≤ kRoundingFactor·ε·max(‖|x| + |F(x)|‖, 1) (ε the machine
  // epsilon). Fixed points reached by Newton steps measure 0.1–0.4 on that ratio (float32
  // GRUs, n 16–256); points on a slow manifold that merely crossed the tolerance measure 6 and
  // more. A row not there at max_steps is not refined, even if below the tolerance: it may be
  // sliding along a slow manifold.
  constexpr double kRoundingFactor = 2.0;
  const double eps = x_pn.scalar_type() == torch::kFloat64 ? std::numeric_limits<double>::epsilon()
                                                          : std::numeric_limits<float>::epsilon();
  const double precision2 = (kRoundingFactor * eps) * (kRoundingFactor * eps);
  const at::Tensor x0 = x_pn.detach();
  at::Tensor x = x0.clone();
  at::Tensor sq0 = torch::zeros({P}, f64), scale = torch::zeros({P}, f64);
  if (P > 0) std::tie(sq0, scale) = residual(x);
  at::Tensor sq = sq0.clone();
  auto precise = [&](const at::Tensor& sq_p, const at::Tensor& scale_p) {
    return torch::logical_and(sq_p < sq_tol, sq_p <= precision2 * scale_p);
  };
  at::Tensor finished = precise(sq, scale);
  at::Tensor mu = torch::full({P}, o.initial_damping, f64);
  const at::Tensor eye = torch::eye(n, f64);
  NewtonRefineResult out;
  for (int64_t s = 1; s <= o.max_steps; ++s) {
    at::Tensor active = torch::logical_not(finished).nonzero().squeeze(1);
    if (active.numel() == 0) break;
    out.steps = s;
    at::Tensor xa = x.index_select(0, active);
    at::Tensor ra = (step(xa) - xa).to(torch::kFloat64);  // (a, n)
    at::Tensor ja = jacobian(xa);
    if (ja.sizes() != at::IntArrayRef({xa.size(0), n, n}))
      throw std::invalid_argument(fmt::format(
          "Newton refinement: the Jacobian function returned shape ({}) for {} points; "
          "expected ({}, {}, {})",
          fmt::join(ja.sizes(), ", "), xa.size(0), xa.size(0), n, n));
    at::Tensor a_ann = ja.to(torch::kFloat64) - eye;  // J − I
    at::Tensor at_ann = a_ann.transpose(1, 2);
    at::Tensor mu_a = mu.index_select(0, active);
    at::Tensor h_ann = at_ann.matmul(a_ann) + mu_a.view({-1, 1, 1}) * eye;
    // A system that is singular in float64 (J − I rank-deficient with entries large against
    // μ) is a rejected step for that row alone: μ grows until it can be solved.
    auto [solution, info] = at::linalg_solve_ex(h_ann, at_ann.matmul(ra.unsqueeze(2)),
                                                /*left=*/true, /*check_errors=*/false);
    at::Tensor solved = info == 0;
    at::Tensor delta = -torch::where(solved.view({-1, 1}), solution.squeeze(2),
                                     torch::zeros_like(ra));
    at::Tensor xt = (xa.to(torch::kFloat64) + delta).to(x.scalar_type());
    auto [sqt, scalet] = residual(xt);
    at::Tensor sq_before = sq.index_select(0, active);
    at::Tensor better = torch::logical_and(sqt < sq_before, solved);  // false for NaN
    // A step too short to change x in the states' dtype asks for less damping, not more.
    at::Tensor unchanged = torch::logical_and((xt == xa).all(1), solved);
    at::Tensor accepted = better.nonzero().squeeze(1);
    at::Tensor rows = active.index_select(0, accepted);
    x.index_copy_(0, rows, xt.index_select(0, accepted));
    sq.index_copy_(0, rows, sqt.index_select(0, accepted));
    scale.index_copy_(0, rows, scalet.index_select(0, accepted));
    mu.index_copy_(0, active,
                   torch::where(torch::logical_or(better, unchanged), mu_a * 0.1, mu_a * 10.0)
                       .clamp(1e-12, 1e8));
    finished.index_copy_(0, active, precise(sq.index_select(0, active), scale.index_select(0, active)));
  }
  // Rows not refined go back unchanged: only fixed points to numerical precision replace what
  // the search found.
  out.refined_p = finished;
  out.x_pn = torch::where(finished.unsqueeze(1), x, x0);
  out.q_p = 0.5 * torch::where(finished, sq, sq0);
  out.moved_p = torch::where(finished, (x.to(torch::kFloat64) - x0.to(torch::kFloat64)).norm(2, {1}),
                             torch::zeros({P}, f64));
  return out;
}

at::Tensor merge_duplicates(const at::Tensor& points_pn, const at::Tensor& q_p, double tol) {
  require_points(points_pn, "merge_duplicates points");
  if (!q_p.defined() || q_p.dim() != 1 || q_p.size(0) != points_pn.size(0))
    throw std::invalid_argument(fmt::format(
        "merge_duplicates: expected q of shape ({}), got {}", points_pn.size(0),
        q_p.defined() ? fmt::format("({})", fmt::join(q_p.sizes(), ", ")) : "undefined"));
  torch::NoGradGuard no_grad;
  const int64_t P = points_pn.size(0);
  at::Tensor order = std::get<1>(torch::sort(q_p.detach().to(torch::kCPU), /*stable=*/true,
                                             /*dim=*/0, /*descending=*/false));
  at::Tensor pts = points_pn.detach().to(torch::kCPU, torch::kFloat64).index_select(0, order);
  at::Tensor suppressed = torch::zeros({P}, torch::kBool);
  auto is_suppressed = suppressed.accessor<bool, 1>();
  auto original_row = order.accessor<int64_t, 1>();
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < P; ++i) {
    if (is_suppressed[i]) continue;
    kept.push_back(original_row[i]);
    suppressed.logical_or_((pts - pts[i]).norm(2, {1}) <= tol);
  }
  return torch::tensor(kept, torch::kLong);
}

at::Tensor inlier_indices(const at::Tensor& points_pn, const at::Tensor& reference_pn,
                          double scale) {
  require_points(points_pn, "inlier_indices points");
  require_points(reference_pn, "inlier_indices reference states");
  torch::NoGradGuard no_grad;
  if (reference_pn.size(0) == 0 || points_pn.size(0) == 0)
    return torch::arange(points_pn.size(0), torch::kLong);
  at::Tensor ref = reference_pn.detach().to(torch::kCPU, torch::kFloat64);
  at::Tensor centroid = ref.mean(0);
  const double spread = (ref - centroid).norm(2, {1}).mean().item<double>();
  at::Tensor dist = (points_pn.detach().to(torch::kCPU, torch::kFloat64) - centroid).norm(2, {1});
  return (dist <= scale * spread).nonzero().squeeze(1);
}

at::Tensor select_expansion_points(const at::Tensor& points_pn, double unique_tol,
                                   int64_t max_points) {
  require_points(points_pn, "select_expansion_points");
  torch::NoGradGuard no_grad;
  const int64_t P = points_pn.size(0);
  std::vector<int64_t> kept;
  if (P == 0 || max_points <= 0) return torch::zeros({0}, torch::kLong);
  at::Tensor pts = points_pn.detach().to(torch::kCPU, torch::kFloat64);
  int64_t next = (pts - pts.mean(0)).norm(2, {1}).argmax().item<int64_t>();
  at::Tensor nearest = torch::full({P}, std::numeric_limits<double>::infinity(), torch::kFloat64);
  while (true) {
    kept.push_back(next);
    if (static_cast<int64_t>(kept.size()) >= max_points) break;
    torch::minimum_out(nearest, nearest, (pts - pts[next]).norm(2, {1}));
    next = nearest.argmax().item<int64_t>();
    if (nearest[next].item<double>() <= unique_tol) break;
  }
  return torch::tensor(kept, torch::kLong);
}

}  // namespace jslds::analysis
