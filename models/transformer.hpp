// Transformer: the decoder-only model of the families model_config.hpp lists (RMSNorm, rotary
// embeddings, gated MLP or a mixture of experts, grouped-query attention, optional QKV bias and head
// norms, sliding-window layers, tied or untied embeddings), with the same parameter names as Hugging Face
// checkpoints (`model.layers.0.self_attn.q_proj.weight`, ...).
#pragma once

#include "models/attention_masks.hpp"
#include "models/lora.hpp"
#include "models/model_config.hpp"

#include <torch/torch.h>

#include <array>
#include <memory>
#include <optional>

namespace chorus::models {

/// Keys and values of the tokens seen so far, preallocated for the whole generation so that a decode
/// step writes one column instead of concatenating (and copying) the cache.
struct KVCache {
  /// Per layer: keys and values [batch, kv_heads, capacity, head_dim].
  std::vector<torch::Tensor> keys, values;

  /// The number of positions the cache can hold.
  std::int64_t capacity() const {
    return keys.empty() ? 0 : keys.front().size(2);
  }
};

/// Several parameters concatenated along their first dimension, for one matrix product instead of
/// several. The concatenation is kept and rebuilt only when a part changed (an optimizer step or a
/// weight sync updates parts in place, bumping their version counters), except when autograd records
/// and a part requires gradients: then it is rebuilt every time, so that gradients reach the parts.
class FusedParameter {
public:
  /// The parts concatenated: [sum of their first dimensions, ...].
  torch::Tensor get(const std::vector<torch::Tensor>& parts);

  /// For weights [out, in]: their concatenation transposed, [in, sum of outs], contiguous when kept.
  /// x times it is x W^T laid out as BLAS multiplies fastest (about 15% faster than through the
  /// transposed view at decode sizes).
  torch::Tensor transposed(const std::vector<torch::Tensor>& parts);

private:
  torch::Tensor cached(const std::vector<torch::Tensor>& parts, bool transpose);

  torch::Tensor value_;
  std::vector<std::pair<const void*, std::uint32_t>> sources_; // data pointer and version of each part
};

/// x [..., in] times `weight_t` [in, out], plus `bias` [out] if defined: a linear layer given its
/// weight transposed (FusedParameter::transposed).
torch::Tensor linear_transposed(const torch::Tensor& x, const torch::Tensor& weight_t, const torch::Tensor& bias = {});

/// x [..., in] times each of `weights` ([out_i, in]) transposed, the outputs side by side, plus
/// `bias` [sum of outs] if defined: one product per weight, each read where it is.
torch::Tensor linear_parts(const torch::Tensor& x, const std::vector<torch::Tensor>& weights,
                           const torch::Tensor& bias = {});

/// x [..., in] times `weights` concatenated along their outputs, plus `bias`. On the CPU through
/// `fused`'s kept transposed concatenation (one product, in the layout BLAS multiplies fastest);
/// elsewhere (a GPU) as linear_parts, since cuBLAS reads W^T in place as fast and a kept copy would
/// double the weights' memory.
torch::Tensor fused_linear(const torch::Tensor& x, FusedParameter& fused, const std::vector<torch::Tensor>& weights,
                           const torch::Tensor& bias = {});

/// x [..., in] times the weights of `bases` concatenated along their outputs (`fused` keeps the
/// concatenation), plus `bias`, with the LoRA adapters of `adapters` (one per base, null where none)
/// applied while `lora` is enabled: merged into the weights when autograd does not record, added as
/// s B A dropout(x) beside the frozen product when it does (so gradients reach A and B only).
torch::Tensor adapted_linear(const torch::Tensor& x, FusedParameter& fused, const std::vector<torch::Tensor>& bases,
                             const std::vector<LoraAdapter*>& adapters, const LoraState* lora,
                             const torch::Tensor& bias = {});

/// How an RMSNorm applies its weight to a bf16 or fp16 input, rounding as each family's reference
/// code does (in fp32 the three differ only in Gemma's offset).
enum class NormScale {
  weight,          // Llama, Qwen, Mistral: the normalised input rounded to its dtype, then times the weight
  weight_in_fp32,  // OLMo: times the weight in fp32, rounded once at the end
  one_plus_weight, // Gemma: times 1 + weight in fp32, rounded once (the weight is an offset from one)
};

/// The NormScale of `config`'s family.
NormScale norm_scale(const ModelConfig& config);

/// Root-mean-square layer norm, computed in fp32 whatever the input dtype, as the reference does.
/// With NormScale::one_plus_weight (Gemma's) it scales by 1 + weight, and its weight starts at zero.
class RMSNormImpl : public torch::nn::Module {
public:
  RMSNormImpl(std::int64_t dim, double eps, NormScale scale = NormScale::weight);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;

private:
  double eps_;
  NormScale scale_;
};
TORCH_MODULE(RMSNorm);

class AttentionImpl : public torch::nn::Module {
public:
  /// The attention of layer `layer` of `config` (which decides its sliding window).
  AttentionImpl(const ModelConfig& config, std::int64_t layer);

