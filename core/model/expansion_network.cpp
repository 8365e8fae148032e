// Legend: B batch, n latent dimension, p input dimension, w layer width.
#include "core/model/expansion_network.h"

#include <ostream>
#include <string>

#include <torch/torch.h>

namespace jslds {

ExpansionNetworkImpl::ExpansionNetworkImpl(const ExpansionNetworkOptions& options_) : options(options_) {
  reset();
}

int64_t ExpansionNetworkImpl::width() const {
  return options.latent_dim() + (options.learned_input() ? options.input_dim() : 0);
}

void ExpansionNetworkImpl::reset() {
  TORCH_CHECK(options.latent_dim() >= 1, "ExpansionNetwork: latent_dim must be >= 1, got ",
              options.latent_dim());
  TORCH_CHECK(options.layers() >= 1, "ExpansionNetwork: layers must be >= 1, got ", options.layers());
  TORCH_CHECK(!options.learned_input() || options.input_dim() >= 1,
              "ExpansionNetwork: a learned input expansion point needs input_dim >= 1, got ",
              options.input_dim());
  const int64_t w = width();
  weights.clear();
  biases.clear();
  for (int64_t l = 0; l < options.layers(); ++l) {
    // Zero init (MODEL §3): the untrained network maps a to tanh(tanh(a)).
    const std::string index = std::to_string(l);
    weights.push_back(register_parameter(std::string("w").append(index), torch::zeros({w, w})));
    biases.push_back(register_parameter(std::string("b").append(index), torch::zeros({w})));
  }
  identity = register_buffer("identity", torch::eye(w));
}

void ExpansionNetworkImpl::pretty_print(std::ostream& stream) const {
  stream << "jslds::ExpansionNetwork(latent_dim=" << options.latent_dim()
         << ", layers=" << options.layers() << ", input_expansion="
         << (options.learned_input() ? "learned" : "zero") << ")";
}

PackedExpansion ExpansionNetworkImpl::pack() const {
  PackedExpansion packed;
  for (size_t l = 0; l < weights.size(); ++l) {
    packed.layers.emplace_back((identity + weights[l]).t(), biases[l]);
  }
  return packed;
}

ExpansionPoint ExpansionNetworkImpl::step(const torch::Tensor& a_bn, const torch::Tensor& u_bp,
                                          const PackedExpansion& packed) const {
  torch::Tensor y;
  if (options.learned_input()) {
    TORCH_CHECK(u_bp.defined() && u_bp.size(-1) == options.input_dim(),
                "ExpansionNetwork: a learned input expansion point needs the inputs (B,",
                options.input_dim(), ")");
    y = torch::cat({a_bn, u_bp}, /*dim=*/1);
  } else {
    y = a_bn;
  }
  for (const auto& [m, bias] : packed.layers) y = torch::tanh(torch::addmm(bias, y, m));
  if (!options.learned_input()) return {y, {}};
  const int64_t n = options.latent_dim();
  return {y.narrow(1, 0, n), y.narrow(1, n, options.input_dim())};
}

ExpansionPoint ExpansionNetworkImpl::forward(const torch::Tensor& a_bn, const torch::Tensor& u_bp) {
  return step(a_bn, u_bp, pack());
}

}  // namespace jslds
