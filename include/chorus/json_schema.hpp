// JSON that a model writes, checked against a schema: what JsonGrader scores, what
// generate_and_validate retries until, and what a TemplatedJudgeGrader's judge answers with.
//
//   Json schema = {{"type", "object"}, {"required", {"answer"}}, {"properties", {{"answer", {{"type", "string"}}}}}};
//   auto value = parse_json_reply("Sure: ```json\n{\"answer\": \"yes\"}\n```");   // {"answer": "yes"}
//   schema_violation(*value, schema);                                             // "" (it satisfies it)
#pragma once

#include <chorus/config.hpp>

#include <optional>
#include <string>

namespace chorus {

/// The first way `value` breaks `schema`, naming where ("$.answer: expected string, got number"), or
/// "" when it satisfies it. The schema is a JSON-Schema subset: "type" (object, array, string,
/// number, integer, boolean, null, or a list of them), "enum", "const", "required" and "properties"
/// (nested), "additionalProperties" (false: no other fields; a schema: what the other fields must
/// satisfy), "items", "minItems"/"maxItems", "minLength"/"maxLength" (in characters), "minimum",
/// "maximum", "exclusiveMinimum", "exclusiveMaximum" (numbers, or draft 4's booleans), "pattern" (a
/// match anywhere in the string, read by PCRE2 as ECMAScript would: \uHHHH escapes, "$" only at the
/// end; matched as an automaton, so no pattern backtracks for ever; a pattern that does not compile
/// is a violation), "anyOf", "oneOf", and "$ref" into the top's
/// "$defs" or "definitions": the keywords guided decoding (SamplingParams::json_schema) generates,
/// and "oneOf". Other keywords are not checked.
std::string schema_violation(const Json& value, const Json& schema);

/// The JSON value in a model's reply: the whole reply (trimmed), else the outermost {...} or [...]
/// within it (models wrap JSON in prose or a ```json fence); nullopt when neither parses.
std::optional<Json> parse_json_reply(const std::string& reply);

} // namespace chorus
