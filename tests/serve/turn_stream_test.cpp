// A streamed chat choice is told apart into reasoning, content and tool calls as its text comes,
// holding back only what may still be another part; whatever the pieces, what goes out adds up to
// what parse_assistant_turn reads from the whole text (the plain response's message).
#include "serve/openai_protocol.hpp"
#include "serve/turn_stream.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

using namespace chorus;
using namespace chorus::serve;
using nlohmann::json;

namespace {

const std::string kCall = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>";

const std::vector<std::string> kTexts = {
  "<think>\nTwo and two.\n</think>\n\n4",
  "<think>\n\nLong\n\nthought\n\n</think>\n\n\nAnswer\n",
  "<think></think>4",
  "<think>\ncut before the end\n",
  "<think>\n",
  "<thi",
  "<think",
  "",
  "4",
  "\n\n4\n",
  "4 </think> 5",
  " <think>x</think>4",
  "<think>\nAdd.\n</think>\n\n" + kCall,
  "<think>\nI could " + kCall + "\n</think>\n\nNo need.",
  "<think>a</think>\nSure.\n" + kCall + "\n" + kCall,
  "Text then " + kCall,
  "<think>a</think>\n<tool_call>\n{\"name\": broken}\n</tool_call>",
  "<think>a</think>\n<tool_cal",
  "<think>é and ü</think>\n\nça",
  // Llama 3.1's calls: the turn is a JSON object (or several joined by ";").
  "{\"name\": \"add\", \"parameters\": {\"a\": 1}}",
  "  {\"name\": \"add\", \"parameters\": {\"a\": \"}\"}}; {\"name\": \"now\", \"parameters\": {}}\n",
  "<|python_tag|>{\"name\": \"now\", \"arguments\": {}}",
  "{\"name\": \"add\", \"parameters\": {\"a\": 1}} and more",
  "{\"answer\": 4}",
  "{\"name\": \"add\", \"param",
  "<|py",
  "<b>bold</b> {\"name\": \"now\", \"parameters\": {}}",
  "<think>x</think>{\"name\": \"now\", \"parameters\": {}}",
  // Completions of templates whose prompt opens the block (Qwen3-Thinking-2507, DeepSeek-R1).
  "Two and two.\n</think>\n\n4",
  "\n\nthought cut\n",
  "</think>4",
  "x\n</th",
  "Add.\n</think>\n\n" + kCall,
};

// What a stream of `text` cut into `pieces` sends, put together.
ChatMessage streamed(const std::string& text, const std::vector<std::size_t>& cuts, bool reasoning, bool tools,
                     ToolCallFormat format, bool opened) {
  TurnStream stream(reasoning, tools, format, opened);
  ChatMessage sent{"assistant", "", {}};
  std::size_t from = 0;
  for (auto cut : cuts) {
    auto parts = stream.append(std::string_view(text).substr(from, cut - from));
    sent.reasoning += parts.reasoning;
    sent.content += parts.content;
    from = cut;
  }
  auto parts = stream.append(std::string_view(text).substr(from));
  sent.reasoning += parts.reasoning;
  sent.content += parts.content;
  auto rest = stream.finish();
  sent.reasoning += rest.reasoning;
  sent.content += rest.content;
  sent.tool_calls = rest.tool_calls;
  return sent;
}

} // namespace

TEST(TurnStream, WhatGoesOutAddsUpToTheParsedTurnWhereverTheTextIsCut) {
  std::mt19937 random(7);
  for (const auto& text : kTexts)
    for (int thinking = 0; thinking < 3; ++thinking) // none, a leading block, opened by the prompt
      for (bool tools : {false, true})
        for (auto format : {ToolCallFormat::tagged, ToolCallFormat::json})
          for (int trial = 0; trial < 40; ++trial) {
            std::vector<std::size_t> cuts;
            if (trial == 1) // a byte at a time
              for (std::size_t i = 1; i < text.size(); ++i)
                cuts.push_back(i);
            else if (trial > 1 && !text.empty())
              for (std::size_t i = 1; i < text.size(); ++i)
                if (random() % 3 == 0)
                  cuts.push_back(i);
            bool reasoning = thinking > 0, opened = thinking == 2;
            auto expected = parse_assistant_turn(text, reasoning, tools, format, opened);
            auto sent = streamed(text, cuts, reasoning, tools, format, opened);
            SCOPED_TRACE("text \"" + text + "\" thinking " + std::to_string(thinking) + " tools "
                         + std::to_string(tools) + " json " + std::to_string(format == ToolCallFormat::json) + " trial "
                         + std::to_string(trial));
            EXPECT_EQ(sent.reasoning, expected.reasoning);
            EXPECT_EQ(sent.content, expected.content);
            ASSERT_EQ(sent.tool_calls.size(), expected.tool_calls.size());
            for (std::size_t i = 0; i < sent.tool_calls.size(); ++i) {
              EXPECT_EQ(sent.tool_calls[i].name, expected.tool_calls[i].name);
              EXPECT_EQ(sent.tool_calls[i].arguments, expected.tool_calls[i].arguments);
            }
          }
}

