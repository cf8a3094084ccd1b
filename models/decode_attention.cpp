// The fused decode-attention kernel (see decode_attention.hpp). Numerics follow the reference path:
// scores and softmax in fp32, masked columns get exactly zero weight, the maximum is subtracted first.
#include "models/decode_attention.hpp"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

namespace chorus::models {

namespace {

// A dot product the compiler may vectorise: reassociating the sum (several partial sums in SIMD
// lanes) changes the result only in the last bits, as a BLAS kernel's blocking does.
float dot_product(const float* a, const float* b, std::int64_t n) {
#ifdef __clang__
#pragma clang fp reassociate(on)
#endif
  float sum = 0;
  for (std::int64_t i = 0; i < n; ++i)
    sum += a[i] * b[i];
  return sum;
}

} // namespace

bool decode_attention_supported(const torch::Tensor& query, const torch::Tensor& key_cache) {
  return query.device().is_cpu() && query.scalar_type() == torch::kFloat32
         && key_cache.scalar_type() == torch::kFloat32 && key_cache.is_contiguous()
         && !(torch::GradMode::is_enabled() && (query.requires_grad() || key_cache.requires_grad()));
}

torch::Tensor decode_attention(const torch::Tensor& query, const torch::Tensor& key_cache,
                               const torch::Tensor& value_cache, const torch::Tensor& key_valid, std::int64_t keys) {
  TORCH_CHECK(decode_attention_supported(query, key_cache) && value_cache.is_contiguous(),
              "decode_attention: fp32 CPU tensors with contiguous caches expected");
  auto q = query.contiguous();
  auto valid = key_valid.to(torch::kBool).contiguous();
  const auto batch = q.size(0), heads = q.size(1), dim = q.size(2);
  const auto kv_heads = key_cache.size(1), capacity = key_cache.size(2);
  const auto group = heads / kv_heads;
  TORCH_CHECK(keys <= capacity && valid.size(1) >= keys, "decode_attention: more keys than the cache holds");
  auto out = torch::empty({batch, heads * dim}, q.options());
  const float* q_data = q.data_ptr<float>();
  const float* k_data = key_cache.data_ptr<float>();
  const float* v_data = value_cache.data_ptr<float>();
  const bool* valid_data = valid.data_ptr<bool>();
  const auto valid_stride = valid.size(1);
  float* out_data = out.data_ptr<float>();
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));

  // One task per (row, key/value head): its keys and values are read once for the whole group.
  at::parallel_for(0, batch * kv_heads, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> weights(static_cast<std::size_t>(keys));
    for (std::int64_t task = begin; task < end; ++task) {
      const auto row = task / kv_heads, kv = task % kv_heads;
      const float* k_head = k_data + (row * kv_heads + kv) * capacity * dim;
      const float* v_head = v_data + (row * kv_heads + kv) * capacity * dim;
      const bool* row_valid = valid_data + row * valid_stride;
      for (std::int64_t g = 0; g < group; ++g) {
        const auto head = kv * group + g;
        const float* q_head = q_data + (row * heads + head) * dim;
        float max_score = -std::numeric_limits<float>::infinity();
        for (std::int64_t t = 0; t < keys; ++t) {
          if (!row_valid[t])
            continue;
          const float* key = k_head + t * dim;
          float dot = dot_product(q_head, key, dim);
          weights[static_cast<std::size_t>(t)] = dot * scale;
          max_score = std::max(max_score, dot * scale);
        }
        float* o = out_data + row * heads * dim + head * dim;
        std::fill(o, o + dim, 0.0f);
        if (max_score == -std::numeric_limits<float>::infinity())
          continue; // nothing to attend to: a padding row whose output is never read
        float total = 0;
        for (std::int64_t t = 0; t < keys; ++t) {
          if (!row_valid[t])
            continue;
          float w = std::exp(weights[static_cast<std::size_t>(t)] - max_score);
          total += w;
          const float* value = v_head + t * dim;
          for (std::int64_t d = 0; d < dim; ++d)
            o[d] += w * value[d];
        }
        const float inverse = 1.0f / total;
        for (std::int64_t d = 0; d < dim; ++d)
          o[d] *= inverse;
      }
    }
  });
  return out;
}

} // namespace chorus::models
