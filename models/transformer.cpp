// The forward pass, written to match the Hugging Face reference numerically: norms and softmax in
// fp32, rotary embeddings on two halves of each head (rotate_half), grouped-query attention. The
// element-wise steps run as the fused kernels of fused_ops.hpp.
#include "models/transformer.hpp"

#include "models/checkpointing.hpp"
#include "models/decode_attention.hpp"
#include "models/fused_ops.hpp"
#include "models/rotary.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <malloc.h>

namespace chorus::models {

namespace F = torch::nn::functional;

namespace {

// Activations of a forward pass are large (a batch's attention scores alone can be 100 MB), and
// glibc serves every allocation over 32 MB with a fresh mmap and returns it on free, so each pass
// faulted its memory in again: a third of an RL loop's time went to the kernel zeroing pages. Keeping
// freed memory in one heap makes later passes reuse it (measured on an RL loop: 1.6x faster, kernel
// time 48 s -> 4 s). The cost: the process keeps its peak heap size, as a training process does anyway.
void keep_freed_memory() {
  mallopt(M_ARENA_MAX, 1); // thread arenas cannot hold such blocks and give theirs back eagerly
  mallopt(M_MMAP_MAX, 0);  // large blocks come from the heap too
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_TOP_PAD, 256 << 20);
}

// Before main: arenas taken by threads before the setting would stay in use.
[[maybe_unused]] const bool kFreedMemoryKept = (keep_freed_memory(), true);

torch::nn::Linear linear(std::int64_t in, std::int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

} // namespace

// -- FusedParameter -----------------------------------------------------------

torch::Tensor FusedParameter::get(const std::vector<torch::Tensor>& parts) {
  return cached(parts, false);
}

torch::Tensor FusedParameter::transposed(const std::vector<torch::Tensor>& parts) {
  return cached(parts, true);
}

torch::Tensor FusedParameter::cached(const std::vector<torch::Tensor>& parts, bool transpose) {
  auto joined = [&] { return parts.size() == 1 ? parts.front() : torch::cat(parts); };
  bool recorded = torch::GradMode::is_enabled()
    && std::any_of(parts.begin(), parts.end(), [](const torch::Tensor& part) { return part.requires_grad(); });
  if (recorded)
    return transpose ? joined().t() : joined();
  bool fresh = value_.defined() && sources_.size() == parts.size();
  for (std::size_t i = 0; fresh && i < parts.size(); ++i)
    fresh = sources_[i].first == parts[i].data_ptr() && sources_[i].second == parts[i]._version();
  if (!fresh) {
    // A normal tensor even when made in inference mode: a later pass that records gradients may
    // multiply by it (a LoRA model's frozen weights stay fused while its adapters train).
    c10::InferenceMode normal_tensor(false);
    value_ = transpose ? joined().t().contiguous() : joined();
    sources_.clear();
    for (const auto& part : parts)
      sources_.emplace_back(part.data_ptr(), part._version());
  }
  return value_;
}

torch::Tensor linear_transposed(const torch::Tensor& x, const torch::Tensor& weight_t, const torch::Tensor& bias) {
  auto rows = x.reshape({-1, x.size(-1)});
  auto out = bias.defined() ? torch::addmm(bias, rows, weight_t) : torch::mm(rows, weight_t);
  auto sizes = x.sizes().vec();
  sizes.back() = weight_t.size(1);
  return out.view(sizes);
}

torch::Tensor linear_parts(const torch::Tensor& x, const std::vector<torch::Tensor>& weights,
                           const torch::Tensor& bias) {
  std::vector<torch::Tensor> outputs;
  for (const auto& weight : weights)
    outputs.push_back(torch::matmul(x, weight.t()));
  auto out = outputs.size() == 1 ? outputs.front() : torch::cat(outputs, -1);
  return bias.defined() ? out + bias : out;
}

torch::Tensor fused_linear(const torch::Tensor& x, FusedParameter& fused, const std::vector<torch::Tensor>& weights,
                           const torch::Tensor& bias) {
  if (!x.device().is_cpu())
    return linear_parts(x, weights, bias);
  return linear_transposed(x, fused.transposed(weights), bias);
}

// -- RMSNorm ------------------------------------------------------------------

NormScale norm_scale(const ModelConfig& config) {
  return config.gemma() ? NormScale::one_plus_weight : config.olmo() ? NormScale::weight_in_fp32 : NormScale::weight;
}

RMSNormImpl::RMSNormImpl(std::int64_t dim, double eps, NormScale scale) : eps_(eps), scale_(scale) {
  weight = register_parameter("weight", scale == NormScale::one_plus_weight ? torch::zeros({dim}) : torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  bool offset = scale_ == NormScale::one_plus_weight;
  if (scale_ == NormScale::weight || x.scalar_type() == torch::kFloat32)
    return rms_norm(x, offset ? weight + 1 : weight, eps_);
  // Gemma and OLMo multiply by the weight in fp32 and round once, at the end.
  auto x32 = x.to(torch::kFloat32);
  auto weight32 = offset ? weight.to(torch::kFloat32) + 1 : weight.to(torch::kFloat32);
  return (x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps_) * weight32).to(x.scalar_type());
}

// -- attention ----------------------------------------------------------------

AttentionImpl::AttentionImpl(const ModelConfig& config, std::int64_t layer)
  : n_heads_(config.num_attention_heads), n_kv_heads_(config.num_key_value_heads), head_dim_(config.head_dim),
    scale_(config.attention_scale()), softcap_(config.attn_logit_softcapping),
    window_(config.sliding(layer) ? config.sliding_window : 0) {
  q_proj = register_module("q_proj", linear(config.hidden_size, n_heads_ * head_dim_, config.attention_bias));
  k_proj = register_module("k_proj", linear(config.hidden_size, n_kv_heads_ * head_dim_, config.attention_bias));
  v_proj = register_module("v_proj", linear(config.hidden_size, n_kv_heads_ * head_dim_, config.attention_bias));
  o_proj = register_module("o_proj", linear(n_heads_ * head_dim_, config.hidden_size, false));
  if (config.qk_norm()) {
    q_norm = register_module("q_norm", RMSNorm(head_dim_, config.rms_norm_eps, norm_scale(config)));
    k_norm = register_module("k_norm", RMSNorm(head_dim_, config.rms_norm_eps, norm_scale(config)));
  } else if (config.qk_norm_across_heads()) {
    q_norm = register_module("q_norm", RMSNorm(n_heads_ * head_dim_, config.rms_norm_eps, norm_scale(config)));
    k_norm = register_module("k_norm", RMSNorm(n_kv_heads_ * head_dim_, config.rms_norm_eps, norm_scale(config)));
    norm_across_heads_ = true;
  }
}

std::array<torch::Tensor, 3> AttentionImpl::project(const torch::Tensor& x, const torch::Tensor& cos,
                                                    const torch::Tensor& sin) {
  // Few, large ops: per-op dispatch, not arithmetic, dominates a small model on a CPU. q, k and v
  // come from one matrix product and the rotary embedding turns q and k in one pass.
  auto batch = x.size(0), time = x.size(1);
  auto bias = q_proj->bias.defined() ? qkv_bias_.get({q_proj->bias, k_proj->bias, v_proj->bias}) : torch::Tensor();
  auto qkv = adapted_linear(x, qkv_weight_, {q_proj->weight, k_proj->weight, v_proj->weight},
                            {adapters_[0].get(), adapters_[1].get(), adapters_[2].get()}, lora_.get(), bias);
  if (norm_across_heads_) { // OLMo: all query heads normalised as one vector, all key heads too
    auto q_width = n_heads_ * head_dim_, kv_width = n_kv_heads_ * head_dim_;
    qkv = torch::cat({q_norm(qkv.narrow(-1, 0, q_width)), k_norm(qkv.narrow(-1, q_width, kv_width)),
                      qkv.narrow(-1, q_width + kv_width, kv_width)},
                     -1);
  }
  qkv = qkv.view({batch, time, n_heads_ + 2 * n_kv_heads_, head_dim_});
  if (q_norm && !norm_across_heads_) // Qwen3, Gemma 3: each query and key head normalised before the rotation
    qkv = torch::cat({q_norm(qkv.narrow(2, 0, n_heads_)), k_norm(qkv.narrow(2, n_heads_, n_kv_heads_)),
                      qkv.narrow(2, n_heads_ + n_kv_heads_, n_kv_heads_)},
                     2);
  return split_heads_rotary(qkv, n_heads_, n_kv_heads_, cos, sin);
}

torch::Tensor AttentionImpl::attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                    const torch::Tensor& mask) const {
  auto batch = q.size(0), time = q.size(2);
  auto keys = k.size(2);
  auto group = n_heads_ / n_kv_heads_;
#if TORCH_VERSION_MAJOR >= 2
  // Off the CPU, LibTorch 2's fused attention (memory-efficient kernels on CUDA) never materialises
  // the scores (it cannot cap them: Gemma 2 takes the path below). Query head h = j * group + g reads
  // key/value head j, as repeat_interleave lays them out.
  if (!q.device().is_cpu() && softcap_ == 0) {
    auto expand = [&](const torch::Tensor& t) { return group == 1 ? t : t.repeat_interleave(group, 1); };
    // The fused kernel scales by head_dim^(-1/2): another scale goes into the queries.
    auto default_scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
    auto query = scale_ == default_scale ? q : q * (scale_ / default_scale);
    auto out = at::scaled_dot_product_attention(query, expand(k), expand(v), mask.to(q.scalar_type()));
    return out.transpose(1, 2).reshape({batch, time, n_heads_ * head_dim_});
  }
#endif
  // Grouped-query attention multiplies each key/value head with its group of query heads directly,
  // never materialising repeated keys and values: query head h = j * group + g reads head j.
  auto grouped = q.reshape({batch, n_kv_heads_, group * time, head_dim_});
  auto scores = torch::matmul(grouped, k.transpose(-2, -1)).view({batch, n_kv_heads_, group, time, keys});
  // Gemma 2 caps the scaled scores at +-softcap smoothly, before the mask.
  auto probs = softcap_ > 0 ? masked_softmax(torch::tanh(scores * (scale_ / softcap_)) * softcap_, mask, 1.0)
                            : masked_softmax(scores, mask, scale_);
  auto out = torch::matmul(probs.view({batch, n_kv_heads_, group * time, keys}), v);
  out = out.view({batch, n_heads_, time, head_dim_}).transpose(1, 2).reshape({batch, time, n_heads_ * head_dim_});
  return out;
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                     const torch::Tensor& mask, torch::Tensor* key_cache, torch::Tensor* value_cache,
                                     std::int64_t start) {
  auto time = x.size(1);
  auto [q, k, v] = project(x, cos, sin);
  if (key_cache) {
    key_cache->narrow(2, start, time).copy_(k);
    value_cache->narrow(2, start, time).copy_(v);
    k = key_cache->narrow(2, 0, start + time);
    v = value_cache->narrow(2, 0, start + time);
  }
  return project_out(attend(q, k, v, mask));
}