TEST(TurnStream, AnOpenedBlocksReasoningGoesOutFromTheFirstByte) {
  TurnStream stream(/*reasoning=*/true, /*tool_calls=*/false, ToolCallFormat::tagged, /*opened=*/true);
  EXPECT_EQ(stream.append("\nTwo").reasoning, "Two"); // the newline that opens it is dropped
  EXPECT_EQ(stream.append(" and two.\n</think>\n\n4").content, "4");
  auto turn = parse_assistant_turn("\nTwo and two.\n</think>\n\n4", true, false, ToolCallFormat::tagged, true);
  EXPECT_EQ(turn.reasoning, "Two and two.");
  EXPECT_EQ(turn.content, "4");
  // Cut before </think>: all reasoning.
  EXPECT_EQ(parse_assistant_turn("thinking...", true, false, ToolCallFormat::tagged, true).reasoning, "thinking...");
  // Not a thinking model: `opened` means nothing.
  EXPECT_EQ(parse_assistant_turn("a</think>b", false, false, ToolCallFormat::tagged, true).content, "a</think>b");
}

TEST(TurnStream, ReasoningGoesOutAsItComes) {
  TurnStream stream(/*reasoning=*/true, /*tool_calls=*/false);
  EXPECT_EQ(stream.append("<thi").reasoning, ""); // may still be <think>
  EXPECT_EQ(stream.append("nk>\nTwo").reasoning, "Two");
  auto parts = stream.append(" and two.\n</th"); // the newline and the tag's start are held
  EXPECT_EQ(parts.reasoning, " and two.");
  parts = stream.append("ink>\n\n4");
  EXPECT_EQ(parts.reasoning, "");
  EXPECT_EQ(parts.content, "4");
  EXPECT_EQ(stream.finish().content, "");
}

TEST(OpenAIProtocol, AThinkingModelsReasoningIsItsOwnField) {
  auto request = parse_chat_request(
    R"({"model": "tiny", "messages": [{"role": "user", "content": "2+2?"},
        {"role": "assistant", "reasoning_content": "Easy.", "content": "4"}, {"role": "user", "content": "3+3?"}],
        "chat_template_kwargs": {"enable_thinking": false}})",
    {.model = "tiny"});
  EXPECT_FALSE(request.sampling.enable_thinking);
  EXPECT_EQ(request.messages[1].reasoning, "Easy.");
  EXPECT_TRUE(
    parse_chat_request(R"({"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})", {.model = "tiny"})
      .sampling.enable_thinking);
  auto refused = [](const std::string& body, const std::string& param) {
    try {
      parse_chat_request(body, {.model = "tiny"});
      ADD_FAILURE() << "accepted: " << body;
    } catch (const ApiError& error) {
      EXPECT_EQ(error.status, 400);
      EXPECT_EQ(error.param, param) << error.what();
    }
  };
  refused(R"({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": {"x": 1}})",
          "chat_template_kwargs.x");
  refused(R"({"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
              "chat_template_kwargs": {"enable_thinking": "no"}})",
          "chat_template_kwargs.enable_thinking");
  refused(R"({"model": "tiny", "messages": [{"role": "user", "content": "hi", "reasoning_content": "x"}]})",
          "messages[0].reasoning_content");

  auto header = make_header(request);
  Generation generation;
  generation.text = "<think>\nTwo and two.\n</think>\n\n4";
  generation.finish_reason = "stop";
  auto plain = json::parse(response_body(header, {generation}));
  EXPECT_EQ(plain["choices"][0]["message"]["content"], generation.text); // a model that does not think
  EXPECT_FALSE(plain["choices"][0]["message"].contains("reasoning_content"));
  header.reasoning = true;
  auto body = json::parse(response_body(header, {generation}));
  EXPECT_EQ(body["choices"][0]["message"]["reasoning_content"], "Two and two.");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "4");
  generation.text = "4";
  body = json::parse(response_body(header, {generation}));
  EXPECT_TRUE(body["choices"][0]["message"]["reasoning_content"].is_null());

  // Streamed: reasoning_content deltas, then content ones.
  StreamedChoice sent;
  auto data = [](const std::string& event) { return json::parse(event.substr(6))["choices"][0]; };
  auto first = data(chunk_event(header, 0, "<think>\nTwo", {}, sent));
  EXPECT_EQ(first["delta"]["role"], "assistant");
  EXPECT_EQ(first["delta"]["reasoning_content"], "Two");
  EXPECT_FALSE(first["delta"].contains("content"));
  auto second = data(chunk_event(header, 0, "\n</think>\n\n4", {}, sent));
  EXPECT_EQ(second["delta"]["content"], "4");
  EXPECT_FALSE(second["delta"].contains("reasoning_content"));
}
