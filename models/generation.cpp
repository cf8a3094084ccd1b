// Generation: prompts are left-padded to one length so that every row writes the same cache column
// at each step; padding is excluded by the key-validity mask and does not shift rotary positions.
#include "models/generation.hpp"

#include "models/training.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>

namespace chorus::models {

namespace {

void check_ids(const std::vector<std::int64_t>& ids, std::int64_t vocab, const char* what) {
  for (auto id : ids)
    if (id < 0 || id >= vocab)
      throw std::invalid_argument(std::string(what) + ": token id " + std::to_string(id)
                                  + " is outside the model's vocabulary of " + std::to_string(vocab));
}

// Picks one token per row from `logits` [batch, vocab] (fp32).
torch::Tensor sample(const torch::Tensor& logits, const SamplingOptions& options, at::Generator& generator) {
  if (options.temperature <= 0.0)
    return logits.argmax(-1);
  auto scaled = logits / options.temperature;
  auto vocab = scaled.size(-1);
  if (options.top_k > 0 && options.top_k < vocab) {
    auto kth = std::get<0>(scaled.topk(options.top_k, -1)).narrow(-1, options.top_k - 1, 1);
    scaled = scaled.masked_fill(scaled < kth, -std::numeric_limits<float>::infinity());
  }
  if (options.top_p < 1.0) {
    auto [sorted, order] = scaled.sort(-1, /*descending=*/true);
    auto probabilities = sorted.softmax(-1);
    // Drop a token when the tokens before it already reach top_p; the most likely always stays.
    auto drop = (probabilities.cumsum(-1) - probabilities) >= options.top_p;
    auto sorted_masked = sorted.masked_fill(drop, -std::numeric_limits<float>::infinity());
    scaled = torch::full_like(scaled, -std::numeric_limits<float>::infinity()).scatter(-1, order, sorted_masked);
  }
  return torch::multinomial(scaled.softmax(-1), 1, /*replacement=*/false, generator).squeeze(-1);
}

} // namespace

StopCheck stop_at_strings(std::shared_ptr<const Tokenizer> tokenizer, std::vector<std::string> stop_strings) {
  std::size_t longest = 0;
  for (const auto& stop : stop_strings)
    longest = std::max(longest, stop.size());
  return [tokenizer = std::move(tokenizer), stop_strings = std::move(stop_strings), longest](
           std::size_t, const std::vector<std::int64_t>& tokens) {
    if (longest == 0)
      return false;
    // A match that ends in the newest token starts at most `longest` bytes back, and every token is
    // at least one byte long: decoding that many trailing tokens is enough.
    auto from = tokens.size() > longest ? tokens.size() - longest : 0;
    std::vector<std::int64_t> tail(tokens.begin() + static_cast<std::ptrdiff_t>(from), tokens.end());
    auto text = tokenizer->decode(tail);
    for (const auto& stop : stop_strings)
      if (!stop.empty() && text.find(stop) != std::string::npos)
        return true;
    return false;
  };
}

std::string text_before_stop(const std::string& text, const std::vector<std::string>& stop_strings) {
  auto cut = text.size();
  for (const auto& stop : stop_strings)
    if (!stop.empty())
      cut = std::min(cut, text.find(stop));
  return text.substr(0, cut);
}

std::vector<GeneratedSequence> generate(Transformer& model, const std::vector<std::vector<std::int64_t>>& prompts,
                                        const SamplingOptions& options, const StopCheck& should_stop) {
  // Inference mode skips autograd bookkeeping on every op; nothing made here is trained through.
  c10::InferenceMode inference;
  auto batch = static_cast<std::int64_t>(prompts.size());
  std::vector<GeneratedSequence> results(prompts.size());
  if (batch == 0 || options.max_new_tokens <= 0)
    return results;
  std::int64_t longest = 0;
  for (const auto& prompt : prompts) {
    if (prompt.empty())
      throw std::invalid_argument("generate: empty prompt");
    check_ids(prompt, model->config().vocab_size, "generate");
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(prompt.size()));
  }
  auto capacity = longest + options.max_new_tokens;
  if (capacity > model->config().max_position_embeddings)
    throw std::invalid_argument("generate: prompt of " + std::to_string(longest) + " tokens plus "
                                + std::to_string(options.max_new_tokens) + " new tokens exceeds the model's "
                                + std::to_string(model->config().max_position_embeddings) + " positions");

