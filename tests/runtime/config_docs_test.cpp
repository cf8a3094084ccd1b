// Reading the comments above config fields (runtime/config_docs.cpp) from source text.
#include "runtime/config_docs.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace {

using chorus::config_docs::extract;

// Field -> description of config struct `type` in `source`; empty if the struct has none.
std::map<std::string, std::string> docs_of(const std::string& source, const std::string& type) {
  std::map<std::string, std::string> result;
  for (const auto& doc : extract(source))
    if (doc.type == type)
      for (const auto& field : doc.fields)
        result[field.field] = field.text;
  return result;
}

TEST(ConfigDocs, TheCommentAboveAFieldDescribesIt) {
  auto docs = docs_of(R"(
struct Config {
  // Adam's learning rate.
  double lr = 1e-5;
  /// Passes over the data,
  /// counted from 1.
  int epochs = 1;
  int undocumented = 3;
};
CHORUS_CONFIG(Config, lr, epochs, undocumented)
)",
                      "Config");
  EXPECT_EQ(docs["lr"], "Adam's learning rate.");
  EXPECT_EQ(docs["epochs"], "Passes over the data, counted from 1.");
  EXPECT_EQ(docs.count("undocumented"), 0u);
  EXPECT_EQ(docs.size(), 2u);
}

TEST(ConfigDocs, ACommentAfterTheFieldOnItsLineCountsWhenNoneIsAbove) {
  auto docs = docs_of(R"(
struct Config {
  Dataset<Prompt> dataset; // {"prompt": ..., "answer": ...}
  // above wins
  int steps = 2; // after loses
  int next = 3;
};
CHORUS_CONFIG(Config, dataset, steps, next)
)",
                      "Config");
  EXPECT_EQ(docs["dataset"], R"({"prompt": ..., "answer": ...})");
  EXPECT_EQ(docs["steps"], "above wins");
  EXPECT_EQ(docs.count("next"), 0u) << "the comment after `steps` is not above `next`'s line alone";
}

TEST(ConfigDocs, ABlankLineSeparatesACommentFromTheField) {
  auto docs = docs_of(R"(
struct Config {
  // A section heading, not about `lr`.

  double lr = 1e-5;
};
CHORUS_CONFIG(Config, lr)
)",
                      "Config");
  EXPECT_TRUE(docs.empty());
}

TEST(ConfigDocs, InitialisersWithBracesStringsAndCommentMarkersDoNotConfuseIt) {
  auto docs = docs_of(R"~(
struct Config {
  // Where the prompts are.
  Dataset<Prompt> prompts{DATA_DIR "/prompts.jsonl"};
  // A pattern with braces and slashes.
  std::string pattern = "{ // not a comment; }";
  // A raw string.
  std::string raw = R"x(})x";
  // A list.
  std::vector<int> sizes{1, 2, 3};
  char brace = '}';
  // After the character literal.
  int last = 1'000;
};
CHORUS_CONFIG(Config, prompts, pattern, raw, sizes, brace, last)
)~",
                      "Config");
  EXPECT_EQ(docs["prompts"], "Where the prompts are.");
  EXPECT_EQ(docs["pattern"], "A pattern with braces and slashes.");
  EXPECT_EQ(docs["raw"], "A raw string.");
  EXPECT_EQ(docs["sizes"], "A list.");
  EXPECT_EQ(docs["last"], "After the character literal.");
}

TEST(ConfigDocs, MemberFunctionsStaticMembersAndAccessLabelsAreNotFields) {
  auto docs = docs_of(R"(
struct Config {
public:
  // A helper.
  int twice() const { return 2 * steps; }
  // A constant.
  static constexpr int kLimit = 4;
  // Steps to take.
  int steps = 1;
  // A type.
  using Size = int;
  // A callback field.
  std::function<void(int)> on_step;
};
CHORUS_CONFIG(Config, steps, on_step)
)",
                      "Config");
  EXPECT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs["steps"], "Steps to take.");
  EXPECT_EQ(docs["on_step"], "A callback field.");
}

TEST(ConfigDocs, OnlyStructsNamedByChorusConfigAreRead) {
  auto docs = extract(R"(
// A section of the config.
struct Optimizer {
  // Adam's beta1.
  double beta1 = 0.9;
};
CHORUS_CONFIG(Optimizer, beta1)
struct Unrelated {
  // Not a config.
  int x = 0;
};
struct Config {
  // The optimizer.
  Optimizer optimizer;
};
CHORUS_CONFIG(Config, optimizer)
#define CHORUS_CONFIG(Type, ...) nothing
)");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].type, "Optimizer");
  EXPECT_EQ(docs[0].fields.at(0).text, "Adam's beta1.");
  EXPECT_EQ(docs[1].type, "Config");
  EXPECT_EQ(docs[1].fields.at(0).field, "optimizer");
}

TEST(ConfigDocs, SeveralDeclaratorsShareTheComment) {
  auto docs =
    docs_of("struct C {\n  // Sizes.\n  int width = 1, height = 2;\n};\nCHORUS_CONFIG(C, width, height)\n", "C");
  EXPECT_EQ(docs["width"], "Sizes.");
  EXPECT_EQ(docs["height"], "Sizes.");
}

TEST(ConfigDocs, BlockCommentsAreJoinedIntoOneLine) {
  auto docs =
    docs_of("struct C {\n  /* The learning\n   * rate. */\n  double lr = 1;\n};\nCHORUS_CONFIG(C, lr)\n", "C");
  EXPECT_EQ(docs["lr"], "The learning rate.");
}

TEST(ConfigDocs, OddInputYieldsNoDescriptionsInsteadOfFailing) {
  EXPECT_TRUE(extract("").empty());
  EXPECT_TRUE(extract("CHORUS_CONFIG(").empty());
  EXPECT_TRUE(extract("CHORUS_CONFIG(Missing, a)").empty());
  EXPECT_TRUE(extract("struct C { // never closed\n int a;\n CHORUS_CONFIG(C, a)").empty());
  EXPECT_TRUE(extract("struct C { \"unterminated\n int a; }; CHORUS_CONFIG(C, a) R\"x(").empty());
}

TEST(ConfigDocs, TheGeneratedSourceEscapesQuotesAndBackslashes) {
  auto source = chorus::config_docs::generate_source({{"C", {{"pattern", R"(a "quoted" \d+)"}}}}, "recipe.cpp");
  EXPECT_NE(source.find(R"({"pattern", "a \"quoted\" \\d+"})"), std::string::npos) << source;
  EXPECT_NE(source.find("chorus::detail::ConfigDocs"), std::string::npos) << source;
  EXPECT_NE(source.find("recipe.cpp"), std::string::npos) << source;
}

} // namespace
