// Generation of a fixed batch (on the continuous batcher, every row admitted at once) and scoring.
#include "models/generation.hpp"

#include "models/batcher.hpp"
#include "models/training.hpp"

#include <stdexcept>

namespace chorus::models {

void check_token_ids(const std::vector<std::int64_t>& ids, std::int64_t vocab, const char* what) {
  for (auto id : ids)
    if (id < 0 || id >= vocab)
      throw std::invalid_argument(std::string(what) + ": token id " + std::to_string(id)
                                  + " is outside the model's vocabulary of " + std::to_string(vocab));
}

StopCheck stop_at_strings(std::shared_ptr<const Tokenizer> tokenizer, std::vector<std::string> stop_strings) {
  std::size_t longest = 0;
  for (const auto& stop : stop_strings)
    longest = std::max(longest, stop.size());
  return [tokenizer = std::move(tokenizer), stop_strings = std::move(stop_strings),
          longest](std::size_t, const std::vector<std::int64_t>& tokens) {
    if (longest == 0)
      return false;
    // A match that ends in the newest token starts at most `longest` bytes back, and every token is
    // at least one byte long: decoding that many trailing tokens is enough, and one more, whose
    // leading space a SentencePiece decoder may drop.
    auto from = tokens.size() > longest + 1 ? tokens.size() - longest - 1 : 0;
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
  std::vector<GeneratedSequence> results(prompts.size());
  if (prompts.empty() || options.max_new_tokens <= 0)
    return results;
  std::size_t longest = 0;
  for (const auto& prompt : prompts)
    longest = std::max(longest, prompt.size());
  auto positions = std::min<std::int64_t>(static_cast<std::int64_t>(longest) + options.max_new_tokens,
                                          model->config().max_position_embeddings);
  ContinuousBatcher batcher(model, static_cast<std::int64_t>(prompts.size()), std::max<std::int64_t>(positions, 2));
  std::vector<ContinuousBatcher::Id> ids;
  for (std::size_t row = 0; row < prompts.size(); ++row) {
    SequenceRequest request{prompts[row], options, {}};
    request.options.seed = options.seed + row; // rows with the same prompt still differ
    if (should_stop)
      request.should_stop = [&should_stop, row](const GeneratedSequence& so_far) {
        return should_stop(row, so_far.tokens);
      };
    ids.push_back(batcher.add(std::move(request)));
  }
  while (!batcher.idle())
    for (auto& done : batcher.step())
      results[static_cast<std::size_t>(std::find(ids.begin(), ids.end(), done.id) - ids.begin())] =
        std::move(done.sequence);
  return results;
}

GeneratedSequence score_prompt(Transformer& model, const std::vector<std::int64_t>& tokens, std::int64_t top,
                               std::int64_t sample_below) {
  const auto vocab = model->config().vocab_size;
  check_token_ids(tokens, vocab, "score_prompt");
  GeneratedSequence scored;
  if (tokens.size() < 2)
    return scored;
  c10::InferenceMode inference;
  constexpr std::int64_t kBlock = 256; // positions whose logits exist at once
  const auto predicted = static_cast<std::int64_t>(tokens.size()) - 1;
  const auto limit = sample_below > 0 && sample_below < vocab ? sample_below : vocab;
  auto ids = torch::tensor(tokens, torch::kInt64).to(model->device());
  auto hidden = model->hidden_states(ids.unsqueeze(0))[0];
  scored.tokens.assign(tokens.begin() + 1, tokens.end());
  for (std::int64_t begin = 0; begin < predicted; begin += kBlock) {
    auto length = std::min(kBlock, predicted - begin);
    auto distribution = torch::log_softmax(model->logits(hidden.narrow(0, begin, length)).to(torch::kFloat32), -1);
    auto next = ids.narrow(0, begin + 1, length).unsqueeze(1);
    auto chosen = distribution.gather(1, next).squeeze(1).to(torch::kCPU);
    auto chosen_values = chosen.accessor<float, 1>();
    for (std::int64_t i = 0; i < length; ++i)
      scored.logprobs.push_back(chosen_values[i]);
    if (top <= 0)
      continue;
    auto best = distribution.narrow(1, 0, limit).topk(std::min(top, limit), -1);
    auto values = std::get<0>(best).to(torch::kCPU);
    auto best_ids = std::get<1>(best).to(torch::kCPU);
    auto value_rows = values.accessor<float, 2>();
    auto id_rows = best_ids.accessor<std::int64_t, 2>();
    for (std::int64_t i = 0; i < length; ++i) {
      auto& alternatives = scored.top_logprobs.emplace_back();
      for (std::int64_t k = 0; k < values.size(1); ++k)
        alternatives.emplace_back(id_rows[i][k], value_rows[i][k]);
    }
  }
  return scored;
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
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      throw std::invalid_argument("score_logprobs: empty prompt");
    check_token_ids(prompts[i], model->config().vocab_size, "score_logprobs");
    check_token_ids(completions[i], model->config().vocab_size, "score_logprobs");
  }
  if (batch == 0)
    return results;
  std::vector<const std::vector<std::int64_t>*> prompt_refs, completion_refs;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    prompt_refs.push_back(&prompts[i]);
    completion_refs.push_back(&completions[i]);
  }
  auto sequences = make_sequence_batch(prompt_refs, completion_refs, model->device());
  auto predicted =
    batch_logprobs(model->forward(sequences.tokens, sequences.attention_mask), sequences).to(torch::kCPU);
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
