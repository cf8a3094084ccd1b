#include "models/sampling.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <limits>
#include <mutex>

namespace chorus::models {

namespace {

// Keeps the top_k largest of `scaled` [vocab] and the smallest set of most likely tokens whose
// probabilities reach top_p; the rest become -inf. The most likely token always stays.
torch::Tensor restrict_candidates(torch::Tensor scaled, const SamplingOptions& options) {
  const auto vocab = scaled.size(-1);
  const auto minus_infinity = -std::numeric_limits<float>::infinity();
  if (options.top_k > 0 && options.top_k < vocab) {
    auto kth = std::get<0>(scaled.topk(options.top_k, -1)).narrow(-1, options.top_k - 1, 1);
    scaled = scaled.masked_fill(scaled < kth, minus_infinity);
  }
  if (options.top_p < 1.0) {
    auto [sorted, order] = scaled.sort(-1, /*descending=*/true);
    auto probabilities = sorted.softmax(-1);
    // Drop a token when the tokens before it already reach top_p.
    auto drop = (probabilities.cumsum(-1) - probabilities) >= options.top_p;
    scaled = torch::full_like(scaled, minus_infinity).scatter(-1, order, sorted.masked_fill(drop, minus_infinity));
  }
  return scaled;
}

} // namespace

namespace {

// A double in [0, 1) from 53 random bits of `generator`.
double uniform_from(at::Generator& generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  return static_cast<double>(at::check_generator<at::CPUGeneratorImpl>(generator)->random64() >> 11) * 0x1.0p-53;
}

} // namespace

std::int64_t draw_token(const float* probabilities, std::int64_t n, at::Generator& generator) {
  const double uniform = uniform_from(generator);
  double total = 0;
  for (std::int64_t i = 0; i < n; ++i)
    total += probabilities[i];
  // Rounding can leave the running sum just short of the target at the end: the last token with any
  // probability takes that case.
  const double target = uniform * total;
  double running = 0;
  std::int64_t last = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (probabilities[i] <= 0)
      continue;
    running += probabilities[i];
    last = i;
    if (running > target)
      return i;
  }
  return last;
}

std::vector<std::int64_t> draw_tokens(const torch::Tensor& probabilities,
                                      const std::vector<at::Generator*>& generators) {
  const auto rows = probabilities.size(0), vocab = probabilities.size(1);
  std::vector<double> uniforms;
  for (auto* generator : generators)
    uniforms.push_back(uniform_from(*generator));
  auto options = torch::TensorOptions(torch::kFloat64).device(probabilities.device());
  auto cumulative = probabilities.to(torch::kFloat64).cumsum(-1);
  auto target = torch::tensor(uniforms, torch::kFloat64).to(probabilities.device()) * cumulative.select(1, vocab - 1);
  // The first token whose running sum passes the target (a zero never does: its sum does not grow).
  auto chosen = torch::searchsorted(cumulative, target.unsqueeze(1), /*out_int32=*/false, /*right=*/true).squeeze(1);
  // Rounding can leave the target at or past the total: the last token with any probability, as draw_token.
  auto last = ((probabilities > 0).to(torch::kFloat64) * torch::arange(1, vocab + 1, options)).argmax(1);
  chosen = torch::where(chosen >= vocab, last, chosen).to(torch::kCPU);
  return {chosen.data_ptr<std::int64_t>(), chosen.data_ptr<std::int64_t>() + rows};
}

std::vector<std::int64_t> sample_tokens(const torch::Tensor& logits, const std::vector<const SamplingOptions*>& options,
                                        const std::vector<at::Generator*>& generators) {
  const auto rows = logits.size(0);
  std::vector<std::int64_t> chosen(static_cast<std::size_t>(rows));
  std::vector<std::int64_t> sampled;
  std::vector<float> temperatures;
  bool any_greedy = false;
  for (std::int64_t row = 0; row < rows; ++row) {
    const auto& o = *options[static_cast<std::size_t>(row)];
    if (o.temperature <= 0) {
      any_greedy = true;
    } else {
      sampled.push_back(row);
      temperatures.push_back(static_cast<float>(o.temperature));
    }
  }
  if (any_greedy) {
    auto greedy = logits.argmax(-1).to(torch::kCPU);
    auto values = greedy.accessor<std::int64_t, 1>();
    for (std::int64_t row = 0; row < rows; ++row)
      if (options[static_cast<std::size_t>(row)]->temperature <= 0)
        chosen[static_cast<std::size_t>(row)] = values[row];
  }
  if (sampled.empty())
    return chosen;
  auto picked = static_cast<std::int64_t>(sampled.size()) == rows
    ? logits
    : logits.index_select(0, torch::tensor(sampled, torch::kInt64).to(logits.device()));
  auto scaled = picked / torch::tensor(temperatures, torch::kFloat32).to(logits.device()).unsqueeze(1);
  for (std::size_t i = 0; i < sampled.size(); ++i) {
    const auto& o = *options[static_cast<std::size_t>(sampled[i])];
    if ((o.top_k > 0 && o.top_k < logits.size(1)) || o.top_p < 1.0) {
      auto row = scaled[static_cast<std::int64_t>(i)];
      row.copy_(restrict_candidates(row, o));
    }
  }
  auto probabilities = scaled.softmax(-1).contiguous();
  if (!probabilities.device().is_cpu()) {
    std::vector<at::Generator*> sampled_generators;
    for (auto row : sampled)
      sampled_generators.push_back(generators[static_cast<std::size_t>(row)]);
    auto drawn = draw_tokens(probabilities, sampled_generators);
    for (std::size_t i = 0; i < sampled.size(); ++i)
      chosen[static_cast<std::size_t>(sampled[i])] = drawn[i];
    return chosen;
  }
  const auto vocab = probabilities.size(1);
  const float* data = probabilities.data_ptr<float>();
  for (std::size_t i = 0; i < sampled.size(); ++i) {
    auto row = static_cast<std::size_t>(sampled[i]);
    chosen[row] = draw_token(data + static_cast<std::int64_t>(i) * vocab, vocab, *generators[row]);
  }
  return chosen;
}

} // namespace chorus::models
