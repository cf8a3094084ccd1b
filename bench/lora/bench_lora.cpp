// bench_lora: a trainer's SFT step with LoRA adapters (r = 16 on every projection) against full
// fine-tuning of the same model, on the built-in tiny model and on a 110M-parameter Llama-shaped
// config. Each configuration runs in a process of its own (this program started again with --one),
// so that its peak resident memory is its own.
//
//   BENCH lora_step_<model>  milliseconds per step, full and LoRA; ratio = full / LoRA (target 1.0)
//   BENCH lora_optimizer     AdamW state bytes, full and LoRA; ratio = full / LoRA on the 110M model
//                            (target 10: the adapters' state at most 10% of full fine-tuning's; on
//                            the tiny model, hidden 256, r = 16 is 1/8 of each projection's rank)
//   BENCH lora_memory        the trainer process's peak resident memory; ratio = full / LoRA
//                            (target 1.0: adapters never cost memory)
#include "actors/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace chorus;

namespace {

struct Shape {
  const char* name;
  models::ModelConfig config;
  int sequences; // per step
  int length;    // tokens per sequence
  int steps;     // measured, after one warm-up step
};

models::ModelConfig config_110m() {
  auto config = models::ModelConfig::tiny(32000);
  config.model_type = "llama";
  config.hidden_size = 768;
  config.intermediate_size = 2048;
  config.num_hidden_layers = 12;
  config.num_attention_heads = 12;
  config.num_key_value_heads = 12;
  config.head_dim = 64;
  config.max_position_embeddings = 1024;
  config.tie_word_embeddings = true;
  return config;
}

std::vector<Shape> shapes() {
  return {{"tiny", models::ModelConfig::tiny(264), 8, 128, 8}, {"110m", config_110m(), 2, 64, 3}};
}

// The process's peak resident memory, from /proc/self/status (VmHWM), in MB.
double peak_resident_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0)
      return std::atof(line.c_str() + 6) / 1024.0;
  return 0.0;
}

// One configuration: prints "RESULT step_ms=... optimizer_bytes=... peak_mb=... trained=...".
int run_one(const std::string& shape_name, bool lora) {
  at::set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  for (const auto& shape : shapes()) {
    if (shape.name != shape_name)
      continue;
    models::Transformer model(shape.config, /*seed=*/1);
    if (lora) {
      models::LoraConfig adapters;
      adapters.r = 16;
      adapters.lora_alpha = 32;
      model->add_adapters(adapters, /*seed=*/2);
    }
    std::int64_t trained = 0;
    for (const auto& parameter : model->parameters())
      trained += parameter.requires_grad() ? parameter.numel() : 0;
    actors::Trainer trainer({model, nullptr}, /*keep_reference=*/false);
    std::vector<TrainSample> batch;
    for (int i = 0; i < shape.sequences; ++i) {
      TrainSample sample;
      for (int t = 0; t < shape.length; ++t)
        (t < shape.length / 4 ? sample.prompt_tokens : sample.completion_tokens)
          .push_back((7 * i + 13 * t) % (shape.config.vocab_size - 1) + 1);
      batch.push_back(std::move(sample));
    }
    TrainParams params{.lr = 1e-4, .micro_batch_size = shape.sequences};
    trainer.step(actors::Objective::sft, batch, params); // warm-up: allocations, the optimizer's state
    std::vector<double> times;
    for (int step = 0; step < shape.steps; ++step) {
      auto start = std::chrono::steady_clock::now();
      trainer.step(actors::Objective::sft, batch, params);
      times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(times.begin(), times.end());
    std::printf("RESULT step_ms=%.2f optimizer_bytes=%lld peak_mb=%.1f trained=%lld\n", times[times.size() / 2],
                static_cast<long long>(trainer.optimizer_state_bytes()), peak_resident_mb(),
                static_cast<long long>(trained));
    return 0;
  }
  std::fprintf(stderr, "unknown model shape '%s'\n", shape_name.c_str());
  return 2;
}

struct Result {
  double step_ms = 0, peak_mb = 0;
  long long optimizer_bytes = 0, trained = 0;
};

// This program's path (popen's shell would read its own /proc/self/exe).
std::string self_path() {
  char path[4096];
  auto n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0)
    throw std::runtime_error("cannot read /proc/self/exe");
  return std::string(path, static_cast<std::size_t>(n));
}

