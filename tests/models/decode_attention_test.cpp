// The fused decode-attention kernel against the same attention written with LibTorch ops.
#include "models/decode_attention.hpp"
#include "models/transformer.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace chorus::models;

namespace {

// softmax(scale q k^T) v for one sequence: q [heads, d], k and v [kv_heads, keys, d], with keys
// and values repeated per group of query heads; scale 0 is 1 / sqrt(d).
torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale = 0) {
  auto group = q.size(0) / k.size(0);
  auto keys = k.repeat_interleave(group, 0), values = v.repeat_interleave(group, 0);
  auto scores =
    torch::matmul(q.unsqueeze(1), keys.transpose(-2, -1)) * (scale > 0 ? scale : 1 / std::sqrt(double(q.size(1))));
  return torch::matmul(torch::softmax(scores, -1), values).reshape({-1});
}

// With `window`, each sequence attends to its last `window` columns only.
void expect_matches_reference(torch::ScalarType dtype, double tolerance, double scale = 0, std::int64_t window = 0) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  const std::int64_t heads = 6, kv_heads = 2, dim = 16, capacity = 12;
  auto key_cache = torch::randn({4, kv_heads, capacity, dim}).to(dtype);
  auto value_cache = torch::randn({4, kv_heads, capacity, dim}).to(dtype);
  auto q = torch::randn({3, heads, dim}).to(dtype);
  // Three sequences in slots 2, 0 and 3 of a four-slot cache, with 5, 12 and 1 columns.
  auto slots = torch::tensor({2, 0, 3}, torch::kInt64), lengths = torch::tensor({5, 12, 1}, torch::kInt64);
  auto fused = decode_attention(q, key_cache, value_cache, slots, lengths, {}, {}, scale, window).to(torch::kFloat32);
  for (std::int64_t i = 0; i < 3; ++i) {
    auto slot = slots[i].item<std::int64_t>(), length = lengths[i].item<std::int64_t>();
    auto first = window > 0 ? std::max<std::int64_t>(length - window, 0) : 0;
    auto expected =
      reference(q[i].to(torch::kFloat32), key_cache[slot].narrow(1, first, length - first).to(torch::kFloat32),
                value_cache[slot].narrow(1, first, length - first).to(torch::kFloat32), scale);
    EXPECT_TRUE(torch::allclose(fused[i], expected, tolerance, tolerance)) << (fused[i] - expected).abs().max();
  }
}

} // namespace

TEST(DecodeAttention, MatchesTheUnfusedComputationPerSlotAndLength) {
  expect_matches_reference(torch::kFloat32, 1e-5);
}

TEST(DecodeAttention, Bfloat16CachesAccumulateInFp32) {
  expect_matches_reference(torch::kBFloat16, 2e-2);
}

// Gemma 3's: scores scaled by its own factor, and a sliding window shorter than some sequences (12
// columns) and longer than others (1 column).
TEST(DecodeAttention, AScaleAndASlidingWindowAreHonoured) {
  expect_matches_reference(torch::kFloat32, 1e-5, /*scale=*/0.9, /*window=*/4);
}

TEST(DecodeAttention, OnlyContiguousFp32OrBf16CpuCachesAreSupported) {
  auto q = torch::randn({1, 2, 4});
  auto cache = torch::randn({1, 1, 4, 4});
  EXPECT_TRUE(decode_attention_supported(q, cache));
  EXPECT_TRUE(decode_attention_supported(q.to(torch::kBFloat16), cache.to(torch::kBFloat16)));
  EXPECT_FALSE(decode_attention_supported(q.to(torch::kFloat16), cache.to(torch::kFloat16)));
  EXPECT_FALSE(decode_attention_supported(q, cache.transpose(2, 3)));
  EXPECT_THROW(decode_attention(q, cache, cache, torch::tensor({0}, torch::kInt64), torch::tensor({5}, torch::kInt64)),
               c10::Error);
}

