// Small model configs shared by the model tests.
#pragma once

#include "models/model_config.hpp"
#include "models/transformer.hpp"

#include <malloc.h>

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

/// What Gemma 2 and 3 share, at small_config's size: GeGLU, a query scale other than head_dim's, a
/// sliding window of 8 in the first layer (so that a sequence of a few dozen tokens reaches past it).
inline ModelConfig gemma_layout(const std::string& type, bool tied, std::int64_t vocab) {
  auto config = small_config(type, tied, vocab);
  config.hidden_activation = "gelu_pytorch_tanh";
  config.query_pre_attn_scalar = 24;
  config.sliding_window = 8;
  config.sliding_layers = {true, false};
  return config;
}

/// Gemma 3: the sliding layers' own rotary base.
inline ModelConfig gemma3_config(bool tied = true, std::int64_t vocab = 97) {
  auto config = gemma_layout("gemma3_text", tied, vocab);
  config.rope_theta = 1000000.0;
  config.rope_local_base_freq = 10000.0;
  return config;
}

/// Gemma 2: caps small enough for these small weights' scores and logits to reach them.
inline ModelConfig gemma2_config(bool tied = true, std::int64_t vocab = 97) {
  auto config = gemma_layout("gemma2", tied, vocab);
  config.attn_logit_softcapping = 0.5;
  config.final_logit_softcapping = 0.2;
  return config;
}

/// OLMo 2: norms after the attention and the MLP, none before; queries and keys normalised across heads.
inline ModelConfig olmo2_config(bool tied = false, std::int64_t vocab = 97) {
  return small_config("olmo2", tied, vocab);
}

/// `config` with its rotary embedding stretched by `kind` ("linear", "llama3" or "yarn") to a
/// pre-training context of 32 positions, small enough that a short sequence has wavelengths on every
/// side of the bounds the kinds treat differently.
inline ModelConfig rope_scaled(ModelConfig config, const std::string& kind) {
  config.rope_scaling.type = kind;
  config.rope_scaling.factor = 4.0;
  config.rope_scaling.original_max_position_embeddings = 32;
  config.rope_scaling.low_freq_factor = 1.0;
  config.rope_scaling.high_freq_factor = 4.0;
  return config;
}

/// OLMo 3: OLMo 2's layout with a window of 8 in the first layer, and YaRN in the second (the
/// full-attention layer) only, as OLMo 3's long-context models scale.
inline ModelConfig olmo3_config(bool tied = false, std::int64_t vocab = 97) {
  auto config = rope_scaled(small_config("olmo3", tied, vocab), "yarn");
  config.sliding_window = 8;
  config.sliding_layers = {true, false};
  config.rope_local_base_freq = config.rope_theta;
  return config;
}

/// SmolLM3: Llama's layout, its second layer without a rotary embedding (a NoPE layer).
inline ModelConfig smollm3_config(bool tied = true, std::int64_t vocab = 97) {
  auto config = small_config("smollm3", tied, vocab);
  config.nope_layers = {false, true};
  return config;
}

/// Granite 3: Llama's layout with multipliers far enough from 1 to matter (Granite 3.3 2B has 12,
/// 0.22, 1/64 and 8).
inline ModelConfig granite_config(bool tied = true, std::int64_t vocab = 97) {
  auto config = small_config("granite", tied, vocab);
  config.embedding_multiplier = 4.0;
  config.residual_multiplier = 0.5;
  config.attention_multiplier = 0.1;
  config.logits_scaling = 3.0;
  return config;
}

/// Phi-3 / Phi-4: q, k, v and gate, up stored as fused matrices, and the rotary embedding over the
/// first three quarters of each head (Phi-4 mini's share: 12 of 16 dimensions, 6 frequencies).
/// `longrope`: LongRoPE over a pre-training context of 32 positions, so that a sequence of 40 takes
/// the long factors and one of 20 the short.
inline ModelConfig phi3_config(bool tied = true, bool longrope = false, std::int64_t vocab = 97) {
  auto config = small_config("phi3", tied, vocab);
  config.partial_rotary_factor = 0.75;
  if (longrope) {
    config.rope_scaling.type = "longrope";
    config.rope_scaling.original_max_position_embeddings = 32;
    config.rope_scaling.factor = 4.0; // max_position_embeddings 128 over 32
    config.rope_scaling.short_factor = {1.0, 1.1, 1.3, 1.8, 2.5, 4.0};
    config.rope_scaling.long_factor = {1.0, 1.5, 2.5, 5.0, 9.0, 16.0};
  }
  return config;
}

/// A mixture of experts of `type` ("qwen3_moe", "qwen2_moe", "mixtral", "olmoe") at small_config's
/// size: 4 experts, 2 per token, with each family's particulars: Qwen3-MoE's first layer dense
/// (mlp_only_layers) and its top-2 weights renormalised, as Qwen3-30B-A3B's; Qwen2-MoE's shared
/// expert; Mixtral's and OLMoE's experts intermediate_size wide.
inline ModelConfig moe_config(const std::string& type, bool tied = false, std::int64_t vocab = 97) {
  auto config = small_config(type, tied, vocab);
  config.attention_bias = type == "qwen2_moe";
  config.num_experts = 4;
  config.num_experts_per_tok = 2;
  config.moe_intermediate_size = type == "mixtral" || type == "olmoe" ? config.intermediate_size : 32;
  config.norm_topk_prob = type == "mixtral" || type == "qwen3_moe";
  config.sparse_layers = {type != "qwen3_moe", true};
  if (type == "qwen2_moe")
    config.shared_expert_intermediate_size = 48;
  config.output_router_logits = false;
  config.router_aux_loss_coef = 0.001;
  return config;
}

/// A model of `config` drawn from `seed`, with its biases and norm weights moved off their initial
/// zeros and ones so that they matter in comparisons; embeddings scaled by `embedding_scale` (> 1:
/// peaked distributions, no near-ties for argmax).
inline Transformer random_model(const ModelConfig& config, std::uint64_t seed, double embedding_scale = 1.0) {
  torch::manual_seed(seed);
  Transformer model(config);
  torch::NoGradGuard no_grad;
  for (auto& parameter : model->named_parameters())
    if (parameter.key().find("bias") != std::string::npos || parameter.key().find("norm") != std::string::npos)
      parameter.value().add_(torch::randn_like(parameter.value()) * 0.1);
  model->model->embed_tokens->weight.mul_(embedding_scale);
  return model;
}

/// Token ids [batch, time] below `vocab`, drawn from LibTorch's generator seeded with `seed`.
inline torch::Tensor sample_tokens(std::int64_t vocab, std::int64_t batch, std::int64_t time, std::uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(vocab, {batch, time}, torch::kInt64);
}

/// The bytes malloc has handed out and not had back (the model code keeps every block in malloc's
/// heap: transformer.cpp), or about 0 where another allocator serves them (the sanitizers'): what a
/// pass holds is the difference before and after it.
inline std::size_t heap_in_use() {
  auto info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

} // namespace chorus::models::test
