// The fused decode-attention kernel against the same attention written with LibTorch ops.
#include "models/decode_attention.hpp"

#include <gtest/gtest.h>

#include <limits>

using namespace chorus::models;

namespace {

// softmax(q k^T / sqrt(d) + mask) v with keys and values repeated per group of query heads.
torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& valid) {
  auto group = q.size(1) / k.size(1);
  auto keys = k.repeat_interleave(group, 1), values = v.repeat_interleave(group, 1);
  auto scores = torch::matmul(q.unsqueeze(2), keys.transpose(-2, -1)).squeeze(2) / std::sqrt(double(q.size(2)));
  scores = scores.masked_fill(valid.logical_not().unsqueeze(1), -std::numeric_limits<float>::infinity());
  auto out = torch::matmul(torch::softmax(scores, -1).unsqueeze(2), values).squeeze(2);
  return out.reshape({q.size(0), -1});
}

} // namespace

TEST(DecodeAttention, MatchesTheUnfusedComputationWithMaskedColumns) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  const std::int64_t batch = 3, heads = 6, kv_heads = 2, dim = 16, capacity = 12, keys = 9;
  auto q = torch::randn({batch, heads, dim});
  auto key_cache = torch::randn({batch, kv_heads, capacity, dim});
  auto value_cache = torch::randn({batch, kv_heads, capacity, dim});
  auto valid = torch::rand({batch, capacity}) > 0.3;
  valid.select(1, keys - 1).fill_(true); // the new token always sees itself
  valid[1].narrow(0, 0, 4).fill_(false); // left padding

  auto fused = decode_attention(q, key_cache, value_cache, valid, keys);
  auto expected = reference(q, key_cache.narrow(2, 0, keys), value_cache.narrow(2, 0, keys), valid.narrow(1, 0, keys));
  EXPECT_TRUE(torch::allclose(fused, expected, 1e-5, 1e-6)) << (fused - expected).abs().max();
}

TEST(DecodeAttention, OnlyFp32WithoutAutogradIsSupported) {
  auto q = torch::randn({1, 2, 4});
  auto cache = torch::randn({1, 1, 4, 4});
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(decode_attention_supported(q, cache));
    EXPECT_FALSE(decode_attention_supported(q.to(torch::kBFloat16), cache));
    EXPECT_FALSE(decode_attention_supported(q, cache.transpose(2, 3)));
  }
  EXPECT_FALSE(decode_attention_supported(q.requires_grad_(), cache));
}
