// chorus-serve with a Llama 3.1-format model (a random model with Llama 3.2's tokenizer and chat
// template): tools go into the prompt as that template writes them, the JSON call the model writes
// comes back as tool_calls (streamed too), and a conversation carrying the call and its result in
// ipython turns is accepted.
#include "serve_process.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <sstream>

using chorus::test::ServeProcess;
using nlohmann::json;

TEST(ChorusServe, ALlamaModelsJsonCallComesBackAsToolCalls) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "llama32_serve";
  ASSERT_EQ(std::system((std::string(CHORUS_SAVE_LLAMA_TINY) + " " + folder.string()).c_str()), 0);
  auto serve = ServeProcess::start({"--model", folder.string()});
  ASSERT_NE(serve.port, 0);
  httplib::Client client("127.0.0.1", serve.port);
  client.set_read_timeout(120, 0);
  json tools = {{{"type", "function"},
                 {"function",
                  {{"name", "add"},
                   {"description", "Adds two digits."},
                   {"parameters",
                    {{"type", "object"},
                     {"properties",
                      {{"a", {{"type", "integer"}, {"minimum", 1}, {"maximum", 9}}},
                       {"b", {{"type", "integer"}, {"minimum", 1}, {"maximum", 9}}}}},
                     {"required", {"a", "b"}},
                     {"additionalProperties", false}}}}}}};
  // Untrained, the model is held to a call of add by guided decoding.
  json request = {{"model", folder.string()}, {"messages", {{{"role", "user"}, {"content", "2+3?"}}}},
                  {"tools", tools},           {"tool_choice", {{"type", "function"}, {"function", {{"name", "add"}}}}},
                  {"max_tokens", 40},         {"seed", 5}};
  auto plain = client.Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(plain && plain->status == 200) << (plain ? plain->body : "no response");
  auto reply = json::parse(plain->body);
  auto choice = reply["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls") << choice;
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u) << choice;
  auto call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["function"]["name"], "add");
  auto arguments = json::parse(call["function"]["arguments"].get<std::string>());
  EXPECT_TRUE(arguments["a"].is_number_integer() && arguments["b"].is_number_integer()) << arguments;
  EXPECT_TRUE(choice["message"]["content"].is_null()) << choice;

  // Streamed: no content goes out, the call comes at the end, the same.
  request["stream"] = true;
  auto stream = client.Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(stream && stream->status == 200);
  std::string content;
  json streamed_calls = json::array();
  std::istringstream lines(stream->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("data: {", 0) != 0)
      continue;
    auto delta = json::parse(line.substr(6))["choices"][0]["delta"];
    if (delta.contains("content") && delta["content"].is_string())
      content += delta["content"].get<std::string>();
    if (delta.contains("tool_calls"))
      for (const auto& part : delta["tool_calls"])
        streamed_calls.push_back(part);
  }
  EXPECT_EQ(content, "") << stream->body;
  ASSERT_EQ(streamed_calls.size(), 1u) << stream->body;
  EXPECT_EQ(streamed_calls[0]["function"]["arguments"], call["function"]["arguments"]);

  // The call and its result sent back: an ipython turn, longer than the question alone.
  request.erase("stream");
  request.erase("tool_choice");
  request["messages"].push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", {call}}});
  request["messages"].push_back({{"role", "tool"}, {"tool_call_id", call["id"]}, {"content", "5"}});
  request["max_tokens"] = 2;
  auto answered = client.Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(answered && answered->status == 200) << (answered ? answered->body : "no response");
  EXPECT_GT(json::parse(answered->body)["usage"]["prompt_tokens"].get<int>(),
            reply["usage"]["prompt_tokens"].get<int>() + 10);
  // Two calls in one turn: Llama's template takes one, a 400 that says so.
  request["messages"][1]["tool_calls"] = {call, call};
  auto refused = client.Post("/v1/chat/completions", request.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;
  EXPECT_NE(refused->body.find("only supports single tool-calls"), std::string::npos) << refused->body;
}
