// Evaluation: mean@k and pass@k worked out by hand, the samples file, ignored grades, and the
// evaluation callback logging its figures with the steps of an algorithm.
#include <chorus/chorus.hpp>

#include "runtime/runtime.hpp"
#include "tests/expect_error.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <fstream>

using namespace chorus;
using chorus::test::expect_error_containing;

namespace {

// A fresh folder for the running test's outputs.
std::filesystem::path fresh_dir() {
  auto dir = std::filesystem::path(::testing::TempDir()) / "evaluation"
    / ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

class Evaluation : public ::testing::Test {
protected:
  std::filesystem::path dir_ = fresh_dir();
  Runtime runtime_;
  RecipeContext ctx_{runtime_, "test", dir_, MetricsLogger({.jsonl = dir_ / "metrics.jsonl"}),
                     spdlog::default_logger()};

  Task<TrainingModel> tiny_model() {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 256});
    co_return co_await builder.spawn_train("policy", {.max_batch_size = 64});
  }
};

std::vector<Json> read_lines(const std::filesystem::path& file) {
  std::vector<Json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    lines.push_back(Json::parse(line));
  return lines;
}

// Prompts whose grade is set by their metadata, whatever the completion: the figures are known.
std::vector<Prompt> scored_prompts() {
  return {{{{"user", "one"}}, {{"score", 1.0}}},
          {{{"user", "two"}}, {{"score", 0.25}}},
          {{{"user", "three"}}, {{"score", 0.5}}},
          {{{"user", "four"}}, {{"score", 0.0}, {"skip", true}}}};
}

Grade by_metadata(const Sample& sample) {
  Grade grade;
  grade.score = sample.metadata["score"].get<double>();
  grade.ignored = sample.metadata.value("skip", false);
  grade.explanation = "from the metadata";
  return grade;
}

} // namespace

TEST_F(Evaluation, MeanAndPassAtKAreTheGradersFiguresAndEverySampleIsWritten) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    auto length = FunctionGrader("short", [](const Sample& s) { return s.completion.size() < 6 ? 1.0 : 0.0; });
    auto result = co_await evaluate({.dataset = scored_prompts(),
                                     .model = model.as_inference(),
                                     .graders = {FunctionGrader("given", by_metadata), length},
                                     .k = 3,
                                     .sampling = {.temperature = 1.0, .max_tokens = 8},
                                     .samples_file = dir_ / "eval_samples.jsonl"});
    EXPECT_EQ(result.prompts, 4);
    EXPECT_EQ(result.graders.size(), 2u);
    if (result.graders.size() != 2u)
      co_return;
    const auto& given = result.graders[0];
    // 3 prompts graded 3 times each: (1 + 0.25 + 0.5) / 3; the fourth is ignored 3 times.
    EXPECT_NEAR(given.mean_at_k, 1.75 / 3, 1e-12);
    EXPECT_EQ(given.graded, 9);
    EXPECT_EQ(given.ignored, 3);
    // Passing (>= 0.5): prompts one and three of four.
    EXPECT_DOUBLE_EQ(given.pass_at_k, 0.5);

    // The file holds every sample with both grades, and its grades give the same figures.
    auto lines = read_lines(dir_ / "eval_samples.jsonl");
    EXPECT_EQ(lines.size(), 12u);
    if (lines.size() != 12u)
      co_return;
    double short_sum = 0;
    std::vector<bool> short_pass(4, false);
    for (const auto& line : lines) {
      EXPECT_TRUE(line.contains("completion"));
      EXPECT_EQ(line["grades"]["given"]["explanation"], "from the metadata");
      double score = line["grades"]["short"]["score"].get<double>();
      short_sum += score;
      if (score >= 0.5)
        short_pass[line["prompt_index"].get<std::size_t>()] = true;
    }
    EXPECT_NEAR(result.graders[1].mean_at_k, short_sum / 12, 1e-12);
    EXPECT_DOUBLE_EQ(result.graders[1].pass_at_k,
                     static_cast<double>(std::count(short_pass.begin(), short_pass.end(), true)) / 4);
    EXPECT_NE(result.table().find("mean@3"), std::string::npos);
    auto metrics = result.metrics();
    EXPECT_EQ(metrics.front().first, "eval/given/mean@3");

    // The same seed, the same completions.
    auto again = co_await evaluate({.dataset = scored_prompts(),
                                    .model = model.as_inference(),
                                    .graders = {length},
                                    .k = 3,
                                    .sampling = {.temperature = 1.0, .max_tokens = 8}});
    for (std::size_t i = 0; i < again.samples.size(); ++i)
      EXPECT_EQ(again.samples[i].generation.text, result.samples[i].generation.text);
  }());
}

