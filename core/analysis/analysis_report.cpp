// JSON (docs/report-format.md) and terminal summary of an AnalysisResult.
#include "core/analysis/analysis_report.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/analysis/structure.h"

namespace jslds::analysis {
namespace {

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

std::string fmt_tau(double tau_s) {
  if (std::isinf(tau_s)) return "inf";
  return fmt::format("{:.4g}", tau_s);
}

std::string fmt_value(double v) {
  if (std::isnan(v)) return "undefined";
  if (v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{:.4g}", v);
}

std::string class_label(const PointAnalysis& p) {
  if (p.stability == Stability::kUnstable && p.n_unstable == 1) return "saddle";
  return std::string(stability_name(p.stability));
}

}  // namespace

nlohmann::json analysis_to_json(const AnalysisResult& result) {
  nlohmann::json summary = nlohmann::json::object();
  for (const auto& [name, value] : result.summary) summary[name] = number(value);
  nlohmann::json points = nlohmann::json::array();
  nlohmann::json modes = nlohmann::json::array();
  int64_t idx = 0;
  for (const auto* set : {&result.expansion_points, &result.fixed_points}) {
    for (const auto& p : *set) {
      nlohmann::json coords = nlohmann::json::array();
      for (double c : p.coords) coords.push_back(number(c));
      points.push_back({{"idx", idx},
                        {"source", source_name(p.source)},
                        {"q", number(p.q)},
                        {"stability", stability_name(p.stability)},
                        {"n_unstable", p.n_unstable},
                        {"max_abs_eig", number(p.max_abs_eig)},
                        {"refined", p.refined},
                        {"coords", std::move(coords)}});
      const size_t n_modes = std::min<size_t>(p.modes.size(), kReportedModesPerPoint);
      for (size_t k = 0; k < n_modes; ++k) {
        const Mode& m = p.modes[k];
        modes.push_back({{"point_idx", idx},
                         {"mode_idx", m.mode_idx},
                         {"eig_re", number(m.eigenvalue.real())},
                         {"eig_im", number(m.eigenvalue.imag())},
                         {"abs", number(m.abs)},
                         {"freq_hz", number(m.freq_hz)},
                         {"tau_s", number(m.tau_s)},
                         {"kind", mode_kind_name(m.kind)}});
      }
      ++idx;
    }
  }
  return {{"summary", std::move(summary)},
          {"fixed_points", std::move(points)},
          {"modes", std::move(modes)}};
}

std::string format_analysis_summary(const AnalysisResult& r) {
  constexpr size_t kListed = 10;  // fixed points and modes listed in full
  std::string out;
  auto line = [&out](const std::string& s) { out += s + "\n"; };
  line(fmt::format("Analysis: latent dimension {}, bin {} ms, merge distance {:.3g}, cluster "
                   "distance {:.3g}",
                   r.latent_dim, r.bin_ms, r.unique_tol, r.cluster_tol));
  line(fmt::format("Expansion points: {} analysed of {} collected", r.expansion_points.size(),
                   r.n_expansion_candidates));
  line(fmt::format("Fixed-point search: {} starts, {} iterations ({}), {} converged, {} after "
                   "merging, {} outliers dropped, {:.2f} s",
                   r.search.n_inits, r.search.iterations, r.search.stop_reason,
                   r.search.n_converged, r.search.n_unique, r.search.n_outliers,
                   r.search.seconds));
  if (r.search.newton_on)
    line(fmt::format("Newton refinement: {} converged starts polished to fixed points in at most "
                     "{} steps (moved up to {:.3g}), {} left as slow points (starts, before merging)",
                     r.search.n_refined, r.search.newton_steps, r.search.max_refine_distance,
                     r.search.n_slow_points));
  else
    line("Newton refinement: off (analysis.newton_steps = 0)");

  int64_t stable = 0, marginal = 0, saddle = 0, unstable = 0;
  for (const auto& p : r.fixed_points) {
    if (p.stability == Stability::kStable) ++stable;
    else if (p.stability == Stability::kMarginal) ++marginal;
    else if (p.n_unstable == 1) ++saddle;
    else ++unstable;
  }
  line("");
  line(fmt::format("Fixed points: {} ({} stable, {} marginal, {} saddle, {} unstable with more "
                   "than one unstable mode)",
                   r.fixed_points.size(), stable, marginal, saddle, unstable));
  if (!r.fixed_points.empty()) {
    line(fmt::format("  {:>4}  {:<9} {:>10} {:>9} {:>10} {:>9}  {}", "idx", "class", "q",
                     "max|λ|", "n_unstable", "‖x‖", "refined"));
    for (size_t i = 0; i < std::min(kListed, r.fixed_points.size()); ++i) {
      const auto& p = r.fixed_points[i];
      double norm = 0.0;
      for (double c : p.coords) norm += c * c;
      line(fmt::format("  {:>4}  {:<9} {:>10.3g} {:>9.4f} {:>10} {:>9.3g}  {}",
                       r.expansion_points.size() + i, class_label(p), p.q, p.max_abs_eig,
                       p.n_unstable, std::sqrt(norm),
                       r.search.newton_on ? (p.refined ? "yes" : "no (slow point)") : "-"));
    }
    if (r.fixed_points.size() > kListed)
      line(fmt::format("  … {} more in analysis.h5", r.fixed_points.size() - kListed));
    line("");
    line("Slowest modes at the fixed points:");
    line(fmt::format("  {:>5} {:>4}  {:>8} {:>10} {:>10}  {}", "point", "mode", "|λ|", "freq Hz",
                     "τ s", "kind"));
    for (size_t i = 0; i < std::min<size_t>(3, r.fixed_points.size()); ++i)
      for (size_t k = 0; k < std::min<size_t>(3, r.fixed_points[i].modes.size()); ++k) {
        const Mode& m = r.fixed_points[i].modes[k];
        line(fmt::format("  {:>5} {:>4}  {:>8.4f} {:>10.3f} {:>10}  {}",
                         r.expansion_points.size() + i, m.mode_idx, m.abs, m.freq_hz,
                         fmt_tau(m.tau_s), mode_kind_name(m.kind)));
      }
  }
  if (!r.expansion_points.empty()) {
    line("");
    line("Slowest modes at the expansion points (median over points of each rank):");
    line(fmt::format("  {:>4}  {:>8} {:>10} {:>10}", "mode", "|λ|", "freq Hz", "τ s"));
    for (size_t k = 0; k < 5; ++k) {
      std::vector<double> abs, freq, tau;
      for (const auto& p : r.expansion_points)
        if (k < p.modes.size()) {
          abs.push_back(p.modes[k].abs);
          freq.push_back(p.modes[k].freq_hz);
          tau.push_back(p.modes[k].tau_s);
        }
      if (abs.empty()) break;
      line(fmt::format("  {:>4}  {:>8.4f} {:>10.3f} {:>10}", k, median(abs), median(freq),
                       fmt_tau(median(tau))));
    }
  }
  line("");
  line("Structure:");
  for (const auto& [name, value] : r.summary)
    line(fmt::format("  {:<18} {}", name, fmt_value(value)));
  return out;
}

}  // namespace jslds::analysis
