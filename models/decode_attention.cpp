// The fused decode-attention kernel (see decode_attention.hpp). Numerics follow the reference path:
// scores and softmax in fp32, the maximum subtracted first.
#include "models/decode_attention.hpp"

#include "models/cpu_kernels.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace chorus::models {

namespace {

template <class T>
void attend(const torch::Tensor& query, const torch::Tensor& new_keys, const torch::Tensor& new_values,
            const torch::Tensor& key_cache, const torch::Tensor& value_cache, const std::int64_t* slots,
            const std::int64_t* lengths, double scale, std::int64_t window, torch::Tensor& out) {
  auto q = query.to(torch::kFloat32).contiguous();
  const auto n = q.size(0), heads = q.size(1), dim = q.size(2);
  const auto kv_heads = key_cache.size(1), capacity = key_cache.size(2);
  const auto group = heads / kv_heads;
  const float* q_data = q.data_ptr<float>();
  T* k_data = key_cache.data_ptr<T>();
  T* v_data = value_cache.data_ptr<T>();
  const T* new_k = new_keys.defined() ? new_keys.data_ptr<T>() : nullptr;
  const T* new_v = new_keys.defined() ? new_values.data_ptr<T>() : nullptr;
  float* out_data = out.data_ptr<float>();
  const float score_scale = scale > 0 ? static_cast<float>(scale) : 1.0f / std::sqrt(static_cast<float>(dim));
  const auto& kernels = cpu_kernels();
  const auto element = std::is_same_v<T, float> ? Element::f32 : Element::bf16;

  // One task per (sequence, key/value head): its keys and values are read once for the whole group.
  at::parallel_for(0, n * kv_heads, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<float> weights;
    for (std::int64_t task = begin; task < end; ++task) {
      const auto row = task / kv_heads, kv = task % kv_heads;
      const auto keys = lengths[row];
      T* k_head = k_data + (slots[row] * kv_heads + kv) * capacity * dim;
      T* v_head = v_data + (slots[row] * kv_heads + kv) * capacity * dim;
      if (new_k) { // this step's key and value go into the sequence's last column first
        std::copy_n(new_k + (row * kv_heads + kv) * dim, dim, k_head + (keys - 1) * dim);
        std::copy_n(new_v + (row * kv_heads + kv) * dim, dim, v_head + (keys - 1) * dim);
      }
      const auto first = window > 0 ? std::max<std::int64_t>(keys - window, 0) : 0; // the window's oldest column
      weights.resize(static_cast<std::size_t>(keys - first));
      kernels.attend_group(element, q_data + (row * heads + kv * group) * dim, k_head + first * dim,
                           v_head + first * dim, keys - first, dim, group, score_scale,
                           out_data + (row * heads + kv * group) * dim, weights.data());
    }
  });
}

} // namespace

bool decode_attention_supported(const torch::Tensor& query, const torch::Tensor& key_cache) {
  auto type = key_cache.scalar_type();
  return query.device().is_cpu() && key_cache.device().is_cpu() && key_cache.is_contiguous()
    && (type == torch::kFloat32 || type == torch::kBFloat16) && query.scalar_type() == type;
}

torch::Tensor decode_attention(const torch::Tensor& query, const torch::Tensor& key_cache,
                               const torch::Tensor& value_cache, const torch::Tensor& slots,
                               const torch::Tensor& lengths, const torch::Tensor& new_keys,
                               const torch::Tensor& new_values, double scale, std::int64_t window) {
  TORCH_CHECK(decode_attention_supported(query, key_cache) && value_cache.is_contiguous()
                && value_cache.scalar_type() == key_cache.scalar_type(),
              "decode_attention: fp32 or bf16 CPU tensors with contiguous caches expected");
  auto slot_ids = slots.to(torch::kInt64).contiguous(), length_values = lengths.to(torch::kInt64).contiguous();
  const auto n = query.size(0);
  TORCH_CHECK(slot_ids.numel() == n && length_values.numel() == n, "decode_attention: one slot and length per row");
  for (std::int64_t i = 0; i < n; ++i) {
    auto slot = slot_ids.data_ptr<std::int64_t>()[i], length = length_values.data_ptr<std::int64_t>()[i];
    TORCH_CHECK(slot >= 0 && slot < key_cache.size(0) && length >= 1 && length <= key_cache.size(2),
                "decode_attention: slot or length outside the cache");
  }
  torch::Tensor keys, values;
  if (new_keys.defined()) {
    auto expected = std::vector<std::int64_t>{n, key_cache.size(1), key_cache.size(3)};
    TORCH_CHECK(new_keys.sizes() == expected && new_values.sizes() == expected
                  && new_keys.scalar_type() == key_cache.scalar_type()
                  && new_values.scalar_type() == key_cache.scalar_type(),
                "decode_attention: new keys and values [n, kv_heads, head_dim] in the cache's dtype expected");
    keys = new_keys.contiguous();
    values = new_values.contiguous();
  }
  // Autograd never sees this: decoding is inference only.
  torch::NoGradGuard no_grad;
  auto out = torch::empty({n, query.size(1) * query.size(2)}, query.options().dtype(torch::kFloat32));
  if (key_cache.scalar_type() == torch::kFloat32)
    attend<float>(query, keys, values, key_cache, value_cache, slot_ids.data_ptr<std::int64_t>(),
                  length_values.data_ptr<std::int64_t>(), scale, window, out);
  else
    attend<c10::BFloat16>(query, keys, values, key_cache, value_cache, slot_ids.data_ptr<std::int64_t>(),
                          length_values.data_ptr<std::int64_t>(), scale, window, out);
  return out.to(query.scalar_type());
}

} // namespace chorus::models
