// Graders: programmatic ones against hand-made samples, the combined grader's weighting, the
// judge's verdict parsing, and a judge grader on a real (untrained) judge model.
#include <chorus/chorus.hpp>
#include <chorus/grader.hpp>

#include "runtime/runtime.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cmath>

using namespace chorus;

namespace {

Grade grade(const Grader& grader, Sample sample) {
  Runtime runtime;
  return runtime.run(grader.grade(std::move(sample)));
}

Sample answer(std::string completion, Json metadata = Json::object()) {
  return {{{"user", "question"}}, std::move(completion), std::move(metadata)};
}

} // namespace

TEST(Graders, ExactMatchNormalisesAndExtracts) {
  ExactMatchGrader plain({.grader_key = "correct", .metadata_key = "answer"});
  EXPECT_EQ(grade(plain, answer("  Paris \n", {{"answer", "paris"}})).score, 1.0);
  EXPECT_EQ(grade(plain, answer("Lyon", {{"answer", "paris"}})).score, 0.0);
  EXPECT_EQ(grade(plain, answer("42", {{"answer", 42}})).score, 1.0);
  auto missing = grade(plain, answer("x"));
  EXPECT_EQ(missing.score, 0.0);
  EXPECT_NE(missing.explanation.find("no 'answer'"), std::string::npos);
  ExactMatchGrader extracting({.grader_key = "correct", .extract = R"(answer is (\d+))"});
  auto result = grade(extracting, answer("I think the answer is 12.", {{"answer", "12"}}));
  EXPECT_EQ(result.score, 1.0);
  EXPECT_EQ(result.scores.at("correct"), 1.0);
}

TEST(Graders, JsonValidityAndSchema) {
  JsonGrader any({.grader_key = "json"});
  EXPECT_EQ(grade(any, answer(R"([1, 2])")).score, 1.0);
  EXPECT_EQ(grade(any, answer(R"({"a": )")).score, 0.0);
  JsonGrader schema({.grader_key = "format",
                     .schema = {{"type", "object"},
                                {"required", {"name", "age"}},
                                {"properties",
                                 {{"name", {{"type", "string"}}},
                                  {"age", {{"type", "integer"}}},
                                  {"tags", {{"type", "array"}, {"items", {{"type", "string"}}}}}}}}});
  EXPECT_EQ(grade(schema, answer(R"({"name": "Ada", "age": 36, "tags": ["x"]})")).score, 1.0);
  auto missing = grade(schema, answer(R"({"name": "Ada"})"));
  EXPECT_EQ(missing.score, 0.0);
  EXPECT_EQ(missing.explanation, "$: missing required field 'age'");
  EXPECT_EQ(grade(schema, answer(R"({"name": "Ada", "age": "36"})")).explanation,
            "$.age: expected integer, got string");
  EXPECT_EQ(grade(schema, answer(R"({"name": "Ada", "age": 3, "tags": [1]})")).explanation,
            "$.tags[0]: expected string, got number");
}

TEST(Graders, RegexAndFunctionGraders) {
  RegexGrader regex({.grader_key = "has_number", .pattern = R"(\d+)"});
  EXPECT_EQ(grade(regex, answer("abc 7")).score, 1.0);
  EXPECT_EQ(grade(regex, answer("abc")).score, 0.0);
  EXPECT_THROW(RegexGrader({.pattern = "("}), ConfigError);
  FunctionGrader short_answers("short", [](const Sample& s) { return s.completion.size() < 5 ? 1.0 : 0.0; });
  EXPECT_EQ(grade(short_answers, answer("ok")).score, 1.0);
  EXPECT_EQ(short_answers.key(), "short");
  FunctionGrader clamped("clamped", [](const Sample&) { return 7.0; });
  EXPECT_EQ(grade(clamped, answer("x")).score, 1.0);
}

