// The grammars of guided decoding, byte by byte: the matcher, JSON Schema compiled to a grammar (what
// it accepts, what it refuses, and that everything it lets a writer produce satisfies the schema as
// schema_violation checks it), and choices. No LibTorch here: see guided_decoding_test.cpp for tokens.
#include <chorus/json_schema.hpp>

#include "grammar_writer.hpp"
#include "models/json_grammar.hpp"

#include <gtest/gtest.h>

using chorus::Json;
using namespace chorus::models;

namespace {

const Json kPerson = Json::parse(R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer"},
    "height": {"type": "number"},
    "tags": {"type": "array", "items": {"enum": ["a", "b", 3, null]}, "maxItems": 3},
    "verdict": {"anyOf": [{"type": "boolean"}, {"const": "unsure"}]},
    "note": {"type": ["string", "null"], "minLength": 1, "maxLength": 4}
  },
  "required": ["verdict", "name", "age"],
  "additionalProperties": false
})");

} // namespace

TEST(Grammar, MatchesByteByByteAndKeepsItsStateOnARefusal) {
  Grammar g;
  auto digits = g.add_rule();
  g.add_alternative(digits, {g.bytes('0', '9'), Grammar::rule(digits)});
  g.add_alternative(digits, {g.bytes('0', '9')});
  g.finish(digits);
  GrammarMatcher m(g);
  EXPECT_FALSE(m.accepting());
  EXPECT_TRUE(m.advance("42"));
  EXPECT_TRUE(m.accepting());
  EXPECT_EQ(m.next_bytes().count(), 10u);
  auto key = m.state_key();
  EXPECT_FALSE(m.advance("7x")); // the 7 is allowed, the x is not: nothing is consumed
  EXPECT_EQ(m.state_key(), key);
  EXPECT_FALSE(accepts(g, ""));
  EXPECT_TRUE(accepts(g, "0123456789"));
  Grammar unfinished;
  EXPECT_THROW(GrammarMatcher{unfinished}, std::logic_error);
  Grammar empty_rule;
  empty_rule.add_rule();
  EXPECT_THROW(empty_rule.finish(0), std::invalid_argument);
}

TEST(Grammar, RepetitionKeepsTheStateSmall) {
  // A long string or array must not grow the matcher's stacks: its state is the same after 10 and
  // after 1,000 items (what lets TokenGrammar remember masks by state).
  auto grammar = json_schema_grammar(Json::parse(R"({"type": "array", "items": {"type": "integer"}})"));
  GrammarMatcher short_list(grammar), long_list(grammar);
  std::string items = "[1";
  for (int i = 0; i < 10; ++i)
    items += ",1";
  ASSERT_TRUE(short_list.advance(items));
  for (int i = 0; i < 990; ++i)
    items += ",1";
  ASSERT_TRUE(long_list.advance(items));
  EXPECT_EQ(short_list.state_key(), long_list.state_key());
}

TEST(JsonSchemaGrammar, AcceptsWhatSatisfiesTheSchemaInItsFieldOrder) {
  auto grammar = json_schema_grammar(kPerson);
  for (const char* text : {
         R"({"verdict":true,"name":"Ann","age":41})",
         R"({"verdict": "unsure", "name": "Bo \"B\" \u00e9\n", "age": -7, "height": 1.5e3, "tags": ["a", 3, null]})",
         "{\n  \"verdict\": false,\n  \"name\": \"\xc3\xa9t\xc3\xa9\",\n  \"age\": 0,\n  \"note\": null\n}",
         R"({"verdict":false,"name":"","age":123456789012345678,"height":-0.25,"note":"abcd","tags":[]})",
       }) {
    EXPECT_TRUE(accepts(grammar, text)) << text;
    auto value = Json::parse(text);
    EXPECT_EQ(chorus::schema_violation(value, kPerson), "") << text;
  }
  for (const char* text : {
         R"({"name":"Ann","verdict":true,"age":41})",                  // required fields in "required"'s order
         R"({"verdict":true,"name":"Ann"})",                           // a required field missing
         R"({"verdict":true,"name":"Ann","age":41,"x":1})",            // a field not declared
         R"({"verdict":"yes","name":"Ann","age":41})",                 // neither boolean nor "unsure"
         R"({"verdict":true,"name":"Ann","age":4.5})",                 // not an integer
         R"({"verdict":true,"name":"Ann","age":1234567890123456789})", // 19 digits: past the 18 allowed
         R"({"verdict":true,"name":"Ann","age":01})",                  // a leading zero
         R"({"verdict":true,"name":"Annabelle-Lee!","age":1})",        // longer than maxLength
         R"({"verdict":true,"name":"Ann","age":1,"tags":["c"]})",      // not in the enum
         R"({"verdict":true,"name":"Ann","age":1,"tags":[1,2,3,4]})",  // past maxItems (and the enum)
         R"({"verdict":true,"name":"Ann","age":1,"note":""})",         // shorter than minLength
         R"({"verdict":true,"name":"\ud800","age":1})",                // a lone surrogate escape
         "{\"verdict\":true,\"name\":\"\xff\",\"age\":1}",             // not UTF-8
         " {\"verdict\":true,\"name\":\"A\",\"age\":1}",               // whitespace before the value
       })
    EXPECT_FALSE(accepts(grammar, text)) << text;
}

