// OpenAI judge graders: against chorus-serve on loopback (the same verdicts as BinaryJudgeGrader on
// the same model), and against a scripted endpoint (a test double) for the key, retries, the
// concurrency limit, timeouts and errors that must not be retried.
#include <chorus/chorus.hpp>
#include <chorus/grader.hpp>

#include "runtime/runtime.hpp"
#include "scripted_endpoint.hpp"
#include "serve_process.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

using namespace chorus;
using chorus::test::ScriptedEndpoint;
using nlohmann::json;

namespace {

Sample answer(std::string completion) {
  return {{{"user", "Say thanks."}}, std::move(completion), Json::object()};
}

// Text as it crosses HTTP: ill-formed UTF-8 replaced by U+FFFD.
std::string as_sent(const std::string& text) {
  return json::parse(json(text).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

template <class T>
T run(Task<T> task) {
  Runtime runtime;
  return runtime.run(std::move(task));
}

} // namespace

TEST(OpenAIJudge, JudgesLikeBinaryJudgeGraderThroughChorusServe) {
  setenv("CHORUS_JUDGE_TEST_KEY", "judge-key-42", 1);
  auto serve = test::ServeProcess::start({"--api-key-env", "CHORUS_JUDGE_TEST_KEY"});
  ASSERT_NE(serve.port, 0);
  SamplingParams sampling{.temperature = 0.0, .max_tokens = 24};
  OpenAIEndpoint endpoint{
    .base_url = serve.base_url(), .model = "builtin:tiny", .api_key_env = "CHORUS_JUDGE_TEST_KEY"};
  // No retries: a retry shows the judge its own answer, which crossed HTTP as valid UTF-8 (an
  // untrained model's stray bytes replaced), so only first answers are the same on both sides.
  OpenAIJudgeGrader remote({.grader_key = "polite",
                            .criteria = "Is the response polite?",
                            .endpoint = endpoint,
                            .sampling = sampling,
                            .max_parsing_retries = 0});
  OpenAIRangeJudgeGrader range(
    {.grader_key = "quality", .criteria = "Quality", .endpoint = endpoint, .sampling = sampling});

  Runtime runtime;
  RecipeContext ctx(runtime, "test", std::filesystem::path(::testing::TempDir()) / "openai_judge", MetricsLogger(),
                    spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    // The same model (builtin:tiny, seed 0) judging in this process, greedy: the same words.
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 1024});
    auto judge = co_await builder.spawn_inference("judge");
    BinaryJudgeGrader local({.grader_key = "polite",
                             .criteria = "Is the response polite?",
                             .model = judge,
                             .sampling = sampling,
                             .max_parsing_retries = 0});
    for (const auto* response : {"Thank you so much!", "Go away."}) {
      auto [over_http, in_process, ranged] =
        co_await gather(remote.grade(answer(response)), local.grade(answer(response)), range.grade(answer(response)));
      EXPECT_EQ(over_http.score, in_process.score);
      EXPECT_EQ(over_http.unparseable, in_process.unparseable);
      EXPECT_EQ(over_http.explanation, as_sent(in_process.explanation));
      EXPECT_EQ(over_http.ignored, in_process.ignored);
      EXPECT_EQ(over_http.scores.count("polite"), over_http.ignored ? 0u : 1u);
      EXPECT_GE(ranged.score, 0.0);
      EXPECT_LE(ranged.score, 1.0);
      EXPECT_EQ(ranged.scores.count("quality"), ranged.ignored ? 0u : 1u);
    }
  }());
  // A wrong key is refused by the server, and that is final (no retry helps).
  setenv("CHORUS_JUDGE_WRONG_KEY", "not-the-key", 1);
  endpoint.api_key_env = "CHORUS_JUDGE_WRONG_KEY";
  OpenAIJudgeGrader stranger({.criteria = "Is it polite?", .endpoint = endpoint});
  try {
    run(stranger.grade(answer("Hi")));
    ADD_FAILURE() << "a wrong key was accepted";
  } catch (const Error& error) {
    std::string what = error.what();
    EXPECT_NE(what.find("answered 401"), std::string::npos) << what;
    EXPECT_NE(what.find(serve.base_url()), std::string::npos) << what;
    EXPECT_EQ(what.find("not-the-key"), std::string::npos) << what;
  }
}