  /// `x` [batch, time, hidden]; `cos`/`sin` [batch, time, head_dim]; `mask` additive, broadcastable to
  /// [batch, heads, time, keys]. With a cache, this block's keys and values are written at
  /// [start, start + time) and attention covers keys [0, start + time); without, keys = the block.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, torch::Tensor* key_cache = nullptr,
                        torch::Tensor* value_cache = nullptr, std::int64_t start = 0);

  /// One decode step for sequences in arbitrary cache slots: `x` [n, 1, hidden] is written at column
  /// `columns[i]` of cache slot `slots[i]` and attends to that slot's columns [0, columns[i]]. `mask`
  /// (decode_mask), if defined, is used instead of the CPU decode kernel.
  torch::Tensor decode(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                       const torch::Tensor& slots, const torch::Tensor& columns, torch::Tensor& key_cache,
                       torch::Tensor& value_cache, const torch::Tensor& mask = {});

  /// Adapts the projections `config` targets (lora.hpp), sharing `state`.
  void add_adapters(const LoraConfig& config, std::shared_ptr<const LoraState> state,
                    std::optional<at::Generator>& generator);

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  // Norms of queries and keys: per head (Qwen3, Gemma 3) or across all heads (OLMo); null otherwise.
  RMSNorm q_norm{nullptr}, k_norm{nullptr};

private:
  // The output projection of the heads' outputs [..., heads * head_dim].
  torch::Tensor project_out(const torch::Tensor& x);
  // q [batch, heads, time, head_dim] and k, v [batch, kv_heads, time, head_dim], rotary applied.
  std::array<torch::Tensor, 3> project(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
  // softmax(scale q k^T + mask) v for q [batch, heads, time, head_dim] and k, v
  // [batch, kv_heads, keys, head_dim]; returns [batch, time, heads * head_dim].
  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& mask) const;

  std::int64_t n_heads_, n_kv_heads_, head_dim_;
  double scale_;                   // of the scores: head_dim^(-1/2), or Gemma's query_pre_attn_scalar^(-1/2)
  double softcap_;                 // Gemma 2's cap of the scores; 0: none
  std::int64_t window_;            // the sliding window of this layer; 0: none
  bool norm_across_heads_ = false; // q_norm and k_norm span all heads (OLMo), not each one
  FusedParameter qkv_weight_, qkv_bias_, o_weight_;
  std::shared_ptr<const LoraState> lora_;
  std::array<std::unique_ptr<LoraAdapter>, 4> adapters_; // q, k, v, o; null where not adapted
};
TORCH_MODULE(Attention);

/// The names a gated MLP's three projections are registered under: gate_proj, up_proj, down_proj,
/// or w1, w3, w2 (Mixtral's experts). Whatever the names, LoRA targets them as gate_proj, up_proj and
/// down_proj.
struct MlpNames {
  const char* gate = "gate_proj";
  const char* up = "up_proj";
  const char* down = "down_proj";
};

/// Mixtral's experts' names for their gate, up and down projections.
inline constexpr MlpNames kMixtralExpertNames{"w1", "w3", "w2"};

class MlpImpl : public torch::nn::Module {
public:
  /// The MLP of `config`, `width` wide (config.intermediate_size when 0).
  explicit MlpImpl(const ModelConfig& config, std::int64_t width = 0, MlpNames names = {});
  torch::Tensor forward(const torch::Tensor& x);

  /// Adapts the projections `config` targets (lora.hpp), sharing `state`.
  void add_adapters(const LoraConfig& config, std::shared_ptr<const LoraState> state,
                    std::optional<at::Generator>& generator);

  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};

