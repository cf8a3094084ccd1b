// What a recipe sends to a model and gets back from it: chat messages, sampling parameters and the
// generated completion with its token ids and log-probs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace chorus {

/// One turn of a conversation: `role` is "system", "user" or "assistant".
struct ChatMessage {
  /// "system", "user" or "assistant".
  std::string role;
  /// The message's text.
  std::string content;
};

/// How to sample a completion. The defaults sample from the model's full distribution.
struct SamplingParams {
  /// 0 picks the most likely token (greedy); otherwise the logits are divided by it.
  double temperature = 1.0;
  /// Sample among the k most likely tokens only; 0: all.
  std::int64_t top_k = 0;
  /// Sample among the most likely tokens whose probabilities add up to top_p; 1: all.
  double top_p = 1.0;
  /// The most tokens to generate.
  std::int64_t max_tokens = 256;
  /// Text that ends the completion where it appears (the completion's text stops before it).
  std::vector<std::string> stop;
  /// The same seed, prompt and weights give the same completion; negative: a fresh seed per request.
  std::int64_t seed = -1;
  /// The fewest tokens to generate: end-of-turn tokens are not drawn, and stop strings do not end
  /// the completion, before this many (the text is still cut before a stop string's first match).
  /// Log-probs stay those of the model's whole distribution, as a trainer computes them.
  std::int64_t min_tokens = 0;
};

/// A generated completion.
struct Generation {
  /// The completion's text, cut before a stop string; special tokens left out.
  std::string text;
  /// The prompt as the model saw it (after the chat template).
  std::vector<std::int64_t> prompt_tokens;
  /// The generated tokens, the stop token included.
  std::vector<std::int64_t> tokens;
  /// log p(token | everything before it) at temperature 1, one per token: what a trainer recomputes.
  std::vector<float> logprobs;
  /// "stop" (a stop token or stop string) or "length" (max_tokens reached).
  std::string finish_reason;
  /// The weight version that generated it (0: the weights the model was loaded with).
  std::int64_t weight_version = 0;
};

} // namespace chorus
