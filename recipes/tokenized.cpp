#include "recipes/tokenized.hpp"

#include <chorus/errors.hpp>
#include <chorus/gather.hpp>

#include <algorithm>
#include <ranges>
#include <type_traits>

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

template <class Model, class Example>
Task<std::vector<TrainSample>> tokenize_completions(Model model, const std::vector<Example>& examples) {
  std::vector<TrainSample> samples(examples.size());
  co_await for_each_concurrent(std::views::iota(std::size_t{0}, examples.size()), 64, [&](std::size_t i) -> Task<void> {
    auto turn = co_await tokenize_turn(model, examples[i].prompt, examples[i].completion);
    samples[i].prompt_tokens = std::move(turn.prompt);
    samples[i].completion_tokens = std::move(turn.completion);
    if constexpr (std::is_same_v<Example, Metric>)
      samples[i].label = examples[i].label;
  });
  co_return samples;
}

template Task<std::vector<TrainSample>> tokenize_completions(TrainingModel, const std::vector<Completion>&);
template Task<std::vector<TrainSample>> tokenize_completions(ScoringModel, const std::vector<Metric>&);

template <class Model>
Task<std::vector<PreferencePair>> tokenize_preferences(Model model, const std::vector<Preference>& preferences) {
  std::vector<PreferencePair> pairs(preferences.size());
  co_await for_each_concurrent(std::views::iota(std::size_t{0}, pairs.size()), 32, [&](std::size_t i) -> Task<void> {
    const auto& preference = preferences[i];
    auto chosen = co_await tokenize_turn(model, preference.prompt, preference.chosen);
    auto rejected = co_await tokenize_turn(model, preference.prompt, preference.rejected);
    pairs[i] = {std::move(chosen.prompt), std::move(chosen.completion), std::move(rejected.completion)};
  });
  co_return pairs;
}

template Task<std::vector<PreferencePair>> tokenize_preferences(TrainingModel, const std::vector<Preference>&);
template Task<std::vector<PreferencePair>> tokenize_preferences(ScoringModel, const std::vector<Preference>&);

} // namespace chorus::detail