torch::Tensor AttentionImpl::project_out(const torch::Tensor& x) {
  return adapted_linear(x, o_weight_, {o_proj->weight}, {adapters_[3].get()}, lora_.get());
}

torch::Tensor AttentionImpl::decode(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                    const torch::Tensor& slots, const torch::Tensor& columns, torch::Tensor& key_cache,
                                    torch::Tensor& value_cache, const torch::Tensor& mask) {
  using torch::indexing::Slice;
  auto [q, k, v] = project(x, cos, sin);
  if (!mask.defined() && softcap_ == 0 && decode_attention_supported(q, key_cache))
    return project_out(decode_attention(q.squeeze(2), key_cache, value_cache, slots, columns + 1, k.squeeze(2),
                                        v.squeeze(2), scale_, window_)
                         .unsqueeze(1));
  key_cache.index_put_({slots, Slice(), columns}, k.squeeze(2));
  value_cache.index_put_({slots, Slice(), columns}, v.squeeze(2));
  // Elsewhere (a GPU): gather the sequences' slots and mask the columns past each one's length (and
  // those before the window).
  auto columns_mask = mask;
  if (!columns_mask.defined()) {
    columns_mask = decode_mask(columns, q.scalar_type());
    if (window_ > 0)
      columns_mask = window_mask(columns_mask, columns, window_);
  }
  auto longest = columns_mask.size(-1);
  auto keys = key_cache.index_select(0, slots).narrow(2, 0, longest);
  auto values = value_cache.index_select(0, slots).narrow(2, 0, longest);
  return project_out(attend(q, keys, values, columns_mask));
}