TEST(Graders, CombinedIsTheWeightedMeanAndKeepsEachPart) {
  FunctionGrader one("one", [](const Sample&) { return 1.0; });
  FunctionGrader zero("zero", [](const Sample&) { return 0.0; });
  CombinedGrader combined({.grader_key = "reward", .graders = {one, zero}, .weights = {3.0, 1.0}});
  auto result = grade(combined, answer("x"));
  EXPECT_DOUBLE_EQ(result.score, 0.75);
  EXPECT_EQ(result.scores.at("one"), 1.0);
  EXPECT_EQ(result.scores.at("zero"), 0.0);
  EXPECT_EQ(result.scores.at("reward"), 0.75);
  EXPECT_THROW(CombinedGrader({.grader_key = "bad", .graders = {one}, .weights = {1.0, 2.0}}), ConfigError);
  EXPECT_THROW(CombinedGrader({.grader_key = "empty"}), ConfigError);
}

TEST(Graders, CombinedLeavesOutIgnoredAndFailingPartsAndSumsWhenAsked) {
  auto one = FunctionGrader("one", [](const Sample&) { return 1.0; });
  auto half = FunctionGrader("half", [](const Sample&) { return 0.5; });
  auto na = FunctionGrader("na", [](const Sample&) {
    Grade grade;
    grade.ignored = true;
    grade.explanation = "does not apply";
    return grade;
  });
  auto throws = FunctionGrader("throws", [](const Sample&) -> double { throw std::runtime_error("judge down"); });
  Runtime runtime;
  runtime.run([&]() -> Task<void> {
    // The mean over the parts graded, their weights renormalised: (2 * 1 + 1 * 0.5) / 3.
    auto mean =
      co_await CombinedGrader({.grader_key = "mean", .graders = {one, na, half, throws}, .weights = {2, 5, 1, 5}})
        .grade(answer("x"));
    EXPECT_FALSE(mean.ignored);
    EXPECT_DOUBLE_EQ(mean.score, 2.5 / 3.0);
    EXPECT_EQ(mean.scores.count("na"), 0u);
    EXPECT_NE(mean.left_out.at("na").find("ignored: does not apply"), std::string::npos) << mean.left_out.at("na");
    EXPECT_NE(mean.left_out.at("throws").find("failed: judge down"), std::string::npos);
    // "sum": 0.25 * 1 + 0.5 * 0.5 = 0.5; above 1 it is clamped.
    auto sum = co_await CombinedGrader({.graders = {one, half}, .weights = {0.25, 0.5}, .aggregation = "sum"})
                 .grade(answer("x"));
    EXPECT_DOUBLE_EQ(sum.score, 0.5);
    EXPECT_DOUBLE_EQ((co_await CombinedGrader({.graders = {one, one}, .aggregation = "sum"}).grade(answer("x"))).score,
                     1.0);
    // Nothing graded: the sample is ignored; every part throwing: the grading fails, as one grader's would.
    EXPECT_TRUE((co_await CombinedGrader({.graders = {na, throws}}).grade(answer("x"))).ignored);
    bool threw = false;
    try {
      co_await CombinedGrader({.graders = {throws}}).grade(answer("x"));
    } catch (const std::runtime_error& error) {
      threw = std::string(error.what()) == "judge down";
    }
    EXPECT_TRUE(threw);
  }());
  EXPECT_THROW(CombinedGrader({.graders = {one}, .aggregation = "max"}), ConfigError);
  EXPECT_THROW(CombinedGrader({.graders = {one}, .failure_rate_warning = 1.5}), ConfigError);
  EXPECT_DOUBLE_EQ(CombinedGrader({.graders = {one}, .failure_rate_warning = 0.1}).failure_rate_warning(), 0.1);
  EXPECT_DOUBLE_EQ(one.failure_rate_warning(), 1.0);
}

