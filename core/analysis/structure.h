// Attractor-structure scores of a set of points in latent space (MODEL.md §7.5): the ring
// score and multistability clusters. Pure functions of point coordinates.
//
// Letters: p points, n latent dimension.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace jslds::analysis {

/// Angular bins of the ring score: 36 bins of 10°.
inline constexpr int64_t kRingAngleBins = 36;

/// ring_score ∈ [0, 1] of MODEL §7.5: the points are projected on their top-2 principal
/// components (centred at their mean; SVD by LibTorch); angle coverage = fraction of the 36
/// angular bins occupied; radial CV = std(radius)/mean(radius) (population std);
/// ring_score = coverage · max(0, 1 − CV). A ring of points scores near 1; a handful of
/// scattered points scores near 0. For reference, a dense isotropic Gaussian cloud scores
/// ≈ 1 − √(4/π − 1) ≈ 0.48 (full coverage, Rayleigh-distributed radius).
/// points_pn (p, n) real. Returns 0 for fewer than 3 points or when every point coincides
/// with the mean (no principal plane). Throws std::invalid_argument for a non-2-D input.
double ring_score(const at::Tensor& points_pn);

/// Number of connected components of the graph joining points closer than or at `tol`
/// (Euclidean): single-linkage clusters. points_pn (p, n); 0 for no points.
int64_t count_clusters(const at::Tensor& points_pn, double tol);

/// Median of the values (mean of the two middle ones for an even count); NaN when empty.
double median(std::vector<double> values);

}  // namespace jslds::analysis