// -- MLP ----------------------------------------------------------------------

MlpImpl::MlpImpl(const ModelConfig& config, std::int64_t width, MlpNames names)
  : gelu_(config.hidden_activation == "gelu_pytorch_tanh") {
  if (width == 0)
    width = config.intermediate_size;
  gate_proj = register_module(names.gate, linear(config.hidden_size, width, false));
  up_proj = register_module(names.up, linear(config.hidden_size, width, false));
  down_proj = register_module(names.down, linear(width, config.hidden_size, false));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  // The gate and up projections as one matrix product.
  auto gate_up = adapted_linear(x, gate_up_weight_, {gate_proj->weight, up_proj->weight},
                                {adapters_[0].get(), adapters_[1].get()}, lora_.get());
  torch::Tensor gated;
  if (gelu_) { // GeGLU, as LibTorch ops: Gemma's gate, gelu with the tanh approximation
    auto n = gate_up.size(-1) / 2;
    gated = torch::gelu(gate_up.narrow(-1, 0, n), "tanh") * gate_up.narrow(-1, n, n);
  } else {
    gated = swiglu(gate_up);
  }
  return adapted_linear(gated, down_weight_, {down_proj->weight}, {adapters_[2].get()}, lora_.get());
}

// -- layers -------------------------------------------------------------------

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& config, std::int64_t layer)
  : residual_multiplier_(config.residual_multiplier) {
  auto norm = [&] { return RMSNorm(config.hidden_size, config.rms_norm_eps, norm_scale(config)); };
  if (!config.olmo())
    input_layernorm = register_module("input_layernorm", norm());
  self_attn = register_module("self_attn", Attention(config, layer));
  post_attention_layernorm = register_module("post_attention_layernorm", norm());
  if (config.sparse(layer))
    moe = register_module(config.model_type == "mixtral" ? "block_sparse_moe" : "mlp", SparseMoe(config));
  else
    mlp = register_module("mlp", Mlp(config));
  if (config.gemma())
    pre_feedforward_layernorm = register_module("pre_feedforward_layernorm", norm());
  if (config.gemma() || config.olmo())
    post_feedforward_layernorm = register_module("post_feedforward_layernorm", norm());
}

