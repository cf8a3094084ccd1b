// Integer bounds in guided decoding: the pattern of a range matches exactly the JSON texts of its
// integers, and a schema's minimum / maximum (exclusive ones too) write only integers within them.
#include <chorus/json_schema.hpp>

#include "grammar_writer.hpp"
#include "models/json_grammar.hpp"
#include "models/number_ranges.hpp"
#include "models/regex_grammar.hpp"

#include <gtest/gtest.h>

#include <random>

using chorus::Json;
using namespace chorus::models;

TEST(IntegerRange, MatchesExactlyTheIntegersWithin) {
  const std::vector<std::pair<std::int64_t, std::int64_t>> ranges{
    {0, 0}, {1, 10}, {-5, 5}, {-100, -7}, {7, 1234}, {999, 1000}, {10, 99}, {-1, -1}, {-1000, 1}, {0, 9}, {5, 5}};
  for (auto [least, most] : ranges) {
    auto grammar = regex_grammar(integer_range_pattern(least, most));
    for (std::int64_t v = -1300; v <= 1300; ++v)
      EXPECT_EQ(accepts(grammar, std::to_string(v)), least <= v && v <= most)
        << "[" << least << ", " << most << "] at " << v;
    for (const char* text : {"-0", "007", "+1", "", "1.0"})
      EXPECT_FALSE(accepts(grammar, text)) << text;
  }
  // The widest range: every integer of at most 18 digits.
  auto all = regex_grammar(integer_range_pattern(-kLargestWrittenInteger, kLargestWrittenInteger));
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{-1}, kLargestWrittenInteger, -kLargestWrittenInteger,
                         std::int64_t{123456789012345678}})
    EXPECT_TRUE(accepts(all, std::to_string(v))) << v;
  EXPECT_FALSE(accepts(all, "1000000000000000000")); // 19 digits
  auto big = regex_grammar(integer_range_pattern(123456789, 987654321012));
  for (std::int64_t v :
       {std::int64_t{123456789}, std::int64_t{123456790}, std::int64_t{987654321012}, std::int64_t{500000000000}})
    EXPECT_TRUE(accepts(big, std::to_string(v))) << v;
  for (std::int64_t v : {std::int64_t{123456788}, std::int64_t{987654321013}, std::int64_t{12345678}})
    EXPECT_FALSE(accepts(big, std::to_string(v))) << v;
  EXPECT_THROW(integer_range_pattern(3, 2), std::invalid_argument);
}

TEST(JsonSchemaGrammar, AnIntegersBoundsAreFollowed) {
  const std::vector<Json> schemas{
    {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}},
    {{"type", "integer"}, {"exclusiveMinimum", -3.5}, {"exclusiveMaximum", 250}},
    {{"type", {"integer", "null"}}, {"minimum", 100}},
    {{"maximum", -20}}, // no type: an integer
    {{"type", "integer"}, {"minimum", 0}, {"exclusiveMinimum", true}, {"maximum", 4}, {"exclusiveMaximum", true}},
  };
  std::mt19937 random(3);
  for (const auto& schema : schemas) {
    auto values = written_values(json_schema_grammar(schema), 100, random);
    for (const auto& value : values) {
      EXPECT_TRUE(value.is_null() || value.is_number_integer()) << value;
      EXPECT_EQ(chorus::schema_violation(value, schema), "") << schema.dump() << ": " << value;
    }
    EXPECT_GT(values.size(), 50u) << schema.dump();
  }
  auto grammar = json_schema_grammar({{"type", "integer"}, {"minimum", 0.5}, {"maximum", 3}});
  EXPECT_FALSE(accepts(grammar, "0"));
  EXPECT_TRUE(accepts(grammar, "1"));
  EXPECT_TRUE(accepts(grammar, "3"));
  auto draft4 = json_schema_grammar({{"type", "integer"}, {"minimum", 0}, {"exclusiveMinimum", true}, {"maximum", 2}});
  EXPECT_FALSE(accepts(draft4, "0"));
  EXPECT_TRUE(accepts(draft4, "1"));
  EXPECT_TRUE(accepts(draft4, "2"));
  EXPECT_EQ(schema_refusal({{"type", "number"}, {"minimum", 0}}),
            "$: minimum and maximum are followed for integers only in guided decoding (type 'integer')");
  EXPECT_EQ(schema_refusal({{"type", "integer"}, {"minimum", 5}, {"exclusiveMaximum", 5}}),
            "$: no integer of at most 18 digits satisfies its minimum and maximum");
  EXPECT_EQ(schema_refusal({{"type", "integer"}, {"minimum", "5"}}), "$.minimum: expected a number, got \"5\"");
  EXPECT_EQ(schema_refusal({{"type", "integer"}, {"minimum", 1e300}}),
            "$: no integer of at most 18 digits satisfies its minimum and maximum");
}
