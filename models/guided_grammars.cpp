#include "models/guided_grammars.hpp"

#include "models/json_grammar.hpp"

#include <stdexcept>

namespace chorus::models {

namespace {

// What a policy keeps compiled: clients choose the schemas, so the memory is bounded too (a symbol
// is about 16 bytes laid out).
constexpr std::size_t kMostKeptGrammars = 64;
constexpr std::size_t kMostKeptSymbols = 4'000'000;

} // namespace

std::shared_ptr<const TokenGrammar> GuidedGrammars::grammar_for(const SamplingParams& params) {
  const bool schema = !params.json_schema.is_null();
  if (!schema && params.choice.empty())
    return nullptr;
  if (schema && !params.choice.empty())
    throw std::invalid_argument("guided decoding: ask for json_schema or choice, not both");
  // A schema whose text is not UTF-8 never compiles; choices are keyed by their exact bytes.
  std::string text = schema ? "s" + params.json_schema.dump(-1, ' ', false, Json::error_handler_t::replace) : "c";
  for (const auto& choice : params.choice)
    text += std::to_string(choice.size()) + ':' + choice;
  if (auto known = grammars_.find(text); known != grammars_.end())
    return known->second;
  auto grammar = schema ? json_schema_grammar(params.json_schema) : choice_grammar(params.choice);
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
