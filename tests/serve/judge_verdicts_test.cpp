// The judge graders' verdicts against a scripted judge endpoint (a test double of the judge's API;
// the model judges share this machinery): NA ignores the sample, an answer without a verdict is
// asked again showing the judge its answer, and shots reach the judge's prompt.
#include <chorus/chorus.hpp>
#include <chorus/grader.hpp>

#include "runtime/runtime.hpp"
#include "scripted_endpoint.hpp"
#include "serve_process.hpp"

#include <gtest/gtest.h>

using namespace chorus;
using chorus::test::ScriptedEndpoint;
using nlohmann::json;

namespace {

Sample answer(std::string completion) {
  return {{{"user", "Say thanks."}}, std::move(completion), Json::object()};
}

Grade run(const Grader& grader, Sample sample) {
  Runtime runtime;
  return runtime.run(grader.grade(std::move(sample)));
}

// Answers request i with replies[i] (the last one again past the end).
ScriptedEndpoint::Reply replies(std::vector<std::string> texts) {
  return [texts = std::move(texts)](int number, const httplib::Request&, httplib::Response& response) {
    ScriptedEndpoint::completion(response,
                                 texts[std::min<std::size_t>(static_cast<std::size_t>(number), texts.size() - 1)]);
  };
}

json messages_of(const std::string& body) {
  return json::parse(body)["messages"];
}

} // namespace

TEST(JudgeVerdicts, NotApplicableIgnoresTheSampleInsteadOfScoringIt) {
  ScriptedEndpoint binary(replies({"The user asked for nothing this criterion covers.\nVERDICT: NA"}));
  OpenAIJudgeGrader judge({.grader_key = "polite", .criteria = "Is it polite?", .endpoint = binary.endpoint()});
  auto grade = run(judge, answer("ok"));
  EXPECT_TRUE(grade.ignored);
  EXPECT_EQ(grade.scores.count("polite"), 0u);
  EXPECT_EQ(grade.unparseable, 0);
  EXPECT_NE(grade.explanation.find("covers"), std::string::npos);
  EXPECT_EQ(binary.requests(), 1);
  auto instruction = messages_of(binary.bodies().front())[1]["content"].get<std::string>();
  EXPECT_NE(instruction.find("'VERDICT: NA' if the criterion does not apply"), std::string::npos) << instruction;

  ScriptedEndpoint range(replies({"Nothing to rate.\nSCORE: N/A"}));
  OpenAIRangeJudgeGrader scale({.criteria = "Quality", .endpoint = range.endpoint()});
  EXPECT_TRUE(run(scale, answer("ok")).ignored);
}

TEST(JudgeVerdicts, AnAnswerWithoutAVerdictIsAskedAgainShowingTheJudgeItsAnswer) {
  ScriptedEndpoint endpoint(replies({"Hmm, hard to say.", "On reflection it is polite.\nVERDICT: PASS"}));
  OpenAIJudgeGrader judge({.grader_key = "polite", .criteria = "Is it polite?", .endpoint = endpoint.endpoint()});
  auto grade = run(judge, answer("Thanks!"));
  EXPECT_FALSE(grade.ignored);
  EXPECT_EQ(grade.score, 1.0);
  EXPECT_EQ(grade.unparseable, 1); // the first answer, counted
  ASSERT_EQ(endpoint.requests(), 2);
  auto retry = messages_of(endpoint.bodies()[1]);
  ASSERT_EQ(retry.size(), 4u); // system, the case, the judge's answer, the reminder
  EXPECT_EQ(retry[2]["role"], "assistant");
  EXPECT_EQ(retry[2]["content"], "Hmm, hard to say.");
  EXPECT_NE(retry[3]["content"].get<std::string>().find("'VERDICT: PASS', 'VERDICT: FAIL' or 'VERDICT: NA'"),
            std::string::npos);

  // Still no verdict after the retries: ignored, every answer counted.
  ScriptedEndpoint stubborn(replies({"Hmm."}));
  OpenAIJudgeGrader twice({.criteria = "Is it polite?", .endpoint = stubborn.endpoint(), .max_parsing_retries = 2});
  auto ignored = run(twice, answer("Thanks!"));
  EXPECT_TRUE(ignored.ignored);
  EXPECT_EQ(ignored.unparseable, 3);
  EXPECT_EQ(stubborn.requests(), 3);
  EXPECT_NE(ignored.explanation.find("no verdict after 3 answer(s)"), std::string::npos) << ignored.explanation;

  // A range judge's reminder names its scale.
  ScriptedEndpoint vague(replies({"Fairly good.", "SCORE: 4"}));
  OpenAIRangeJudgeGrader scale({.criteria = "Quality", .endpoint = vague.endpoint(), .min_score = 0, .max_score = 5});
  EXPECT_DOUBLE_EQ(run(scale, answer("x")).score, 0.8);
  EXPECT_NE(messages_of(vague.bodies()[1])[3]["content"].get<std::string>().find("a score from 0 to 5"),
            std::string::npos);
}

