// Function calling in chorus-serve's wire format: tools and tool_choice in requests, tool messages in
// the conversation, and tool_calls in responses and stream chunks.
#include "serve/openai_protocol.hpp"
#include "serve/openai_tools.hpp"
#include "serve/turn_stream.hpp"

#include <gtest/gtest.h>

using namespace chorus;
using namespace chorus::serve;
using nlohmann::json;

namespace {

const RequestLimits kLimits{.model = "tiny", .max_choices = 4, .default_max_tokens = 99};

const std::string kTools = R"("tools": [
  {"type": "function", "function": {"name": "get_weather", "description": "The weather.", "strict": true,
   "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}},
  {"type": "function", "function": {"name": "now"}}])";

std::string chat(const std::string& extra) {
  return R"({"model": "tiny", "messages": [{"role": "user", "content": "Weather?"}], )" + kTools + extra + "}";
}

ApiError refusal(const std::string& body) {
  try {
    parse_chat_request(body, kLimits);
  } catch (const ApiError& error) {
    return error;
  }
  ADD_FAILURE() << "accepted: " << body;
  return ApiError(0, "");
}

Generation generated(const std::string& text, const std::string& finish_reason = "stop") {
  Generation generation;
  generation.text = text;
  generation.finish_reason = finish_reason;
  return generation;
}

const std::string kCall = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>";

} // namespace

TEST(OpenAITools, ParsesToolsAndTheirChoice) {
  auto request = parse_chat_request(chat(""), kLimits);
  ASSERT_EQ(request.tools.size(), 2u);
  EXPECT_EQ(request.tools[0].name, "get_weather");
  EXPECT_EQ(request.tools[0].description, "The weather.");
  // The schema's keys keep the order they were sent in: the prompt shows them so.
  EXPECT_EQ(request.tools[0].parameters,
            R"({"type":"object","required":["city"],"properties":{"city":{"type":"string"}}})");
  EXPECT_EQ(request.tools[1].parameters, "");
  EXPECT_EQ(request.sampling.tool_choice, ""); // auto
  EXPECT_TRUE(make_header(request).tool_calls);

  auto required = parse_chat_request(chat(R"(, "tool_choice": "required", "parallel_tool_calls": false)"), kLimits);
  EXPECT_EQ(required.sampling.tool_choice, "required");
  EXPECT_FALSE(required.sampling.parallel_tool_calls);
  EXPECT_TRUE(request.sampling.parallel_tool_calls);
  EXPECT_EQ(parse_chat_request(chat(R"(, "tool_choice": {"type": "function", "function": {"name": "now"}})"), kLimits)
              .sampling.tool_choice,
            "now");
  auto none = parse_chat_request(chat(R"(, "tool_choice": "none")"), kLimits);
  EXPECT_TRUE(none.tools.empty()); // not shown to the model
  EXPECT_FALSE(make_header(none).tool_calls);
}

TEST(OpenAITools, ParsesToolMessagesAndCallsInTheConversation) {
  auto request = parse_chat_request(R"({"model": "tiny", "messages": [
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "-3 °C"}]})",
                                    kLimits);
  ASSERT_EQ(request.messages.size(), 3u);
  EXPECT_EQ(request.messages[1].content, "");
  ASSERT_EQ(request.messages[1].tool_calls.size(), 1u);
  EXPECT_EQ(request.messages[1].tool_calls[0].name, "get_weather");
  EXPECT_EQ(request.messages[1].tool_calls[0].arguments, "{\"city\": \"Oslo\"}");
  EXPECT_EQ(request.messages[1].tool_calls[0].id, "call_1");
  EXPECT_EQ(request.messages[2].role, "tool");
  EXPECT_EQ(request.messages[2].content, "-3 °C");
}

