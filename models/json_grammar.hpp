// The grammars of guided decoding: JSON that satisfies a JSON Schema, or one of a list of strings.
#pragma once

#include <chorus/json.hpp>

#include "models/grammar.hpp"

#include <string>
#include <vector>

namespace chorus::models {

/// The JSON texts that satisfy `schema`, written compactly or with a little whitespace (a space, or a
/// newline and up to 20 spaces or tabs, between tokens). Understood: "type" (a name or a list),
/// "enum", "const", "properties" with "required" and "additionalProperties", "items" with
/// "minItems"/"maxItems", "minLength"/"maxLength", "pattern" (matched whole: regex.hpp) or "format"
/// (string_formats.hpp; either one alone shapes a string), "minimum"/"maximum"/"exclusiveMinimum"/
/// "exclusiveMaximum" of integers (number_ranges.hpp; a bounded "number" is refused), "anyOf", "$ref"
/// into "$defs"/"definitions"; annotations ("title",
/// "description", ...) are ignored. Refused: any other keyword, "oneOf" (a
/// text may satisfy several options), anything beside "$ref", "anyOf", "const" or "enum" but
/// "type" (which filters const and enum values), and a "$ref" cycle that writes nothing.
///
/// An object with "properties" has only those fields, the required ones always, in the order of
/// "required" and then the rest in key order. Integers have at most 18 digits, a number's fraction at
/// most 16 and its exponent at most 2, so that every text parses into a finite value of its type.
/// @throws std::invalid_argument naming where in the schema ("$.properties.age") and the keyword or
/// value that cannot be generated (e.g. "multipleOf", or a "required" field without a property), and
/// for a schema nested deeper than 64, a bound above 1,000, a grammar of more than 100,000 rules
/// or 1,000,000 symbols, or options so alike that the matcher cannot begin (GrammarMatcher::kMostStacks).
Grammar json_schema_grammar(const Json& schema);

/// The rule of `schema`'s JSON texts inside `grammar` (as json_schema_grammar builds its root).
/// @throws std::invalid_argument as json_schema_grammar does.
Grammar::RuleId add_json_schema(Grammar& grammar, const Json& schema);

/// Exactly one of `choices` (at least one).
/// @throws std::invalid_argument for an empty list.
Grammar choice_grammar(const std::vector<std::string>& choices);

} // namespace chorus::models
