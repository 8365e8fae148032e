// Ring score and multistability clusters (MODEL.md §7.5).
// Letters: p points, n latent dimension.
#include "core/analysis/structure.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

#include <fmt/format.h>
#include <torch/torch.h>

namespace jslds::analysis {
namespace {

at::Tensor as_cpu_points(const at::Tensor& points_pn, const char* what) {
  if (!points_pn.defined() || points_pn.dim() != 2 || !points_pn.is_floating_point())
    throw std::invalid_argument(fmt::format(
        "{}: expected a 2-D real tensor (points, n), got {}", what,
        points_pn.defined() ? fmt::format("({})", fmt::join(points_pn.sizes(), ", "))
                            : std::string("undefined")));
  return points_pn.detach().to(torch::kCPU, torch::kFloat64);
}

}  // namespace

double ring_score(const at::Tensor& points_pn) {
  torch::NoGradGuard no_grad;
  at::Tensor x = as_cpu_points(points_pn, "ring_score");
  const int64_t p = x.size(0);
  if (p < 3 || x.size(1) == 0) return 0.0;
  at::Tensor centred = x - x.mean(0);
  auto [u, s, vh] = torch::linalg_svd(centred, /*full_matrices=*/false);
  if (s[0].item<double>() <= 0.0) return 0.0;
  // Coordinates in the principal plane; a 1-D latent space has a zero second coordinate.
  at::Tensor plane = torch::zeros({p, 2}, torch::kFloat64);
  const int64_t k = std::min<int64_t>(2, vh.size(0));
  plane.narrow(1, 0, k).copy_(centred.mm(vh.narrow(0, 0, k).t()));
  at::Tensor radius = plane.norm(2, {1});
  at::Tensor angle = torch::atan2(plane.select(1, 1), plane.select(1, 0));  // (−π, π]
  at::Tensor bin = torch::floor((angle + std::numbers::pi) / (2.0 * std::numbers::pi) *
                                static_cast<double>(kRingAngleBins))
                       .clamp(0, kRingAngleBins - 1)
                       .to(torch::kLong);
  const double coverage = static_cast<double>(std::get<0>(torch::_unique(bin)).numel()) /
                          static_cast<double>(kRingAngleBins);
  const double mean_radius = radius.mean().item<double>();
  if (!(mean_radius > 0.0)) return 0.0;
  const double cv = radius.std(/*unbiased=*/false).item<double>() / mean_radius;
  return coverage * std::max(0.0, 1.0 - cv);
}

int64_t count_clusters(const at::Tensor& points_pn, double tol) {
  torch::NoGradGuard no_grad;
  at::Tensor x = as_cpu_points(points_pn, "count_clusters");
  const int64_t p = x.size(0);
  if (p == 0) return 0;
  at::Tensor linked = (torch::cdist(x, x) <= tol).contiguous();
  auto adjacent = linked.accessor<bool, 2>();
  // Breadth-first search over the linkage graph.
  std::vector<int64_t> component(p, -1), queue;
  int64_t n_components = 0;
  for (int64_t seed = 0; seed < p; ++seed) {
    if (component[seed] >= 0) continue;
    component[seed] = n_components;
    queue.assign(1, seed);
    while (!queue.empty()) {
      const int64_t i = queue.back();
      queue.pop_back();
      for (int64_t j = 0; j < p; ++j)
        if (adjacent[i][j] && component[j] < 0) {
          component[j] = n_components;
          queue.push_back(j);
        }
    }
    ++n_components;
  }
  return n_components;
}

double median(std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + mid, values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  const double lower = *std::max_element(values.begin(), values.begin() + mid);
  return 0.5 * (lower + upper);
}

}  // namespace jslds::analysis
