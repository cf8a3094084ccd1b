// ModelConfig: the architecture of a decoder-only transformer of the Llama / Qwen2 / Qwen3 / Mistral /
// Gemma 2 and 3 / OLMo 2 and 3 / SmolLM3 / Granite 3 / Phi-3 and Phi-4 families and the mixtures of
// experts Qwen2-MoE / Qwen3-MoE / Mixtral / OLMoE, read from and written to a Hugging Face
// `config.json` with the same keys, so that folders round-trip.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace chorus::models {

/// How the rotary embedding is stretched for contexts longer than the model's pre-training
/// (config.json's `rope_scaling`; `rope_parameters` in transformers 5), as transformers computes it.
struct RopeScaling {
  /// "default" (none), "linear" (positions divided by `factor`), "llama3" (Llama 3.1 and later:
  /// low frequencies divided by `factor`, high ones kept, a smooth blend between) or "yarn" (Qwen's
  /// long-context setting: a ramp between the two by dimension, and cos/sin scaled by the attention
  /// factor) or "longrope" (Phi-3.5 and Phi-4 mini: each frequency divided by its own factor, from
  /// `short_factor` for sequences within the pre-training context and `long_factor` past it, and
  /// cos/sin scaled by the attention factor).
  std::string type = "default";
  double factor = 1.0;
  /// The pre-training context (llama3, yarn, longrope).
  std::int64_t original_max_position_embeddings = 0;
  double low_freq_factor = 1.0;  // llama3
  double high_freq_factor = 4.0; // llama3
  /// yarn, longrope: cos and sin are multiplied by it; when absent, yarn's 0.1 ln(factor) + 1 (or the
  /// mscale ratio), longrope's sqrt(1 + ln(factor) / ln(original_max_position_embeddings)).
  std::optional<double> attention_factor;
  double beta_fast = 32.0; // yarn: the ramp's bounds, in rotations over the pre-training context
  double beta_slow = 1.0;
  std::optional<double> mscale, mscale_all_dim; // yarn, DeepSeek's form of the attention factor
  bool truncate = true;                         // yarn: the ramp's bounds rounded to whole dimensions
  /// longrope: one divisor per rotary frequency (rotary_dim / 2 of them), for a sequence no longer
  /// than original_max_position_embeddings (short) and for one past it (long).
  std::vector<double> short_factor, long_factor;
};

