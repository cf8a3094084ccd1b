#include "models/guided_grammars.hpp"

#include "models/chat_template.hpp"
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

std::shared_ptr<const TokenGrammar> GuidedGrammars::grammar_for(const SamplingParams& params,
                                                                const std::vector<Tool>& tools) {
  const bool schema = !params.json_schema.is_null(), choice = !params.choice.empty(), regex = !params.regex.empty(),
             calls = !params.tool_choice.empty();
  if (schema + choice + regex + calls == 0)
    return nullptr;
  if (schema + choice + regex + calls > 1)
    throw std::invalid_argument(
      "guided decoding: ask for one of json_schema, choice, regex and tool_choice, not several");
  // A schema whose text is not UTF-8 never compiles; choices, patterns and tools are keyed by their exact bytes.
  auto counted = [](const std::string& part) { return std::to_string(part.size()) + ':' + part; };
  std::string text = schema ? "s" + params.json_schema.dump(-1, ' ', false, Json::error_handler_t::replace)
    : regex                 ? "r" + params.regex
    : calls                 ? "t" + counted(params.tool_choice) + (params.parallel_tool_calls ? "+" : "1")
                            : "c";
  for (const auto& option : params.choice)
    text += counted(option);
  if (calls)
    for (const auto& tool : tools)
      text += counted(tool.name) + counted(tool.parameters);
  if (auto known = grammars_.find(text); known != grammars_.end())
    return known->second;
  auto grammar = schema ? json_schema_grammar(params.json_schema)
    : regex             ? regex_grammar(params.regex)
    : calls ? tool_call_grammar(tools, params.tool_choice, params.parallel_tool_calls, tokenizer_->tool_call_format())
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
