#include "models/position_logprobs.hpp"

#include <algorithm>
#include <exception>
#include <string>

namespace chorus::models {

std::size_t tokens_in_text(const Tokenizer& tokenizer, const std::vector<std::int64_t>& tokens, std::size_t text_bytes,
                           std::size_t from) {
  // The text of a prefix grows with the prefix, so the count is a binary search over prefix lengths:
  // the shortest prefix whose text reaches text_bytes. A decoder may merge a token with its
  // neighbours (a space marker, a split character), so prefixes are decoded whole, never summed.
  auto low = std::min(from, tokens.size()), high = tokens.size();
  while (low < high) {
    auto middle = low + (high - low) / 2;
    std::vector<std::int64_t> prefix(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(middle));
    if (tokenizer.decode(prefix, /*skip_special=*/true).size() >= text_bytes)
      high = middle;
    else
      low = middle + 1;
  }
  return low;
}

TokenLogprob token_logprob(const Tokenizer& tokenizer, std::int64_t id, float logprob) {
  std::string text;
  try {
    text = tokenizer.token_text(id, /*skip_special=*/false);
  } catch (const std::exception&) { // a hole in the tokenizer's vocabulary: shown as ""
  }
  return TokenLogprob{id, std::move(text), logprob};
}

std::vector<PositionLogprobs> position_logprobs(const Tokenizer& tokenizer, const GeneratedSequence& sequence,
                                                std::size_t begin, std::size_t end) {
  std::vector<PositionLogprobs> positions;
  end = std::min(end, sequence.tokens.size());
  for (auto i = begin; i < end; ++i) {
    auto& position = positions.emplace_back();
    position.chosen = token_logprob(tokenizer, sequence.tokens[i], sequence.logprobs[i]);
    if (i < sequence.top_logprobs.size())
      for (const auto& [id, logprob] : sequence.top_logprobs[i])
        position.top.push_back(token_logprob(tokenizer, id, logprob));
  }
  return positions;
}

} // namespace chorus::models
