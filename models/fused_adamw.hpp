// AdamW as LibTorch defines it (decoupled weight decay, bias-corrected moments), with each fp32 CPU
// parameter updated in one pass over its values, moments and gradient. LibTorch's own step runs eight
// tensor ops per parameter, each a full pass over memory: on the tiny model that was a tenth of a
// training step. State, options and checkpoints are LibTorch's AdamW's, so either can resume the other.
#pragma once

#include <torch/torch.h>

namespace chorus::models {

class FusedAdamW : public torch::optim::AdamW {
public:
  using torch::optim::AdamW::AdamW;

  /// One step over every parameter with a gradient. Parameters the fused loop does not cover (other
  /// dtypes or devices, amsgrad) take LibTorch's arithmetic.
  torch::Tensor step(LossClosure closure = nullptr) override;
};

} // namespace chorus::models
