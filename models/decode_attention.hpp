// Decode attention: one new token per row attending over a preallocated KV cache, as a single fused
// CPU kernel. At decode time the products are tiny (a group of query heads times a few hundred keys
// per row and head) and LibTorch runs them as a loop of small matrix products with a softmax and mask
// between them; per-op overhead, not arithmetic, is the cost. Plain loops over the cache do the same
// arithmetic in one pass.
#pragma once

#include <torch/torch.h>

namespace chorus::models {

/// Whether `decode_attention` handles these tensors: fp32 on the CPU, caches contiguous, no autograd.
bool decode_attention_supported(const torch::Tensor& query, const torch::Tensor& key_cache);

/// `query` [batch, heads, head_dim] (after the rotary embedding); `key_cache`/`value_cache`
/// [batch, kv_heads, capacity, head_dim]; `key_valid` [batch, capacity] (bool) marks the columns each
/// row may attend to among the first `keys`. Query head h reads key/value head h / (heads / kv_heads).
/// Returns the attention output [batch, heads * head_dim], softmax(q k^T / sqrt(head_dim)) v.
torch::Tensor decode_attention(const torch::Tensor& query, const torch::Tensor& key_cache,
                               const torch::Tensor& value_cache, const torch::Tensor& key_valid, std::int64_t keys);

} // namespace chorus::models
