// Batched generation with a preallocated KV cache, and scoring of given completions.
//
// Both report the log-probability of each token under the model's own distribution (temperature 1,
// no top-k / top-p truncation): the quantity an RL trainer recomputes, so the sampler's numbers and
// the trainer's can be compared directly.
#pragma once

#include "models/token_grammar.hpp"
#include "models/tokenizer.hpp"
#include "models/transformer.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace chorus::models {

struct SamplingOptions {
  /// 0 picks the most likely token (greedy); otherwise logits are divided by it before sampling.
  double temperature = 1.0;
  /// Sample among the k most likely tokens only; 0: all.
  std::int64_t top_k = 0;
  /// Sample among the most likely tokens whose probabilities add up to top_p; 1: all.
  double top_p = 1.0;
  /// Seeds the sampler: the same seed, prompts and model give the same tokens (`generate` seeds row i
  /// with seed + i, so that rows with the same prompt still differ).
  std::uint64_t seed = 0;
  /// The most tokens generated per prompt.
  std::int64_t max_new_tokens = 64;
  /// The fewest: stop tokens are not drawn and the stop check is not obeyed before this many.
  std::int64_t min_new_tokens = 0;
  /// Tokens that end a sequence (EOS, end of turn); the stop token is kept in the output.
  std::vector<std::int64_t> stop_token_ids;
  /// Only ids below this are sampled (0: all). A model's vocabulary is often padded past its
  /// tokenizer's (to a multiple of 8 or 64): those ids mean nothing. Log-probs stay those of the full
  /// distribution, as a trainer computes them.
  std::int64_t sample_below = 0;
  /// Subtracted from the logit of each token the sequence already generated: presence_penalty once,
  /// frequency_penalty once per occurrence (OpenAI's penalties).
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  /// Divides the positive logits and multiplies the negative ones of every token in the prompt or
  /// the completion so far, before the penalties above (transformers' and vLLM's repetition
  /// penalty; 1: none).
  double repetition_penalty = 1.0;
  /// (token id, value) pairs added to the logits before sampling (OpenAI's logit_bias).
  std::vector<std::pair<std::int64_t, float>> logit_bias;
  /// Report this many most likely tokens (below sample_below) at each position (0: none).
  std::int64_t top_logprobs = 0;
  /// Guided decoding: only the tokens this grammar allows next are drawn, a stop token only where
  /// its sentence may end, and a sequence it lets go no further ends there. Applied before
  /// temperature, top-k and top-p; log-probs stay those of the model's whole distribution.
  std::shared_ptr<const TokenGrammar> grammar;
};

enum class FinishReason {
  stop,   // a stop token or the caller's stop check
  length, // max_new_tokens reached
};

struct GeneratedSequence {
  std::vector<std::int64_t> tokens;
  /// log p(token | everything before it), one per token.
  std::vector<float> logprobs;
  /// With SamplingOptions::top_logprobs: one list per token of the most likely (id, log-prob) pairs
  /// at its position, most likely first; else empty.
  std::vector<std::vector<std::pair<std::int64_t, float>>> top_logprobs;
  FinishReason finish = FinishReason::length;
  /// Why the sequence was ended short (its grammar could not go on: SamplingOptions::grammar), or
  /// empty. Its tokens so far are kept; the sequences beside it are not affected.
  std::string error;
};

/// Called after each generated token with the row and its tokens so far; returning true ends the
/// row (e.g. a stop string appeared in the decoded text).
using StopCheck = std::function<bool(std::size_t row, const std::vector<std::int64_t>& tokens)>;

/// A StopCheck that ends a row once its decoded text contains any of `stop_strings` (the text is
/// cut there by the caller: see text_before_stop). Decodes only the tail that could hold a new match.
StopCheck stop_at_strings(std::shared_ptr<const Tokenizer> tokenizer, std::vector<std::string> stop_strings);

/// `text` up to the first occurrence of any of `stop_strings` (all of it if none occurs).
std::string text_before_stop(const std::string& text, const std::vector<std::string>& stop_strings);

/// @throws std::invalid_argument naming `what` if an id in `ids` is outside [0, vocab).
void check_token_ids(const std::vector<std::int64_t>& ids, std::int64_t vocab, const char* what);

/// Generates a continuation of every prompt, all rows in one batch (prompts may differ in length).
/// @throws std::invalid_argument for an empty prompt, a token id outside the vocabulary, or a prompt
/// plus max_new_tokens beyond the model's max_position_embeddings.
std::vector<GeneratedSequence> generate(Transformer& model, const std::vector<std::vector<std::int64_t>>& prompts,
                                        const SamplingOptions& options, const StopCheck& should_stop = {});

/// The log-probability of each token of `completions[i]` following `prompts[i]`, in one forward pass
/// over the batch.
std::vector<std::vector<float>> score_logprobs(Transformer& model,
                                               const std::vector<std::vector<std::int64_t>>& prompts,
                                               const std::vector<std::vector<std::int64_t>>& completions);

/// Every token of `tokens` after the first, as if generated: its log-prob given the tokens before it
/// and, with `top` > 0, the `top` most likely tokens there among the ids below `sample_below` (0:
/// all). The logits are made a block of positions at a time, never [time, vocab] at once.
/// @throws std::invalid_argument for a token id outside the vocabulary.
GeneratedSequence score_prompt(Transformer& model, const std::vector<std::int64_t>& tokens, std::int64_t top,
                               std::int64_t sample_below = 0);

} // namespace chorus::models