private:
  bool gelu_; // GeGLU (Gemma's gelu_pytorch_tanh gate) rather than SwiGLU
  FusedParameter gate_up_weight_, down_weight_;
  std::shared_ptr<const LoraState> lora_;
  std::array<std::unique_ptr<LoraAdapter>, 3> adapters_; // gate, up, down; null where not adapted
};
TORCH_MODULE(Mlp);

/// A mixture of experts in place of the MLP (Qwen2-MoE, Qwen3-MoE, Mixtral, OLMoE): the router
/// (`gate`, hidden -> experts) gives each token a softmax over the experts, the token goes through
/// the num_experts_per_tok most probable, and their outputs are summed weighted by those
/// probabilities (renormalised over the chosen when norm_topk_prob), as transformers computes it.
/// Qwen2-MoE adds a shared expert every token goes through, scaled by sigmoid(shared_expert_gate x).
class SparseMoeImpl : public torch::nn::Module {
public:
  explicit SparseMoeImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);

  /// Adapts the projections `config` targets in every expert (and the shared one), as PEFT does.
  void add_adapters(const LoraConfig& config, std::shared_ptr<const LoraState> state,
                    std::optional<at::Generator>& generator);

  /// The router's logits [tokens, experts] of the last forward that recorded gradients, kept for
  /// the load-balancing loss (router_load_balancing_loss) when the config asks for it; undefined
  /// otherwise. Taking them clears them.
  torch::Tensor take_router_logits();

  /// Keeps `logits` as the last recorded pass's router logits, for take_router_logits: a
  /// checkpointed layer's, which its recomputation in the backward pass differentiates.
  void keep_router_logits(torch::Tensor logits);

  torch::nn::Linear gate{nullptr};
  torch::nn::ModuleList experts{nullptr};
  Mlp shared_expert{nullptr};                    // Qwen2-MoE's; null elsewhere
  torch::nn::Linear shared_expert_gate{nullptr}; // hidden -> 1

private:
  std::int64_t top_k_;
  bool normalise_;
  bool keep_router_logits_;
  std::vector<Mlp> experts_; // `experts`, typed
  torch::Tensor router_logits_;
};
TORCH_MODULE(SparseMoe);

/// The routers' load-balancing loss (Switch Transformer's, as transformers' load_balancing_loss_func
/// computes it) over `router_logits` [tokens, experts], every sparse layer's rows concatenated:
/// experts * sum over choice ranks r and experts e of f_re P_e, where f_re is the share of tokens
/// whose r-th choice is e and P_e the mean probability given to e: top_k when tokens and probability
/// spread evenly over the experts, more as they crowd onto a few. `token_weights` [tokens], if
/// defined, weighs the rows in both means (0: padding, left out, as transformers' attention mask).
torch::Tensor router_load_balancing_loss(const torch::Tensor& router_logits, std::int64_t top_k,
                                         const torch::Tensor& token_weights = {});

class DecoderLayerImpl : public torch::nn::Module {
public:
  DecoderLayerImpl(const ModelConfig& config, std::int64_t layer);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, torch::Tensor* key_cache = nullptr,
                        torch::Tensor* value_cache = nullptr, std::int64_t start = 0);
  torch::Tensor decode(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                       const torch::Tensor& slots, const torch::Tensor& columns, torch::Tensor& key_cache,
                       torch::Tensor& value_cache, const torch::Tensor& mask = {});

  // input_layernorm: the attention's input norm (null in OLMo, whose norms follow the attention and the MLP).
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  // Gemma: post_attention_layernorm normalises the attention's output, these the MLP's input and
  // output; OLMo: post_feedforward_layernorm the MLP's output; null otherwise (post_attention_layernorm
  // is then the MLP's input norm).
  RMSNorm pre_feedforward_layernorm{nullptr}, post_feedforward_layernorm{nullptr};
  Attention self_attn{nullptr};
  // The MLP: a dense one, or a mixture of experts (registered as `mlp`, or Mixtral's
  // `block_sparse_moe`) in the sparse layers of a MoE model; the other is null.
  Mlp mlp{nullptr};
  SparseMoe moe{nullptr};

private:
  double residual_multiplier_; // Granite's scale of each block's output; 1 elsewhere
  // What the attention reads: `x` normalised, or `x` itself (OLMo).
  torch::Tensor attention_input(const torch::Tensor& x);
  // The MLP or the mixture of experts.
  torch::Tensor feed_forward(const torch::Tensor& x);
  // The rest of the layer, given its input `x` and the attention's output.
  torch::Tensor after_attention(const torch::Tensor& x, const torch::Tensor& attended);
};
TORCH_MODULE(DecoderLayer);