torch::Tensor DecoderLayerImpl::attention_input(const torch::Tensor& x) {
  return input_layernorm ? input_layernorm(x) : x;
}

torch::Tensor DecoderLayerImpl::feed_forward(const torch::Tensor& x) {
  return moe ? moe(x) : mlp(x);
}

torch::Tensor DecoderLayerImpl::after_attention(const torch::Tensor& x, const torch::Tensor& attended) {
  if (!input_layernorm) { // OLMo: the outputs of the attention and the MLP normalised, not their inputs
    auto h = x + post_attention_layernorm(attended);
    return h + post_feedforward_layernorm(feed_forward(h));
  }
  if (residual_multiplier_ != 1) { // Granite: each block's output scaled before the residual sum
    auto h = x + attended * residual_multiplier_;
    return h + feed_forward(post_attention_layernorm(h)) * residual_multiplier_;
  }
  if (!pre_feedforward_layernorm) {
    auto h = x + attended;
    return h + feed_forward(post_attention_layernorm(h));
  }
  auto h = x + post_attention_layernorm(attended);
  return h + post_feedforward_layernorm(feed_forward(pre_feedforward_layernorm(h)));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                        const torch::Tensor& mask, torch::Tensor* key_cache, torch::Tensor* value_cache,
                                        std::int64_t start) {
  return after_attention(x, self_attn->forward(attention_input(x), cos, sin, mask, key_cache, value_cache, start));
}

torch::Tensor DecoderLayerImpl::decode(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                       const torch::Tensor& slots, const torch::Tensor& columns,
                                       torch::Tensor& key_cache, torch::Tensor& value_cache,
                                       const torch::Tensor& mask) {
  return after_attention(x,
                         self_attn->decode(attention_input(x), cos, sin, slots, columns, key_cache, value_cache, mask));
}

