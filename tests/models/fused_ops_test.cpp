// The fused kernels (RMSNorm, SwiGLU, rotary embedding) against the same steps written with LibTorch
// ops: values and every gradient, in fp32 and bf16, with and without autograd.
#include "models/cpu_kernels.hpp"
#include "models/fused_ops.hpp"

#include <gtest/gtest.h>

#include <limits>

using namespace chorus::models;

namespace {

torch::Tensor reference_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto x32 = x.to(torch::kFloat32);
  return weight * (x32 * torch::rsqrt(x32.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

torch::Tensor reference_swiglu(const torch::Tensor& gate_up) {
  auto halves = gate_up.chunk(2, -1);
  return torch::silu(halves[0]) * halves[1];
}

// q, k, v heads first, q and k turned, from qkv [batch, time, heads + 2 kv_heads, head_dim].
std::vector<torch::Tensor> reference_split(const torch::Tensor& qkv, std::int64_t heads, std::int64_t kv_heads,
                                           const torch::Tensor& cos, const torch::Tensor& sin) {
  auto turn = [&](const torch::Tensor& x) {
    auto rows = x.transpose(1, 2);
    // The first cos.size(-1) dimensions turn; the rest pass (a partial rotary embedding).
    auto turned = cos.size(-1), dim = rows.size(-1);
    auto part = rows.narrow(-1, 0, turned), kept = rows.narrow(-1, turned, dim - turned);
    auto half = turned / 2;
    auto rotated = torch::cat({-part.narrow(-1, half, half), part.narrow(-1, 0, half)}, -1);
    return torch::cat({part * cos.unsqueeze(1) + rotated * sin.unsqueeze(1), kept}, -1);
  };
  return {turn(qkv.narrow(2, 0, heads)), turn(qkv.narrow(2, heads, kv_heads)),
          qkv.narrow(2, heads + kv_heads, kv_heads).transpose(1, 2)};
}

torch::Tensor flat(const std::vector<torch::Tensor>& parts) {
  std::vector<torch::Tensor> flattened;
  for (const auto& part : parts)
    flattened.push_back(part.reshape({-1}));
  return torch::cat(flattened);
}

void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, double tolerance, const char* what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  auto a = actual.to(torch::kFloat32), e = expected.to(torch::kFloat32);
  EXPECT_TRUE(torch::allclose(a, e, tolerance, tolerance)) << what << ": largest difference " << (a - e).abs().max();
}

// Runs `fused` and `reference` on copies of `inputs` (leaves requiring gradients), then checks the
// outputs and, after a backward pass from the same random output gradient, every input's gradient.
template <class Fused, class Reference>
void expect_same_values_and_gradients(const std::vector<torch::Tensor>& inputs, Fused fused, Reference reference,
                                      double tolerance) {
  std::vector<torch::Tensor> a, b;
  for (const auto& input : inputs) {
    a.push_back(input.detach().clone().requires_grad_(true));
    b.push_back(input.detach().clone().requires_grad_(true));
  }
  auto out_fused = fused(a), out_reference = reference(b);
  expect_close(out_fused, out_reference, tolerance, "output");
  auto grad = torch::randn(out_reference.sizes()).to(out_reference.scalar_type());
  out_fused.backward(grad);
  out_reference.backward(grad);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_TRUE(a[i].grad().defined()) << "input " << i << " got no gradient";
    expect_close(a[i].grad(), b[i].grad(), tolerance, ("gradient of input " + std::to_string(i)).c_str());
  }
  // Without autograd the same kernel runs directly.
  torch::NoGradGuard no_grad;
  expect_close(fused(a), out_reference.detach(), tolerance, "output without autograd");
}

class FusedOps : public ::testing::TestWithParam<torch::ScalarType> {
protected:
  double tolerance() const {
    return GetParam() == torch::kFloat32 ? 1e-5 : 3e-2;
  }
  torch::Tensor random(at::IntArrayRef sizes) const {
    return torch::randn(sizes).to(GetParam());
  }
  // split_heads_rotary's q, k and v and the gradients through them, against reference_split's.
  void expect_split_as_the_composition(const torch::Tensor& qkv, std::int64_t heads, std::int64_t kv_heads,
                                       const torch::Tensor& cos, const torch::Tensor& sin) const {
    auto as_vector = [](const std::array<torch::Tensor, 3>& a) {
      return std::vector<torch::Tensor>(a.begin(), a.end());
    };
    expect_same_values_and_gradients(
      {qkv}, [&](auto& t) { return flat(as_vector(split_heads_rotary(t[0], heads, kv_heads, cos, sin))); },
      [&](auto& t) { return flat(reference_split(t[0], heads, kv_heads, cos, sin)); }, tolerance());
  }
};

TEST_P(FusedOps, RmsNormMatchesTheComposition) {
  torch::manual_seed(1);
  auto weight = (1 + 0.3 * torch::randn({48})).to(GetParam());
  expect_same_values_and_gradients(
    {3 * random({2, 5, 48}), weight}, [](auto& t) { return rms_norm(t[0], t[1], 1e-6); },
    [](auto& t) { return reference_rms_norm(t[0], t[1], 1e-6); }, tolerance());
}

TEST_P(FusedOps, SwigluMatchesTheComposition) {
  torch::manual_seed(2);
  expect_same_values_and_gradients(
    {2 * random({3, 4, 2 * 40})}, [](auto& t) { return swiglu(t[0]); }, [](auto& t) { return reference_swiglu(t[0]); },
    tolerance());
}

TEST_P(FusedOps, SplitHeadsRotaryMatchesTheComposition) {
  torch::manual_seed(3);
  const std::int64_t batch = 2, time = 5, heads = 4, kv_heads = 2, dim = 8;
  // Positions differ per row, as with left padding.
  auto positions = torch::randint(0, 50, {batch, time}).to(torch::kFloat32);
  auto inv_freq = 1.0 / torch::pow(10000.0, torch::arange(0, dim, 2, torch::kFloat32) / double(dim));
  auto freqs = positions.unsqueeze(-1) * inv_freq;
  auto angles = torch::cat({freqs, freqs}, -1);
  auto cos = angles.cos().to(GetParam()), sin = angles.sin().to(GetParam());
  auto qkv = random({batch, time, heads + 2 * kv_heads, dim});
  expect_split_as_the_composition(qkv, heads, kv_heads, cos, sin);
  // Only q used: the gradients of k's and v's columns are zero.
  expect_same_values_and_gradients(
    {qkv}, [&](auto& t) { return split_heads_rotary(t[0], heads, kv_heads, cos, sin)[0]; },
    [&](auto& t) { return reference_split(t[0], heads, kv_heads, cos, sin)[0]; }, tolerance());
  for (const auto& part : split_heads_rotary(qkv, heads, kv_heads, cos, sin))
    EXPECT_TRUE(part.is_contiguous()); // heads first, no copy left for attention
}

// Phi-4 mini turns the first three quarters of each head: the rest passes unturned, forward and back.
TEST_P(FusedOps, SplitHeadsRotaryTurnsPartOfEachHead) {
  torch::manual_seed(5);
  const std::int64_t batch = 2, time = 3, heads = 2, kv_heads = 1, dim = 16, turned = 12;
  auto angles = torch::rand({batch, time, turned}) * 6;
  auto cos = angles.cos().to(GetParam()), sin = angles.sin().to(GetParam());
  auto qkv = random({batch, time, heads + 2 * kv_heads, dim});
  expect_split_as_the_composition(qkv, heads, kv_heads, cos, sin);
  auto q = split_heads_rotary(qkv, heads, kv_heads, cos, sin)[0];
  EXPECT_TRUE(torch::equal(q.narrow(-1, turned, dim - turned),
                           qkv.narrow(2, 0, heads).transpose(1, 2).narrow(-1, turned, dim - turned)));
  EXPECT_FALSE(torch::allclose(q.narrow(-1, 0, turned), qkv.narrow(2, 0, heads).transpose(1, 2).narrow(-1, 0, turned)));
}

TEST_P(FusedOps, SplitHeadsRotaryBroadcastsOneAngleRowPerSequence) {
  torch::manual_seed(4);
  // A decode step: one position per sequence, angles [n, 1, head_dim].
  auto cos = torch::rand({3, 1, 6}).to(GetParam()), sin = torch::rand({3, 1, 6}).to(GetParam());
  auto qkv = random({3, 1, 6, 6});
  auto fused = split_heads_rotary(qkv, 2, 2, cos, sin);
  auto expected = reference_split(qkv, 2, 2, cos, sin);
  for (std::size_t i = 0; i < 3; ++i)
    expect_close(fused[i], expected[i], tolerance(), "decode split");
}

TEST_P(FusedOps, MaskedSoftmaxMatchesTheComposition) {
  torch::manual_seed(8);
  const std::int64_t batch = 2, kv_heads = 2, group = 3, time = 4, keys = 6;
  // A causal mask over the last `time` keys plus one masked key column in the second sequence.
  auto allowed = torch::ones({time, keys}, torch::kBool).tril(keys - time).unsqueeze(0).repeat({batch, 1, 1});
  allowed[1].select(1, 0).fill_(false);
  auto mask = torch::zeros({batch, 1, time, keys})
                .masked_fill(allowed.logical_not().unsqueeze(1), -std::numeric_limits<float>::infinity())
                .to(GetParam());
  auto reference = [&](const torch::Tensor& scores) {
    return torch::softmax(scores.to(torch::kFloat32) * 0.3 + mask.to(torch::kFloat32).unsqueeze(2), -1)
      .to(scores.scalar_type());
  };
  expect_same_values_and_gradients(
    {3 * random({batch, kv_heads, group, time, keys})}, [&](auto& t) { return masked_softmax(t[0], mask, 0.3); },
    [&](auto& t) { return reference(t[0]); }, tolerance());
  // Masked keys weigh exactly nothing.
  auto probs = masked_softmax(random({batch, kv_heads, group, time, keys}), mask, 0.3);
  EXPECT_EQ(probs.masked_select(allowed.logical_not().view({batch, 1, 1, time, keys}).expand_as(probs))
              .abs()
              .sum()
              .item<float>(),
            0.0f);
}

TEST_P(FusedOps, EmbeddingRowsMatchTheLookup) {
  torch::manual_seed(9);
  auto tokens = torch::tensor({{3, 1, 3}, {0, 3, 2}}, torch::kInt64); // repeated tokens add their gradients
  expect_same_values_and_gradients(
    {random({5, 4})}, [&](auto& t) { return embedding_rows(t[0], tokens); },
    [&](auto& t) { return torch::embedding(t[0], tokens); }, tolerance());
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FusedOps, ::testing::Values(torch::kFloat32, torch::kBFloat16),
                         [](const auto& info) { return std::string(info.param == torch::kFloat32 ? "fp32" : "bf16"); });

TEST(FusedOpsFallback, OtherDtypesTakeTheComposition) {
  torch::manual_seed(5);
  auto x = torch::randn({2, 3, 16}, torch::kFloat64), weight = torch::rand({16}, torch::kFloat64);
  expect_close(rms_norm(x, weight, 1e-5), reference_rms_norm(x, weight, 1e-5), 1e-12, "fp64 norm");
  expect_close(swiglu(x), reference_swiglu(x), 1e-12, "fp64 swiglu");
}

} // namespace

