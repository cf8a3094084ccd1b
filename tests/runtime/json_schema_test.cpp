// JSON in a model's reply: found inside prose or a code fence, and checked against the schema subset
// with the first problem named by its path.
#include <chorus/json_schema.hpp>

#include <gtest/gtest.h>

using namespace chorus;

TEST(JsonSchema, TheValueIsFoundInsideProseOrAFence) {
  EXPECT_EQ(parse_json_reply(" {\"a\": 1} \n"), Json({{"a", 1}}));
  EXPECT_EQ(parse_json_reply("Sure! ```json\n{\"a\": [1, 2]}\n``` Hope that helps."), Json({{"a", {1, 2}}}));
  EXPECT_EQ(parse_json_reply("The list: [3, 4]."), Json({3, 4}));
  EXPECT_EQ(parse_json_reply("42"), Json(42));
  EXPECT_FALSE(parse_json_reply("no json {here").has_value());
  EXPECT_FALSE(parse_json_reply("   ").has_value());
}

TEST(JsonSchema, TheFirstViolationIsNamedByItsPath) {
  Json schema = {{"type", "object"},
                 {"required", {"answer", "steps"}},
                 {"properties",
                  {{"answer", {{"type", "string"}, {"enum", {"yes", "no"}}}},
                   {"steps", {{"type", "array"}, {"items", {{"type", "integer"}}}}}}}};
  EXPECT_EQ(schema_violation({{"answer", "yes"}, {"steps", {1, 2}}}, schema), "");
  EXPECT_EQ(schema_violation({{"answer", "yes"}}, schema), "$: missing required field 'steps'");
  EXPECT_EQ(schema_violation({{"answer", "maybe"}, {"steps", Json::array()}}, schema),
            "$.answer: \"maybe\" is not one of [\"yes\",\"no\"]");
  EXPECT_EQ(schema_violation({{"answer", "no"}, {"steps", {1, 2.5}}}, schema),
            "$.steps[1]: expected integer, got number");
  EXPECT_EQ(schema_violation(Json::array(), schema), "$: expected object, got array");
  EXPECT_EQ(schema_violation(Json(3), Json::object()), ""); // an empty schema takes any JSON
}

TEST(JsonSchema, AdditionalPropertiesBarOrConstrainTheOtherFields) {
  Json closed = {
    {"type", "object"}, {"properties", {{"answer", {{"enum", {"yes", "no"}}}}}}, {"additionalProperties", false}};
  EXPECT_EQ(schema_violation({{"answer", "yes"}}, closed), "");
  EXPECT_EQ(schema_violation({{"answer", "yes"}, {"note", "sure"}}, closed), "$: unexpected field 'note'");
  Json numbers = {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}};
  EXPECT_EQ(schema_violation({{"a", 1}, {"b", 2.5}}, numbers), "");
  EXPECT_EQ(schema_violation({{"a", 1}, {"b", "two"}}, numbers), "$.b: expected number, got string");
}

// The keywords guided decoding generates are checked too: type lists, const, anyOf / oneOf, bounds
// on characters and items, and $ref into $defs.
TEST(JsonSchema, TheKeywordsOfGuidedDecodingAreChecked) {
  Json nullable = {{"type", {"string", "null"}}, {"minLength", 2}, {"maxLength", 3}};
  EXPECT_EQ(schema_violation(nullptr, nullable), "");
  EXPECT_EQ(schema_violation("\xc3\xa9t\xc3\xa9", nullable), ""); // three characters in five bytes
  EXPECT_EQ(schema_violation("a", nullable), "$: 1, fewer than minLength 2");
  EXPECT_EQ(schema_violation("abcd", nullable), "$: 4, more than maxLength 3");
  EXPECT_EQ(schema_violation(1, nullable), "$: expected [\"string\",\"null\"], got number");
  EXPECT_EQ(schema_violation(Json{1, 2, 3}, {{"maxItems", 2}}), "$: 3, more than maxItems 2");
  EXPECT_EQ(schema_violation(Json::array(), {{"minItems", 1}}), "$: 0, fewer than minItems 1");
  EXPECT_EQ(schema_violation("no", {{"const", "yes"}}), "$: expected \"yes\", got \"no\"");
  Json either = {{"anyOf", {{{"type", "boolean"}}, {{"const", "unsure"}}}}};
  EXPECT_EQ(schema_violation(true, either), "");
  EXPECT_EQ(schema_violation("unsure", either), "");
  EXPECT_EQ(schema_violation("yes", either), "$: \"yes\" satisfies none of anyOf");
  Json one = {{"oneOf", {{{"type", "number"}}, {{"type", "integer"}}}}};
  EXPECT_EQ(schema_violation(1.5, one), "");
  EXPECT_EQ(schema_violation(2, one), "$: 2 does not satisfy exactly one of oneOf"); // both
  Json tree = {
    {"$defs",
     {{"node",
       {{"type", "object"}, {"properties", {{"kids", {{"type", "array"}, {"items", {{"$ref", "#/$defs/node"}}}}}}}}}}},
    {"$ref", "#/$defs/node"}};
  EXPECT_EQ(schema_violation({{"kids", {Json::object(), {{"kids", Json::array()}}}}}, tree), "");
  EXPECT_EQ(schema_violation({{"kids", {{{"kids", 3}}}}}, tree), "$.kids[0].kids: expected array, got number");
  // A $ref cycle that never reaches a value, and bounds too large for any count, do not crash.
  Json cycle = {{"$defs", {{"a", {{"$ref", "#/$defs/a"}}}}}, {"$ref", "#/$defs/a"}};
  EXPECT_NE(schema_violation(1, cycle).find("nests deeper than 256"), std::string::npos);
  EXPECT_EQ(schema_violation("abc", Json::parse(R"({"maxLength": 18446744073709551615})")), "");
  EXPECT_EQ(schema_violation("abc", Json::parse(R"({"maxLength": 1e300})")), ""); // not an integer: not checked
}