DecoderImpl::DecoderImpl(const ModelConfig& config) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(config.vocab_size, config.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < config.num_hidden_layers; ++i)
    layers->push_back(DecoderLayer(config, i));
  norm = register_module("norm", RMSNorm(config.hidden_size, config.rms_norm_eps, norm_scale(config)));
}

// -- the model ----------------------------------------------------------------

TransformerImpl::TransformerImpl(const ModelConfig& config, std::optional<std::uint64_t> seed) : config_(config) {
  model = register_module("model", Decoder(config));
  // As transformers lays the two kinds out: `...ForSequenceClassification` has a score head and no
  // lm_head. Registered after the body, so a seed draws the same body for both.
  if (config.num_labels > 0)
    score = register_module("score", linear(config.hidden_size, config.num_labels, false));
  else if (!config.tie_word_embeddings)
    lm_head = register_module("lm_head", linear(config.hidden_size, config.vocab_size, false));
  auto frequencies = rotary_frequencies(config);
  inv_freq_ = frequencies.inv_freq;
  long_inv_freq_ = frequencies.long_inv_freq;
  long_from_ = frequencies.long_from;
  rotary_scale_ = frequencies.attention_factor;
  if (config.rope_local_base_freq > 0) { // Gemma 3's sliding layers: their own base, no scaling
    auto local = config;
    local.rope_theta = config.rope_local_base_freq;
    local.rope_scaling = RopeScaling{};
    local_inv_freq_ = rotary_frequencies(local).inv_freq;
  }
  torch::NoGradGuard no_grad;
  // A seeded model draws from a generator of its own: LibTorch's default generator is shared by
  // every thread, and two actors initialising models at once would interleave their draws.
  c10::optional<at::Generator> generator;
  if (seed)
    generator = at::detail::createCPUGenerator(*seed);
  for (auto& parameter : named_parameters()) {
    const auto& name = parameter.key();
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0)
      parameter.value().zero_();
    else if (name.find("norm") != std::string::npos)
      parameter.value().fill_(config.gemma() ? 0.0 : 1.0); // Gemma's norms scale by 1 + weight
    else
      parameter.value().normal_(0.0, 0.02, generator);
  }
}

torch::Tensor TransformerImpl::output_weight() const {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& tokens, const torch::Tensor& attention_mask) {
  return logits(hidden_states(tokens, attention_mask));
}

torch::Tensor TransformerImpl::logits(const torch::Tensor& hidden) {
  if (score)
    throw std::invalid_argument("a scoring model has no language-model head: it scores sequences, it does not "
                                "generate or give log-probabilities");
  auto logits = fused_linear(hidden, output_weight_t_, {output_weight()});
  if (auto cap = config_.final_logit_softcapping; cap > 0) // Gemma 2
    return torch::tanh(logits / cap) * cap;
  if (config_.logits_scaling != 1) // Granite
    return logits / config_.logits_scaling;
  return logits;
}

torch::Tensor TransformerImpl::scores(const torch::Tensor& hidden) {
  if (!score)
    throw std::invalid_argument("a language model has no score head: spawn a scoring model to score");
  return score(hidden).to(torch::kFloat32).squeeze(-1);
}

