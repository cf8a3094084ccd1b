// The model engine on a CUDA device against the same model on the CPU: logits, greedy generation
// with the KV cache, sampler against trainer log-probs, training steps, and a save on the device that
// loads on the CPU. Skipped (with the reason) where LibTorch has no CUDA device: run on a GPU machine
// with `ctest -L gpu` (docs/gpu.md, scripts/device/).
#include "models/checkpoint.hpp"
#include "models/fused_adamw.hpp"
#include "models/generation.hpp"
#include "models/training.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>
#include <torch/version.h>

#include <filesystem>

using namespace chorus::models;

namespace {

using test::random_model;

const torch::Device kCuda{torch::kCUDA, 0};

class OnCuda : public ::testing::Test {
protected:
  void SetUp() override {
    if (!torch::cuda::is_available())
      GTEST_SKIP() << "no CUDA device: this LibTorch (" << TORCH_VERSION << ") sees none";
  }
};

// A config big enough for the device's kernels to take their real paths (several blocks, GQA).
ModelConfig gpu_config(const std::string& type) {
  auto config = test::small_config(type, /*tied=*/type == "qwen2", /*vocab=*/512);
  config.hidden_size = 256;
  config.intermediate_size = 512;
  config.num_hidden_layers = 3;
  config.num_attention_heads = 8;
  config.num_key_value_heads = 2;
  config.head_dim = 32;
  config.max_position_embeddings = 256;
  if (type == "qwen3_moe" || type == "mixtral") { // 8 experts, 2 per token; Qwen3-MoE's first layer dense
    config.num_experts = 8;
    config.num_experts_per_tok = 2;
    config.moe_intermediate_size = type == "mixtral" ? config.intermediate_size : 128;
    config.norm_topk_prob = true;
    config.sparse_layers = {type == "mixtral", true, true};
  }
  return config;
}

// The same weights on `device` in `dtype`.
Transformer copy_to(Transformer& model, torch::Device device, torch::ScalarType dtype) {
  auto copy = random_model(model->config(), 0);
  torch::NoGradGuard no_grad;
  auto from = model->parameters(), to = copy->parameters();
  for (std::size_t i = 0; i < from.size(); ++i)
    to[i].copy_(from[i]);
  copy->to(device, dtype);
  return copy;
}

double relative_error(const torch::Tensor& value, const torch::Tensor& reference) {
  auto v = value.to(torch::kCPU, torch::kFloat64), r = reference.to(torch::kCPU, torch::kFloat64);
  return ((v - r).norm() / r.norm()).item<double>();
}

std::vector<std::vector<std::int64_t>> prompts(std::int64_t vocab) {
  std::vector<std::vector<std::int64_t>> result;
  for (std::int64_t row = 0; row < 6; ++row) {
    std::vector<std::int64_t> prompt;
    for (std::int64_t i = 0; i < 5 + 3 * row; ++i)
      prompt.push_back((i * 31 + row * 17 + 3) % vocab);
    result.push_back(prompt);
  }
  return result;
}

class LogitsOnCuda : public OnCuda, public ::testing::WithParamInterface<std::string> {};

} // namespace

TEST_P(LogitsOnCuda, MatchTheCpuWithin1e4InFp32AndCloselyInBf16) {
  torch::NoGradGuard no_grad;
  auto config = gpu_config(GetParam());
  auto cpu = random_model(config, 1);
  torch::manual_seed(2);
  auto tokens = torch::randint(config.vocab_size, {3, 40}, torch::kInt64);
  auto mask = torch::ones({3, 40}, torch::kInt64);
  mask[1].narrow(0, 0, 7).zero_(); // left padding on one row
  auto reference = cpu->forward(tokens, mask);
  auto fp32 = copy_to(cpu, kCuda, torch::kFloat32);
  auto error = relative_error(fp32->forward(tokens.to(kCuda), mask.to(kCuda)), reference);
  EXPECT_LT(error, 1e-4) << "fp32";
  auto bf16 = copy_to(cpu, kCuda, torch::kBFloat16);
  auto bf16_error = relative_error(bf16->forward(tokens.to(kCuda), mask.to(kCuda)), reference);
  // A mixture of experts in bf16 may route a near-tied token to another expert than fp32 does.
  EXPECT_LT(bf16_error, config.moe() ? 5e-2 : 2e-2) << "bf16";
  std::printf("%s logits on CUDA: relative error %.2e (fp32), %.2e (bf16)\n", GetParam().c_str(), error, bf16_error);
}

INSTANTIATE_TEST_SUITE_P(LlamaAndQwen, LogitsOnCuda, ::testing::Values("llama", "qwen2", "qwen3"));
INSTANTIATE_TEST_SUITE_P(MixturesOfExperts, LogitsOnCuda, ::testing::Values("qwen3_moe", "mixtral"));

