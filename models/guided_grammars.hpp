// The grammars that SamplingParams::json_schema, ::choice, ::regex and ::tool_choice ask for, compiled against one
// tokenizer's vocabulary and kept for the requests that ask again (a recipe sends the same schema
// with every rollout; each TokenGrammar also remembers its masks).
#pragma once

#include <chorus/generation.hpp>

#include "models/token_grammar.hpp"
#include "models/tokenizer.hpp"

#include <map>
#include <memory>
#include <string>

namespace chorus::models {

class GuidedGrammars {
public:
  explicit GuidedGrammars(std::shared_ptr<const Tokenizer> tokenizer) : tokenizer_(std::move(tokenizer)) {}

  /// The grammar `params` asks for (a tool_choice: of calls of `tools`); null when it asks for none.
  /// @throws std::invalid_argument naming what cannot be generated (a schema keyword, a regex
  /// construct, an empty choice, a tool_choice without tools, more than one asked for at once).
  std::shared_ptr<const TokenGrammar> grammar_for(const SamplingParams& params, const std::vector<Tool>& tools = {});

private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::shared_ptr<const TokenVocabulary> vocabulary_; // made on first use
  std::map<std::string, std::shared_ptr<const TokenGrammar>> grammars_;
  std::size_t kept_symbols_ = 0; // of the grammars kept
};

} // namespace chorus::models