TEST(OpenAITools, RefusesWhatItCannotServeNamingTheField) {
  EXPECT_EQ(refusal(chat(R"(, "tool_choice": "sometimes")")).param, "tool_choice");
  EXPECT_EQ(refusal(chat(R"(, "tool_choice": {"type": "function", "function": {"name": "later"}})")).param,
            "tool_choice");
  EXPECT_EQ(refusal(chat(R"(, "tool_choice": "required", "guided_regex": "a")")).param, "tool_choice");
  const std::string base = R"({"model": "tiny", "messages": [{"role": "user", "content": "x"}], )";
  EXPECT_EQ(refusal(base + R"("tool_choice": "required"})").param, "tool_choice"); // no tools
  EXPECT_EQ(refusal(base + R"("tools": {}})").param, "tools");
  EXPECT_EQ(refusal(base + R"("tools": [{"type": "retrieval"}]})").param, "tools[0]");
  EXPECT_EQ(refusal(base + R"("tools": [{"type": "function", "function": {"name": "a b"}}]})").param,
            "tools[0].function.name");
  EXPECT_EQ(refusal(base + R"("tools": [{"type": "function", "function": {"name": "f"}},
                                        {"type": "function", "function": {"name": "f"}}]})")
              .param,
            "tools[1].function.name");
  EXPECT_EQ(refusal(base + R"("tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]})").param,
            "tools[0].function.parameters");
  EXPECT_EQ(refusal(base + R"("tools": [{"type": "function", "function": {"name": "f", "returns": {}}}]})").param,
            "tools[0].function.returns");
  // A schema guided decoding cannot follow is refused when a call must follow it.
  auto unfollowable = refusal(base + R"("tool_choice": "required", "tools": [{"type": "function", "function":
    {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "number", "multipleOf": 2}}}}}]})");
  EXPECT_EQ(unfollowable.param, "tools");
  EXPECT_NE(std::string(unfollowable.what()).find("tool 'f': parameters:"), std::string::npos) << unfollowable.what();
  EXPECT_EQ(refusal(R"({"model": "tiny", "messages": [{"role": "user", "content": "x", "tool_calls": []}]})").param,
            "messages[0].tool_calls");
  EXPECT_EQ(refusal(R"({"model": "tiny", "messages": [{"role": "assistant", "content": null, "tool_calls":
    [{"type": "function", "function": {"name": "f", "arguments": {}}}]}]})")
              .param,
            "messages[0].tool_calls[0]");
}

TEST(OpenAITools, ResponsesCarryTheCallsTheModelWrote) {
  auto header = make_header(parse_chat_request(chat(""), kLimits));
  auto body = json::parse(response_body(
    header, {generated("Checking.\n" + kCall), generated("Sunny, I think."), generated(kCall, "length")}));
  const auto& called = body["choices"][0];
  EXPECT_EQ(called["finish_reason"], "tool_calls");
  EXPECT_EQ(called["message"]["content"], "Checking.");
  ASSERT_EQ(called["message"]["tool_calls"].size(), 1u);
  const auto& call = called["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(call["function"]["arguments"], "{\"city\": \"Oslo\"}");
  EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(body["choices"][1]["message"], json({{"role", "assistant"}, {"content", "Sunny, I think."}}));
  EXPECT_EQ(body["choices"][1]["finish_reason"], "stop");
  EXPECT_EQ(body["choices"][2]["finish_reason"], "length"); // cut: the call is there, the reason stays
  EXPECT_TRUE(body["choices"][2]["message"]["content"].is_null());
}

TEST(OpenAITools, StreamsHoldBackWhatMayBeACall) {
  auto header = make_header(parse_chat_request(chat(R"(, "stream": true)"), kLimits));
  auto content_of = [](const std::string& event) {
    return event.empty() ? std::string() : json::parse(event.substr(6))["choices"][0]["delta"].value("content", "");
  };
  // A message, then a call: the content goes out as it comes, up to the white space before the call.
  StreamedChoice sent;
  std::string streamed;
  std::vector<std::string> pieces{"Check", "ing.\n", "<tool", "_call>\n{\"name\": \"get_weather\", ",
                                  "\"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"};
  for (const auto& piece : pieces)
    streamed += content_of(chunk_event(header, 0, piece, {}, sent));
  EXPECT_EQ(streamed, "Checking.");
  auto last = finish_event(header, 0, "stop", sent);
  auto split = last.find("\n\ndata: ");
  ASSERT_NE(split, std::string::npos) << last;
  auto calls = json::parse(last.substr(6, split - 6))["choices"][0]["delta"]["tool_calls"];
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["index"], 0);
  EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
  EXPECT_EQ(calls[0]["function"]["arguments"], "{\"city\": \"Oslo\"}");
  EXPECT_EQ(json::parse(last.substr(split + 8))["choices"][0]["finish_reason"], "tool_calls");

  // No call after all: what was held goes out as content before the end.
  StreamedChoice plain;
  std::string text;
  for (std::string piece : {"a <", "tool", " b\n", "\n"})
    text += content_of(chunk_event(header, 0, piece, {}, plain));
  auto end = finish_event(header, 0, "stop", plain);
  text += content_of(end.substr(0, end.find("\n\n") + 2));
  EXPECT_EQ(text, "a <tool b\n\n");
}

TEST(OpenAITools, CertainContentStopsBeforeAnyCall) {
  EXPECT_EQ(certain_content("Hello"), 5u);
  EXPECT_EQ(certain_content("Hello <tool_c"), 5u);
  EXPECT_EQ(certain_content("Hello\n<tool_call>{"), 5u);
  EXPECT_EQ(certain_content("a < b"), 5u);
  EXPECT_EQ(certain_content("<"), 0u);
  EXPECT_EQ(certain_content("x \n"), 1u);
}