TEST(JudgeVerdicts, ShotsAreWorkedExamplesInTheJudgesPrompt) {
  ScriptedEndpoint endpoint(replies({"VERDICT: FAIL"}));
  OpenAIJudgeGrader judge({.grader_key = "polite",
                           .criteria = "Is it polite?",
                           .endpoint = endpoint.endpoint(),
                           .shots = {{{{"user", "Pass the salt."}}, "Here you are, enjoy!", "pass", "Friendly."},
                                     {{{"user", "Hi"}}, "Go away.", "FAIL", ""}}});
  EXPECT_EQ(run(judge, answer("Whatever.")).score, 0.0);
  auto prompt = messages_of(endpoint.bodies().front())[1]["content"].get<std::string>();
  auto first = prompt.find("[Example 1]"), second = prompt.find("[Example 2]"), case_at = prompt.find("Whatever.");
  ASSERT_NE(first, std::string::npos) << prompt;
  ASSERT_NE(second, std::string::npos) << prompt;
  EXPECT_LT(first, second);
  EXPECT_LT(second, case_at); // the examples come before the case
  EXPECT_NE(
    prompt.find("user: Pass the salt.\n\n[Response]\nHere you are, enjoy!\n[Grading]\nFriendly.\nVERDICT: PASS"),
    std::string::npos)
    << prompt;
  EXPECT_NE(prompt.find("Go away.\n[Grading]\nVERDICT: FAIL"), std::string::npos) << prompt;

  ScriptedEndpoint scored(replies({"SCORE: 9"}));
  OpenAIRangeJudgeGrader range(
    {.criteria = "Quality", .endpoint = scored.endpoint(), .shots = {{{{"user", "2+2?"}}, "4", "10", "Exact."}}});
  run(range, answer("x"));
  EXPECT_NE(messages_of(scored.bodies().front())[1]["content"].get<std::string>().find("Exact.\nSCORE: 10"),
            std::string::npos);
}

// What a judge is trained on must be what it is asked: binary_judge_prompt is the grader's prompt.
TEST(JudgeVerdicts, TheJudgePromptToTrainOnIsTheOneTheGraderSends) {
  ScriptedEndpoint endpoint(replies({"VERDICT: PASS"}));
  std::vector<JudgeShot> shots{{{{"user", "Hi"}}, "Go away.", "fail", "Rude."}};
  OpenAIJudgeGrader judge(
    {.grader_key = "polite", .criteria = "Is it polite?", .endpoint = endpoint.endpoint(), .shots = shots});
  auto sample = answer("Hello there!");
  run(judge, sample);
  auto sent = messages_of(endpoint.bodies().front());
  auto expected = binary_judge_prompt({.criteria = "Is it polite?", .shots = shots}, sample);
  ASSERT_EQ(sent.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(sent[i]["role"], expected[i].role);
    EXPECT_EQ(sent[i]["content"], expected[i].content);
  }
  EXPECT_NE(expected.back().content.find("VERDICT: FAIL"), std::string::npos); // the shot's verdict, upper-cased
}

TEST(JudgeVerdicts, AShotWithAVerdictTheJudgeCannotGiveIsAConfigErrorNamingIt) {
  ScriptedEndpoint endpoint(replies({"VERDICT: PASS"}));
  auto message = [&](auto make) {
    try {
      make();
    } catch (const ConfigError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] {
              OpenAIJudgeGrader({.grader_key = "polite",
                                 .criteria = "Is it polite?",
                                 .endpoint = endpoint.endpoint(),
                                 .shots = {{{}, "a", "PASS", ""}, {{}, "b", "MAYBE", ""}}});
            }),
            "grader 'polite': shot 2's verdict 'MAYBE' is not PASS, FAIL or NA");
  EXPECT_EQ(message([&] {
              OpenAIRangeJudgeGrader({.grader_key = "quality",
                                      .criteria = "Quality",
                                      .endpoint = endpoint.endpoint(),
                                      .shots = {{{}, "a", "11", ""}}});
            }),
            "grader 'quality': shot 1's verdict '11' is not NA or a number from 1 to 10");
  EXPECT_NE(message([&] {
              OpenAIJudgeGrader({.criteria = "x", .endpoint = endpoint.endpoint(), .max_parsing_retries = -1});
            }).find("max_parsing_retries must be >= 0"),
            std::string::npos);
}