TEST(JsonSchemaGrammar, EverythingAWriterCanProduceSatisfiesTheSchema) {
  const std::vector<Json> schemas{
    kPerson,
    Json::parse(R"({"type": "object"})"),
    Json::parse(R"({})"),
    Json::parse(R"({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 4})"),
    Json::parse(R"({"$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"},
                      "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
                      "required": ["value"]}},
                    "$ref": "#/$defs/node"})"),
    Json::parse(R"({"type": "object", "additionalProperties": {"type": "boolean"}})"),
    Json::parse(R"({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "null"}]})"),
  };
  std::mt19937 random(7);
  for (const auto& schema : schemas) {
    auto grammar = json_schema_grammar(schema);
    int complete = 0;
    for (int walk = 0; walk < 200; ++walk) {
      auto text = random_sentence(grammar, random);
      if (!text)
        continue;
      ++complete;
      auto value = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(value.is_discarded()) << schema.dump() << " let a writer produce " << *text;
      EXPECT_EQ(chorus::schema_violation(value, schema), "") << *text;
    }
    EXPECT_GT(complete, 100) << schema.dump();
  }
}

TEST(JsonSchemaGrammar, RefusesWhatItCannotGenerateNamingWhere) {
  auto refusal = [](const char* schema) {
    try {
      json_schema_grammar(Json::parse(schema));
    } catch (const std::invalid_argument& error) {
      return std::string(error.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(refusal(R"({"type": "object", "properties": {"id": {"type": "integer", "multipleOf": 2}}})"),
            "$.properties.id: the keyword 'multipleOf' is not supported in guided decoding (supported: type, enum, "
            "const, properties, required, additionalProperties, items, minItems, maxItems, minLength, maxLength, "
            "pattern, format, minimum, maximum, exclusiveMinimum, exclusiveMaximum (of integers), anyOf, $ref, $defs)");
  // What the grammar could not follow beside a keyword that decides the whole value, and oneOf
  // (a text may satisfy several options), are refused rather than generated wrong.
  EXPECT_EQ(refusal(R"({"enum": ["a", "abcdef"], "maxLength": 3})"),
            "$: 'maxLength' beside 'enum' is not supported in "
            "guided decoding");
  EXPECT_EQ(refusal(R"({"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "maxLength": 3})"),
            "$: 'maxLength' beside '$ref' is not supported in guided decoding");
  EXPECT_EQ(refusal(R"({"oneOf": [{"type": "integer"}, {"type": "number"}]})"),
            "$: the keyword 'oneOf' is not supported in guided decoding (a text could satisfy more than one of its "
            "options): use anyOf");
  EXPECT_EQ(refusal(R"({"type": ["string", "null"], "enum": ["a", 1, null]})"), "(accepted)"); // filtered by type
  // A definition that reaches itself before writing anything would never let the matcher start.
  EXPECT_EQ(refusal(R"({"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}, "$ref": "#/$defs/a"})"),
            "$: the schema refers to itself through $ref before any text is written");
  EXPECT_EQ(refusal(R"({"type": "object", "properties": {"a": {}}, "required": ["b"]})"),
            R"($.required: "b" is not one of the properties)");
  EXPECT_EQ(refusal(R"({"type": "number", "multipleOf": 1})").substr(0, 37), "$: the keyword 'multipleOf' is not su");
  EXPECT_EQ(refusal(R"({"type": "thing"})"), "$.type: unknown type 'thing'");
  EXPECT_EQ(refusal(R"({"$ref": "#/$defs/missing"})"),
            "$.$ref: '#/$defs/missing' names no schema under $defs or definitions at the top of the schema");
  EXPECT_EQ(refusal(R"({"type": "array", "maxItems": 100000})"),
            "$: repetition bounds above 1000 are not supported in guided decoding");
  EXPECT_EQ(refusal(R"({"type": "string", "minLength": 3, "maxLength": 2})"),
            "$: the upper bound is below the lower one");
  EXPECT_EQ(refusal(R"({"enum": [1, 2], "type": "string"})"), "$: no value of its enum or const has its type");
  EXPECT_EQ(refusal("false"), "$: the schema false allows no value");
  EXPECT_EQ(refusal(R"({"anyOf": []})"), "$.anyOf: expected a non-empty array of schemas");
  EXPECT_EQ(refusal(R"({"type": "object", "properties": {"a": {"type": "string"}}, "title": "ok"})"), "(accepted)");
  try { // a schema built in code can hold bytes that are not UTF-8, which no JSON text may
    json_schema_grammar(Json{{"enum", {std::string("a\xff")}}});
    ADD_FAILURE() << "an enum value that is not UTF-8 was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string(error.what()), "$: holds text that is not UTF-8: \"a\xef\xbf\xbd\"");
  }
}

