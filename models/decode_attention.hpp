// Decode attention: one new token per sequence attending over its slot of a preallocated KV cache,
// as a single fused CPU kernel. At decode time the products are tiny (a group of query heads times a
// few hundred keys per sequence) and LibTorch would run them as a loop of small matrix products with
// a mask and a softmax between them: per-op overhead, not arithmetic, is the cost there. Plain loops
// over the cache do the same arithmetic in one pass, and read each sequence's own slot and length
// directly, which a continuous batch (sequences of different lengths in arbitrary slots) needs.
#pragma once

#include <torch/torch.h>

namespace chorus::models {

/// Whether `decode_attention` handles these tensors: fp32 or bf16 on the CPU, contiguous caches.
bool decode_attention_supported(const torch::Tensor& query, const torch::Tensor& key_cache);

/// `query` [n, heads, head_dim] (after the rotary embedding); `key_cache`/`value_cache`
/// [slots, kv_heads, capacity, head_dim]; sequence i lives in cache slot `slots[i]` and attends to its
/// first `lengths[i]` columns (int64 tensors [n]). Query head h reads key/value head
/// h / (heads / kv_heads). Returns softmax(scale q k^T) v as [n, heads * head_dim], with scores and
/// softmax in fp32 whatever the cache dtype; `scale` 0 is head_dim^(-1/2). With `window` > 0, only
/// the last `window` of a sequence's columns are attended (sliding-window attention). With
/// `new_keys`/`new_values` [n, kv_heads, head_dim], sequence i's are first written into its column
/// lengths[i] - 1 (this step's token).
torch::Tensor decode_attention(const torch::Tensor& query, const torch::Tensor& key_cache,
                               const torch::Tensor& value_cache, const torch::Tensor& slots,
                               const torch::Tensor& lengths, const torch::Tensor& new_keys = {},
                               const torch::Tensor& new_values = {}, double scale = 0, std::int64_t window = 0);

} // namespace chorus::models