TEST(OpenAIJudge, RetriesRateLimitsAndServerErrorsWithTheKeyFromTheEnvironment) {
  setenv("CHORUS_JUDGE_TEST_KEY", "sekret", 1);
  ScriptedEndpoint scripted([](int number, const httplib::Request&, httplib::Response& response) {
    if (number == 0) {
      response.status = 429;
      response.set_header("Retry-After", "0.05");
      response.set_content(R"({"error": {"message": "slow down", "type": "rate_limit"}})", "application/json");
    } else if (number == 1) {
      response.status = 503;
    } else {
      ScriptedEndpoint::completion(response, "Polite enough.\nVERDICT: PASS");
    }
  });
  OpenAIJudgeGrader grader({.grader_key = "polite", .criteria = "Is it polite?", .endpoint = scripted.endpoint()});
  auto grade = run(grader.grade(answer("Thanks!")));
  EXPECT_EQ(grade.score, 1.0);
  EXPECT_EQ(grade.unparseable, 0);
  EXPECT_EQ(scripted.requests(), 3);
  for (const auto& authorization : scripted.authorizations())
    EXPECT_EQ(authorization, "Bearer sekret");
  auto body = json::parse(scripted.bodies().back());
  EXPECT_EQ(body["model"], "judge-model");
  EXPECT_EQ(body["temperature"], 0.0);
  EXPECT_EQ(body["max_tokens"], 64);
  EXPECT_NE(body["messages"][1]["content"].get<std::string>().find("Criterion: Is it polite?"), std::string::npos);
  EXPECT_NE(body["messages"][1]["content"].get<std::string>().find("Thanks!"), std::string::npos);

  // Range: the score on the stated scale, normalised.
  ScriptedEndpoint rating([](int, const httplib::Request&, httplib::Response& response) {
    ScriptedEndpoint::completion(response, "Decent.\nSCORE: 7");
  });
  OpenAIRangeJudgeGrader range({.criteria = "Quality", .endpoint = rating.endpoint(), .min_score = 1, .max_score = 10});
  EXPECT_DOUBLE_EQ(run(range.grade(answer("x"))).score, 6.0 / 9.0);
  // Penalties and biases go to the endpoint as OpenAI's fields; defaults are left out.
  EXPECT_FALSE(json::parse(rating.bodies().back()).contains("presence_penalty"));
  OpenAIJudgeGrader shaped({.criteria = "Is it polite?",
                            .endpoint = rating.endpoint(),
                            .sampling = {.temperature = 0.0,
                                         .max_tokens = 64,
                                         .presence_penalty = 0.5,
                                         .frequency_penalty = -0.25,
                                         .logit_bias = {{7, -100.0}, {42, 2.5}}}});
  run(shaped.grade(answer("x")));
  body = json::parse(rating.bodies().back());
  EXPECT_EQ(body["presence_penalty"], 0.5);
  EXPECT_EQ(body["frequency_penalty"], -0.25);
  EXPECT_EQ(body["logit_bias"], json({{"7", -100.0}, {"42", 2.5}}));
  EXPECT_FALSE(body.contains("chat_template_kwargs"));
  // A judge asked not to think says so as vLLM (and chorus-serve) take it.
  OpenAIJudgeGrader brief({.criteria = "Is it polite?",
                           .endpoint = rating.endpoint(),
                           .sampling = {.temperature = 0.0, .max_tokens = 64, .enable_thinking = false}});
  run(brief.grade(answer("x")));
  EXPECT_EQ(json::parse(rating.bodies().back())["chat_template_kwargs"], json({{"enable_thinking", false}}));
}

