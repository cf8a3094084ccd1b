// Guided function calls (SamplingParams::tool_choice): every text the grammar lets a writer finish
// is read back by parse_tool_calls as calls of the tools asked for, with arguments that satisfy
// their schemas.
#include <chorus/json_schema.hpp>

#include "grammar_writer.hpp"
#include "models/chat_template.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace chorus;
using namespace chorus::models;

namespace {

const std::vector<Tool> kTools{
  {"get_weather", "The weather in a city.",
   R"({"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
       "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city"], "additionalProperties": false})"},
  {"add", "", R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                  "required": ["a", "b"], "additionalProperties": false})"},
  {"now", "", ""},
};

Json parameters_of(const std::string& name) {
  for (const auto& tool : kTools)
    if (tool.name == name)
      return tool.parameters.empty() ? Json{{"type", "object"}} : Json::parse(tool.parameters);
  ADD_FAILURE() << "a call of " << name << ", which is no tool";
  return Json{{"type", "object"}};
}

} // namespace

// Mistral's guided calls: one [TOOL_CALLS] list of the tools' calls, read back as such.
TEST(ToolCallGrammar, MistralsCallsAreOneList) {
  auto grammar = tool_call_grammar(kTools, "required", /*parallel=*/true, ToolCallFormat::mistral);
  std::mt19937 random(6);
  std::size_t most_calls = 0;
  for (int walk = 0; walk < 200; ++walk) {
    auto text = random_sentence(grammar, random);
    if (!text)
      continue;
    auto turn = parse_tool_calls(*text, ToolCallFormat::mistral);
    EXPECT_EQ(turn.content, "") << *text;
    EXPECT_FALSE(turn.tool_calls.empty()) << *text;
    most_calls = std::max(most_calls, turn.tool_calls.size());
    for (const auto& call : turn.tool_calls)
      EXPECT_EQ(schema_violation(Json::parse(call.arguments), parameters_of(call.name)), "") << *text;
  }
  EXPECT_GT(most_calls, 1u);
  EXPECT_TRUE(accepts(grammar, "[TOOL_CALLS][{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}]"));
  EXPECT_FALSE(accepts(grammar, "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
  auto named = tool_call_grammar(kTools, "now", /*parallel=*/true, ToolCallFormat::mistral);
  EXPECT_TRUE(accepts(named, "[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}]"));
  EXPECT_FALSE(
    accepts(named, "[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}, {\"name\": \"now\", \"arguments\": {}}]"));
}

TEST(ToolCallGrammar, RequiredWritesOnlyCallsOfTheTools) {
  auto grammar = tool_call_grammar(kTools, "required");
  std::mt19937 random(5);
  std::set<std::string> called;
  std::size_t most_calls = 0;
  for (int walk = 0; walk < 300; ++walk) {
    auto text = random_sentence(grammar, random);
    if (!text)
      continue;
    auto turn = parse_tool_calls(*text);
    EXPECT_EQ(turn.content, "") << *text;
    EXPECT_FALSE(turn.tool_calls.empty()) << *text;
    most_calls = std::max(most_calls, turn.tool_calls.size());
    for (const auto& call : turn.tool_calls) {
      called.insert(call.name);
      auto arguments = Json::parse(call.arguments);
      EXPECT_EQ(schema_violation(arguments, parameters_of(call.name)), "") << *text;
    }
  }
  EXPECT_EQ(called.size(), kTools.size());
  EXPECT_GT(most_calls, 1u); // parallel calls, one block per line
  EXPECT_TRUE(accepts(grammar, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>"));
  EXPECT_TRUE(accepts(grammar,
                      "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>\n"
                      "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\":1,\"b\":2}}\n</tool_call>"));
  EXPECT_FALSE(accepts(grammar, "Sure! <tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(grammar, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>"));
  EXPECT_FALSE(accepts(grammar, "<tool_call>\n{\"name\": \"sub\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(grammar, ""));
  // parallel_tool_calls = false: one call.
  auto one = tool_call_grammar(kTools, "required", /*parallel=*/false);
  EXPECT_TRUE(accepts(one, "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(one,
                       "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>\n"
                       "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
}

TEST(ToolCallGrammar, ANamedToolIsCalledOnce) {
  auto grammar = tool_call_grammar(kTools, "get_weather");
  std::mt19937 random(9);
  int finished = 0;
  for (int walk = 0; walk < 100; ++walk)
    if (auto text = random_sentence(grammar, random)) {
      ++finished;
      auto turn = parse_tool_calls(*text);
      ASSERT_EQ(turn.tool_calls.size(), 1u) << *text;
      EXPECT_EQ(turn.tool_calls[0].name, "get_weather");
      EXPECT_EQ(schema_violation(Json::parse(turn.tool_calls[0].arguments), parameters_of("get_weather")), "");
    }
  EXPECT_GT(finished, 50);
  EXPECT_FALSE(accepts(grammar, "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
}

// Llama 3.1's format: one call, the turn's JSON object.
TEST(ToolCallGrammar, TheJsonFormatWritesOneCallAsLlamasTemplateDoes) {
  auto grammar = tool_call_grammar(kTools, "required", /*parallel=*/true, ToolCallFormat::json);
  std::mt19937 random(11);
  std::set<std::string> called;
  for (int walk = 0; walk < 200; ++walk) {
    auto text = random_sentence(grammar, random);
    if (!text)
      continue;
    auto turn = parse_tool_calls(*text, ToolCallFormat::json);
    EXPECT_EQ(turn.content, "") << *text;
    ASSERT_EQ(turn.tool_calls.size(), 1u) << *text;
    called.insert(turn.tool_calls[0].name);
    EXPECT_EQ(schema_violation(Json::parse(turn.tool_calls[0].arguments), parameters_of(turn.tool_calls[0].name)), "")
      << *text;
  }
  EXPECT_EQ(called.size(), kTools.size());
  EXPECT_TRUE(accepts(grammar, "{\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": 2}}"));
  EXPECT_FALSE(accepts(grammar, "{\"name\": \"now\", \"parameters\": {}}; {\"name\": \"now\", \"parameters\": {}}"));
  EXPECT_FALSE(accepts(grammar, "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"));
  auto named = tool_call_grammar(kTools, "now", true, ToolCallFormat::json);
  EXPECT_TRUE(accepts(named, "{\"name\": \"now\", \"parameters\": {}}"));
  EXPECT_FALSE(accepts(named, "{\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": 2}}"));
}

TEST(ToolCallGrammar, WhatCannotBeCalledIsRefusedByName) {
  auto refusal = [](const std::vector<Tool>& tools, const std::string& choice) -> std::string {
    try {
      tool_call_grammar(tools, choice);
    } catch (const std::invalid_argument& error) {
      return error.what();
    }
    return "(accepted)";
  };
  EXPECT_EQ(refusal({}, "required"), "tool_choice 'required': the request has no tools");
  EXPECT_EQ(refusal(kTools, "sub"), "tool_choice: 'sub' is not one of the request's tools");
  EXPECT_EQ(refusal({{"f", "", "[]"}}, "f"), "tool 'f': parameters: expected a JSON Schema object's text");
  EXPECT_EQ(refusal({{"f", "", R"({"type": "object", "properties": {"x": {"multipleOf": 2}}})"}}, "required"),
            "tool 'f': parameters: "
              + schema_refusal(Json::parse(R"({"type": "object", "properties": {"x": {"multipleOf": 2}}})")));
}
