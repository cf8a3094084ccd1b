// chorus against Hugging Face transformers on a CUDA GPU, in one run, on the same Qwen2-0.5B-shaped
// model (random weights, bf16) saved as a Hugging Face folder both load:
//   BENCH gpu_generate  greedy generation with the KV cache, tokens/s at batch 1 and batch 64
//                       (`generate` against `model.generate`); ratio = the smaller chorus/HF ratio
//                       of the two (target 1.5)
//   BENCH gpu_train     tokens/s of a forward + backward + AdamW step on 8 sequences of 512 tokens;
//                       ratio = chorus/HF (target 1.0). Also the model FLOP utilisation of each side
//                       (6 x parameters x tokens/s, attention left out) against the bf16 matrix
//                       product rate measured here (8192^3, the ceiling a training step can reach).
// Where LibTorch sees no CUDA device (every CPU machine) it says so and exits 0. The GPU machine
// runs it through scripts/device/build_and_test.sh (docs/gpu.md). `bench_gpu --smoke` runs chorus's
// side on the CPU with the built-in tiny shape and small work, without transformers: the ctest
// bench.gpu_smoke keeps this program's own code working on machines without a GPU.
#include "models/checkpoint.hpp"
#include "models/generation.hpp"
#include "models/training.hpp"

#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <unistd.h>

using namespace chorus::models;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::int64_t kPromptTokens = 32;
constexpr std::int64_t kNewTokens = 128;
constexpr std::int64_t kTrainBatch = 8;
constexpr std::int64_t kTrainTokens = 512;
constexpr int kTrainSteps = 5;
torch::Device device{torch::kCUDA, 0}; // the CPU with --smoke
std::int64_t prompt_tokens = kPromptTokens, new_tokens = kNewTokens, train_tokens = kTrainTokens, matmul_size = 8192;

