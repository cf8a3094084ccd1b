// chorus-serve against the official OpenAI client (npm `openai`, pinned in tests/serve/package.json):
// a plain request, a streamed one, 32 concurrent ones, and malformed ones answered with OpenAI's
// error bodies (tests/serve/openai_client_test.mjs has the checks). Also: SIGTERM stops the server.
#include "serve_process.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <thread>

using chorus::test::ChildProcess;
using chorus::test::ServeProcess;

TEST(ChorusServe, OfficialOpenAIClient) {
  const std::filesystem::path tests = std::filesystem::path(CHORUS_SOURCE_DIR) / "tests/serve";
  ASSERT_TRUE(std::filesystem::exists(tests / "node_modules/openai"))
    << "scripts/setup.sh installs the npm packages of tests/serve";
  setenv("CHORUS_SERVE_TEST_KEY", "test-key-123", 1);
  auto serve = ServeProcess::start({"--api-key-env", "CHORUS_SERVE_TEST_KEY"});
  ASSERT_NE(serve.port, 0);
  ChildProcess client(CHORUS_NODE, {(tests / "openai_client_test.mjs").string(), serve.base_url(), "builtin:tiny"});
  EXPECT_EQ(client.wait(std::chrono::minutes(5)), 0) << client.output();
  EXPECT_NE(client.output().find("all checks passed"), std::string::npos) << client.output();
  // The key never shows in the server's output.
  serve.child->signal(SIGTERM);
  EXPECT_EQ(serve.child->wait(std::chrono::seconds(60)), 0) << serve.child->output();
  EXPECT_EQ(serve.child->output().find("test-key-123"), std::string::npos);
}

TEST(ChorusServe, RefusesBadCommandLinesAndModels) {
  ChildProcess no_model(CHORUS_SERVE_PROGRAM, {"--port", "0"});
  EXPECT_EQ(no_model.wait(), 2);
  EXPECT_NE(no_model.output().find("--model MODEL is required"), std::string::npos) << no_model.output();
  ChildProcess bad_port(CHORUS_SERVE_PROGRAM, {"--model", "builtin:tiny", "--port", "http"});
  EXPECT_EQ(bad_port.wait(), 2);
  EXPECT_NE(bad_port.output().find("--port http: expected an integer"), std::string::npos) << bad_port.output();
  unsetenv("CHORUS_SERVE_UNSET_KEY");
  ChildProcess no_key(CHORUS_SERVE_PROGRAM, {"--model", "builtin:tiny", "--api-key-env", "CHORUS_SERVE_UNSET_KEY"});
  EXPECT_EQ(no_key.wait(), 2);
  EXPECT_NE(no_key.output().find("CHORUS_SERVE_UNSET_KEY"), std::string::npos) << no_key.output();
  ChildProcess missing(CHORUS_SERVE_PROGRAM, {"--model", "/nonexistent/model-folder", "--port", "0"});
  EXPECT_EQ(missing.wait(), 1);
  EXPECT_NE(missing.output().find("/nonexistent/model-folder"), std::string::npos) << missing.output();
}

// A client that goes away mid-stream cancels its generation: the policy actor stops generating it
// long before it would have finished (compared with the same request generated to the end).
TEST(ChorusServe, AClientThatDisconnectsCancelsItsGeneration) {
  auto serve = ServeProcess::start({"--kv-cache-len", "1024"});
  ASSERT_NE(serve.port, 0);
  httplib::Client client("127.0.0.1", serve.port);
  client.set_read_timeout(300, 0);
  const std::string body = R"({"model": "builtin:tiny", "prompt": "a", "max_tokens": 1000, "temperature": 0,
                               "seed": 3)";
  auto generating = [&] {
    auto health = client.Get("/health");
    EXPECT_TRUE(health && health->status == 200);
    return health ? nlohmann::json::parse(health->body)["generating"].get<int>() : -1;
  };
  auto started = std::chrono::steady_clock::now();
  auto whole = client.Post("/v1/completions", body + "}", "application/json");
  ASSERT_TRUE(whole && whole->status == 200);
  auto full_time = std::chrono::steady_clock::now() - started;
  // Long enough that cancelling shows (greedy on builtin:tiny runs to max_tokens).
  ASSERT_GE(nlohmann::json::parse(whole->body)["usage"]["completion_tokens"].get<int>(), 300) << whole->body;

  httplib::Client streaming("127.0.0.1", serve.port);
  int chunks = 0;
  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/completions";
  request.body = body + R"(, "stream": true})";
  request.set_header("Content-Type", "application/json");
  request.content_receiver = [&](const char*, std::size_t, std::uint64_t, std::uint64_t) {
    return ++chunks < 3; // hang up after the third piece
  };
  started = std::chrono::steady_clock::now();
  streaming.send(request);
  EXPECT_EQ(chunks, 3);
  streaming.stop();
  while (generating() != 0 && std::chrono::steady_clock::now() - started < full_time)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto cancel_time = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(generating(), 0);
  EXPECT_LT(cancel_time, full_time / 2) << "full " << std::chrono::duration<double>(full_time).count()
                                        << " s, cancelled after " << std::chrono::duration<double>(cancel_time).count()
                                        << " s";
}