// "pattern" matches anywhere in the string unless anchored, in ECMAScript's syntax (\uHHHH; "$" only
// at the very end, so "abc\n" does not end in c); a pattern that does not compile is a violation.
TEST(JsonSchema, APatternIsSearchedForInTheString) {
  Json code = {{"type", "string"}, {"pattern", "^[A-Z]{2}\\d{2}$"}};
  EXPECT_EQ(schema_violation("AB12", code), "");
  EXPECT_EQ(schema_violation("AB1", code), "$: \"AB1\" does not match the pattern \"^[A-Z]{2}\\\\d{2}$\"");
  EXPECT_NE(schema_violation("AB12\n", code), ""); // PCRE2's default would let "$" match before it
  EXPECT_EQ(schema_violation("xxbxx", {{"pattern", "b"}}), "");
  EXPECT_EQ(schema_violation("\xc3\xa9t\xc3\xa9", {{"pattern", "^\\u00e9.\\u00e9$"}}), ""); // characters, not bytes
  EXPECT_EQ(schema_violation(42, {{"pattern", "^x$"}}), "");                                // only strings are matched
  auto broken = schema_violation("a", {{"pattern", "(a"}});
  EXPECT_NE(broken.find("$: the pattern \"(a\" does not compile at byte 2"), std::string::npos) << broken;
  EXPECT_NE(schema_violation("a", {{"pattern", 5}}).find("is not a string"), std::string::npos);
  // Matched as an automaton: a pattern that backtracking would take exponential time on is decided.
  EXPECT_EQ(schema_violation(std::string(50, 'a'), {{"pattern", "^(?:a|a)*a{25}$"}}), "");
  EXPECT_NE(schema_violation(std::string(50, 'a') + "b", {{"pattern", "^(?:a|a)*a{25}$"}}), "");
  EXPECT_EQ(schema_violation("abab", {{"pattern", "^(ab)\\1$"}}), ""); // a backreference: backtracked
  EXPECT_NE(schema_violation("abac", {{"pattern", "^(ab)\\1$"}}), "");
  EXPECT_NE(schema_violation({{"id", "7"}}, {{"properties", {{"id", {{"pattern", "^[a-z]+$"}}}}}}).find("$.id: \"7\""),
            std::string::npos);
}

TEST(JsonSchema, NumbersAreHeldToTheirBounds) {
  Json score = {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}};
  EXPECT_EQ(schema_violation(1, score), "");
  EXPECT_EQ(schema_violation(10, score), "");
  EXPECT_EQ(schema_violation(0, score), "$: 0, less than minimum 1");
  EXPECT_EQ(schema_violation(11, score), "$: 11, more than maximum 10");
  EXPECT_EQ(schema_violation(0.5, {{"exclusiveMinimum", 0}, {"exclusiveMaximum", 1}}), "");
  EXPECT_EQ(schema_violation(0, {{"exclusiveMinimum", 0}}), "$: 0, not more than exclusiveMinimum 0");
  EXPECT_EQ(schema_violation(1.0, {{"exclusiveMaximum", 1}}), "$: 1.0, not less than exclusiveMaximum 1");
  // Integers compare exactly, beyond what a double holds.
  EXPECT_NE(schema_violation(Json(std::int64_t{9007199254740993}), {{"maximum", std::int64_t{9007199254740992}}}), "");
  EXPECT_EQ(schema_violation("12", score), "$: expected integer, got string");
  // Draft 4's boolean form.
  EXPECT_EQ(schema_violation(5, {{"minimum", 5}, {"exclusiveMinimum", true}}),
            "$: 5, not more than exclusive minimum 5");
  EXPECT_EQ(schema_violation(6, {{"minimum", 5}, {"exclusiveMinimum", true}}), "");
  EXPECT_EQ(schema_violation(5, {{"maximum", 5}, {"exclusiveMaximum", false}}), "");
}
