// JSONL datasets: the accepted shapes, and errors that name file, line and field.
#include <chorus/dataset.hpp>
#include <chorus/errors.hpp>

#include <gtest/gtest.h>

#include <fstream>

using namespace chorus;

namespace {

std::filesystem::path write_lines(const std::string& name, const std::vector<std::string>& lines) {
  auto path = std::filesystem::path(::testing::TempDir()) / name;
  std::ofstream out(path);
  for (const auto& line : lines)
    out << line << "\n";
  return path;
}

template <class Kind>
std::string error_of(const std::filesystem::path& path) {
  try {
    read_dataset<Kind>(path, false);
  } catch (const DatasetError& error) {
    return error.what();
  }
  return "no error";
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
  EXPECT_NE(error_of<Completion>(path).find("bad.jsonl:2: field 'completion': missing"), std::string::npos)
    << error_of<Completion>(path);
  auto json = write_lines("json.jsonl", {R"({"prompt": "x", "completion": )"});
  EXPECT_NE(error_of<Completion>(json).find("json.jsonl:1: not valid JSON"), std::string::npos);
  auto order = write_lines("order.jsonl", {R"({"messages": [{"role": "assistant", "content": "hi"}]})"});
  EXPECT_NE(error_of<Completion>(order).find("order.jsonl:1: field 'messages[0].role': expected 'user'"),
            std::string::npos)
    << error_of<Completion>(order);
  auto empty = write_lines("empty.jsonl",
                           {R"({"messages": [{"role": "user", "content": "hi"},)"
                            R"( {"role": "assistant", "content": ""}]})"});
  EXPECT_NE(error_of<Completion>(empty).find("empty.jsonl:1: field 'messages[1].content': empty completion"),
            std::string::npos)
    << error_of<Completion>(empty);
  auto prompt_ending = write_lines("ending.jsonl",
                                   {R"({"messages": [{"role": "user", "content": "a"},)"
                                    R"( {"role": "assistant", "content": "b"}]})"});
  EXPECT_NE(error_of<Prompt>(prompt_ending).find("expected the last turn to be 'user'"), std::string::npos);
  EXPECT_NE(error_of<Prompt>(std::filesystem::path(::testing::TempDir()) / "missing.jsonl").find("cannot open"),
            std::string::npos);
}

TEST(Dataset, AnEmptyFileAndAHugeLineAreErrorsNamingTheFile) {
  auto empty = write_lines("nothing.jsonl", {});
  EXPECT_NE(error_of<Prompt>(empty).find("nothing.jsonl: no examples"), std::string::npos) << error_of<Prompt>(empty);
  auto blank = write_lines("blank.jsonl", {"", "   ", ""});
  EXPECT_NE(error_of<Prompt>(blank).find("blank.jsonl: no examples"), std::string::npos) << error_of<Prompt>(blank);

  // A line past 64 MiB is refused without being kept; the lines around it still read when skipping.
  auto huge = write_lines("huge.jsonl",
                          {R"({"prompt": "a", "completion": "b"})",
                           R"({"prompt": ")" + std::string((64u << 20) + 16, 'x') + R"(", "completion": "c"})",
                           R"({"prompt": "d", "completion": "e"})"});
  EXPECT_NE(error_of<Completion>(huge).find("huge.jsonl:2: line longer than 64 MiB"), std::string::npos)
    << error_of<Completion>(huge).substr(0, 200);
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
