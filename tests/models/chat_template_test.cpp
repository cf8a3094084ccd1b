// Tool calls and reasoning read back from completions (parse_tool_calls, parse_assistant_turn),
// Python's JSON spelling and strip, and the ChatML rendering's refusals. The renderings themselves
// are checked against Qwen's and Llama's own templates in bpe_tokenizer_test.cpp.
#include "models/chat_template.hpp"
#include "models/tokenizer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

using namespace chorus;
using chorus::models::ByteTokenizer;

TEST(ParseToolCalls, ReadsHermesBlocksAfterTheContent) {
  auto turn =
    parse_tool_calls("Let me add these.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2,\"b\":3}}\n"
                     "</tool_call>\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>");
  EXPECT_EQ(turn.role, "assistant");
  EXPECT_EQ(turn.content, "Let me add these.");
  ASSERT_EQ(turn.tool_calls.size(), 2u);
  EXPECT_EQ(turn.tool_calls[0].name, "add");
  EXPECT_EQ(turn.tool_calls[0].arguments, "{\"a\": 2, \"b\": 3}"); // as Python's json.dumps spells it
  EXPECT_EQ(turn.tool_calls[1].name, "now");
  EXPECT_EQ(turn.tool_calls[1].arguments, "{}");
  // Keys keep the model's order.
  auto ordered =
    parse_tool_calls("<tool_call>{\"name\": \"f\", \"arguments\": {\"z\": [1, {\"y\": \"é\"}], \"a\": null}}");
  ASSERT_EQ(ordered.tool_calls.size(), 1u); // an unclosed last block is read (generation stopped there)
  EXPECT_EQ(ordered.content, "");
  EXPECT_EQ(ordered.tool_calls[0].arguments, "{\"z\": [1, {\"y\": \"é\"}], \"a\": null}");
}

TEST(ParseToolCalls, TextWithoutOrWithBrokenCallsIsAllContent) {
  for (std::string text :
       {"Just an answer.", "", "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2}\n</tool_call>",
        "<tool_call>{\"name\": 3, \"arguments\": {}}</tool_call>", "<tool_call>{\"name\": \"f\"}</tool_call>",
        "<tool_call>{\"name\": \"f\", \"arguments\": \"{}\"}</tool_call>",
        "ok <tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call><tool_call>nope</tool_call>"}) {
    auto turn = parse_tool_calls(text);
    EXPECT_EQ(turn.content, text);
    EXPECT_TRUE(turn.tool_calls.empty()) << text;
  }
}

// Mistral's two forms: a JSON list after [TOOL_CALLS] (Nemo, Small 3), and name[ARGS]{...} per
// [TOOL_CALLS] (tokenizer v11 on). Ids are the model's, or nine letters and digits drawn from the
// call, since Mistral's templates refuse any other.
TEST(ParseToolCalls, ReadsMistralsCallsInBothForms) {
  auto turn = parse_tool_calls("Adding. [TOOL_CALLS][{\"name\": \"add\", \"arguments\": {\"a\": 2,\"b\":3}, "
                               "\"id\": \"abcDEF123\"}, {\"name\": \"now\", \"arguments\": {}}]",
                               ToolCallFormat::mistral);
  EXPECT_EQ(turn.content, "Adding.");
  ASSERT_EQ(turn.tool_calls.size(), 2u);
  EXPECT_EQ(turn.tool_calls[0].name, "add");
  EXPECT_EQ(turn.tool_calls[0].arguments, "{\"a\": 2, \"b\": 3}");
  EXPECT_EQ(turn.tool_calls[0].id, "abcDEF123");
  const auto& drawn = turn.tool_calls[1].id;
  EXPECT_EQ(drawn.size(), 9u);
  EXPECT_TRUE(
    std::all_of(drawn.begin(), drawn.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }));
  EXPECT_EQ(
    parse_tool_calls("[TOOL_CALLS][{\"name\": \"now\", \"arguments\": {}}, {\"name\": \"now\", \"arguments\": {}}]",
                     ToolCallFormat::mistral)
      .tool_calls[1]
      .id,
    drawn); // the same call in the same place, the same id
  auto v11 = parse_tool_calls("[TOOL_CALLS]add[ARGS]{\"a\": 1, \"b\": 2}[TOOL_CALLS]now[CALL_ID]x1y2z3w4v[ARGS]{}",
                              ToolCallFormat::mistral);
  EXPECT_EQ(v11.content, "");
  ASSERT_EQ(v11.tool_calls.size(), 2u);
  EXPECT_EQ(v11.tool_calls[0].name, "add");
  EXPECT_EQ(v11.tool_calls[0].arguments, "{\"a\": 1, \"b\": 2}");
  EXPECT_EQ(v11.tool_calls[0].id.size(), 9u);
  EXPECT_EQ(v11.tool_calls[1].name, "now");
  EXPECT_EQ(v11.tool_calls[1].id, "x1y2z3w4v");
  for (std::string text : {"No calls here.", "[TOOL_CALLS][{\"name\": \"add\"}]", "[TOOL_CALLS][]",
                           "[TOOL_CALLS][{\"name\": \"add\", \"arguments\": {}}", "[TOOL_CALLS]add{\"a\": 1}",
                           "[TOOL_CALLS][ARGS]{}", "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>"}) {
    auto plain = parse_tool_calls(text, ToolCallFormat::mistral);
    EXPECT_EQ(plain.content, text);
    EXPECT_TRUE(plain.tool_calls.empty()) << text;
  }
}