TEST(Graders, JudgeVerdictsParseRobustly) {
  EXPECT_EQ(parse_verdict("The answer is fine.\nVERDICT: PASS"), Verdict::pass);
  EXPECT_EQ(parse_verdict("It might pass, but no.\nverdict: **fail**"), Verdict::fail);
  EXPECT_EQ(parse_verdict("Could PASS at first sight; on reflection FAIL"), Verdict::fail);
  EXPECT_EQ(parse_verdict("Passable, failing nothing"), Verdict::none);
  EXPECT_EQ(parse_verdict(""), Verdict::none);
  EXPECT_EQ(parse_verdict("The user asked nothing to judge.\nVERDICT: NA"), Verdict::not_applicable);
  EXPECT_EQ(parse_verdict("VERDICT: n/a (no question)"), Verdict::not_applicable);
  EXPECT_EQ(parse_verdict("VERDICT: NAH, PASS"), Verdict::pass); // NA only as a whole word
  EXPECT_TRUE(says_not_applicable("Off topic.\nSCORE: N/A", "SCORE:"));
  EXPECT_FALSE(says_not_applicable("SCORE: 7", "SCORE:"));
  EXPECT_EQ(parse_scale_score("Reasoning: 3 issues.\nSCORE: 8", 1, 10), 8.0);
  EXPECT_EQ(parse_scale_score("I'd give it 7.5", 1, 10), 7.5);
  EXPECT_TRUE(std::isnan(parse_scale_score("SCORE: 11", 1, 10)));
  EXPECT_TRUE(std::isnan(parse_scale_score("no idea", 1, 10)));
}

TEST(Graders, AJudgeGraderAsksARealJudgeModel) {
  Runtime runtime;
  RecipeContext ctx(runtime, "test", std::filesystem::path(::testing::TempDir()) / "judge", MetricsLogger(),
                    spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 512});
    auto judge = co_await builder.spawn_inference("judge");
    BinaryJudgeGrader binary({.grader_key = "polite",
                              .criteria = "Is the response polite?",
                              .model = judge,
                              .sampling = {.temperature = 0.0, .max_tokens = 8}});
    RangeJudgeGrader range({.grader_key = "quality",
                            .criteria = "Quality",
                            .model = judge,
                            .sampling = {.temperature = 0.0, .max_tokens = 8}});
    auto combined = CombinedGrader({.grader_key = "judged", .graders = {binary, range}});
    auto result = co_await combined.grade(answer("Thank you!"));
    // An untrained judge answers gibberish: each part either scores or is left out (asked twice,
    // unparseable both times), never an exception or a made-up score.
    EXPECT_GE(result.score, 0.0);
    EXPECT_LE(result.score, 1.0);
    for (const char* part : {"polite", "quality"})
      EXPECT_EQ(result.scores.count(part) + result.left_out.count(part), 1u) << part;
    EXPECT_EQ(result.unparseable, 2 * static_cast<int>(result.left_out.size()));
    EXPECT_EQ(result.ignored, result.left_out.size() == 2);
    EXPECT_FALSE(result.explanation.empty());
  }());
}

// A guided templated judge: even an untrained model's answers are the JSON object asked for, so they
// parse at the first attempt (unless max_tokens cuts one); unguided, it never writes one.
TEST(Graders, AGuidedTemplatedJudgeAnswersInItsForm) {
  Runtime runtime;
  RecipeContext ctx(runtime, "test", std::filesystem::path(::testing::TempDir()) / "guided_judge", MetricsLogger(),
                    spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 1536});
    auto judge = co_await builder.spawn_inference("judge");
    TemplatedJudgeOptions options{.grader_key = "faithful",
                                  .user_template = "Question: {{prompt}}\nAnswer: {{completion}}\nIs it right?",
                                  .model = judge,
                                  .max_score = 10,
                                  .sampling = {.temperature = 1.0, .max_tokens = 700, .seed = 3},
                                  .max_parsing_retries = 0,
                                  .guided = true};
    TemplatedJudgeGrader guided(options);
    int first_time = 0;
    for (int i = 0; i < 6; ++i) {
      auto grade = co_await guided.grade(answer("It is " + std::to_string(i) + "."));
      first_time += grade.unparseable == 0;
      if (grade.unparseable == 0 && !grade.ignored) {
        EXPECT_GE(grade.score, 0.0);
        EXPECT_LE(grade.score, 1.0);
      }
    }
    // Only an answer that max_tokens cuts is asked again: most are not.
    EXPECT_GE(first_time, 4);
    options.guided = false;
    options.sampling.max_tokens = 64;
    auto unguided = co_await TemplatedJudgeGrader(options).grade(answer("It is 1."));
    EXPECT_EQ(unguided.unparseable, 1);
  }());
}