Result run_child(const std::string& shape, bool lora) {
  auto command = "'" + self_path() + "' --one " + shape + (lora ? " lora" : " full");
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe)
    throw std::runtime_error("cannot start " + command);
  char line[512];
  Result result;
  bool found = false;
  while (std::fgets(line, sizeof line, pipe.get()))
    if (std::sscanf(line, "RESULT step_ms=%lf optimizer_bytes=%lld peak_mb=%lf trained=%lld", &result.step_ms,
                    &result.optimizer_bytes, &result.peak_mb, &result.trained)
        == 4)
      found = true;
  if (!found)
    throw std::runtime_error(command + ": no RESULT line");
  return result;
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--one") == 0)
    return run_one(argv[2], std::strcmp(argv[3], "lora") == 0);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("SFT steps, LoRA r=16 on every projection against full fine-tuning; each run in its own process\n");
  Result tiny_full, tiny_lora, big_full, big_lora;
  for (const auto& shape : shapes()) {
    // Alternated, best of two rounds each: the machine is shared and noisy.
    Result full, lora;
    for (int round = 0; round < 2; ++round) {
      auto f = run_child(shape.name, false), l = run_child(shape.name, true);
      if (round == 0 || f.step_ms < full.step_ms)
        full = f;
      if (round == 0 || l.step_ms < lora.step_ms)
        lora = l;
    }
    std::printf("%s: full %.1f ms/step (%lld trained), LoRA %.1f ms/step (%lld trained); optimizer %.2f MB vs "
                "%.2f MB; peak RSS %.0f MB vs %.0f MB\n",
                shape.name, full.step_ms, full.trained, lora.step_ms, lora.trained, full.optimizer_bytes / 1e6,
                lora.optimizer_bytes / 1e6, full.peak_mb, lora.peak_mb);
    if (std::string(shape.name) == "tiny") {
      tiny_full = full;
      tiny_lora = lora;
    } else {
      big_full = full;
      big_lora = lora;
    }
  }
  std::printf("BENCH lora_step_tiny full_ms=%.1f lora_ms=%.1f ratio=%.2f target=1.0\n", tiny_full.step_ms,
              tiny_lora.step_ms, tiny_full.step_ms / tiny_lora.step_ms);
  std::printf("BENCH lora_step_110m full_ms=%.1f lora_ms=%.1f ratio=%.2f target=1.0\n", big_full.step_ms,
              big_lora.step_ms, big_full.step_ms / big_lora.step_ms);
  std::printf("BENCH lora_optimizer tiny_full_mb=%.2f tiny_lora_mb=%.2f m110_full_mb=%.1f m110_lora_mb=%.2f "
              "ratio=%.1f target=10\n",
              tiny_full.optimizer_bytes / 1e6, tiny_lora.optimizer_bytes / 1e6, big_full.optimizer_bytes / 1e6,
              big_lora.optimizer_bytes / 1e6,
              static_cast<double>(big_full.optimizer_bytes) / static_cast<double>(big_lora.optimizer_bytes));
  std::printf("BENCH lora_memory tiny_full_mb=%.0f tiny_lora_mb=%.0f m110_full_mb=%.0f m110_lora_mb=%.0f ratio=%.2f "
              "target=1.0\n",
              tiny_full.peak_mb, tiny_lora.peak_mb, big_full.peak_mb, big_lora.peak_mb,
              std::min(tiny_full.peak_mb / tiny_lora.peak_mb, big_full.peak_mb / big_lora.peak_mb));
  return 0;
}