TEST(TemplatedJudge, FillsTheTemplatesAndParsesTheJsonAnswerRetryingWhenItDoesNotParse) {
  ScriptedEndpoint endpoint(
    replies({"I think it is good", R"(Here: {"reasoning": "Matches the context.", "score": 4})"}));
  TemplatedJudgeGrader judge({.grader_key = "faithful",
                              .system_template = "You check answers against {{metadata.source}}.",
                              .user_template = "Context: {{metadata.context}}\nQuestion: {{prompt}}\n"
                                               "Answer: {{completion}}\nIs every claim in the context?",
                              .endpoint = endpoint.endpoint(),
                              .min_score = 1,
                              .max_score = 5});
  Sample sample{{{"system", "Be brief."}, {"user", "Where is Paris?"}},
                "In France.",
                {{"context", "Paris is the capital of France."}, {"source", "an atlas"}}};
  auto grade = run(judge, sample);
  EXPECT_FALSE(grade.ignored);
  EXPECT_DOUBLE_EQ(grade.score, 0.75); // (4 - 1) / (5 - 1)
  EXPECT_EQ(grade.scores.at("faithful"), 0.75);
  EXPECT_EQ(grade.explanation, "Matches the context.");
  EXPECT_EQ(grade.unparseable, 1);
  ASSERT_EQ(endpoint.requests(), 2);
  auto first = messages_of(endpoint.bodies()[0]);
  EXPECT_EQ(first[0]["content"], "You check answers against an atlas.");
  auto user = first[1]["content"].get<std::string>();
  EXPECT_EQ(user.rfind("Context: Paris is the capital of France.\nQuestion: Where is Paris?\nAnswer: In France.\n", 0),
            0u)
    << user;
  EXPECT_NE(user.find("\"score\" (a number from 1 to 5, or null"), std::string::npos) << user;
  auto retry = messages_of(endpoint.bodies()[1]);
  EXPECT_EQ(retry[2]["content"], "I think it is good");
  EXPECT_NE(retry[3]["content"].get<std::string>().find("That answer is not usable."), std::string::npos);
}

TEST(TemplatedJudge, NullScoresAndMissingMetadataIgnoreTheSample) {
  ScriptedEndpoint endpoint(replies({R"({"reasoning": "No context to check.", "score": null})"}));
  TemplatedJudgeGrader judge(
    {.user_template = "{{metadata.context}} / {{completion}}", .endpoint = endpoint.endpoint()});
  auto not_applicable = run(judge, {{{"user", "q"}}, "a", {{"context", "c"}}});
  EXPECT_TRUE(not_applicable.ignored);
  EXPECT_EQ(not_applicable.explanation, "No context to check.");
  auto missing = run(judge, {{{"user", "q"}}, "a", Json::object()});
  EXPECT_TRUE(missing.ignored);
  EXPECT_NE(missing.explanation.find("metadata has no 'context'"), std::string::npos);
  EXPECT_EQ(endpoint.requests(), 1); // the sample without the field never reached the judge

  // Out of range, every time: asked again, then ignored.
  ScriptedEndpoint wild(replies({R"({"reasoning": "great", "score": 7})"}));
  TemplatedJudgeGrader strict(
    {.user_template = "{{completion}}", .endpoint = wild.endpoint(), .max_parsing_retries = 1});
  auto ignored = run(strict, {{{"user", "q"}}, "a", Json::object()});
  EXPECT_TRUE(ignored.ignored);
  EXPECT_EQ(ignored.unparseable, 2);
}

TEST(TemplatedJudge, AGuidedJudgeSendsTheAnswersSchema) {
  ScriptedEndpoint endpoint(replies({R"({"reasoning": "fine", "score": 0.5})"}));
  TemplatedJudgeGrader judge({.user_template = "{{completion}}", .endpoint = endpoint.endpoint(), .guided = true});
  auto grade = run(judge, {{{"user", "q"}}, "a", Json::object()});
  EXPECT_DOUBLE_EQ(grade.score, 0.5);
  auto format = nlohmann::json::parse(endpoint.bodies()[0])["response_format"];
  EXPECT_EQ(format["type"], "json_schema");
  EXPECT_EQ(format["json_schema"]["strict"], true);
  EXPECT_EQ(format["json_schema"]["schema"]["required"], Json({"reasoning", "score"}));
  EXPECT_EQ(format["json_schema"]["schema"]["additionalProperties"], false);
  EXPECT_TRUE(format["json_schema"]["schema"]["properties"]["score"].contains("anyOf")); // 0-1: any number
  ScriptedEndpoint five(replies({R"({"reasoning": "fine", "score": 4})"}));
  TemplatedJudgeGrader on_five(
    {.user_template = "{{completion}}", .endpoint = five.endpoint(), .min_score = 1, .max_score = 5, .guided = true});
  EXPECT_DOUBLE_EQ(run(on_five, {{{"user", "q"}}, "a", Json::object()}).score, 0.75);
  EXPECT_EQ(nlohmann::json::parse(five.bodies()[0])["response_format"]["json_schema"]["schema"]["properties"]["score"],
            Json::parse(R"({"enum": [1, 2, 3, 4, 5, null, "NA"]})"));
}

