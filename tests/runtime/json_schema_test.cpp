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
