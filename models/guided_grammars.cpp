#include "models/guided_grammars.hpp"

#include "models/json_grammar.hpp"

#include <stdexcept>

namespace chorus::models {

namespace {

constexpr std::size_t kMostKeptGrammars = 64;

} // namespace

std::shared_ptr<const TokenGrammar> GuidedGrammars::grammar_for(const SamplingParams& params) {
  const bool schema = !params.json_schema.is_null();
  if (!schema && params.choice.empty())
    return nullptr;
  if (schema && !params.choice.empty())
    throw std::invalid_argument("guided decoding: ask for json_schema or choice, not both");
  Json key = schema ? Json{{"json_schema", params.json_schema}} : Json{{"choice", params.choice}};
  auto text = key.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (auto known = grammars_.find(text); known != grammars_.end())
    return known->second;
  auto grammar = schema ? json_schema_grammar(params.json_schema) : choice_grammar(params.choice);
  if (!vocabulary_)
    vocabulary_ = std::make_shared<TokenVocabulary>(*tokenizer_);
  if (grammars_.size() >= kMostKeptGrammars)
    grammars_.clear();
  auto compiled = std::make_shared<const TokenGrammar>(std::move(grammar), vocabulary_);
  try {
    compiled->start();
  } catch (const std::length_error& error) {
    throw std::invalid_argument(std::string("guided decoding: ") + error.what());
  }
  grammars_.emplace(std::move(text), compiled);
  return compiled;
}

} // namespace chorus::models
