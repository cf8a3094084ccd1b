// The log-probs a client asked for (SamplingParams::logprobs), position by position: which tokens a
// completion's text is made of, and each one's text, log-prob and most likely alternatives.
#pragma once

#include <chorus/generation.hpp>

#include "models/generation.hpp"
#include "models/tokenizer.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace chorus::models {

/// How many of `tokens` the first `text_bytes` bytes of their text (decoded with special tokens left
/// out) are made of: the tokens whose text begins before that point, at least `from`. A final
/// end-of-turn token and the tokens after a stop string's start are not counted.
std::size_t tokens_in_text(const Tokenizer& tokenizer, const std::vector<std::int64_t>& tokens, std::size_t text_bytes,
                           std::size_t from = 0);

/// Token `id` with its text decoded on its own ("" for an id the tokenizer has no text for: what is
/// shown of a position must never fail the sequences generated beside it).
TokenLogprob token_logprob(const Tokenizer& tokenizer, std::int64_t id, float logprob);

/// Positions [begin, end) of `sequence`: each token decoded on its own, its log-prob and the
/// alternatives the sampler reported there.
std::vector<PositionLogprobs> position_logprobs(const Tokenizer& tokenizer, const GeneratedSequence& sequence,
                                                std::size_t begin, std::size_t end);

} // namespace chorus::models