// A binary judge whose sampling carries a regex (guided decoding) ends every answer with a verdict
// line the grader parses, even untrained; unguided, the same judge never does.
TEST(Graders, ABinaryJudgeGuidedByARegexAlwaysGivesAVerdict) {
  Runtime runtime;
  RecipeContext ctx(runtime, "test", std::filesystem::path(::testing::TempDir()) / "regex_judge", MetricsLogger(),
                    spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 1024});
    auto judge = co_await builder.spawn_inference("judge");
    BinaryJudgeOptions options{.grader_key = "polite",
                               .criteria = "Is the response polite?",
                               .model = judge,
                               .sampling = {.temperature = 1.0, .max_tokens = 96, .seed = 5},
                               .max_parsing_retries = 0};
    options.sampling.regex = "[ -~]{1,40}\\nVERDICT: (PASS|FAIL|NA)"; // at most 54 bytes: within max_tokens
    BinaryJudgeGrader guided(options);
    for (int i = 0; i < 4; ++i) {
      auto grade = co_await guided.grade(answer("Thanks " + std::to_string(i) + "!"));
      EXPECT_EQ(grade.unparseable, 0) << grade.explanation;
      EXPECT_TRUE(grade.ignored || grade.score == 0.0 || grade.score == 1.0);
    }
    options.sampling.regex.clear();
    auto unguided = co_await BinaryJudgeGrader(options).grade(answer("Thanks!"));
    EXPECT_EQ(unguided.unparseable, 1);
  }());
}

// scoring = "logprobs": the expectation of the scale's numbers under the judge's next-token
// probabilities after its reasoning, a number between the scale's ends rather than one of them.
TEST(Graders, ARangeJudgeCanScoreByItsProbabilitiesOverTheScale) {
  Runtime runtime;
  RecipeContext ctx(runtime, "test", std::filesystem::path(::testing::TempDir()) / "judge_logprobs", MetricsLogger(),
                    spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 512});
    auto judge = co_await builder.spawn_inference("judge");
    RangeJudgeGrader expected({.grader_key = "quality",
                               .criteria = "Quality",
                               .model = judge,
                               .min_score = 1,
                               .max_score = 5,
                               .sampling = {.temperature = 0.0, .max_tokens = 8},
                               .scoring = "logprobs"});
    auto grade = co_await expected.grade(answer("Thank you!"));
    auto again = co_await expected.grade(answer("Thank you!"));
    EXPECT_EQ(grade.score, again.score); // greedy reasoning, exact probabilities
    std::printf("logprob-scored judge: %s %.4f\n", grade.ignored ? "ignored" : "score", grade.score);
    if (!grade.ignored) { // an untrained judge spreads its probability over the digits
      EXPECT_GT(grade.score, 0.0);
      EXPECT_LT(grade.score, 1.0);
      EXPECT_NE(grade.explanation.find("(expected score "), std::string::npos) << grade.explanation;
    }
    // "10" is two byte tokens: a scale the judge cannot answer in one token is refused, naming it.
    RangeJudgeGrader ten({.grader_key = "ten", .criteria = "Quality", .model = judge, .scoring = "logprobs"});
    std::string message;
    try {
      co_await ten.grade(answer("x"));
    } catch (const ConfigError& error) {
      message = error.what();
    }
    EXPECT_NE(message.find("'10' is 2"), std::string::npos) << message;
    EXPECT_THROW(RangeJudgeGrader({.criteria = "Quality", .model = judge, .scoring = "mean"}), ConfigError);
    EXPECT_THROW(RangeJudgeGrader({.criteria = "Quality", .model = judge, .max_score = 2.5, .scoring = "logprobs"}),
                 ConfigError);
  }());
}

