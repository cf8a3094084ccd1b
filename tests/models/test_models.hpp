// Small model configs shared by the model tests.
#pragma once

#include "models/model_config.hpp"

namespace chorus::models::test {

/// A model small enough to train in milliseconds, with grouped-query attention (4 query heads over
/// 2 key/value heads) so that the grouping is exercised.
inline ModelConfig small_config(const std::string& type = "qwen2", bool tied = true, std::int64_t vocab = 97) {
  ModelConfig config;
  config.model_type = type;
  config.vocab_size = vocab;
  config.hidden_size = 64;
  config.intermediate_size = 96;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 16;
  config.attention_bias = type == "qwen2";
  config.tie_word_embeddings = tied;
  config.max_position_embeddings = 128;
  return config;
}

} // namespace chorus::models::test