  auto tokens = torch::zeros({batch, longest}, torch::kInt64);
  auto key_valid = torch::zeros({batch, capacity}, torch::kBool);
  for (std::int64_t row = 0; row < batch; ++row) {
    const auto& prompt = prompts[static_cast<std::size_t>(row)];
    auto length = static_cast<std::int64_t>(prompt.size());
    auto pad = longest - length;
    tokens[row].narrow(0, pad, length).copy_(torch::tensor(prompt, torch::kInt64));
    key_valid[row].narrow(0, pad, length).fill_(true);
  }
  auto positions = (key_valid.narrow(1, 0, longest).to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
  auto cache = model->make_cache(batch, capacity);
  auto logits = model->forward_cached(tokens, positions, key_valid, cache, 0);
  auto next_position = positions.select(1, longest - 1) + 1;

  auto generator = at::detail::createCPUGenerator(options.seed);
  std::vector<bool> finished(prompts.size(), false);
  std::int64_t active = batch;
  for (std::int64_t step = 0; step < options.max_new_tokens && active > 0; ++step) {
    auto logits32 = logits.to(torch::kFloat32);
    auto chosen = sample(logits32, options, generator);
    auto chosen_logprobs = token_logprobs(logits32.unsqueeze(1), chosen.unsqueeze(1)).squeeze(1);
    auto chosen_values = chosen.accessor<std::int64_t, 1>();
    auto logprob_values = chosen_logprobs.accessor<float, 1>();
    for (std::int64_t row = 0; row < batch; ++row) {
      auto r = static_cast<std::size_t>(row);
      if (finished[r])
        continue;
      auto& result = results[r];
      result.tokens.push_back(chosen_values[row]);
      result.logprobs.push_back(logprob_values[row]);
      bool stop = std::find(options.stop_token_ids.begin(), options.stop_token_ids.end(), chosen_values[row])
                  != options.stop_token_ids.end();
      if (!stop && should_stop)
        stop = should_stop(r, result.tokens);
      if (stop || static_cast<std::int64_t>(result.tokens.size()) == options.max_new_tokens) {
        result.finish = stop ? FinishReason::stop : FinishReason::length;
        finished[r] = true;
        --active;
      }
    }
    if (active == 0 || step + 1 == options.max_new_tokens)
      break;
    auto column = longest + step;
    key_valid.select(1, column).fill_(true);
    logits = model->forward_cached(chosen.unsqueeze(1), next_position.unsqueeze(1), key_valid, cache, column);
    next_position += 1;
  }
  return results;
}

std::vector<std::vector<float>> score_logprobs(Transformer& model,
                                               const std::vector<std::vector<std::int64_t>>& prompts,
                                               const std::vector<std::vector<std::int64_t>>& completions) {
  if (prompts.size() != completions.size())
    throw std::invalid_argument("score_logprobs: " + std::to_string(prompts.size()) + " prompts but "
                                + std::to_string(completions.size()) + " completions");
  c10::InferenceMode inference;
  auto batch = static_cast<std::int64_t>(prompts.size());
  std::vector<std::vector<float>> results(prompts.size());
  std::int64_t longest = 0;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      throw std::invalid_argument("score_logprobs: empty prompt");
    check_ids(prompts[i], model->config().vocab_size, "score_logprobs");
    check_ids(completions[i], model->config().vocab_size, "score_logprobs");
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(prompts[i].size() + completions[i].size()));
  }
  if (batch == 0)
    return results;
  auto tokens = torch::zeros({batch, longest}, torch::kInt64);
  auto mask = torch::zeros({batch, longest}, torch::kInt64);
  for (std::int64_t row = 0; row < batch; ++row) {
    auto r = static_cast<std::size_t>(row);
    std::vector<std::int64_t> sequence = prompts[r];
    sequence.insert(sequence.end(), completions[r].begin(), completions[r].end());
    auto length = static_cast<std::int64_t>(sequence.size());
    tokens[row].narrow(0, 0, length).copy_(torch::tensor(sequence, torch::kInt64));
    mask[row].narrow(0, 0, length).fill_(1);
  }
  auto logits = model->forward(tokens, mask);
  // The token at position t + 1 is predicted at position t.
  auto predicted = token_logprobs(logits.narrow(1, 0, longest - 1), tokens.narrow(1, 1, longest - 1));
  auto values = predicted.accessor<float, 2>();
  for (std::int64_t row = 0; row < batch; ++row) {
    auto r = static_cast<std::size_t>(row);
    auto start = static_cast<std::int64_t>(prompts[r].size()) - 1;
    for (std::size_t i = 0; i < completions[r].size(); ++i)
      results[r].push_back(values[row][start + static_cast<std::int64_t>(i)]);
  }
  return results;
}

} // namespace chorus::models
