// analysis.h5: the analysis result in an HDF5 file (layout in docs/analysis.md).
#pragma once

#include <filesystem>

#include "core/analysis/analysis.h"

namespace jslds::analysis {

/// Version of the analysis.h5 layout, stored as the root attribute `format_version`.
inline constexpr int kAnalysisH5Version = 1;

/// Writes `result` to `path` (HDF5 C library), replacing an existing file. The file is
/// written next to `path` under a temporary name and renamed into place, so readers never
/// see a partial file. Layout (docs/analysis.md): root attributes = the MODEL §7.5
/// summaries plus format, latent_dim, bin_ms, unique_tol, cluster_tol; groups
/// /expansion_points and /fixed_points with coords (p,n), q (p), eigenvalues (p,n,2)
/// [re, im] by decreasing |λ|, eigenvectors (p,k,n,2), stability (p, enum), n_unstable (p),
/// max_abs_eig (p), freq_hz (p,n), tau_s (p,n), mode_kind (p,n, enum); the search
/// diagnostics as attributes of /fixed_points.
/// Throws std::runtime_error naming the file and the object when HDF5 fails.
void write_analysis_h5(const AnalysisResult& result, const std::filesystem::path& path);

}  // namespace jslds::analysis