/// The stack under the output head: `model.*` in a checkpoint.
class DecoderImpl : public torch::nn::Module {
public:
  explicit DecoderImpl(const ModelConfig& config);

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Decoder);

class TransformerImpl : public torch::nn::Module {
public:
  /// A model with freshly initialised weights (normal(0, 0.02), as Hugging Face initialises them),
  /// drawn from a generator seeded with `seed`, or from LibTorch's default generator without one.
  explicit TransformerImpl(const ModelConfig& config, std::optional<std::uint64_t> seed = std::nullopt);

  /// Logits [batch, time, vocab] for `tokens` [batch, time] (int64). `attention_mask` [batch, time]
  /// marks real tokens with 1 and padding with 0 (padding on the left or right); undefined: none.
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& attention_mask = {});

  /// The final (normed) hidden states [batch, time, hidden] that `forward` projects to logits: what
  /// a value head reads.
  torch::Tensor hidden_states(const torch::Tensor& tokens, const torch::Tensor& attention_mask = {});

  /// The same for tokens placed freely: `positions` [batch, time] are their rotary positions and
  /// `allowed` [batch, time, time] (bool) marks the keys each token attends to (packed rows:
  /// models/packing.hpp).
  torch::Tensor hidden_states(const torch::Tensor& tokens, const torch::Tensor& positions,
                              const torch::Tensor& allowed);

  /// An empty cache for `batch` rows of up to `capacity` positions, in the model's dtype and device.
  KVCache make_cache(std::int64_t batch, std::int64_t capacity) const;

  /// Prefill: runs `tokens` [batch, time] at rotary `positions` [batch, time] as cache columns
  /// [start, start + time), attending to every earlier column whose `key_valid` [batch, capacity]
  /// entry is true (and causally within the block). Returns the logits [batch, vocab] of one position
  /// per row: `last[row]` within the block (int64 [batch]), or the block's last position if undefined.
  torch::Tensor forward_cached(const torch::Tensor& tokens, const torch::Tensor& positions,
                               const torch::Tensor& key_valid, KVCache& cache, std::int64_t start,
                               const torch::Tensor& last = {});

  /// One decode step for `n` sequences in arbitrary slots of `cache`: token `tokens[i]` is written at
  /// column `columns[i]` of slot `slots[i]`, which is also its position (a slot holds its sequence from
  /// column 0, without padding), and attends to that slot's columns [0, columns[i]]. Returns the
  /// logits [n, vocab].
  torch::Tensor decode(const torch::Tensor& tokens, const torch::Tensor& slots, const torch::Tensor& columns,
                       KVCache& cache);

  const ModelConfig& config() const noexcept {
    return config_;
  }

  /// Where the weights are: inputs go there, results come from there.
  torch::Device device() const {
    return model->embed_tokens->weight.device();
  }

  /// The weight of the output projection (the embedding matrix when tied).
  torch::Tensor output_weight() const;

  /// Logits [..., vocab] of final hidden states [..., hidden] (what `hidden_states` returns).
  /// @throws std::invalid_argument for a scoring model, which has no language-model head.
  torch::Tensor logits(const torch::Tensor& hidden);

  /// A scoring model (config().num_labels == 1): the score head's output [...] (fp32) for final
  /// hidden states [..., hidden]. A sequence's score is the one at its last token.
  torch::Tensor scores(const torch::Tensor& hidden);

  /// Adds LoRA adapters to the projections `config` targets and freezes every other parameter (they
  /// stop requiring gradients) but those of config.modules_to_save (and a scoring model's `score`
  /// head, which is new): from then on only they train. A is drawn from `seed` (LibTorch's
  /// default generator without one), B is zero, so the model computes as before.
  /// @throws std::invalid_argument for a bad config (check_lora_config) or a model that has adapters.
  void add_adapters(const LoraConfig& config, std::optional<std::uint64_t> seed = std::nullopt);

  /// The adapters' config, if the model has adapters.
  const std::optional<LoraConfig>& lora_config() const noexcept {
    return lora_config_;
  }

  /// Whether the adapters apply. Off, the model computes as its base (the reference of a KL penalty
  /// or of DPO, without a second copy of the weights).
  bool adapters_enabled() const noexcept {
    return lora_ && lora_->enabled;
  }
  void set_adapters_enabled(bool enabled);

  /// The adapters' parameters, by name (`model.layers.0.self_attn.q_proj.lora_A.weight`, ...), then
  /// those of the modules trained in full beside them (LoraConfig::modules_to_save), in
  /// named_parameters() order: everything an adapted model trains; empty without adapters.
  std::vector<std::pair<std::string, torch::Tensor>> adapter_parameters() const;

  /// Whether parameter `name` is one of a LoRA adapter's A and B matrices.
  static bool is_lora_parameter(const std::string& name);

  /// The base's values of the modules trained in full beside the adapters, in adapter_parameters()
  /// order after the adapters' own (empty without modules_to_save): what the base computes with.
  const std::vector<torch::Tensor>& saved_module_bases() const noexcept {
    return saved_module_bases_;
  }

  /// A mixture of experts trained with config().output_router_logits: router_aux_loss_coef times the
  /// routers' load-balancing loss over the real tokens of the last forward pass that recorded
  /// gradients (padding left out: attention_mask's zeros, or in rows of placed tokens those that
  /// attend to nothing but themselves past the first column),
  /// which optimizer_step adds to each micro-batch's loss; undefined otherwise (and once taken, until
  /// the next such pass).
  torch::Tensor router_loss();

  /// Gradient checkpointing: while autograd records, each decoder layer keeps only its input and
  /// runs again in the backward pass (models/checkpointing.hpp), so a training pass holds one
  /// layer's activations at a time instead of all of them, for about a third more compute. Off by
  /// default; gradients are the same either way.
  void set_gradient_checkpointing(bool on) noexcept {
    gradient_checkpointing_ = on;
  }
  bool gradient_checkpointing() const noexcept {
    return gradient_checkpointing_;
  }

  /// Whether this is a scoring model (a `score` head instead of a language-model head).
  bool is_scoring() const noexcept {
    return config_.num_labels > 0;
  }

  Decoder model{nullptr};
  torch::nn::Linear lm_head{nullptr}; // null when tie_word_embeddings, or for a scoring model
  torch::nn::Linear score{nullptr};   // a scoring model's head: hidden -> num_labels, no bias

