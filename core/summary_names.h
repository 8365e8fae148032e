// The names a run's summary can hold: result.json's "summary" (docs/report-format.md), the
// experiment database's summaries table (docs/database.md) and `summary.NAME` in
// `jslds query`. Written by the trainer (core/train/trainer.cpp, loss.cpp), `jslds train`
// (core/train/train_command.cpp) and the analysis (core/analysis/analysis.cpp); a test
// checks that every name those write is listed here (tests/core/train_cli_test.cpp).
// The sweep spec refuses an objective metric that is not one of them, so that a typo stops
// the campaign before it runs rather than leaving `jslds best` nothing to rank.
// Free of Torch, toml++ and SQLite: every library may include it.
#pragma once

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

namespace jslds {

/// A summary name and when a run reports it.
struct SummaryName {
  std::string_view name;
  std::string_view reported;  // "Poisson mode", "task mode", "JSLDS", "training", "analysis"
};

/// Every summary name, grouped by `reported` (consecutive entries share a group).
/// Poisson mode: validation bits per spike of the generator, of the JSLDS, co-smoothing on
/// held-out neurons, negative log-likelihood. Task mode: validation MSE of the generator and
/// of the JSLDS. JSLDS: co-training fidelity (both modes). Training: the last evaluation's
/// training figures and the run's bookkeeping. Analysis (analysis.enabled): structure scalars
/// of docs/analysis.md.
inline constexpr std::array<SummaryName, 31> kSummaryNames{{
    {"val_bps", "Poisson mode"},
    {"val_bps_jslds", "Poisson mode"},
    {"val_cobps", "Poisson mode"},
    {"val_nll", "Poisson mode"},
    {"val_mse", "task mode"},
    {"val_mse_jslds", "task mode"},
    {"rel_state_error", "JSLDS"},
    {"fp_residual", "JSLDS"},
    {"train_loss", "training"},
    {"loss_rnn", "training"},
    {"loss_jslds", "training"},
    {"loss_approx", "training"},
    {"loss_fp", "training"},
    {"loss_kl_ic", "training"},
    {"loss_kl_ii", "training"},
    {"loss_l2", "training"},
    {"loss_xe", "training"},
    {"lr", "training"},
    {"steps_per_s", "training"},
    {"steps_done", "training"},
    {"train_seconds", "training"},
    {"n_fixed_points", "analysis"},
    {"n_stable", "analysis"},
    {"n_marginal", "analysis"},
    {"n_saddle", "analysis"},
    {"spectral_radius", "analysis"},
    {"n_slow_modes", "analysis"},
    {"dominant_freq_hz", "analysis"},
    {"theta_mode", "analysis"},
    {"n_stable_clusters", "analysis"},
    {"ring_score", "analysis"},
}};

/// True when `name` is one of kSummaryNames.
inline bool is_summary_name(std::string_view name) {
  return std::any_of(kSummaryNames.begin(), kSummaryNames.end(),
                     [&](const SummaryName& s) { return s.name == name; });
}

/// The names by group, for messages: "val_bps, val_bps_jslds, val_cobps, val_nll (Poisson
/// mode); val_mse, val_mse_jslds (task mode); …".
inline std::string summary_names_by_group() {
  std::string out;
  for (std::size_t i = 0; i < kSummaryNames.size(); ++i) {
    const bool first_of_group = i == 0 || kSummaryNames[i - 1].reported != kSummaryNames[i].reported;
    if (i > 0) out += first_of_group ? "; " : ", ";
    out += kSummaryNames[i].name;
    if (i + 1 == kSummaryNames.size() || kSummaryNames[i + 1].reported != kSummaryNames[i].reported) {
      out += " (";
      out += kSummaryNames[i].reported;
      out += ")";
    }
  }
  return out;
}

}  // namespace jslds
