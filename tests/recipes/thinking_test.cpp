// A thinking model (builtin:tiny saved with Qwen3's chat template) in the RL loop and in evaluation:
// graders get its answer as the completion and its <think> block as the reasoning.
#include <chorus/chorus.hpp>

#include "models/tokenizer.hpp"
#include "recipes/policy_optimization.hpp"
#include "recipes/stage_clock.hpp"
#include "recipes/tokenized.hpp"
#include "runtime/runtime.hpp"
#include "tests/thinking_model.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <regex>

using namespace chorus;

namespace {

// A grader that keeps what it is given and scores 42.
struct KeepingGrader {
  std::shared_ptr<std::vector<Sample>> seen = std::make_shared<std::vector<Sample>>();
  std::shared_ptr<std::mutex> mutex = std::make_shared<std::mutex>();
  FunctionGrader grader{"answer", [seen = seen, mutex = mutex](const Sample& sample) {
                          std::lock_guard lock(*mutex);
                          seen->push_back(sample);
                          return sample.completion == "42" ? 1.0 : 0.0;
                        }};
};

// One GRPO generate-and-grade of `prompt` with the untrained `model` held by `sampling`'s pattern
// to a short thought and 42 or 7: the grader gets the number as the completion and the thought as
// the reasoning.
Task<void> expect_answer_and_reasoning_apart(TrainingModel model, KeepingGrader kept, SamplingParams sampling,
                                             Prompt prompt) {
  detail::StageClock clock;
  auto rollout = co_await detail::generate_and_grade(model, kept.grader, prompt, sampling, clock);
  EXPECT_EQ(kept.seen->size(), 1u);
  if (kept.seen->empty())
    co_return;
  const auto& sample = kept.seen->front();
  EXPECT_TRUE(std::regex_match(sample.reasoning, std::regex("[a-z]{1,4}"))) << sample.reasoning;
  EXPECT_TRUE(sample.completion == "42" || sample.completion == "7") << sample.completion;
  EXPECT_EQ(rollout.grade.score, sample.completion == "42" ? 1.0 : 0.0);
}

} // namespace

TEST(ThinkingModels, GradersGetTheAnswerAndTheReasoningApart) {
  Runtime runtime;
  RecipeContext ctx(runtime, "test", std::filesystem::path(::testing::TempDir()) / "thinking", MetricsLogger(),
                    spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    auto folder = co_await test::save_thinking_tiny(ctx, "thinking-tiny");
    auto model =
      co_await (co_await ModelRef{folder.string()}.to_builder(ctx, {.kv_cache_len = 256})).spawn_train("policy");
    KeepingGrader kept;
    auto& seen = kept.seen;
    auto& grader = kept.grader;
    // Untrained, the model is held to a short thought and a number by guided decoding.
    SamplingParams sampling{.temperature = 1.0, .max_tokens = 40, .seed = 5};
    sampling.regex = "<think>\n[a-z]{1,4}\n</think>\n\n(42|7)";
    const Prompt prompt{{{"user", "6*7?", {}}}, Json::object()};
    co_await expect_answer_and_reasoning_apart(model, kept, sampling, prompt);

    auto result = co_await evaluate(
      {.dataset = {prompt}, .model = model.as_inference(), .graders = {grader}, .k = 2, .sampling = sampling});
    EXPECT_EQ(seen->size(), 3u);
    for (const auto& sample : *seen)
      EXPECT_EQ(sample.completion.find("</think>"), std::string::npos) << sample.completion;
    EXPECT_EQ(result.samples.size(), 2u);

    // SFT examples are written as Qwen3's template writes the last turn: a reasoning in its block,
    // an answer without one after an empty block.
    models::ByteTokenizer bytes;
    auto learned = co_await detail::tokenize_turn(model, {{"user", "2+2?", {}}}, "<think>\nTwo.\n</think>\n\n4");
    EXPECT_EQ(bytes.decode(learned.completion), "<think>\nTwo.\n</think>\n\n4<|im_end|>\n");
    learned = co_await detail::tokenize_turn(model, {{"user", "2+2?", {}}}, "4");
    EXPECT_EQ(bytes.decode(learned.completion), "<think>\n\n</think>\n\n4<|im_end|>\n");
  }());
}

// A model whose template opens the reasoning in the generation prompt (Qwen3's Thinking-2507 form):
// its completion starts inside the block, and graders still get the answer and the reasoning apart.
TEST(ThinkingModels, ACompletionThatStartsInsideItsReasoningIsSplitAtTheClosingTag) {
  Runtime runtime;
  RecipeContext ctx(runtime, "test", std::filesystem::path(::testing::TempDir()) / "thinking_opened", MetricsLogger(),
                    spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    auto folder = co_await test::save_thinking_tiny(ctx, "thinking-2507-tiny", /*opened=*/true);
    auto model =
      co_await (co_await ModelRef{folder.string()}.to_builder(ctx, {.kv_cache_len = 256})).spawn_train("policy");
    EXPECT_TRUE(model.thinks());
    EXPECT_TRUE(model.opens_thinking());
    EXPECT_TRUE(model.as_inference().opens_thinking(false));
    SamplingParams sampling{.temperature = 1.0, .max_tokens = 40, .seed = 5};
    sampling.regex = "[a-z]{1,4}\n</think>\n\n(42|7)";
    co_await expect_answer_and_reasoning_apart(model, KeepingGrader{}, sampling,
                                               {{{"user", "6*7?", {}}}, Json::object()});
    // The prompt ends inside the block, and SFT examples continue it.
    models::ByteTokenizer bytes;
    auto learned = co_await detail::tokenize_turn(model, {{"user", "2+2?", {}}}, "Two.\n</think>\n\n4");
    EXPECT_EQ(bytes.decode(learned.prompt).substr(bytes.decode(learned.prompt).size() - 8), "<think>\n");
    EXPECT_EQ(bytes.decode(learned.completion), "Two.\n</think>\n\n4<|im_end|>\n");
  }());
}

// A thinking judge's verdict is read from its answer: a verdict line in its reasoning does not count.
TEST(ThinkingModels, AJudgesVerdictIsReadFromItsAnswerNotItsThinking) {
  Runtime runtime;
  RecipeContext ctx(runtime, "test", std::filesystem::path(::testing::TempDir()) / "thinking_judge", MetricsLogger(),
                    spdlog::default_logger());
  runtime.run([&]() -> Task<void> {
    auto folder = co_await test::save_thinking_tiny(ctx, "thinking-judge");
    auto judge =
      co_await (co_await ModelRef{folder.string()}.to_builder(ctx, {.kv_cache_len = 1024})).spawn_inference("judge");
    BinaryJudgeOptions options{.criteria = "Is the response polite?",
                               .model = judge,
                               .sampling = {.temperature = 1.0, .max_tokens = 96, .seed = 5},
                               .max_parsing_retries = 0};
    const Sample sample{{{"user", "Hi", {}}}, "Thanks!", Json::object()};
    options.sampling.regex = "<think>\nVERDICT: FAIL\n</think>\n\nVERDICT: PASS";
    auto grade = co_await BinaryJudgeGrader(options).grade(sample);
    EXPECT_EQ(grade.score, 1.0) << grade.explanation;
    options.sampling.regex = "<think>\nVERDICT: PASS\n</think>\n\nNo idea.";
    grade = co_await BinaryJudgeGrader(options).grade(sample);
    EXPECT_EQ(grade.unparseable, 1) << grade.explanation;
  }());
}