TEST(OpenAIJudge, GivesUpAfterTheRetriesAndNeverRetriesARefusal) {
  ScriptedEndpoint failing([](int, const httplib::Request&, httplib::Response& response) {
    response.status = 500;
    response.set_content(R"({"error": {"message": "boom"}})", "application/json");
  });
  auto endpoint = failing.endpoint();
  endpoint.max_retries = 2;
  OpenAIJudgeGrader grader({.criteria = "x", .endpoint = endpoint});
  try {
    run(grader.grade(answer("y")));
    ADD_FAILURE() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("answered 500: boom (after 3 attempts)"), std::string::npos)
      << error.what();
  }
  EXPECT_EQ(failing.requests(), 3);

  ScriptedEndpoint refusing([](int, const httplib::Request&, httplib::Response& response) {
    response.status = 400;
    response.set_content(R"({"error": {"message": "'max_tokens' is too large"}})", "application/json");
  });
  OpenAIJudgeGrader refused({.criteria = "x", .endpoint = refusing.endpoint()});
  EXPECT_THROW(run(refused.grade(answer("y"))), Error);
  EXPECT_EQ(refusing.requests(), 1);
}

TEST(OpenAIJudge, KeepsToItsConcurrencyLimitAndTimesOut) {
  ScriptedEndpoint slow([](int, const httplib::Request&, httplib::Response& response) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ScriptedEndpoint::completion(response, "VERDICT: FAIL");
  });
  auto endpoint = slow.endpoint();
  endpoint.max_concurrency = 3;
  OpenAIJudgeGrader grader({.criteria = "x", .endpoint = endpoint});
  auto grades = run([&]() -> Task<std::vector<Grade>> {
    std::vector<Task<Grade>> tasks;
    for (int i = 0; i < 12; ++i) // different responses: no cache hits
      tasks.push_back(grader.grade(answer("response " + std::to_string(i))));
    co_return co_await when_all(std::move(tasks));
  }());
  EXPECT_EQ(grades.size(), 12u);
  EXPECT_EQ(slow.requests(), 12);
  EXPECT_LE(slow.most_at_once(), 3); // the limit
  EXPECT_GE(slow.most_at_once(), 2); // and concurrent up to it

  // An endpoint that answers only once the test is over (or after 20 s).
  std::atomic<bool> over{false};
  ScriptedEndpoint stuck([&over](int, const httplib::Request&, httplib::Response& response) {
    for (int i = 0; i < 2000 && !over; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ScriptedEndpoint::completion(response, "VERDICT: PASS");
  });
  auto impatient = stuck.endpoint();
  impatient.timeout = std::chrono::milliseconds(200);
  impatient.max_retries = 1;
  OpenAIJudgeGrader timing_out({.criteria = "x", .endpoint = impatient});
  auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(run(timing_out.grade(answer("y"))), Error);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10)); // two timeouts, not the 20 s
  EXPECT_EQ(stuck.requests(), 2);
  over = true;
}

TEST(OpenAIJudge, RefusesAnEndpointItCannotUse) {
  EXPECT_THROW(OpenAIJudgeGrader({.criteria = "x", .endpoint = {.base_url = "ftp://x", .model = "m"}}), ConfigError);
  EXPECT_THROW(OpenAIJudgeGrader({.criteria = "x", .endpoint = {.base_url = "http://127.0.0.1:1/v1"}}), ConfigError);
  EXPECT_THROW(OpenAIJudgeGrader({.criteria = "", .endpoint = {.base_url = "http://h/v1", .model = "m"}}), ConfigError);
  EXPECT_THROW(
    OpenAIRangeJudgeGrader(
      {.criteria = "x", .endpoint = {.base_url = "http://h/v1", .model = "m"}, .min_score = 5, .max_score = 5}),
    ConfigError);
  EXPECT_THROW(
    OpenAIJudgeGrader({.criteria = "x", .endpoint = {.base_url = "http://h/v1", .model = "m", .max_concurrency = 0}}),
    ConfigError);
}