double seconds_since(Clock::time_point start) {
  if (device.is_cuda())
    torch::cuda::synchronize();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double matmul_tflops() {
  torch::NoGradGuard no_grad;
  auto options = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  const auto n = matmul_size;
  auto a = torch::randn({n, n}, options), b = torch::randn({n, n}, options);
  for (int i = 0; i < 3; ++i)
    torch::matmul(a, b);
  seconds_since(Clock::now());
  auto start = Clock::now();
  for (int i = 0; i < 10; ++i)
    torch::matmul(a, b);
  return 10 * 2.0 * static_cast<double>(n * n) * static_cast<double>(n) / seconds_since(start) / 1e12;
}

double generation_tokens_per_second(Transformer& model, std::int64_t batch) {
  torch::manual_seed(0);
  auto ids = torch::randint(model->config().vocab_size, {batch, prompt_tokens}, torch::kInt64);
  std::vector<std::vector<std::int64_t>> prompts;
  for (std::int64_t row = 0; row < batch; ++row)
    prompts.emplace_back(ids[row].data_ptr<std::int64_t>(), ids[row].data_ptr<std::int64_t>() + prompt_tokens);
  SamplingOptions options{.temperature = 0, .max_new_tokens = new_tokens}; // no stop tokens: every row runs to the end
  generate(model, prompts, options);                                       // warm-up
  auto start = Clock::now();
  for (int i = 0; i < 2; ++i)
    generate(model, prompts, options);
  return static_cast<double>(batch * new_tokens) * 2 / seconds_since(start);
}

double training_tokens_per_second(Transformer& model) {
  torch::manual_seed(1);
  auto ids = torch::randint(model->config().vocab_size, {kTrainBatch, train_tokens}, torch::kInt64).to(device);
  // As transformers' labels=input_ids: position t predicts token t + 1.
  auto inputs = ids, targets = ids.narrow(1, 1, train_tokens - 1);
  auto mask = torch::ones({kTrainBatch, train_tokens - 1}, torch::TensorOptions(torch::kInt64).device(device));
  auto optimizer = make_adamw(*model, 1e-5, 0.0);
  auto loss_of = [&](std::size_t) {
    auto logits = model->forward(inputs);
    return masked_cross_entropy(logits.narrow(1, 0, train_tokens - 1), targets, mask);
  };
  for (int i = 0; i < 2; ++i) // the first step allocates the optimizer state
    optimizer_step(*model, *optimizer, {1.0}, loss_of, 0.0);
  auto start = Clock::now();
  for (int i = 0; i < kTrainSteps; ++i)
    optimizer_step(*model, *optimizer, {1.0}, loss_of, 0.0);
  return static_cast<double>(kTrainBatch * train_tokens) * kTrainSteps / seconds_since(start);
}

nlohmann::json run_transformers(const std::string& folder) {
  auto python = std::getenv("PYTHON") ? std::string(std::getenv("PYTHON")) : std::string("python3");
  auto command = python + " " + CHORUS_SOURCE_DIR + "/bench/gpu/hf_competitor.py " + folder + " --prompt-tokens "
    + std::to_string(kPromptTokens) + " --new-tokens " + std::to_string(kNewTokens) + " --batches 1 64 --train-batch "
    + std::to_string(kTrainBatch) + " --train-tokens " + std::to_string(kTrainTokens) + " --train-steps "
    + std::to_string(kTrainSteps);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe)
    throw std::runtime_error("cannot start " + command);
  std::string output;
  char buffer[4096];
  while (auto n = std::fread(buffer, 1, sizeof(buffer), pipe.get()))
    output.append(buffer, n);
  auto brace = output.rfind('{');
  if (brace == std::string::npos)
    throw std::runtime_error("the transformers side printed no result: " + output);
  return nlohmann::json::parse(output.substr(brace));
}

} // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc > 1 && std::string(argv[1]) == "--smoke") {
    device = torch::kCPU;
    prompt_tokens = 8, new_tokens = 8, train_tokens = 32, matmul_size = 256;
    Transformer model(ModelConfig::tiny(512), /*seed=*/0);
    std::printf("bench_gpu --smoke (CPU, tiny shape): generate %.0f and %.0f tok/s, train %.0f tok/s, bf16 matmul "
                "%.3f TFLOP/s\n",
                generation_tokens_per_second(model, 1), generation_tokens_per_second(model, 4),
                training_tokens_per_second(model), matmul_tflops());
    return 0;
  }
  if (!torch::cuda::is_available()) {
    std::printf("bench_gpu: this LibTorch (%s) sees no CUDA device; run it on a GPU machine "
                "(scripts/device/build_and_test.sh, docs/gpu.md)\n",
                TORCH_VERSION);
    std::printf("BENCH gpu_generate skipped=no_cuda_device target=1.5\n");
    std::printf("BENCH gpu_train skipped=no_cuda_device target=1.0\n");
    return 0;
  }
  auto config = ModelConfig::qwen2_half_billion();
  torch::manual_seed(0);
  Transformer model(config, /*seed=*/0);
  model->to(device, torch::kBFloat16);
  std::int64_t parameters = 0;
  for (const auto& parameter : model->parameters())
    parameters += parameter.numel();
  auto folder = "/tmp/chorus_bench_gpu_" + std::to_string(getpid());
  save_pretrained(model, folder);
  auto peak = matmul_tflops();
  std::printf("gpu model: Qwen2-0.5B shape, %.0f M parameters, bf16; bf16 matmul %.0f TFLOP/s (8192^3)\n",
              static_cast<double>(parameters) / 1e6, peak);

  auto chorus_1 = generation_tokens_per_second(model, 1);
  auto chorus_64 = generation_tokens_per_second(model, 64);
  auto chorus_train = training_tokens_per_second(model);
  model = nullptr;
  auto hf = run_transformers(folder);
  std::filesystem::remove_all(folder);
  auto hf_1 = hf["generate"]["1"].get<double>(), hf_64 = hf["generate"]["64"].get<double>();
  auto hf_train = hf["train_tokens_per_s"].get<double>();
  auto mfu = [&](double tokens_per_second) {
    return 100.0 * 6.0 * static_cast<double>(parameters) * tokens_per_second / (peak * 1e12);
  };
  std::printf("gpu generate: batch 1 chorus %.0f tok/s, transformers %.0f (%.2fx); batch 64 chorus %.0f, "
              "transformers %.0f (%.2fx)\n",
              chorus_1, hf_1, chorus_1 / hf_1, chorus_64, hf_64, chorus_64 / hf_64);
  std::printf("gpu train: chorus %.0f tok/s (MFU %.1f%%), transformers %.0f tok/s (MFU %.1f%%)\n", chorus_train,
              mfu(chorus_train), hf_train, mfu(hf_train));
  std::printf("BENCH gpu_generate batch1_chorus=%.0f batch1_hf=%.0f batch64_chorus=%.0f batch64_hf=%.0f ratio=%.2f "
              "target=1.5\n",
              chorus_1, hf_1, chorus_64, hf_64, std::min(chorus_1 / hf_1, chorus_64 / hf_64));
  std::printf("BENCH gpu_train chorus=%.0f hf=%.0f chorus_mfu=%.1f%% hf_mfu=%.1f%% matmul_tflops=%.0f ratio=%.2f "
              "target=1.0\n",
              chorus_train, hf_train, mfu(chorus_train), mfu(hf_train), peak, chorus_train / hf_train);
  return 0;
}