TEST(ParseToolCalls, AParsedTurnRendersAsTheTextItCameFrom) {
  std::string text =
    "Checking.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": [1, 2]}}\n</tool_call>";
  ByteTokenizer bytes;
  auto rendered = bytes.decode(bytes.apply_chat_template({parse_tool_calls(text)}, false));
  EXPECT_EQ(rendered, "<|im_start|>assistant\n" + text + "<|im_end|>\n");
}

TEST(ParseAssistantTurn, AThinkingModelsReasoningIsSplitFromItsAnswer) {
  auto turn = parse_assistant_turn("<think>\nTwo and two.\n</think>\n\n4", /*reasoning=*/true, /*tool_calls=*/false);
  EXPECT_EQ(turn.role, "assistant");
  EXPECT_EQ(turn.reasoning, "Two and two.");
  EXPECT_EQ(turn.content, "4");
  // Cut before the closing tag: all reasoning.
  turn = parse_assistant_turn("<think>\nTwo and\n", true, false);
  EXPECT_EQ(turn.reasoning, "Two and");
  EXPECT_EQ(turn.content, "");
  // No thinking (enable_thinking false, whose prompt holds an empty block): all content, even a
  // closing tag further on.
  for (std::string text : {"4", "4 </think> 5", " <think>x</think>4"}) {
    turn = parse_assistant_turn(text, true, false);
    EXPECT_EQ(turn.reasoning, "");
    EXPECT_EQ(turn.content, text);
  }
  // Not a thinking model: the text is the content.
  turn = parse_assistant_turn("<think>x</think>4", false, false);
  EXPECT_EQ(turn.content, "<think>x</think>4");
  EXPECT_EQ(turn.reasoning, "");
}

TEST(ParseAssistantTurn, CallsAreReadAfterTheReasoningOnly) {
  const std::string call = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>";
  auto turn = parse_assistant_turn("<think>\nI could " + call + "\n</think>\n\nNo need.", true, true);
  EXPECT_TRUE(turn.tool_calls.empty()); // a call thought about is not made
  EXPECT_EQ(turn.content, "No need.");
  turn = parse_assistant_turn("<think>\nAdd.\n</think>\n\n" + call, true, true);
  ASSERT_EQ(turn.tool_calls.size(), 1u);
  EXPECT_EQ(turn.tool_calls[0].name, "add");
  EXPECT_EQ(turn.reasoning, "Add.");
  EXPECT_EQ(turn.content, "");
  // Without tools offered, a call's text stays content.
  EXPECT_EQ(parse_assistant_turn(call, true, false).content, call);
}

