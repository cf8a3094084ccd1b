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

/// tokenize_turn for every example, at most 64 requests in flight.
Task<std::vector<TrainSample>> tokenize_completions(TrainingModel model, const std::vector<Completion>& examples);

} // namespace chorus::detail