TEST_F(OnCuda, BatchedGreedyGenerationWithTheCacheGivesTheCpusTokens) {
  auto config = gpu_config("qwen2");
  auto cpu = random_model(config, 3, /*embedding_scale=*/20.0);
  auto cuda = copy_to(cpu, kCuda, torch::kFloat32);
  SamplingOptions greedy{.temperature = 0, .max_new_tokens = 24};
  auto expected = generate(cpu, prompts(config.vocab_size), greedy);
  auto got = generate(cuda, prompts(config.vocab_size), greedy);
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t row = 0; row < got.size(); ++row) {
    EXPECT_EQ(got[row].tokens, expected[row].tokens) << "row " << row;
    for (std::size_t i = 0; i < got[row].logprobs.size() && i < expected[row].logprobs.size(); ++i)
      EXPECT_NEAR(got[row].logprobs[i], expected[row].logprobs[i], 1e-4) << "row " << row << ", token " << i;
  }
}

TEST_F(OnCuda, SampledSequencesAreFixedByTheirSeed) {
  auto config = gpu_config("llama");
  auto cpu = random_model(config, 4);
  auto cuda = copy_to(cpu, kCuda, torch::kFloat32);
  SamplingOptions sampled{.temperature = 1.0, .seed = 9, .max_new_tokens = 8};
  auto once = generate(cuda, prompts(config.vocab_size), sampled);
  auto again = generate(cuda, prompts(config.vocab_size), sampled);
  for (std::size_t row = 0; row < once.size(); ++row)
    EXPECT_EQ(once[row].tokens, again[row].tokens) << "row " << row;
}

TEST_F(OnCuda, SamplerAndTrainerLogprobsAgreeWithin1e5) {
  auto config = gpu_config("qwen2");
  auto cpu = random_model(config, 5);
  auto cuda = copy_to(cpu, kCuda, torch::kFloat32);
  auto rows = prompts(config.vocab_size);
  auto generated = generate(cuda, rows, {.temperature = 1.0, .seed = 3, .max_new_tokens = 16});
  std::vector<std::vector<std::int64_t>> completions;
  for (const auto& sequence : generated)
    completions.push_back(sequence.tokens);
  auto scored = score_logprobs(cuda, rows, completions);
  double worst = 0;
  for (std::size_t row = 0; row < rows.size(); ++row)
    for (std::size_t i = 0; i < completions[row].size(); ++i)
      worst = std::max(worst, static_cast<double>(std::abs(scored[row][i] - generated[row].logprobs[i])));
  EXPECT_LT(worst, 1e-5);
  std::printf("sampler-trainer log-prob gap on CUDA: %.2e\n", worst);
}

TEST_F(OnCuda, SftStepsLowerTheLossWithTheOptimizerStateOnTheDevice) {
  auto model = random_model(gpu_config("llama"), 6);
  model->to(kCuda);
  auto optimizer = make_adamw(*model, 3e-3, 0.0);
  std::vector<std::int64_t> prompt{1, 2, 3, 4}, answer{7, 7, 8, 9, 7};
  auto batch = make_sequence_batch({&prompt, &prompt}, {&answer, &answer}, kCuda);
  auto loss_of = [&](std::size_t) {
    return masked_mean(-batch_logprobs(model->forward(batch.tokens, batch.attention_mask), batch),
                       batch.completion_mask);
  };
  auto first = optimizer_step(*model, *optimizer, {1.0}, loss_of, 1.0);
  StepResult last;
  for (int step = 0; step < 20; ++step)
    last = optimizer_step(*model, *optimizer, {1.0}, loss_of, 1.0);
  EXPECT_LT(last.loss, 0.2 * first.loss) << first.loss << " -> " << last.loss;
  EXPECT_GT(first.grad_norm, 0.0);
  for (const auto& parameter : model->parameters()) {
    ASSERT_TRUE(parameter.is_cuda());
    auto& state = static_cast<torch::optim::AdamWParamState&>(*optimizer->state().at(optimizer_state_key(parameter)));
    EXPECT_TRUE(state.exp_avg().is_cuda());
    EXPECT_EQ(state.exp_avg().scalar_type(), torch::kFloat32);
  }
}

TEST_F(OnCuda, AModelSavedFromTheDeviceLoadsOnTheCpuWithTheSameLogprobs) {
  auto config = gpu_config("qwen2");
  auto cuda = random_model(config, 7);
  cuda->to(kCuda);
  auto folder = std::filesystem::path(::testing::TempDir()) / "saved_from_cuda";
  std::filesystem::remove_all(folder);
  save_pretrained(cuda, folder);
  auto cpu = load_pretrained(folder);
  auto rows = prompts(config.vocab_size);
  auto completions = rows;
  std::reverse(completions.begin(), completions.end());
  auto on_device = score_logprobs(cuda, rows, completions), on_host = score_logprobs(cpu, rows, completions);
  for (std::size_t row = 0; row < rows.size(); ++row)
    for (std::size_t i = 0; i < on_host[row].size(); ++i)
      EXPECT_NEAR(on_device[row][i], on_host[row][i], 1e-4) << "row " << row << ", token " << i;
}