TEST(DecodeAttention, WritesThisStepsKeysAndValuesBeforeAttending) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  const std::int64_t heads = 4, kv_heads = 2, dim = 8, capacity = 6;
  auto key_cache = torch::randn({3, kv_heads, capacity, dim}), value_cache = torch::randn({3, kv_heads, capacity, dim});
  auto keys_before = key_cache.clone(), values_before = value_cache.clone();
  auto q = torch::randn({2, heads, dim});
  auto new_keys = torch::randn({2, kv_heads, dim}), new_values = torch::randn({2, kv_heads, dim});
  // Sequences in slots 1 and 2; this step is column 3 of the first and column 0 of the second.
  auto slots = torch::tensor({1, 2}, torch::kInt64), lengths = torch::tensor({4, 1}, torch::kInt64);
  auto out = decode_attention(q, key_cache, value_cache, slots, lengths, new_keys, new_values);
  auto expected_keys = keys_before.clone(), expected_values = values_before.clone();
  expected_keys[1].select(1, 3).copy_(new_keys[0]);
  expected_keys[2].select(1, 0).copy_(new_keys[1]);
  expected_values[1].select(1, 3).copy_(new_values[0]);
  expected_values[2].select(1, 0).copy_(new_values[1]);
  EXPECT_TRUE(torch::equal(key_cache, expected_keys)); // nothing else in the cache changed
  EXPECT_TRUE(torch::equal(value_cache, expected_values));
  auto first = reference(q[0], expected_keys[1].narrow(1, 0, 4), expected_values[1].narrow(1, 0, 4));
  EXPECT_TRUE(torch::allclose(out[0], first, 1e-5, 1e-5));
  // A sequence with one column attends only to its own value.
  EXPECT_TRUE(torch::allclose(out[1], new_values[1].repeat_interleave(heads / kv_heads, 0).reshape({-1}), 1e-5, 1e-5));
}

TEST(DecodeAttention, NewKeysOfTheWrongShapeOrDtypeAreRefused) {
  torch::NoGradGuard no_grad;
  auto cache = torch::zeros({2, 1, 4, 8});
  auto q = torch::randn({1, 2, 8});
  auto slots = torch::tensor({0}, torch::kInt64), lengths = torch::tensor({2}, torch::kInt64);
  EXPECT_THROW(
    decode_attention(q, cache, cache.clone(), slots, lengths, torch::randn({1, 2, 8}), torch::randn({1, 2, 8})),
    c10::Error);
  EXPECT_THROW(decode_attention(q, cache, cache.clone(), slots, lengths, torch::randn({1, 1, 8}).to(torch::kFloat64),
                                torch::randn({1, 1, 8}).to(torch::kFloat64)),
               c10::Error);
  EXPECT_TRUE(torch::equal(cache, torch::zeros({2, 1, 4, 8}))); // nothing written before the refusal
}

namespace {

// Off the CPU a decode step gathers the sequences' slots and masks the columns past each one
// (decode_mask, made once per step); on the CPU the kernel above reads the slots in place. Both give
// the same outputs and write the same cache columns.
void expect_gathered_path_matches_kernel(const ModelConfig& config) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  DecoderLayer layer(config, /*layer=*/0);
  for (auto& parameter : layer->parameters())
    parameter.normal_(0, 0.1);
  const std::int64_t capacity = 10;
  auto key_cache = torch::randn({4, config.num_key_value_heads, capacity, config.head_dim});
  auto value_cache = torch::randn({4, config.num_key_value_heads, capacity, config.head_dim});
  auto x = torch::randn({3, 1, config.hidden_size});
  auto slots = torch::tensor({3, 0, 2}, torch::kInt64), columns = torch::tensor({6, 0, 9}, torch::kInt64);
  auto cos = torch::randn({3, 1, config.head_dim}), sin = torch::randn({3, 1, config.head_dim});
  auto kernel_keys = key_cache.clone(), kernel_values = value_cache.clone();
  auto kernel = layer->decode(x, cos, sin, slots, columns, kernel_keys, kernel_values);
  auto mask = decode_mask(columns, torch::kFloat32);
  EXPECT_EQ(mask.sizes(), (std::vector<std::int64_t>{3, 1, 1, 10}));
  if (config.sliding(0))
    mask = window_mask(mask, columns, config.sliding_window);
  auto gathered = layer->decode(x, cos, sin, slots, columns, key_cache, value_cache, mask);
  EXPECT_TRUE(torch::allclose(gathered, kernel, 1e-5, 1e-5)) << (gathered - kernel).abs().max();
  EXPECT_TRUE(torch::equal(key_cache, kernel_keys));
  EXPECT_TRUE(torch::equal(value_cache, kernel_values));
}

} // namespace

TEST(DecodeAttention, TheGatheredPathAGpuTakesMatchesTheCpuKernel) {
  for (bool gemma : {false, true}) // Gemma 3's sliding layer: its window masked on the gathered path
    expect_gathered_path_matches_kernel(gemma ? test::gemma3_config() : test::small_config());
}