namespace {

// The AVX2 build of the kernel loops computes what the baseline build does (to rounding).
TEST(CpuKernels, TheAvx2BuildAgreesWithTheBaseline) {
  const auto* avx2 = avx2_cpu_kernels();
  if (!avx2)
    GTEST_SKIP() << "this processor has no AVX2 with FMA";
  const auto& base = baseline_cpu_kernels();
  torch::manual_seed(6);
  const std::int64_t rows = 5, n = 37; // odd lengths exercise the vector loops' remainders
  auto gate_up = torch::randn({rows, 2 * n}) * 4, grad = torch::randn({rows, n});
  auto out_a = torch::empty({rows, n}), out_b = torch::empty({rows, n});
  base.swiglu(Element::f32, gate_up.data_ptr(), out_a.data_ptr(), 0, rows, n);
  avx2->swiglu(Element::f32, gate_up.data_ptr(), out_b.data_ptr(), 0, rows, n);
  EXPECT_TRUE(torch::allclose(out_a, out_b, 1e-6, 1e-6));
  auto d_a = torch::empty_like(gate_up), d_b = torch::empty_like(gate_up);
  base.swiglu_backward(Element::f32, grad.data_ptr(), gate_up.data_ptr(), d_a.data_ptr(), 0, rows, n);
  avx2->swiglu_backward(Element::f32, grad.data_ptr(), gate_up.data_ptr(), d_b.data_ptr(), 0, rows, n);
  EXPECT_TRUE(torch::allclose(d_a, d_b, 1e-6, 1e-6));

  auto p_a = torch::randn({1000}), g = torch::randn({1000});
  auto p_b = p_a.clone(), m_a = torch::randn({1000}), m_b = m_a.clone(), v_a = torch::rand({1000}), v_b = v_a.clone();
  AdamWScalars scalars{1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.1f, 0.05f};
  base.adamw(p_a.data_ptr<float>(), g.data_ptr<float>(), m_a.data_ptr<float>(), v_a.data_ptr<float>(), 1000, scalars);
  avx2->adamw(p_b.data_ptr<float>(), g.data_ptr<float>(), m_b.data_ptr<float>(), v_b.data_ptr<float>(), 1000, scalars);
  EXPECT_TRUE(torch::allclose(p_a, p_b, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(v_a, v_b, 1e-6, 1e-8));
}

} // namespace

namespace {

// The vectorised exp behind SwiGLU and the softmax: extremes saturate, NaN stays NaN.
TEST(CpuKernels, ExtremeAndNanInputsBehaveAsTheReference) {
  auto gate_up =
    torch::tensor({{std::numeric_limits<float>::quiet_NaN(), 100.0f, -100.0f, 0.0f, 2.0f, 2.0f, 2.0f, 2.0f}});
  std::vector<const CpuKernels*> builds{&baseline_cpu_kernels()};
  if (avx2_cpu_kernels())
    builds.push_back(avx2_cpu_kernels());
  for (const auto* kernels : builds) {
    auto out = torch::empty({1, 4});
    kernels->swiglu(Element::f32, gate_up.data_ptr(), out.data_ptr(), 0, 1, 4);
    EXPECT_TRUE(std::isnan(out[0][0].item<float>()));
    EXPECT_FLOAT_EQ(out[0][1].item<float>(), 200.0f);
    EXPECT_NEAR(out[0][2].item<float>(), 0.0f, 1e-30);
    EXPECT_EQ(out[0][3].item<float>(), 0.0f);
  }
}

} // namespace

namespace {

TEST(FusedOpsShapes, MisshapenInputsAreRefusedWithAnError) {
  auto cos = torch::ones({1, 2, 8}), sin = torch::zeros({1, 2, 8});
  // qkv must hold heads + 2 kv_heads heads of an even head_dim.
  EXPECT_THROW(split_heads_rotary(torch::randn({1, 2, 5, 8}), 4, 1, cos, sin), c10::Error);
  EXPECT_THROW(split_heads_rotary(torch::randn({1, 2, 6, 7}), 4, 1, cos, sin), c10::Error);
  // The mask is shared by the heads: [batch, 1, time, keys].
  EXPECT_THROW(masked_softmax(torch::randn({1, 1, 2, 3, 4}), torch::zeros({1, 2, 3, 4}), 1.0), c10::Error);
  EXPECT_THROW(masked_softmax(torch::randn({1, 2, 3, 4}), torch::zeros({1, 1, 3, 4}), 1.0), c10::Error);
}

} // namespace
