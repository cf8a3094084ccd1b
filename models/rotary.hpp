// The rotary embedding's frequencies for a model config: the plain RoPE of rope_theta, or one of the
// context-stretching variants (RopeScaling), computed as transformers computes them.
#pragma once

#include "models/model_config.hpp"

#include <torch/torch.h>

namespace chorus::models {

struct RotaryFrequencies {
  /// The angle per position of each pair of turned dimensions, [rotary_dim / 2], fp32 on the CPU.
  torch::Tensor inv_freq;
  /// cos and sin are multiplied by it (YaRN's and LongRoPE's attention temperature; 1 otherwise).
  double attention_factor = 1.0;
  /// LongRoPE: the frequencies of a sequence that reaches position `long_from` or past it (the
  /// pre-training context); inv_freq serves shorter ones. Undefined for the other kinds.
  torch::Tensor long_inv_freq;
  std::int64_t long_from = 0;
};

RotaryFrequencies rotary_frequencies(const ModelConfig& config);

} // namespace chorus::models
