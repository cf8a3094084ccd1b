// JSONL datasets: the accepted shapes, and errors that name file, line and field.
#include <chorus/dataset.hpp>
#include <chorus/errors.hpp>

#include "tests/expect_error.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <initializer_list>
#include <string_view>

using namespace chorus;
using chorus::test::expect_error_containing;

namespace {

std::filesystem::path write_lines(const std::string& name, const std::vector<std::string>& lines) {
  auto path = std::filesystem::path(::testing::TempDir()) / name;
  std::ofstream out(path);
  for (const auto& line : lines)
    out << line << "\n";
  return path;
}

// Reading `path` as a dataset of `Kind` must fail with a DatasetError saying each of `fragments`;
// returns the message.
template <class Kind>
std::string expect_dataset_error(const std::filesystem::path& path, std::initializer_list<std::string_view> fragments,
                                 const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return expect_error_containing<DatasetError>([&] { read_dataset<Kind>(path, false); }, fragments, file, line);
}

} // namespace

TEST(Dataset, CompletionsFromMessagesOrPromptPairs) {
  auto path =
    write_lines("completions.jsonl",
                {R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},)"
                 R"( {"role": "assistant", "content": "4"}], "source": "math"})",
                 "", R"({"prompt": "Capital of France?", "completion": "Paris", "metadata": {"id": 7}})"});
  auto examples = read_dataset<Completion>(path, false);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].prompt.size(), 2u);
  EXPECT_EQ(examples[0].prompt[1].content, "2+2?");
  EXPECT_EQ(examples[0].completion, "4");
  EXPECT_EQ(examples[0].metadata["source"], "math");
  EXPECT_EQ(examples[1].prompt.front().role, "user");
  EXPECT_EQ(examples[1].completion, "Paris");
  EXPECT_EQ(examples[1].metadata["id"], 7);
}

// Distilled reasoning (OpenAI-compatible servers' reasoning_content) is learned before the answer,
// written as a thinking model writes it.
TEST(Dataset, AnAssistantsReasoningGoesBeforeItsAnswer) {
  auto path = write_lines("reasoning.jsonl",
                          {R"({"messages": [{"role": "user", "content": "2+2?"},)"
                           R"( {"role": "assistant", "reasoning_content": "Two and two.", "content": "4"}]})"});
  auto examples = read_dataset<Completion>(path, false);
  ASSERT_EQ(examples.size(), 1u);
  EXPECT_EQ(examples[0].completion, "<think>\nTwo and two.\n</think>\n\n4");
  EXPECT_FALSE(examples[0].metadata.contains("reasoning_content"));
  auto misplaced = write_lines("misplaced.jsonl",
                               {R"({"messages": [{"role": "user", "content": "2+2?", "reasoning_content": "x"},)"
                                R"( {"role": "assistant", "content": "4"}]})"});
  expect_dataset_error<Completion>(
    misplaced,
    {"misplaced.jsonl:1: field 'messages[0].reasoning_content': expected a string, in an assistant message"});
}

TEST(Dataset, PromptsKeepTheirMetadataForGraders) {
  auto path = write_lines("prompts.jsonl", {R"({"prompt": "3*3?", "answer": "9"})"});
  auto prompts = read_dataset<Prompt>(path, false);
  ASSERT_EQ(prompts.size(), 1u);
  EXPECT_EQ(prompts[0].metadata["answer"], "9");
  auto preferences = read_dataset<Preference>(
    write_lines("preferences.jsonl", {R"({"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."})"}), false);
  EXPECT_EQ(preferences[0].chosen, "Hello!");
  EXPECT_EQ(preferences[0].rejected, "Go away.");
}

TEST(Dataset, MalformedLinesNameTheFileLineAndField) {
  auto path = write_lines("bad.jsonl", {R"({"prompt": "ok", "completion": "fine"})", R"({"prompt": "no completion"})"});
  expect_dataset_error<Completion>(path, {"bad.jsonl:2: field 'completion': missing"});
  auto json = write_lines("json.jsonl", {R"({"prompt": "x", "completion": )"});
  expect_dataset_error<Completion>(json, {"json.jsonl:1: not valid JSON"});
  auto order = write_lines("order.jsonl", {R"({"messages": [{"role": "assistant", "content": "hi"}]})"});
  expect_dataset_error<Completion>(order, {"order.jsonl:1: field 'messages[0].role': expected 'user'"});
  auto empty = write_lines("empty.jsonl",
                           {R"({"messages": [{"role": "user", "content": "hi"},)"
                            R"( {"role": "assistant", "content": ""}]})"});
  expect_dataset_error<Completion>(empty, {"empty.jsonl:1: field 'messages[1].content': empty completion"});
  auto prompt_ending = write_lines("ending.jsonl",
                                   {R"({"messages": [{"role": "user", "content": "a"},)"
                                    R"( {"role": "assistant", "content": "b"}]})"});
  expect_dataset_error<Prompt>(prompt_ending, {"expected the last turn to be 'user'"});
  expect_dataset_error<Prompt>(std::filesystem::path(::testing::TempDir()) / "missing.jsonl", {"cannot open"});
}

