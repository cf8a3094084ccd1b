#include "recipes/tokenized.hpp"

#include <chorus/errors.hpp>
#include <chorus/gather.hpp>

#include <algorithm>

namespace chorus::detail {

template <class Model>
Task<TokenizedTurn> tokenize_turn(Model model, std::vector<ChatMessage> prompt, std::string completion) {
  auto conversation = prompt;
  conversation.push_back({"assistant", std::move(completion)});
  auto prompt_ids = co_await model.tokenize_chat(std::move(prompt), /*add_generation_prompt=*/true);
  auto full = co_await model.tokenize_chat(std::move(conversation), /*add_generation_prompt=*/false);
  if (full.size() <= prompt_ids.size() || !std::equal(prompt_ids.begin(), prompt_ids.end(), full.begin()))
    throw Error("model '" + model.name()
                + "': the chat template's generation prompt is not a prefix of the rendered "
                  "assistant turn; cannot tell the completion tokens apart");
  co_return TokenizedTurn{
    prompt_ids, std::vector<std::int64_t>(full.begin() + static_cast<std::ptrdiff_t>(prompt_ids.size()), full.end())};
}

template Task<TokenizedTurn> tokenize_turn<TrainingModel>(TrainingModel, std::vector<ChatMessage>, std::string);
template Task<TokenizedTurn> tokenize_turn<ScoringModel>(ScoringModel, std::vector<ChatMessage>, std::string);

Task<std::vector<TrainSample>> tokenize_completions(TrainingModel model, const std::vector<Completion>& examples) {
  std::vector<TrainSample> samples(examples.size());
  std::vector<std::size_t> indices(examples.size());
  for (std::size_t i = 0; i < indices.size(); ++i)
    indices[i] = i;
  co_await for_each_concurrent(indices, 64, [&](std::size_t i) -> Task<void> {
    auto turn = co_await tokenize_turn(model, examples[i].prompt, examples[i].completion);
    samples[i].prompt_tokens = std::move(turn.prompt);
    samples[i].completion_tokens = std::move(turn.completion);
  });
  co_return samples;
}

} // namespace chorus::detail