torch::Tensor TransformerImpl::hidden_states(const torch::Tensor& tokens, const torch::Tensor& attention_mask) {
  auto batch = tokens.size(0), time = tokens.size(1);
  auto device = tokens.device();
  torch::Tensor positions;
  auto causal = torch::ones({time, time}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril();
  torch::Tensor allowed = causal.unsqueeze(0).expand({batch, time, time});
  if (attention_mask.defined()) {
    // Positions count real tokens only, so left padding does not shift the rotary phases.
    auto real = attention_mask.to(torch::kInt64);
    positions = (real.cumsum(1) - 1).clamp_min(0);
    allowed = allowed & real.to(torch::kBool).unsqueeze(1);
    // A padding row attends to itself only, so its softmax stays finite (its output is ignored).
    allowed = allowed | torch::eye(time, torch::TensorOptions().dtype(torch::kBool).device(device)).unsqueeze(0);
  } else {
    positions = torch::arange(time, torch::TensorOptions().dtype(torch::kInt64).device(device)).expand({batch, time});
  }
  auto hidden = hidden_states(tokens, positions, allowed);
  if (keeps_router_logits())
    router_token_mask_ = attention_mask.defined() ? attention_mask.reshape(-1) : torch::Tensor();
  return hidden;
}

torch::Tensor TransformerImpl::hidden_states(const torch::Tensor& tokens, const torch::Tensor& positions,
                                             const torch::Tensor& allowed) {
  if (keeps_router_logits()) { // padding attends to itself alone; past the first column, real tokens to more
    auto first = torch::zeros({allowed.size(-1)}, allowed.options());
    first[0] = true;
    router_token_mask_ = (allowed.sum(-1) > 1).logical_or(first).reshape(-1);
  }
  auto x = embed(tokens);
  auto dtype = x.scalar_type();
  auto mask = additive_mask(allowed, dtype);
  torch::Tensor local_mask;
  // The window by positions, not columns: packed completions after a shared prompt sit further
  // from it in the row than in their sequences.
  if (config_.sliding_window > 0)
    local_mask =
      additive_mask(allowed & ((positions.unsqueeze(2) - positions.unsqueeze(1)) < config_.sliding_window), dtype);
  const bool checkpointing = gradient_checkpointing_ && torch::GradMode::is_enabled();
  x = run_layers(x, positions, mask, local_mask,
                 [&](std::int64_t i, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                     const torch::Tensor& mask) {
                   return checkpointing ? checkpointed_layer(i, x, cos, sin, mask)
                                        : model->layers[i]->as<DecoderLayer>()->forward(x, cos, sin, mask);
                 });
  return model->norm(x);
}

torch::Tensor TransformerImpl::checkpointed_layer(std::int64_t i, const torch::Tensor& x, const torch::Tensor& cos,
                                                  const torch::Tensor& sin, const torch::Tensor& mask) {
  auto* layer = model->layers[i]->as<DecoderLayer>();
  std::vector<torch::Tensor> trained;
  for (const auto& parameter : layer->parameters())
    if (parameter.requires_grad())
      trained.push_back(parameter);
  // A mixture of experts' router logits leave the layer as a second output, so that the
  // load-balancing loss's gradient reaches the recomputed router; what the layer kept before (a
  // later pass's logits, not yet taken, when this runs again in the backward pass) is put back.
  auto outputs = checkpointed(
    [layer, cos, sin, mask](const torch::Tensor& input) {
      auto kept = layer->moe ? layer->moe->take_router_logits() : torch::Tensor();
      std::vector<torch::Tensor> outputs{layer->forward(input, cos, sin, mask)};
      if (layer->moe) {
        if (auto logits = layer->moe->take_router_logits(); logits.defined())
          outputs.push_back(logits);
        if (kept.defined())
          layer->moe->keep_router_logits(kept);
      }
      return outputs;
    },
    x, trained);
  if (outputs.size() > 1)
    layer->moe->keep_router_logits(outputs[1]);
  return outputs.front();
}

torch::Tensor TransformerImpl::embed(const torch::Tensor& tokens) {
  auto x = embedding_rows(model->embed_tokens->weight, tokens);
  if (config_.embedding_multiplier != 1) // Granite
    return x * config_.embedding_multiplier;
  if (!config_.gemma())
    return x;
  // The factor rounded to the weights' dtype first, as Gemma's reference does.
  return x * torch::scalar_tensor(std::sqrt(static_cast<double>(config_.hidden_size)), x.options());
}

template <class Layer>
torch::Tensor TransformerImpl::run_layers(torch::Tensor x, const torch::Tensor& positions, const torch::Tensor& mask,
                                          const torch::Tensor& local_mask, Layer&& layer) {
  auto [cos, sin] = rotary(positions, x.scalar_type());
  auto local_cos = cos, local_sin = sin;
  if (local_inv_freq_.defined())
    std::tie(local_cos, local_sin) = rotary(positions, x.scalar_type(), /*local=*/true);
  torch::Tensor still_cos, still_sin; // SmolLM3's NoPE layers turn by nothing: cos 1, sin 0, exactly
  if (!config_.nope_layers.empty()) {
    still_cos = torch::ones_like(cos);
    still_sin = torch::zeros_like(sin);
  }
  for (std::int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    bool sliding = config_.sliding(i), still = config_.nope(i);
    x = layer(i, x,
              still       ? still_cos
                : sliding ? local_cos
                          : cos,
              still       ? still_sin
                : sliding ? local_sin
                          : sin,
              sliding && local_mask.defined() ? local_mask : mask);
  }
  return x;
}

std::pair<torch::Tensor, torch::Tensor> TransformerImpl::rotary(const torch::Tensor& positions, torch::ScalarType dtype,
                                                                bool local) const {
  // LongRoPE turns the whole call by its long frequencies once any position reaches the pre-training
  // context, as transformers' forward and vLLM do; keys cached before then keep their short angles
  // (vLLM's choice; transformers' generate recomputes them).
  bool long_context =
    !local && long_inv_freq_.defined() && positions.numel() > 0 && positions.max().item<std::int64_t>() >= long_from_;
  auto& inv_freq = local ? local_inv_freq_ : long_context ? long_inv_freq_ : inv_freq_;
  if (inv_freq.device() != positions.device()) // kept in fp32 on the model's device, whatever its dtype
    inv_freq = inv_freq.to(positions.device());
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq;
  auto emb = torch::cat({freqs, freqs}, -1);
  if (rotary_scale_ != 1.0 && !local)
    return {(emb.cos() * rotary_scale_).to(dtype), (emb.sin() * rotary_scale_).to(dtype)};
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

KVCache TransformerImpl::make_cache(std::int64_t batch, std::int64_t capacity) const {
  auto weight = model->embed_tokens->weight;
  auto options = torch::TensorOptions().dtype(weight.scalar_type()).device(weight.device());
  KVCache cache;
  for (std::int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    cache.keys.push_back(torch::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, options));
    cache.values.push_back(torch::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, options));
  }
  return cache;
}

