// AdamW as LibTorch defines it (decoupled weight decay, bias-corrected moments), with each fp32 CPU
// parameter updated in one pass over its values, moments and gradient. LibTorch's own step runs eight
// tensor ops per parameter, each a full pass over memory: on the tiny model that was a tenth of a
// training step. State, options and checkpoints are LibTorch's AdamW's, so either can resume the other.
#pragma once

#include <torch/torch.h>

#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

namespace chorus::models {

/// What LibTorch's optimizers key their per-parameter state by: the parameter's TensorImpl address as
/// text up to LibTorch 2.1, the address itself from 2.2 (which also dropped c10::guts::to_string).
using OptimizerStateKey = std::remove_reference_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

/// The key of `parameter`'s state in an optimizer's state(), as LibTorch's own step makes it.
template <class Key = OptimizerStateKey>
Key optimizer_state_key(const torch::Tensor& parameter) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text; // what c10::guts::to_string wrote
    text << parameter.unsafeGetTensorImpl();
    return text.str();
  } else {
    return parameter.unsafeGetTensorImpl();
  }
}

class FusedAdamW : public torch::optim::AdamW {
public:
  using torch::optim::AdamW::AdamW;

  /// One step over every parameter with a gradient. Parameters the fused loop does not cover (other
  /// dtypes or devices, amsgrad) take LibTorch's arithmetic.
  torch::Tensor step(LossClosure closure = nullptr) override;
};

} // namespace chorus::models
