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
//   BENCH lora_decode        a replica's choice: the projections of one 110M layer at decode sizes
//                            (1, 4 and 16 rows, one thread) with the adapters merged into the weight
//                            (what replicas do) against the frozen product plus the side product
//                            s (x A^T) B^T (what training does); ratio = side / merged over the three
//                            sizes together (target 1.0), with the merge's cost per weight version and
//                            the decode steps (one row) after which it has paid for itself
#include "actors/trainer.hpp"
#include "models/lora.hpp"

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

// Microseconds per call of `f`, the median of 7 rounds of `calls` calls.
template <class F>
double microseconds(int calls, F f) {
  std::vector<double> rounds;
  for (int round = 0; round < 7; ++round) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i)
      f();
    rounds.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count()
                     / calls);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

// One 110M layer's projections with r = 16 adapters, as a replica decodes with them.
struct DecodeFigures {
  double merged_us = 0, side_us = 0;
};

DecodeFigures decode_layer(std::int64_t rows, double* merge_ms) {
  torch::NoGradGuard no_grad;
  auto config = config_110m();
  const std::int64_t d = config.hidden_size, ff = config.intermediate_size;
  const double scale = 32.0 / 16.0;
  // (out, in) of the fused products a layer runs: QKV, O, gate-up, down.
  std::vector<std::pair<std::int64_t, std::int64_t>> shapes{{3 * d, d}, {d, d}, {2 * ff, d}, {d, ff}};
  struct Projection {
    torch::nn::Linear base{nullptr};
    std::unique_ptr<models::LoraAdapter> adapter;
    torch::Tensor base_t, merged_t; // transposed [in, out], as the model keeps its fused weights
  };
  std::vector<Projection> layer;
  for (auto [out, in] : shapes) {
    Projection p;
    p.base = torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
    p.adapter = std::make_unique<models::LoraAdapter>(p.base, 16, std::nullopt);
    p.adapter->lora_B->weight.normal_(0.0, 0.02); // a trained adapter: B is no longer zero
    p.base_t = p.base->weight.t().contiguous();
    p.merged_t = p.adapter->merged(p.base->weight, scale).t().contiguous();
    layer.push_back(std::move(p));
  }
  // The merge a replica does once per weight version, for the whole model (every layer).
  *merge_ms = microseconds(3,
                           [&] {
                             for (auto& p : layer) {
                               p.adapter->lora_B->weight.add_(0.0); // a new version: the cached merge is stale
                               p.adapter->merged(p.base->weight, scale);
                             }
                           })
    * static_cast<double>(config.num_hidden_layers) / 1000.0;
  torch::manual_seed(5);
  auto x_d = torch::randn({rows, d}), x_ff = torch::randn({rows, ff});
  auto input = [&](std::size_t i) { return layer[i].base_t.size(0) == d ? x_d : x_ff; };
  DecodeFigures figures;
  figures.merged_us = microseconds(200, [&] {
    for (std::size_t i = 0; i < layer.size(); ++i)
      models::linear_transposed(input(i), layer[i].merged_t);
  });
  figures.side_us = microseconds(200, [&] {
    for (std::size_t i = 0; i < layer.size(); ++i) {
      auto out = models::linear_transposed(input(i), layer[i].base_t);
      layer[i].adapter->add_delta(input(i), out, scale, 0.0);
    }
  });
  return figures;
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

  at::set_num_threads(1); // a replica's decode thread
  double merge_ms = 0, merged_total = 0, side_total = 0, saved_one_row_us = 0;
  std::string figures;
  for (std::int64_t rows : {1, 4, 16}) {
    auto decode = decode_layer(rows, &merge_ms);
    std::printf("decode, %lld rows: one 110M layer's projections %.1f us merged, %.1f us with the side product\n",
                static_cast<long long>(rows), decode.merged_us, decode.side_us);
    char text[96];
    std::snprintf(text, sizeof text, "rows%lld_merged_us=%.1f rows%lld_side_us=%.1f ", static_cast<long long>(rows),
                  decode.merged_us, static_cast<long long>(rows), decode.side_us);
    figures += text;
    merged_total += decode.merged_us;
    side_total += decode.side_us;
    if (rows == 1)
      saved_one_row_us = (decode.side_us - decode.merged_us) * config_110m().num_hidden_layers;
  }
  // Decode steps of one sequence after which a version's merge has paid for itself.
  auto breakeven = saved_one_row_us > 0 ? merge_ms * 1000.0 / saved_one_row_us : -1.0;
  std::printf("BENCH lora_decode %smerge_per_version_ms=%.1f breakeven_steps=%.0f ratio=%.2f target=1.0\n",
              figures.c_str(), merge_ms, breakeven, side_total / merged_total);
  return 0;
}
