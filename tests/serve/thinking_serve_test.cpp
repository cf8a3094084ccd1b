// chorus-serve with a thinking model (builtin:tiny saved with Qwen3's chat template): a chat reply's
// <think> block comes back as reasoning_content, the same in a stream as in a plain response, and
// chat_template_kwargs.enable_thinking false puts the template's empty block into the prompt.
#include "runtime/runtime.hpp"
#include "serve_process.hpp"
#include "tests/thinking_model.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <regex>
#include <sstream>

using chorus::test::ServeProcess;
using nlohmann::json;

namespace {

// The message a streamed reply adds up to: its reasoning_content and content deltas put together.
json streamed_message(const std::string& events) {
  json message = {{"reasoning_content", ""}, {"content", ""}};
  std::istringstream lines(events);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("data: {", 0) != 0)
      continue;
    auto delta = json::parse(line.substr(6))["choices"][0]["delta"];
    for (const char* field : {"reasoning_content", "content"})
      if (delta.contains(field) && delta[field].is_string())
        message[field] = message[field].get<std::string>() + delta[field].get<std::string>();
  }
  return message;
}

// Asks the thinking model served at `client` for a chat reply held by `pattern` to a short thought
// and a number: the reasoning_content and the content come apart, the same in a stream. Returns the
// request and the plain reply.
std::pair<json, json> expect_reasoning_apart(httplib::Client& client, const std::string& model,
                                             const std::string& pattern) {
  json request = {{"model", model},
                  {"messages", {{{"role", "user"}, {"content", "2+2?"}}}},
                  {"guided_regex", pattern},
                  {"max_tokens", 40},
                  {"seed", 11}};
  auto plain = client.Post("/v1/chat/completions", request.dump(), "application/json");
  EXPECT_TRUE(plain && plain->status == 200) << (plain ? plain->body : "no response");
  if (!plain || plain->status != 200)
    return {request, json::object()};
  auto reply = json::parse(plain->body);
  auto message = reply["choices"][0]["message"];
  EXPECT_TRUE(std::regex_match(message["reasoning_content"].get<std::string>(), std::regex("[a-z]{2,4}"))) << message;
  EXPECT_TRUE(std::regex_match(message["content"].get<std::string>(), std::regex("[0-9]{1,2}"))) << message;
  request["stream"] = true;
  auto stream = client.Post("/v1/chat/completions", request.dump(), "application/json");
  EXPECT_TRUE(stream && stream->status == 200);
  if (stream) {
    auto streamed = streamed_message(stream->body);
    EXPECT_EQ(streamed["reasoning_content"], message["reasoning_content"]) << stream->body;
    EXPECT_EQ(streamed["content"], message["content"]) << stream->body;
  }
  request.erase("stream");
  return {request, reply};
}

} // namespace

TEST(ChorusServe, AThinkingModelsReasoningComesBackAsReasoningContent) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "thinking_serve";
  chorus::Runtime runtime;
  chorus::RecipeContext ctx(runtime, "test", dir, chorus::MetricsLogger(), spdlog::default_logger());
  auto folder = runtime.run(chorus::test::save_thinking_tiny(ctx, "thinking-tiny"));
  auto serve = ServeProcess::start({"--model", folder.string()});
  ASSERT_NE(serve.port, 0);
  httplib::Client client("127.0.0.1", serve.port);
  client.set_read_timeout(120, 0);
  // Untrained, the model is held to a short thought and a number by guided decoding.
  auto [request, reply] =
    expect_reasoning_apart(client, folder.string(), "<think>\n[a-z]{2,4}\n</think>\n\n[0-9]{1,2}");
  // Thinking off: the prompt gains the template's empty block, "<think>\n\n</think>\n\n" (19 bytes).
  request["guided_regex"] = "[0-9]{1,2}";
  request["chat_template_kwargs"] = {{"enable_thinking", false}};
  auto skipped = client.Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(skipped && skipped->status == 200) << (skipped ? skipped->body : "no response");
  auto without = json::parse(skipped->body);
  EXPECT_EQ(without["usage"]["prompt_tokens"].get<int>(), reply["usage"]["prompt_tokens"].get<int>() + 19);
  EXPECT_TRUE(without["choices"][0]["message"]["reasoning_content"].is_null()) << without;
}

// A model whose template opens the reasoning in the generation prompt (Qwen3's Thinking-2507 form):
// its completion starts inside the block; reasoning_content is what comes before </think>, in a
// stream from the first byte.
TEST(ChorusServe, ACompletionThatStartsInsideItsReasoningComesBackSplit) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "thinking_2507_serve";
  chorus::Runtime runtime;
  chorus::RecipeContext ctx(runtime, "test", dir, chorus::MetricsLogger(), spdlog::default_logger());
  auto folder = runtime.run(chorus::test::save_thinking_tiny(ctx, "thinking-2507-tiny", /*opened=*/true));
  auto serve = ServeProcess::start({"--model", folder.string()});
  ASSERT_NE(serve.port, 0);
  httplib::Client client("127.0.0.1", serve.port);
  client.set_read_timeout(120, 0);
  expect_reasoning_apart(client, folder.string(), "[a-z]{2,4}\n</think>\n\n[0-9]{1,2}");
}
