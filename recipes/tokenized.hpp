// Turning text examples into token sequences through the model's own tokenizer and chat template.
// Internal to recipes/.
#pragma once

#include <chorus/dataset.hpp>
#include <chorus/model.hpp>
#include <chorus/training.hpp>

#include <string>
#include <vector>

namespace chorus::detail {

/// Prompt tokens (the chat rendered with a generation prompt) and completion tokens (the assistant
/// turn as the template closes it: content, end-of-turn token and whatever follows it).
struct TokenizedTurn {
  std::vector<std::int64_t> prompt;
  std::vector<std::int64_t> completion;
};

/// Renders `prompt` with and without the assistant turn `completion` through `model` (a TrainingModel
/// or a ScoringModel); the first must be a prefix of the second (true of the supported templates).
/// @throws Error if it is not.
template <class Model>
Task<TokenizedTurn> tokenize_turn(Model model, std::vector<ChatMessage> prompt, std::string completion);

/// tokenize_turn for every example (a Completion, or a Metric whose label goes to TrainSample::label),
/// at most 64 requests in flight.
template <class Model, class Example>
Task<std::vector<TrainSample>> tokenize_completions(Model model, const std::vector<Example>& examples);

/// Each preference's chosen and rejected turns through tokenize_turn (the prompt once), at most 32
/// preferences in flight.
template <class Model>
Task<std::vector<PreferencePair>> tokenize_preferences(Model model, const std::vector<Preference>& preferences);

} // namespace chorus::detail