private:
  // cos and sin of the rotary angles for `positions` [batch, time], [batch, time, rotary_dim] in
  // `dtype`: the sliding layers' own (Gemma 3's rope_local_base_freq) when `local`.
  std::pair<torch::Tensor, torch::Tensor> rotary(const torch::Tensor& positions, torch::ScalarType dtype,
                                                 bool local = false) const;
  // The embeddings of `tokens`, scaled by sqrt(hidden_size) for Gemma.
  torch::Tensor embed(const torch::Tensor& tokens);
  // Runs the layers over `x` with each layer's rotary embedding and mask: the sliding layers' mask
  // `local_mask` (when the model has such layers) and their own rotary angles (when it has them).
  template <class Layer>
  torch::Tensor run_layers(torch::Tensor x, const torch::Tensor& positions, const torch::Tensor& mask,
                           const torch::Tensor& local_mask, Layer&& layer);

  // Whether this pass keeps what router_loss() needs.
  bool keeps_router_logits() const;
  // Layer `layer` on `x` as DecoderLayerImpl::forward, checkpointed.
  torch::Tensor checkpointed_layer(std::int64_t layer, const torch::Tensor& x, const torch::Tensor& cos,
                                   const torch::Tensor& sin, const torch::Tensor& mask);

  ModelConfig config_;
  bool gradient_checkpointing_ = false;
  torch::Tensor router_token_mask_; // [tokens] of the last recorded pass: 1 real, 0 padding
  std::optional<LoraConfig> lora_config_;
  std::shared_ptr<LoraState> lora_;
  std::vector<torch::Tensor> saved_module_bases_;
  mutable torch::Tensor inv_freq_;       // rotary frequencies, [rotary_dim / 2], not a parameter
  mutable torch::Tensor local_inv_freq_; // the sliding layers' own, if they have them
  mutable torch::Tensor long_inv_freq_;  // LongRoPE's for positions from long_from_ on
  std::int64_t long_from_ = 0;
  double rotary_scale_ = 1.0; // cos and sin multiplied by it (YaRN, LongRoPE)
  FusedParameter output_weight_t_;
};
TORCH_MODULE(Transformer);

} // namespace chorus::models
