// The analysis result as the JSON of docs/report-format.md and as a human-readable summary.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/analysis/analysis.h"

namespace jslds::analysis {

/// Modes per point put in the JSON `modes` array (the slowest ones, conjugate pairs once);
/// analysis.h5 keeps every eigenvalue.
inline constexpr int64_t kReportedModesPerPoint = 10;

/// {"summary": {name: number}, "fixed_points": [...], "modes": [...]} with the entries of
/// docs/report-format.md:
///   fixed_points[i] = {"idx", "source": "expansion"|"numerical", "q", "stability",
///                      "n_unstable", "max_abs_eig", "coords": [n numbers]}
///   modes[j] = {"point_idx", "mode_idx", "eig_re", "eig_im", "abs", "freq_hz", "tau_s",
///               "kind": "real"|"oscillation"|"flip"}
/// `idx` runs over the expansion points first, then the numerical fixed points; `point_idx`
/// refers to it. Non-finite numbers (e.g. tau_s at r = 1, an undefined summary) are null.
/// The training child merges these three members into its `result` event and result.json.
nlohmann::json analysis_to_json(const AnalysisResult& result);

/// A few lines for a terminal: fixed points by class, the slowest modes (Hz, τ) at the fixed
/// points and the median over expansion points, the search diagnostics and the structure
/// summaries.
std::string format_analysis_summary(const AnalysisResult& result);

}  // namespace jslds::analysis