TEST(Dataset, AnEmptyFileAndAHugeLineAreErrorsNamingTheFile) {
  auto empty = write_lines("nothing.jsonl", {});
  expect_dataset_error<Prompt>(empty, {"nothing.jsonl: no examples"});
  auto blank = write_lines("blank.jsonl", {"", "   ", ""});
  expect_dataset_error<Prompt>(blank, {"blank.jsonl: no examples"});

  // A line past 64 MiB is refused without being kept; the lines around it still read when skipping.
  auto huge = write_lines("huge.jsonl",
                          {R"({"prompt": "a", "completion": "b"})",
                           R"({"prompt": ")" + std::string((64u << 20) + 16, 'x') + R"(", "completion": "c"})",
                           R"({"prompt": "d", "completion": "e"})"});
  // Checked by hand so that a failure shows only the start of the message, which could hold the line.
  auto too_long = expect_dataset_error<Completion>(huge, {});
  EXPECT_NE(too_long.find("huge.jsonl:2: line longer than 64 MiB"), std::string::npos) << too_long.substr(0, 200);
  std::vector<std::string> skipped;
  auto examples = read_dataset<Completion>(huge, true, &skipped);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[1].completion, "e");
  ASSERT_EQ(skipped.size(), 1u);

  // The last line needs no newline.
  auto unterminated = std::filesystem::path(::testing::TempDir()) / "unterminated.jsonl";
  std::ofstream(unterminated) << R"({"prompt": "a", "completion": "b"})";
  EXPECT_EQ(read_dataset<Completion>(unterminated, false).size(), 1u);
}

TEST(Dataset, SkippingBadLinesReportsEachOne) {
  auto path = write_lines("mixed.jsonl",
                          {R"({"prompt": "a", "completion": "b"})", "not json", R"({"prompt": "c"})",
                           R"({"prompt": "d", "completion": "e"})"});
  std::vector<std::string> skipped;
  auto examples = read_dataset<Completion>(path, true, &skipped);
  EXPECT_EQ(examples.size(), 2u);
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_NE(skipped[0].find("mixed.jsonl:2"), std::string::npos);
  EXPECT_NE(skipped[1].find("mixed.jsonl:3"), std::string::npos);
}

TEST(Dataset, ShuffleSplitAndBatchAreDeterministic) {
  std::vector<int> items(10);
  for (int i = 0; i < 10; ++i)
    items[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(shuffled(items, 3), shuffled(items, 3));
  EXPECT_NE(shuffled(items, 3), shuffled(items, 4));
  auto [train, eval] = train_eval_split(items, 0.2, 1);
  EXPECT_EQ(train.size(), 8u);
  EXPECT_EQ(eval.size(), 2u);
  auto all = train;
  all.insert(all.end(), eval.begin(), eval.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, items);
  auto batches = batches_of(items, 4);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[2], (std::vector<int>{8, 9}));
}

TEST(Dataset, ConfigTakesAPathOrAnObject) {
  Dataset<Prompt> dataset;
  ConfigLocation at{"config.json", "data"};
  ConfigCodec<Dataset<Prompt>>::read(Json("a.jsonl"), dataset, at);
  EXPECT_EQ(dataset.path, "a.jsonl");
  ConfigCodec<Dataset<Prompt>>::read(Json{{"path", "b.jsonl"}, {"skip_bad_lines", true}}, dataset, at);
  EXPECT_EQ(dataset.path, "b.jsonl");
  EXPECT_TRUE(dataset.skip_bad_lines);
  EXPECT_THROW(ConfigCodec<Dataset<Prompt>>::read(Json{{"path", "c"}, {"skip", true}}, dataset, at), ConfigError);
  EXPECT_THROW(ConfigCodec<Dataset<Prompt>>::read(Json(3), dataset, at), ConfigError);
}

TEST(Dataset, MetricsAreCompletionsWithANumericLabelUnderTheDatasetsKey) {
  auto path = write_lines("metrics.jsonl",
                          {R"({"prompt": "Hi", "completion": "Hello!", "label": 0.75, "id": 3})",
                           R"({"messages": [{"role": "user", "content": "Yo"},)"
                           R"( {"role": "assistant", "content": "What?"}], "label": -2})"});
  auto metrics = read_dataset<Metric>(path, false);
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[0].completion, "Hello!");
  EXPECT_DOUBLE_EQ(metrics[0].label, 0.75);
  EXPECT_EQ(metrics[0].metadata["id"], 3);
  EXPECT_FALSE(metrics[0].metadata.contains("label")); // the label is not metadata too
  EXPECT_DOUBLE_EQ(metrics[1].label, -2.0);
  EXPECT_EQ(metrics[1].prompt.back().content, "Yo");

  auto rated = write_lines("rated.jsonl", {R"({"prompt": "Hi", "completion": "Hello!", "rating": 4})"});
  EXPECT_DOUBLE_EQ(read_dataset<Metric>(rated, false, nullptr, "rating").front().label, 4.0);
  expect_dataset_error<Metric>(rated, {"rated.jsonl:1: field 'label': missing"});
  auto text = write_lines("text_label.jsonl", {R"({"prompt": "Hi", "completion": "Hello!", "label": "good"})"});
  expect_dataset_error<Metric>(text, {"text_label.jsonl:1: field 'label': expected a finite number"});
  auto no_completion = write_lines("no_completion.jsonl", {R"({"prompt": "Hi", "label": 1})"});
  expect_dataset_error<Metric>(no_completion, {"no_completion.jsonl:1: field 'completion': missing"});

  // The label's key is a Metric dataset's config; other kinds refuse it as an unknown key.
  Dataset<Metric> dataset;
  ConfigLocation at{"config.json", "ratings"};
  ConfigCodec<Dataset<Metric>>::read(Json{{"path", "r.jsonl"}, {"label_key", "rating"}}, dataset, at);
  EXPECT_EQ(dataset.label_key, "rating");
  EXPECT_EQ(ConfigCodec<Dataset<Metric>>::write(dataset)["label_key"], "rating");
  Dataset<Prompt> prompts;
  EXPECT_THROW(ConfigCodec<Dataset<Prompt>>::read(Json{{"path", "p"}, {"label_key", "x"}}, prompts, at), ConfigError);
}