struct ModelConfig {
  /// "llama", "mistral" (Llama's architecture, with an optional sliding window), "qwen2" (always
  /// biases on the q, k and v projections), "qwen3" (an RMSNorm on each query and key head before
  /// the rotary embedding, `q_norm` / `k_norm`), "gemma2" (Gemma 2: a norm before and after both the
  /// attention and the MLP, norms that scale by 1 + weight, embeddings scaled by sqrt(hidden_size),
  /// GeGLU, every other layer windowed, soft-capped scores and logits) or "gemma3_text" (Gemma 3:
  /// Gemma 2's layout without soft-capping, with qwen3's head norms and sliding layers with their
  /// own rotary base), "olmo2" (OLMo 2: no norm before the attention or the MLP, one after each,
  /// before the residual sum, and an RMSNorm over all query heads together and one over all key
  /// heads, before the rotary embedding) or "olmo3" (OLMo 3: OLMo 2's layout, three layers of every
  /// four windowed, rope_scaling in the full-attention layers only) or "smollm3" (SmolLM3: Llama's
  /// layout with no rotary embedding in every fourth layer, `no_rope_layers`) or "granite" (Granite
  /// 3: Llama's layout with four multipliers, below) or "phi3" (Phi-3 and Phi-4: Llama's layout with
  /// q, k and v stored as one matrix, gate and up as another, and the rotary embedding over the
  /// first partial_rotary_factor of each head). Mixtures of experts (the MoE fields below):
  /// "qwen3_moe" (Qwen3's attention), "qwen2_moe" (Qwen2's, and a shared expert), "mixtral"
  /// (Mistral's; its experts' projections are named w1, w3 and w2) or "olmoe" (Llama's layout with
  /// OLMo's query and key norms across all heads).
  std::string model_type = "llama";
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  /// Grouped-query attention: heads of keys and values, dividing num_attention_heads.
  std::int64_t num_key_value_heads = 0;
  /// Per-head width; hidden_size / num_attention_heads unless config.json says otherwise.
  std::int64_t head_dim = 0;
  std::int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  /// The share of each head the rotary embedding turns (Phi-4 mini's 0.75): its first rotary_dim()
  /// dimensions, the rest pass unturned.
  double partial_rotary_factor = 1.0;
  /// Biases on the q, k and v projections (Qwen2; `attention_bias` for Llama and Qwen3).
  bool attention_bias = false;
  /// The output projection shares the embedding matrix.
  bool tie_word_embeddings = false;
  /// The dtype the weights are stored in: "float32", "bfloat16" or "float16".
  std::string torch_dtype = "float32";
  std::optional<std::int64_t> bos_token_id;
  std::vector<std::int64_t> eos_token_ids;
  /// The MLP's gate activation: "silu" (SwiGLU) or "gelu_pytorch_tanh" (GeGLU: Gemma's).
  std::string hidden_activation = "silu";
  /// Attention scores are scaled by query_pre_attn_scalar^(-1/2) (Gemma's key); 0: by head_dim^(-1/2).
  double query_pre_attn_scalar = 0;
  /// Sliding-window attention: in the layers `sliding_layers` marks, a token attends to itself and
  /// the sliding_window - 1 tokens before it (Gemma 3: five layers of every six; Mistral 7B v0.1:
  /// all). 0: every layer attends to the whole context.
  std::int64_t sliding_window = 0;
  std::vector<bool> sliding_layers;
  /// The layers that take no rotary embedding: their attention sees no positions but the causal
  /// order's (SmolLM3's "NoPE" layers, 0 in its `no_rope_layers`: every fourth). Empty: every layer
  /// rotates.
  std::vector<bool> nope_layers;
  /// The rotary base of the sliding layers, which take no rope_scaling (Gemma 3's
  /// rope_local_base_freq; OLMo 3's rope_theta when it scales). 0: the same rotary embedding as the
  /// other layers.
  double rope_local_base_freq = 0;
  /// Gemma 2's soft-capping: attention scores become c tanh(s / c) with c = attn_logit_softcapping
  /// (before the mask and softmax), the output logits likewise with final_logit_softcapping. 0: none.
  double attn_logit_softcapping = 0;
  double final_logit_softcapping = 0;
  /// Granite's multipliers (1 in other families): the embeddings times embedding_multiplier, each
  /// block's output times residual_multiplier before the residual sum, the attention scores times
  /// attention_multiplier (in place of head_dim^(-1/2); 0: unset) and the logits divided by
  /// logits_scaling.
  double embedding_multiplier = 1, residual_multiplier = 1, attention_multiplier = 0, logits_scaling = 1;
  /// Read from a multimodal checkpoint (Gemma 3 4B and larger: `Gemma3ForConditionalGeneration`,
  /// model_type "gemma3"): this is its language model, config.json's `text_config`. The checkpoint's
  /// vision weights are not read, and a save writes the language model alone (`Gemma3ForCausalLM`).
  bool from_multimodal = false;
  /// Mixture of experts: in the layers `sparse_layers` marks, the MLP is num_experts experts of width
  /// moe_intermediate_size (a router, `gate`, gives each token a softmax over them and the token goes
  /// through the num_experts_per_tok most probable, its outputs summed with those probabilities,
  /// renormalised to sum to one when norm_topk_prob). 0: every MLP is dense.
  std::int64_t num_experts = 0;
  std::int64_t num_experts_per_tok = 0;
  std::int64_t moe_intermediate_size = 0;
  bool norm_topk_prob = false;
  std::vector<bool> sparse_layers;
  /// Qwen2-MoE's shared expert: an MLP of this width every token goes through beside the routed
  /// ones, its output scaled by sigmoid(shared_expert_gate x). 0: none.
  std::int64_t shared_expert_intermediate_size = 0;
  /// The routers' load-balancing loss (Switch Transformer's, as transformers computes it) is added
  /// to the training loss times router_aux_loss_coef when output_router_logits is set.
  double router_aux_loss_coef = 0;
  bool output_router_logits = false;
  /// generation_config.json as the folder holds it (transformers' generation defaults: sampling
  /// settings, stop ids), written back when the model is saved; null when the folder has none. Its
  /// end-of-sequence ids are also in eos_token_ids; its sampling settings are kept, not applied
  /// (a recipe's SamplingParams say how to sample).
  nlohmann::json generation_config;
  /// 0: a causal language model (`...ForCausalLM`, logits over the vocabulary). 1: a scoring model
  /// (`...ForSequenceClassification` with one label): a `score` head maps the last token's hidden
  /// state to one number, and there is no language-model head.
  std::int64_t num_labels = 0;