TEST(Graders, IdenticalJudgementsAreServedFromTheCacheAndAskTheJudgeOnce) {
  Runtime runtime;
  RecipeContext ctx(runtime, "test", std::filesystem::path(::testing::TempDir()) / "judge_cache", MetricsLogger(),
                    spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx, {.kv_cache_len = 512});
    auto judge = co_await builder.spawn_inference("judge");
    SamplingParams sampling{.temperature = 0.0, .max_tokens = 8};
    BinaryJudgeGrader cached({.criteria = "Is it polite?", .model = judge, .sampling = sampling});
    BinaryJudgeGrader uncached({.criteria = "Is it polite?", .model = judge, .sampling = sampling, .cache = false});

    // Two identical requests at once: one asks the judge, the other waits for its verdict.
    auto [first, second] = co_await gather(cached.grade(answer("Thanks!")), cached.grade(answer("Thanks!")));
    EXPECT_EQ(first.cached + second.cached, 1);
    EXPECT_EQ(first.explanation, second.explanation);
    auto again = co_await cached.grade(answer("Thanks!"));
    EXPECT_EQ(again.cached, 1);
    EXPECT_EQ(again.score, first.score);
    // A different response, or no cache, asks the judge.
    EXPECT_EQ((co_await cached.grade(answer("Go away."))).cached, 0);
    auto fresh = co_await uncached.grade(answer("Thanks!"));
    EXPECT_EQ(fresh.cached, 0);
    EXPECT_EQ(fresh.explanation, first.explanation); // greedy: the judge says the same thing again
    // A combined grader counts its parts' cache hits.
    auto combined = CombinedGrader({.graders = {cached, uncached}});
    EXPECT_EQ((co_await combined.grade(answer("Thanks!"))).cached, 1);
  }());
  EXPECT_THROW(BinaryJudgeGrader({.criteria = "x", .cache_size = 0}), ConfigError);
}

// Verdicts become judge demonstrations in the grader's own prompt format, answered with the
// reasoning and the verdict line; a judge's agreement counts an ignored grade as a disagreement.
TEST(Graders, LabelledVerdictsTrainAndMeasureAJudge) {
  BinaryJudgeOptions options{.criteria = "Is the sum right?"};
  std::vector<Metric> verdicts = {{{{"user", "2 + 2?"}}, "4", 1.0, {{"reasoning", "2 + 2 = 4."}}},
                                  {{{"user", "2 + 3?"}}, "6", 0.0, Json::object()}};
  auto demonstrations = binary_judge_demonstrations(options, verdicts);
  ASSERT_EQ(demonstrations.size(), 2u);
  EXPECT_EQ(demonstrations[0].completion, "2 + 2 = 4.\nVERDICT: PASS");
  EXPECT_EQ(demonstrations[1].completion, "VERDICT: FAIL");
  auto asked = binary_judge_prompt(options, {verdicts[1].prompt, verdicts[1].completion, Json::object()});
  ASSERT_EQ(demonstrations[1].prompt.size(), asked.size());
  for (std::size_t i = 0; i < asked.size(); ++i)
    EXPECT_EQ(demonstrations[1].prompt[i].content, asked[i].content);

  // A stand-in judge: passes "4" and "5", ignores "?" (NA).
  auto judge = FunctionGrader("judge", [](const Sample& sample) {
    Grade grade;
    grade.score = sample.completion == "4" || sample.completion == "5" ? 1.0 : 0.0;
    grade.ignored = sample.completion == "?";
    return grade;
  });
  verdicts.push_back({{{"user", "2 + 3?"}}, "5", 0.0, Json::object()}); // the judge disagrees
  verdicts.push_back({{{"user", "1 + 1?"}}, "?", 0.0, Json::object()}); // ignored: a disagreement
  Runtime runtime;
  EXPECT_DOUBLE_EQ(runtime.run(judge_agreement(judge, verdicts)), 0.5);
  EXPECT_DOUBLE_EQ(runtime.run(judge_agreement(judge, {})), 0.0);
  // Labels 1, 0, 0, 0: a judge answering FAIL every time agrees with three of four.
  EXPECT_DOUBLE_EQ(majority_verdict_share(verdicts), 0.75);
  verdicts.push_back({{{"user", "3 + 3?"}}, "6", 1.0, Json::object()});
  verdicts.push_back({{{"user", "4 + 4?"}}, "8", 1.0, Json::object()});
  verdicts.push_back({{{"user", "5 + 5?"}}, "10", 1.0, Json::object()});
  EXPECT_DOUBLE_EQ(majority_verdict_share(verdicts), 4.0 / 7.0); // PASS is the commoner now
  EXPECT_DOUBLE_EQ(majority_verdict_share({}), 0.0);
}
