#include "models/guided_grammars.hpp"

#include "models/json_grammar.hpp"
#include "models/regex_grammar.hpp"

#include <stdexcept>

namespace chorus::models {

namespace {

// What a policy keeps compiled: clients choose the schemas, so the memory is bounded too (a symbol
// is about 16 bytes laid out).
constexpr std::size_t kMostKeptGrammars = 64;
constexpr std::size_t kMostKeptSymbols = 4'000'000;

} // namespace

std::shared_ptr<const TokenGrammar> GuidedGrammars::grammar_for(const SamplingParams& params) {
  const bool schema = !params.json_schema.is_null(), choice = !params.choice.empty(), regex = !params.regex.empty();
  if (schema + choice + regex == 0)
    return nullptr;
  if (schema + choice + regex > 1)
    throw std::invalid_argument("guided decoding: ask for one of json_schema, choice and regex, not several");
  // A schema whose text is not UTF-8 never compiles; choices and patterns are keyed by their exact bytes.
  std::string text = schema ? "s" + params.json_schema.dump(-1, ' ', false, Json::error_handler_t::replace)
    : regex                 ? "r" + params.regex
                            : "c";
  for (const auto& option : params.choice)
    text += std::to_string(option.size()) + ':' + option;
  if (auto known = grammars_.find(text); known != grammars_.end())
    return known->second;
  auto grammar = schema ? json_schema_grammar(params.json_schema)
    : regex             ? regex_grammar(params.regex)
                        : choice_grammar(params.choice);
  if (!vocabulary_)
    vocabulary_ = std::make_shared<TokenVocabulary>(*tokenizer_);
  const auto symbols = grammar.symbol_count();
  if (grammars_.size() >= kMostKeptGrammars || kept_symbols_ + symbols > kMostKeptSymbols) {
    grammars_.clear();
    kept_symbols_ = 0;
  }
  auto compiled = std::make_shared<const TokenGrammar>(std::move(grammar), vocabulary_);
  grammars_.emplace(std::move(text), compiled);
  kept_symbols_ += symbols;
  return compiled;
}

} // namespace chorus::models