TEST_F(Evaluation, TheCallbackEvaluatesEveryNStepsAndAtTheEndWithTheStepsMetrics) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    std::vector<Completion> demonstrations;
    for (int i = 0; i < 8; ++i)
      demonstrations.push_back({{{"user", "Name a color " + std::to_string(i)}}, "blue", Json::object()});
    auto callback = evaluation_callback({.every = 2,
                                         .model = model,
                                         .dataset = scored_prompts(),
                                         .graders = {FunctionGrader("given", by_metadata)},
                                         .sampling = {.temperature = 0.0, .max_tokens = 4},
                                         .loss_dataset = demonstrations},
                                        ctx_);
    co_await SFT({.dataset = demonstrations,
                  .model = model,
                  .logger = ctx_.logger(),
                  .lr = 3e-3,
                  .epochs = 5,
                  .samples_per_batch = 8,
                  .callbacks = {callback}})
      .run();
    std::vector<std::int64_t> evaluated;
    std::vector<double> losses;
    for (const auto& line : read_lines(dir_ / "metrics.jsonl")) {
      if (!line.contains("eval/loss"))
        continue;
      evaluated.push_back(line["step"].get<std::int64_t>());
      losses.push_back(line["eval/loss"].get<double>());
      EXPECT_NEAR(line["eval/given/mean@1"].get<double>(), 1.75 / 3, 1e-12);
      EXPECT_TRUE(line.contains("loss")); // logged with the step's own figures
    }
    EXPECT_EQ(evaluated, (std::vector<std::int64_t>{2, 4, 5})); // every 2 steps, and the last
    EXPECT_EQ(losses.size(), 3u);
    if (losses.size() != 3u)
      co_return;
    EXPECT_LT(losses.back(), losses.front()); // SFT on the same demonstrations lowers their loss
    EXPECT_TRUE(std::filesystem::exists(dir_ / "eval" / "sft-step4.jsonl"));
  }());
}

// A samples file that cannot be written fails the evaluation naming the file (tests run as root, so
// the paths are made unwritable by what is in the way, not by permissions).
TEST_F(Evaluation, ASamplesFileThatCannotBeWrittenIsAnErrorNamingIt) {
  std::ofstream(dir_ / "blocker") << "a file where a folder should be";
  runtime_.run([&]() -> Task<void> {
    auto model = co_await tiny_model();
    for (auto file : {dir_ / "blocker" / "eval_samples.jsonl", dir_}) {
      std::string error;
      try {
        co_await evaluate({.dataset = scored_prompts(),
                           .model = model.as_inference(),
                           .graders = {FunctionGrader("given", by_metadata)},
                           .sampling = {.temperature = 1.0, .max_tokens = 4},
                           .samples_file = file});
      } catch (const Error& e) {
        error = e.what();
      }
      EXPECT_NE(error.find(file.string() + ": cannot write the evaluation samples"), std::string::npos)
        << "error: '" << error << "'";
    }
  }());
}

TEST(EvaluationOptions, BadOptionsAreConfigErrors) {
  Runtime runtime;
  RecipeContext ctx{runtime, "test", ::testing::TempDir(), MetricsLogger(), spdlog::default_logger()};
  expect_error_containing<ConfigError>([&] { evaluation_callback({}, ctx); }, {"no model"});
  expect_error_containing<ConfigError>([&] { evaluation_callback({.every = -1}, ctx); }, {"every must be >= 0"});
  runtime.run([&]() -> Task<void> {
    std::string error;
    try {
      co_await evaluate({.dataset = scored_prompts()});
    } catch (const ConfigError& e) {
      error = e.what();
    }
    EXPECT_NE(error.find("no graders"), std::string::npos) << error;
  }());
}
