// Legend: B trials, T bins, N held-in neurons, E encoder width, C controller width,
// d factors, m inferred inputs, n latent dimension.
#include "core/model/inference_networks.h"

#include <ostream>

#include <torch/torch.h>

namespace jslds {

EncoderImpl::EncoderImpl(const EncoderOptions& options_) : options(options_) { reset(); }

void EncoderImpl::reset() {
  TORCH_CHECK(options.neurons() >= 1, "Encoder: needs at least one held-in neuron, got ", options.neurons());
  TORCH_CHECK(options.encoder_dim() >= 1, "Encoder: encoder_dim must be >= 1, got ", options.encoder_dim());
  gru = register_module(
      "gru", torch::nn::GRU(torch::nn::GRUOptions(options.neurons(), options.encoder_dim())
                                .batch_first(true)
                                .bidirectional(true)));
  ic = register_module("ic", torch::nn::Linear(2 * options.encoder_dim(), 2 * options.latent_dim()));
}

void EncoderImpl::pretty_print(std::ostream& stream) const {
  stream << "jslds::Encoder(neurons=" << options.neurons() << ", encoder_dim=" << options.encoder_dim()
         << ", latent_dim=" << options.latent_dim() << ")";
}

EncoderOutput EncoderImpl::forward(const torch::Tensor& spikes_btn) {
  TORCH_CHECK(spikes_btn.dim() == 3 && spikes_btn.size(2) == options.neurons(),
              "Encoder: expected spike counts (B,T,", options.neurons(), "), got shape ",
              spikes_btn.sizes());
  auto [out_bte, h_n] = gru->forward(torch::log1p(spikes_btn));  // h_n (2,B,E)
  const torch::Tensor final_bx = torch::cat({h_n[0], h_n[1]}, /*dim=*/1);
  auto chunks = ic->forward(final_bx).chunk(2, /*dim=*/1);
  return {out_bte, chunks[0], chunks[1]};
}

ControllerImpl::ControllerImpl(const ControllerOptions& options_) : options(options_) { reset(); }

void ControllerImpl::reset() {
  TORCH_CHECK(options.inferred_input_dim() >= 1, "Controller: inferred_input_dim must be >= 1, got ",
              options.inferred_input_dim());
  TORCH_CHECK(options.controller_dim() >= 1, "Controller: controller_dim must be >= 1, got ",
              options.controller_dim());
  cell = register_module("cell", torch::nn::GRUCell(options.input_dim(), options.controller_dim()));
  posterior = register_module(
      "posterior", torch::nn::Linear(options.controller_dim(), 2 * options.inferred_input_dim()));
}

void ControllerImpl::pretty_print(std::ostream& stream) const {
  stream << "jslds::Controller(input_dim=" << options.input_dim()
         << ", controller_dim=" << options.controller_dim()
         << ", inferred_input_dim=" << options.inferred_input_dim() << ")";
}

ControllerStep ControllerImpl::forward(const torch::Tensor& encoder_bx, const torch::Tensor& factors_bd,
                                       const torch::Tensor& state_bc) {
  const torch::Tensor state = cell->forward(torch::cat({encoder_bx, factors_bd}, /*dim=*/1), state_bc);
  auto chunks = posterior->forward(state).chunk(2, /*dim=*/1);
  return {state, chunks[0], chunks[1]};
}

}  // namespace jslds