torch::Tensor TransformerImpl::forward_cached(const torch::Tensor& tokens, const torch::Tensor& positions,
                                              const torch::Tensor& key_valid, KVCache& cache, std::int64_t start,
                                              const torch::Tensor& last) {
  auto batch = tokens.size(0), time = tokens.size(1);
  auto device = tokens.device();
  auto x = embed(tokens);
  auto dtype = x.scalar_type();
  auto allowed = block_mask(key_valid, time, start);
  auto mask = additive_mask(allowed, dtype);
  torch::Tensor local_mask;
  if (config_.sliding_window > 0)
    local_mask = additive_mask(
      allowed & within_window(time, start + time, start, config_.sliding_window, device).unsqueeze(0), dtype);
  x = run_layers(x, positions, mask, local_mask,
                 [&](std::int64_t i, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                     const torch::Tensor& mask) {
                   auto index = static_cast<std::size_t>(i);
                   return model->layers[i]->as<DecoderLayer>()->forward(x, cos, sin, mask, &cache.keys[index],
                                                                        &cache.values[index], start);
                 });
  auto rows = torch::arange(batch, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto picked = last.defined() ? x.index({rows, last}) : x.select(1, time - 1);
  return logits(model->norm(picked));
}

torch::Tensor TransformerImpl::decode(const torch::Tensor& tokens, const torch::Tensor& slots,
                                      const torch::Tensor& columns, KVCache& cache) {
  auto x = embed(tokens).unsqueeze(1);
  // Off the CPU every layer masks the same columns: made once per step, not once per layer (on the
  // CPU the decode kernel reads each sequence's columns, and its window, itself; it does not cap
  // scores, so Gemma 2 takes the masked path there too).
  torch::Tensor mask, local_mask;
  if (!tokens.device().is_cpu() || config_.attn_logit_softcapping > 0) {
    mask = decode_mask(columns, x.scalar_type());
    if (config_.sliding_window > 0)
      local_mask = window_mask(mask, columns, config_.sliding_window);
  }
  x = run_layers(x, columns.unsqueeze(1), mask, local_mask,
                 [&](std::int64_t i, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                     const torch::Tensor& mask) {
                   auto index = static_cast<std::size_t>(i);
                   return model->layers[i]->as<DecoderLayer>()->decode(x, cos, sin, slots, columns, cache.keys[index],
                                                                       cache.values[index], mask);
                 });
  return logits(model->norm(x.squeeze(1)));
}

} // namespace chorus::models