TEST(JsonSchemaGrammar, BoundsWhatAClientsSchemaCanCost) {
  // Nesting: the compiler's recursion.
  Json deep = {{"type", "string"}};
  for (int i = 0; i < 100; ++i)
    deep = {{"type", "array"}, {"items", deep}};
  try {
    json_schema_grammar(deep);
    ADD_FAILURE() << "a schema nested 100 deep was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("schemas nested deeper than 64"), std::string::npos) << error.what();
  }
  // Size: every bounded repetition is rules.
  Json wide = {{"type", "object"}, {"properties", Json::object()}};
  for (int i = 0; i < 120; ++i)
    wide["properties"]["f" + std::to_string(i)] = {{"type", "string"}, {"maxLength", 1000}};
  try {
    json_schema_grammar(wide);
    ADD_FAILURE() << "a schema of 120,000 rules was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("more than 100000 rules"), std::string::npos) << error.what();
  }
  // Ambiguity: options inside options that begin alike multiply the ways to read a text; past
  // kMostStacks the matcher refuses instead of growing without bound.
  Json ambiguous = {{"type", "string"}};
  for (int i = 0; i < 12; ++i)
    ambiguous = {{"anyOf", {ambiguous, ambiguous}}};
  try {
    json_schema_grammar(ambiguous);
    ADD_FAILURE() << "a schema the matcher cannot begin was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("$: the grammar is too ambiguous here: more than 1024 ways"),
              std::string::npos)
      << error.what();
  }
  // Symbols, not only rules: a thousand-item minimum inside many options.
  Json many = {{"anyOf", Json::array()}};
  for (int i = 0; i < 600; ++i)
    many["anyOf"].push_back({{"type", "array"}, {"minItems", 1000}});
  try {
    json_schema_grammar(many);
    ADD_FAILURE() << "a schema of 600,000 items' symbols was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("1000000 symbols"), std::string::npos) << error.what();
  }
}

TEST(JsonSchemaGrammar, ThousandsOfEnumValuesOrChoicesAreOneWayToRead) {
  // Values that begin alike share a trie's symbols: one parse stack, however many there are.
  Json countries = {{"enum", Json::array()}};
  std::vector<std::string> names;
  for (int i = 0; i < 3000; ++i) {
    names.push_back("country " + std::to_string(i));
    countries["enum"].push_back(names.back());
  }
  auto grammar = json_schema_grammar(countries);
  EXPECT_TRUE(accepts(grammar, "\"country 2999\""));
  EXPECT_TRUE(accepts(grammar, "\"country 7\""));
  EXPECT_FALSE(accepts(grammar, "\"country 3000\""));
  auto choices = choice_grammar(names);
  EXPECT_TRUE(accepts(choices, "country 12"));
  EXPECT_TRUE(accepts(choices, "country 1"));
  EXPECT_FALSE(accepts(choices, "country "));
}

TEST(ChoiceGrammar, AcceptsExactlyTheChoices) {
  auto grammar = choice_grammar({"yes", "no", "yes, but"});
  EXPECT_TRUE(accepts(grammar, "yes"));
  EXPECT_TRUE(accepts(grammar, "yes, but"));
  EXPECT_TRUE(accepts(grammar, "no"));
  EXPECT_FALSE(accepts(grammar, "ye"));
  EXPECT_FALSE(accepts(grammar, "no!"));
  GrammarMatcher after_no(grammar);
  ASSERT_TRUE(after_no.advance("no"));
  EXPECT_TRUE(after_no.next_bytes().none()); // nothing may follow: only a stop token
  EXPECT_THROW(choice_grammar({}), std::invalid_argument);
}