TEST(TemplatedJudge, BadTemplatesAndJudgesAreConfigErrors) {
  ScriptedEndpoint endpoint(replies({"{}"}));
  auto error = [&](TemplatedJudgeOptions options) {
    try {
      TemplatedJudgeGrader grader(std::move(options));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error({.grader_key = "t", .user_template = "{{answer}}", .endpoint = endpoint.endpoint()}),
            "grader 't': unknown placeholder {{answer}} (expected conversation, prompt, completion or metadata.FIELD)");
  EXPECT_EQ(error({.grader_key = "t", .user_template = "{{completion}}"}),
            "grader 't': give the judge as exactly one of model and endpoint");
  EXPECT_EQ(error({.grader_key = "t", .endpoint = endpoint.endpoint()}), "grader 't': user_template must not be empty");
  EXPECT_EQ(error({.grader_key = "t",
                   .user_template = "{{completion}}",
                   .endpoint = endpoint.endpoint(),
                   .min_score = 1,
                   .max_score = 1}),
            "grader 't': max_score must be greater than min_score");
}

// The retrieval graders put the question, the context (from the metadata key given) and the answer
// where their prompts say, and score on 1-5.
TEST(RetrievalGraders, EachJudgesItsLinkOnAOneToFiveScale) {
  ScriptedEndpoint endpoint(replies({R"({"reasoning": "ok", "score": 5})"}));
  Sample sample{{{"user", "Where is Paris?"}}, "In France.", {{"passages", "Paris is the capital of France."}}};
  auto prompt_of = [&](int request) {
    return messages_of(endpoint.bodies()[static_cast<std::size_t>(request)])[1]["content"].get<std::string>();
  };
  RetrievalJudgeOptions options{.context_key = "passages", .endpoint = endpoint.endpoint()};
  auto faithful = run(FaithfulnessGrader(options), sample);
  EXPECT_EQ(faithful.scores.at("faithfulness"), 1.0);
  EXPECT_NE(prompt_of(0).find("Context:\nParis is the capital of France.\n\nQuestion:\nWhere is Paris?\n\nAnswer:\n"
                              "In France.\n\nIs every claim"),
            std::string::npos)
    << prompt_of(0);
  EXPECT_EQ(run(AnswerRelevancyGrader(options), sample).scores.count("answer_relevancy"), 1u);
  EXPECT_EQ(prompt_of(1).find("Paris is the capital"), std::string::npos); // no context for this one
  EXPECT_EQ(run(ContextRelevancyGrader(options), sample).scores.count("context_relevancy"), 1u);
  EXPECT_NE(prompt_of(2).find("Retrieved context:\nParis is the capital of France."), std::string::npos);
  // A sample without the context is ignored, naming the key.
  auto without = run(FaithfulnessGrader({.grader_key = "grounded", .endpoint = endpoint.endpoint()}), sample);
  EXPECT_TRUE(without.ignored);
  EXPECT_NE(without.explanation.find("no 'context'"), std::string::npos);
}

// The same graders against chorus-serve (a real model over HTTP, untrained): each sample is graded
// or ignored, never an exception, and the judge's answers are counted.
TEST(RetrievalGraders, JudgeThroughChorusServe) {
  setenv("CHORUS_JUDGE_TEST_KEY", "rag-key", 1);
  auto serve = chorus::test::ServeProcess::start({"--api-key-env", "CHORUS_JUDGE_TEST_KEY"});
  ASSERT_NE(serve.port, 0);
  RetrievalJudgeOptions options{
    .endpoint = {.base_url = serve.base_url(), .model = "builtin:tiny", .api_key_env = "CHORUS_JUDGE_TEST_KEY"},
    .sampling = {.temperature = 0.0, .max_tokens = 16},
    .max_parsing_retries = 0};
  Sample sample{{{"user", "Where is Paris?"}}, "In France.", {{"context", "Paris is the capital of France."}}};
  for (const auto& grader : {Grader(FaithfulnessGrader(options)), Grader(AnswerRelevancyGrader(options)),
                             Grader(ContextRelevancyGrader(options))}) {
    auto grade = run(grader, sample);
    EXPECT_EQ(grade.scores.count(grader.key()), grade.ignored ? 0u : 1u) << grader.key();
    EXPECT_EQ(grade.unparseable, grade.ignored ? 1 : 0) << grader.key() << ": " << grade.explanation;
  }
}
