// The analysis of MODEL.md §7 applied to a trained JsldsModel: collects the expansion points
// e*_t and generator states g_t on validation trials, builds the closed-form autonomous map
// F(·, u = 0) from the generator cell's weights, and runs run_analysis (analysis.h).
//
// Used by `jslds train` (core/train/post_training_analysis.cpp) and `jslds analyze`
// (cli/cmd_analyze.cpp). Letters: B trials, T bins, n latent dimension, p points.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "core/analysis/analysis.h"
#include "core/analysis/generator_maps.h"
#include "core/config.h"

namespace jslds {
class JsldsModelImpl;
struct Batch;
}  // namespace jslds

namespace jslds::analysis {

/// The points of a model's trajectories on a set of trials, flattened over (trial, bin).
struct CollectedStates {
  at::Tensor expansion_points_pn;  // e*_t of the JSLDS chain, (B·T, n), on the model's device
  at::Tensor states_pn;            // g_t of the nonlinear chain, (B·T, n), same device
};

/// Runs `model` forward over `trials` (posterior means, no dropout, no gradients: the
/// evaluation pass of MODEL §6) in chunks of at most `chunk_trials` trials, and returns every
/// e*_t and g_t, t = 1 … T. Poisson mode reads trials.encoder_spikes_btn (and inputs_btk when
/// the model has external inputs); task mode reads trials.inputs_btk. The batch must be on
/// the model's device. Throws std::invalid_argument for an empty batch or chunk_trials < 1,
/// c10::Error (from the model) for tensors that do not fit it.
CollectedStates collect_states(JsldsModelImpl& model, const Batch& trials, int64_t chunk_trials = 256);

/// The closed form of the model's autonomous generator F(h, u = 0) (MODEL §2), for
/// run_analysis: gru_map with W_rh, W_zh = the two row blocks of the fused `w_rzh` (2n, n),
/// W_ch = `w_ch`, b_r, b_z = the two halves of `b_rz + fg_bias` (b_z thus includes the
/// update-gate offset b_fg), b_c = `b_c`; or tanh_map with `w_h`, `b`. The input weights
/// `w_u` play no part (u = 0). Weights are detached copies taken now, in the cell's dtype and
/// on its device: later training steps do not change the map.
AutonomousMap generator_map(const JsldsModelImpl& model);

/// AnalysisInput for `model` on `trials`: collect_states plus generator_map.
/// `bin_ms` is the data's bin width in milliseconds (> 0).
AnalysisInput model_analysis_input(JsldsModelImpl& model, const Batch& trials, double bin_ms);

/// model_analysis_input followed by run_analysis(input, options, seed, progress).
/// Throws what those throw (std::invalid_argument for bad options or inputs), and
/// SearchInterrupted when `stop_requested` (asked once per search iteration) returns true.
AnalysisResult analyse_model(JsldsModelImpl& model, const Batch& trials, const AnalysisOptions& options,
                             double bin_ms, uint64_t seed, const AnalysisProgressFn& progress = {},
                             const std::function<bool()>& stop_requested = {});

}  // namespace jslds::analysis
