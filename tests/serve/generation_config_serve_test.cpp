// chorus-serve takes a model's sampling defaults from its generation_config.json, as vLLM does: a
// folder whose file says temperature 0 answers a request that gives none greedily, whatever its
// seed; with --generation-config none the request samples at OpenAI's temperature 1.
#include <chorus/chorus.hpp>

#include "runtime/runtime.hpp"
#include "serve_process.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <fstream>

using chorus::test::ServeProcess;
using nlohmann::json;

namespace {

// The texts of two chat replies that differ only in their seed, from the server at `port`.
std::pair<std::string, std::string> replies_of_two_seeds(int port, const std::string& model) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(120, 0);
  std::vector<std::string> texts;
  for (int seed : {1, 2}) {
    json request = {{"model", model},
                    {"messages", {{{"role", "user"}, {"content", "Say something."}}}},
                    {"max_tokens", 24},
                    {"seed", seed}};
    auto reply = client.Post("/v1/chat/completions", request.dump(), "application/json");
    EXPECT_TRUE(reply && reply->status == 200) << (reply ? reply->body : "no response");
    texts.push_back(reply && reply->status == 200
                      ? json::parse(reply->body)["choices"][0]["message"]["content"].get<std::string>()
                      : "");
  }
  return {texts[0], texts[1]};
}

} // namespace

TEST(ChorusServe, TheModelsGenerationConfigGivesTheSamplingDefaults) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "generation_config_serve";
  chorus::Runtime runtime;
  chorus::RecipeContext ctx(runtime, "test", dir, chorus::MetricsLogger(), spdlog::default_logger());
  auto folder = runtime.run([&]() -> chorus::Task<std::filesystem::path> {
    auto tiny = co_await (co_await chorus::ModelRef{"builtin:tiny"}.to_builder(ctx, {})).spawn_train("tiny");
    co_return std::filesystem::path(co_await tiny.save("greedy-by-default", ctx));
  }());
  auto generation = json::parse(std::ifstream(folder / "generation_config.json"));
  generation["temperature"] = 0.0;
  generation["repetition_penalty"] = 1.05;
  std::ofstream(folder / "generation_config.json") << generation.dump();

  auto greedy = ServeProcess::start({"--model", folder.string()});
  ASSERT_NE(greedy.port, 0);
  EXPECT_NE(
    greedy.child->output().find("sampling defaults from the model's generation_config.json (--generation-config "
                                "none for OpenAI's): temperature=0, repetition_penalty=1.05"),
    std::string::npos)
    << greedy.child->output();
  auto [first, second] = replies_of_two_seeds(greedy.port, folder.string());
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(first, second);

  auto sampled = ServeProcess::start({"--model", folder.string(), "--generation-config", "none"});
  ASSERT_NE(sampled.port, 0);
  auto [one, other] = replies_of_two_seeds(sampled.port, folder.string());
  EXPECT_NE(one, other);

  // A value no request could give stops the server, naming the file and the key.
  generation["temperature"] = 3.0;
  std::ofstream(folder / "generation_config.json") << generation.dump();
  chorus::test::ChildProcess bad(CHORUS_SERVE_PROGRAM, {"--model", folder.string(), "--port", "0"});
  EXPECT_TRUE(bad.wait_for_output("greedy-by-default/generation_config.json: 'temperature' must be between 0 and 2",
                                  std::chrono::seconds(120)))
    << bad.output();
  EXPECT_NE(bad.wait(), 0);

  // So does an option value it does not know.
  chorus::test::ChildProcess unknown(CHORUS_SERVE_PROGRAM, {"--model", folder.string(), "--generation-config", "vllm"});
  EXPECT_TRUE(unknown.wait_for_output("--generation-config vllm: expected auto or none", std::chrono::seconds(60)))
    << unknown.output();
  EXPECT_EQ(unknown.wait(), 2);
}