TEST(ChatTemplate, TheByteTokenizerWritesToolsAsQwenDoes) {
  ByteTokenizer bytes;
  std::vector<Tool> tools{{"add", "Adds.", R"({"type": "object", "properties": {"b": {}, "a": {}}})"}};
  auto text = bytes.decode(bytes.apply_chat_template({{"user", "2+3?", {}}}, true, tools));
  EXPECT_NE(text.find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"add\", \"description\": \"Adds.\", "
                      "\"parameters\": {\"type\": \"object\", \"properties\": {\"b\": {}, \"a\": {}}}}}\n</tools>"),
            std::string::npos)
    << text;
  std::string tail = "</tool_call><|im_end|>\n<|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(text.substr(text.size() - tail.size()), tail);
  EXPECT_EQ(text.find("<|im_start|>system\n# Tools\n\n"), 0u);
}

TEST(ChatTemplate, BadToolsAndRolesAreRefusedByName) {
  ByteTokenizer bytes;
  try {
    bytes.apply_chat_template({{"user", "x", {}}}, true, {{"lookup", "", "[1, 2]"}});
    FAIL() << "parameters that are no object were accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("tool 'lookup': parameters"), std::string::npos) << e.what();
  }
  try {
    bytes.apply_chat_template({{"user", "x", {}}, {"function", "y", {}}}, true);
    FAIL() << "an unknown role was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("message 1: role 'function'"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, PythonJsonSpellsAsJsonDumps) {
  auto value =
    nlohmann::ordered_json::parse(R"({"b": [1, 2.5, "x\n\u0001"], "a": {"t": true, "n": null}, "e": {}, "l": []})");
  EXPECT_EQ(models::python_json(value),
            R"({"b": [1, 2.5, "x\n\u0001"], "a": {"t": true, "n": null}, "e": {}, "l": []})");
}

TEST(ChatTemplate, PythonStripRemovesWhatStrDotStripDoes) {
  EXPECT_EQ(models::python_strip(" \t\n\r\v\f\x1c\x1f"
                                 "a b\u00a0\u2003\u3000\u2029"),
            "a b");
  EXPECT_EQ(models::python_strip("\u200bx\ufeff"), "\u200bx\ufeff"); // zero-width space and BOM are not spaces
  EXPECT_EQ(models::python_strip("é "), "é");
  EXPECT_EQ(models::python_strip("   "), "");
}

TEST(ParseToolCalls, ReadsLlamasJsonCallsAsTheWholeTurn) {
  auto json = ToolCallFormat::json;
  auto one = parse_tool_calls(" {\"name\": \"add\", \"parameters\": {\"a\": 2,\"b\":3}}\n", json);
  EXPECT_EQ(one.content, "");
  ASSERT_EQ(one.tool_calls.size(), 1u);
  EXPECT_EQ(one.tool_calls[0].name, "add");
  EXPECT_EQ(one.tool_calls[0].arguments, "{\"a\": 2, \"b\": 3}"); // as Python's json.dumps spells it
  // Several joined by ";", "arguments" for "parameters", <|python_tag|> before, braces in strings.
  auto two = parse_tool_calls("<|python_tag|>{\"name\": \"say\", \"arguments\": {\"text\": \"}{;\\\"\"}};"
                              "{\"name\": \"now\", \"parameters\": {}}",
                              json);
  ASSERT_EQ(two.tool_calls.size(), 2u);
  EXPECT_EQ(two.tool_calls[0].arguments, "{\"text\": \"}{;\\\"\"}");
  EXPECT_EQ(two.tool_calls[1].name, "now");
  // Not calls: the whole text is the content.
  for (const std::string text : {"The answer is 4.", "{\"answer\": 4}", "{\"name\": \"add\", \"parameters\": 4}",
                                 "{\"name\": \"add\", \"parameters\": {}} and then", "{\"name\": \"add\", \"param",
                                 "Call {\"name\": \"now\", \"parameters\": {}}"}) {
    auto turn = parse_tool_calls(text, json);
    EXPECT_EQ(turn.content, text);
    EXPECT_TRUE(turn.tool_calls.empty()) << text;
  }
  // The tagged format does not read them, nor the json format tagged blocks.
  EXPECT_TRUE(parse_tool_calls("{\"name\": \"now\", \"parameters\": {}}").tool_calls.empty());
  EXPECT_TRUE(
    parse_tool_calls("<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>", json).tool_calls.empty());
}