  /// Whether each query and key head is normalised before the rotary embedding (Qwen3, Gemma 3).
  bool qk_norm() const noexcept {
    return model_type == "qwen3" || model_type == "qwen3_moe" || model_type == "gemma3_text";
  }

  /// Whether all query heads are normalised as one vector before the rotary embedding, and all key
  /// heads as another (OLMo 2 and 3, OLMoE).
  bool qk_norm_across_heads() const noexcept {
    return olmo() || model_type == "olmoe";
  }

  /// Whether some layers' MLP is a mixture of experts.
  bool moe() const noexcept {
    return num_experts > 0;
  }

  /// Whether layer `layer`'s MLP is a mixture of experts.
  bool sparse(std::int64_t layer) const {
    return moe() && sparse_layers.at(static_cast<std::size_t>(layer));
  }

  /// OLMo 2's and 3's layout: a norm after the attention and after the MLP (none before them), and
  /// the queries and keys normalised across all their heads at once before the rotary embedding.
  bool olmo() const noexcept {
    return model_type == "olmo2" || model_type == "olmo3";
  }

  /// Gemma 2's and 3's layout: embeddings scaled by sqrt(hidden_size), RMSNorms that scale by
  /// 1 + weight (so a zero weight is the identity), a norm after the attention and around the MLP too.
  bool gemma() const noexcept {
    return model_type == "gemma2" || model_type == "gemma3_text";
  }

  /// The dimensions of each query and key head the rotary embedding turns, as transformers rounds
  /// them: int(head_dim * partial_rotary_factor).
  std::int64_t rotary_dim() const noexcept {
    return static_cast<std::int64_t>(static_cast<double>(head_dim) * partial_rotary_factor);
  }

  /// Whether layer `layer` attends within the sliding window only.
  bool sliding(std::int64_t layer) const {
    return sliding_window > 0 && sliding_layers.at(static_cast<std::size_t>(layer));
  }

  /// Whether layer `layer` takes no rotary embedding.
  bool nope(std::int64_t layer) const {
    return !nope_layers.empty() && nope_layers.at(static_cast<std::size_t>(layer));
  }

  /// The factor attention scores are multiplied by before the softmax: head_dim^(-1/2), Gemma's
  /// query_pre_attn_scalar^(-1/2) or Granite's attention_multiplier.
  double attention_scale() const;

  /// Reads config.json's object. @throws CheckpointError naming `file` and the key.
  static ModelConfig from_json(const nlohmann::json& json, const std::filesystem::path& file);

  /// Reads a config.json file. @throws CheckpointError naming the file and the key.
  static ModelConfig load(const std::filesystem::path& file);

  /// The config.json object, with the keys Hugging Face tools expect.
  nlohmann::json to_json() const;

  /// The architecture's name as Hugging Face writes it ("Qwen2ForCausalLM",
  /// "LlamaForSequenceClassification", ...).
  std::string architecture() const;

  /// The built-in tiny model: a few million parameters over a byte-level vocabulary, for examples
  /// and tests on a laptop CPU.
  static ModelConfig tiny(std::int64_t vocab_size);

  /// Qwen2-0.5B's shape (its config.json): 24 layers, hidden 896, 14 query heads over 2 key/value
  /// heads, tied embeddings over a 151936-token vocabulary, bf16 storage. For benchmarks at a real
  /// model's size (weights drawn, not loaded).
  static ModelConfig qwen2_half_billion();

  /// @throws CheckpointError naming `file` if the numbers do not describe a valid model.
  void validate(const std::filesystem::path& file) const;
};

} // namespace chorus::models
