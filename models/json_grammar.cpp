// JSON Schema to grammar. Each schema becomes a rule; repetition is right-recursive (`more ::= "," item
// more | `), so that the matcher's stacks stay as deep as the JSON's nesting.
#include "models/json_grammar.hpp"

#include <chorus/detail/json_type.hpp>
#include <chorus/detail/schema_pattern.hpp>

#include "models/number_ranges.hpp"
#include "models/regex_grammar.hpp"
#include "models/string_formats.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>

namespace chorus::models {

namespace {

using Symbol = Grammar::Symbol;
using RuleId = Grammar::RuleId;
using Symbols = std::vector<Symbol>;

constexpr std::int64_t kMostRepeats = 1000; // bounds on minItems, maxLength...: beyond, the grammar grows too big

Symbols operator+(Symbols a, const Symbols& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class SchemaCompiler {
public:
  SchemaCompiler(Grammar& grammar, const Json& root) : g_(grammar), root_(root) {
    ws_ = whitespace();
  }

  RuleId compile(const Json& schema, const std::string& path) {
    // Schemas come from HTTP clients too: their nesting is this recursion's, their size the grammar's.
    if (depth_ >= kDeepest)
      fail(path, "schemas nested deeper than " + std::to_string(kDeepest) + " are not supported in guided decoding");
    check_size(path);
    ++depth_;
    auto rule = compile_nested(schema, path);
    --depth_;
    return rule;
  }

private:
  RuleId compile_nested(const Json& schema, const std::string& path) {
    if (schema.is_boolean()) {
      if (!schema.get<bool>())
        fail(path, "the schema false allows no value");
      return any_value();
    }
    if (!schema.is_object())
      fail(path, "expected a schema (an object), got " + shown(schema));
    static const std::set<std::string> understood = {
      "type",   "enum",     "const",      "properties",       "required",         "additionalProperties",
      "items",  "minItems", "maxItems",   "minLength",        "maxLength",        "pattern",
      "format", "minimum",  "maximum",    "exclusiveMinimum", "exclusiveMaximum", "anyOf",
      "$ref",   "$defs",    "definitions"};
    static const std::set<std::string> annotations = {"title",   "description", "$schema",    "$id",      "$comment",
                                                      "default", "examples",    "deprecated", "readOnly", "writeOnly"};
    if (schema.contains("oneOf"))
      fail(path,
           "the keyword 'oneOf' is not supported in guided decoding (a text could satisfy more than one of "
           "its options): use anyOf");
    for (const auto& [keyword, value] : schema.items())
      if (!understood.count(keyword) && !annotations.count(keyword))
        fail(path,
             "the keyword '" + keyword
               + "' is not supported in guided decoding (supported: type, enum, const, "
                 "properties, required, additionalProperties, items, minItems, maxItems, minLength, maxLength, "
                 "pattern, format, minimum, maximum, exclusiveMinimum, exclusiveMaximum (of integers), anyOf, "
                 "$ref, $defs)");
    // A keyword that decides the whole value is generated alone: what is beside it would not be
    // followed (only "type" is, for const and enum: their values are filtered by it).
    for (const char* whole : {"$ref", "anyOf", "const", "enum"})
      if (schema.contains(whole))
        for (const auto& [keyword, value] : schema.items())
          if (keyword != whole && !annotations.count(keyword) && keyword != "$defs" && keyword != "definitions"
              && !(keyword == "type" && (std::string(whole) == "const" || std::string(whole) == "enum")))
            fail(path, "'" + keyword + "' beside '" + whole + "' is not supported in guided decoding");
    if (schema.contains("$ref"))
      return reference(schema["$ref"], path);
    if (schema.contains("anyOf"))
      return any_of(schema, "anyOf", path);
    if (schema.contains("const"))
      return literals({schema["const"]}, schema, path);
    if (schema.contains("enum")) {
      if (!schema["enum"].is_array() || schema["enum"].empty())
        fail(path + ".enum", "expected a non-empty array");
      return literals(std::vector<Json>(schema["enum"].begin(), schema["enum"].end()), schema, path);
    }
    std::vector<std::string> types;
    if (!schema.contains("type")) {
      if (schema.contains("properties") || schema.contains("additionalProperties") || schema.contains("required"))
        types = {"object"};
      else if (schema.contains("items") || schema.contains("minItems") || schema.contains("maxItems"))
        types = {"array"};
      else if (schema.contains("minLength") || schema.contains("maxLength") || schema.contains("pattern")
               || schema.contains("format"))
        types = {"string"};
      else if (has_bounds(schema))
        types = {"integer"};
      else
        return any_value();
    } else if (schema["type"].is_string()) {
      types = {schema["type"].get<std::string>()};
    } else if (schema["type"].is_array() && !schema["type"].empty()) {
      for (const auto& type : schema["type"]) {
        if (!type.is_string())
          fail(path + ".type", "expected type names, got " + shown(type));
        types.push_back(type.get<std::string>());
      }
    } else {
      fail(path + ".type", "expected a type name or a list of them, got " + shown(schema["type"]));
    }
    auto rule = g_.add_rule();
    for (const auto& type : types)
      g_.add_alternative(rule, {Grammar::rule(of_type(type, schema, path))});
    return rule;
  }

  [[noreturn]] static void fail(const std::string& path, const std::string& what) {
    throw std::invalid_argument(path + ": " + what);
  }

  void check_size(const std::string& path, std::size_t more_symbols = 0) const {
    if (g_.rule_count() > kMostRules || g_.symbol_count() + more_symbols > kMostSymbols)
      fail(path,
           "the schema makes a grammar of more than " + std::to_string(kMostRules) + " rules or "
             + std::to_string(kMostSymbols) + " symbols (lower its minItems, maxItems, minLength or maxLength)");
  }

  // A value as an error message shows it (text that is not UTF-8 as U+FFFD).
  static std::string shown(const Json& value) {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
  }

  // A value as the model must write it: compact JSON, its text's bytes as they are.
  static std::string exact_text(const Json& value, const std::string& path) {
    try {
      return value.dump();
    } catch (const Json::type_error&) {
      fail(path, "holds text that is not UTF-8: " + shown(value));
    }
  }

  RuleId rule_of(std::vector<Symbols> alternatives) {
    auto rule = g_.add_rule();
    for (auto& alternative : alternatives)
      g_.add_alternative(rule, std::move(alternative));
    return rule;
  }

  Symbol ws() const {
    return Grammar::rule(ws_);
  }

  // Nothing, a space, or a newline and up to 20 spaces or tabs: room for compact and indented JSON
  // without letting a model write whitespace for ever.
  RuleId whitespace() {
    auto blank = g_.bytes(' ', ' ');
    std::bitset<256> indent_bytes;
    indent_bytes.set(' ');
    indent_bytes.set('\t');
    auto indent = rule_of({{}});
    for (int i = 0; i < 20; ++i)
      indent = rule_of({{}, {g_.byte_set(indent_bytes), Grammar::rule(indent)}});
    return rule_of({{}, {blank}, {g_.bytes('\n', '\n'), Grammar::rule(indent)}});
  }

  // `item` repeated `least` to `most` times (most < 0: no bound), `separator` between items.
  RuleId repeat(const Symbols& item, const Symbols& separator, std::int64_t least, std::int64_t most,
                const std::string& path) {
    if (least > kMostRepeats || most > kMostRepeats)
      fail(path, "repetition bounds above " + std::to_string(kMostRepeats) + " are not supported in guided decoding");
    if (most >= 0 && most < least)
      fail(path, "the upper bound is below the lower one");
    RuleId rest; // what may follow the first `least` items (or the first item, when least is 0)
    auto extra = most < 0 ? -1 : most - std::max<std::int64_t>(least, 1);
    if (most < 0) {
      rest = g_.add_rule();
      g_.add_alternative(rest, {});
      g_.add_alternative(rest, separator + item + Symbols{Grammar::rule(rest)});
    } else {
      check_size(path,
                 static_cast<std::size_t>(std::max<std::int64_t>(extra, 0)) * (item.size() + separator.size() + 1));
      rest = rule_of({{}});
      for (std::int64_t i = 0; i < extra; ++i)
        rest = rule_of({{}, separator + item + Symbols{Grammar::rule(rest)}});
    }
    check_size(path, static_cast<std::size_t>(std::max<std::int64_t>(least, 1)) * (item.size() + separator.size()));
    Symbols required = item;
    for (std::int64_t i = 1; i < least; ++i) {
      required.insert(required.end(), separator.begin(), separator.end());
      required.insert(required.end(), item.begin(), item.end());
    }
    required.push_back(Grammar::rule(rest));
    if (least > 0)
      return rule_of({required});
    if (most == 0)
      return rule_of({{}});
    return rule_of({{}, required});
  }

  RuleId reference(const Json& ref, const std::string& path) {
    if (!ref.is_string())
      fail(path + ".$ref", "expected a string");
    auto target = ref.get<std::string>();
    if (auto known = refs_.find(target); known != refs_.end())
      return known->second;
    std::string section, name;
    for (std::string prefix : {"#/$defs/", "#/definitions/"})
      if (target.rfind(prefix, 0) == 0) {
        section = prefix.substr(2, prefix.size() - 3);
        name = target.substr(prefix.size());
      }
    if (section.empty() || !root_.is_object() || !root_.contains(section) || !root_[section].is_object()
        || !root_[section].contains(name))
      fail(path + ".$ref", "'" + target + "' names no schema under $defs or definitions at the top of the schema");
    // The rule exists before its body, so that a definition may refer to itself.
    auto rule = g_.add_rule();
    refs_[target] = rule;
    g_.add_alternative(rule, {Grammar::rule(compile(root_[section][name], "$." + section + "." + name))});
    return rule;
  }

  RuleId any_of(const Json& schema, const char* keyword, const std::string& path) {
    const auto& options = schema[keyword];
    if (!options.is_array() || options.empty())
      fail(path + "." + keyword, "expected a non-empty array of schemas");
    std::vector<Symbols> alternatives;
    for (std::size_t i = 0; i < options.size(); ++i)
      alternatives.push_back(
        {Grammar::rule(compile(options[i], path + "." + keyword + "[" + std::to_string(i) + "]"))});
    return rule_of(std::move(alternatives));
  }

  // The values in `values` that satisfy the schema's "type", each written as compact JSON.
  RuleId literals(const std::vector<Json>& values, const Json& schema, const std::string& path) {
    std::vector<std::string> texts;
    for (const auto& value : values)
      if (!schema.contains("type") || detail::json_has_type(value, schema["type"]))
        texts.push_back(exact_text(value, path));
    if (texts.empty())
      fail(path, "no value of its enum or const has its type");
    check_size(
      path, 2 * std::accumulate(texts.begin(), texts.end(), std::size_t{0}, [](std::size_t n, const std::string& text) {
              return n + text.size();
            }));
    return g_.add_literals(std::move(texts));
  }

  static std::int64_t bound(const Json& schema, const char* keyword, std::int64_t otherwise, const std::string& path) {
    if (!schema.contains(keyword))
      return otherwise;
    const auto& value = schema[keyword];
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0)
      fail(path + "." + keyword, "expected a non-negative integer, got " + shown(value));
    return value.get<std::int64_t>();
  }

  RuleId of_type(const std::string& type, const Json& schema, const std::string& path) {
    if (type == "object")
      return object(schema, path);
    if (type == "array") {
      auto item = schema.contains("items") ? compile(schema["items"], path + ".items") : any_value();
      auto list = repeat({Grammar::rule(item), ws()}, Symbols{g_.bytes(',', ','), ws()},
                         bound(schema, "minItems", 0, path), bound(schema, "maxItems", -1, path), path);
      return rule_of({g_.literal("[") + Symbols{ws(), Grammar::rule(list)} + g_.literal("]")});
    }
    if (type == "string") {
      if (schema.contains("pattern") || schema.contains("format"))
        return shaped_string(schema, path);
      if (!schema.contains("minLength") && !schema.contains("maxLength"))
        return string();
      auto characters = repeat({Grammar::rule(character())}, {}, bound(schema, "minLength", 0, path),
                               bound(schema, "maxLength", -1, path), path);
      return rule_of({g_.literal("\"") + Symbols{Grammar::rule(characters)} + g_.literal("\"")});
    }
    if (type == "number") {
      if (has_bounds(schema))
        fail(path, "minimum and maximum are followed for integers only in guided decoding (type 'integer')");
      return number();
    }
    if (type == "integer")
      return has_bounds(schema) ? bounded_integer(schema, path) : integer();
    if (type == "boolean")
      return rule_of({g_.literal("true"), g_.literal("false")});
    if (type == "null")
      return rule_of({g_.literal("null")});
    fail(path + ".type", "unknown type '" + type + "'");
  }

  // A string whose characters match the pattern whole (JSON Schema's pattern matches anywhere in the
  // string: a whole match is one of those), or that is of the format.
  RuleId shaped_string(const Json& schema, const std::string& path) {
    if (schema.contains("pattern") && schema.contains("format"))
      fail(path, "'pattern' beside 'format' is not supported in guided decoding");
    const char* keyword = schema.contains("pattern") ? "pattern" : "format";
    if (schema.contains("minLength") || schema.contains("maxLength"))
      fail(path, std::string("'") + keyword + "' beside minLength or maxLength is not supported in guided decoding");
    if (!schema[keyword].is_string())
      fail(path + "." + keyword, "expected a string, got " + shown(schema[keyword]));
    std::string source = schema[keyword].get<std::string>();
    if (std::string(keyword) == "format") {
      auto known = string_format_pattern(source);
      if (!known)
        fail(path + ".format",
             "the format '" + source + "' is not supported in guided decoding (supported: " + string_format_names()
               + ")");
      source = *known;
    }
    RuleId characters = 0;
    try {
      characters = add_regex(g_, source, RegexText::json_string);
    } catch (const std::invalid_argument& error) {
      fail(path + "." + keyword, error.what());
    }
    std::string error; // what the validator would say of every value (it does not check formats)
    if (std::string(keyword) == "pattern" && !detail::compile_schema_pattern(source, error))
      fail(path + "." + keyword, "PCRE2, which schema_violation checks patterns with, cannot compile it " + error);
    return rule_of({g_.literal("\"") + Symbols{Grammar::rule(characters)} + g_.literal("\"")});
  }

  static bool has_bounds(const Json& schema) {
    return schema.contains("minimum") || schema.contains("maximum") || schema.contains("exclusiveMinimum")
      || schema.contains("exclusiveMaximum");
  }

  // The integers within the schema's bounds (exclusive ones numbers as in JSON Schema 6+, or draft 4's
  // booleans that make "minimum" / "maximum" exclusive).
  RuleId bounded_integer(const Json& schema, const std::string& path) {
    long double least = -static_cast<long double>(kLargestWrittenInteger);
    long double most = kLargestWrittenInteger;
    for (const std::string keyword : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
      if (!schema.contains(keyword))
        continue;
      const auto& value = schema[keyword];
      const bool lower = keyword == "minimum" || keyword == "exclusiveMinimum";
      const auto exclusive_keyword = lower ? "exclusiveMinimum" : "exclusiveMaximum";
      if (value.is_boolean() && keyword == exclusive_keyword)
        continue; // draft 4's form: read with its minimum or maximum
      if (!value.is_number())
        fail(path + "." + keyword, "expected a number, got " + shown(value));
      const auto bound = value.is_number_unsigned() ? static_cast<long double>(value.get<std::uint64_t>())
        : value.is_number_integer()                 ? static_cast<long double>(value.get<std::int64_t>())
                                                    : static_cast<long double>(value.get<double>());
      const bool exclusive = keyword == exclusive_keyword || schema.value(exclusive_keyword, Json()) == true;
      if (lower)
        least = std::max(least, exclusive ? std::floor(bound) + 1 : std::ceil(bound));
      else
        most = std::min(most, exclusive ? std::ceil(bound) - 1 : std::floor(bound));
    }
    if (least > most)
      fail(path, "no integer of at most 18 digits satisfies its minimum and maximum");
    return rule_of({{Grammar::rule(add_regex(
      g_, integer_range_pattern(static_cast<std::int64_t>(least), static_cast<std::int64_t>(most)), RegexText::raw))}});
  }

  RuleId object(const Json& schema, const std::string& path) {
    auto colon = Symbols{ws(), g_.bytes(':', ':'), ws()};
    auto comma = Symbols{g_.bytes(',', ','), ws()};
    if (!schema.contains("properties")) {
      if (schema.contains("required") && !schema["required"].empty())
        fail(path + ".required", "required fields need their \"properties\" in guided decoding");
      const auto extra = schema.value("additionalProperties", Json(true));
      if (extra == false)
        return rule_of({g_.literal("{") + Symbols{ws()} + g_.literal("}")});
      auto value = compile(extra, path + ".additionalProperties");
      auto member = Symbols{Grammar::rule(string())} + colon + Symbols{Grammar::rule(value), ws()};
      auto members = repeat(member, comma, 0, -1, path);
      return rule_of({g_.literal("{") + Symbols{ws(), Grammar::rule(members)} + g_.literal("}")});
    }
    const auto& properties = schema["properties"];
    if (!properties.is_object())
      fail(path + ".properties", "expected an object of schemas");
    // Required fields first, in the order "required" lists them (an array keeps its order; the keys
    // of a parsed object do not), then the optional ones.
    std::vector<std::pair<std::string, bool>> fields; // name, required
    const auto required = schema.value("required", Json::array());
    if (!required.is_array())
      fail(path + ".required", "expected an array of field names");
    for (const auto& name : required) {
      if (!name.is_string() || !properties.contains(name.get<std::string>()))
        fail(path + ".required", shown(name) + " is not one of the properties");
      if (std::none_of(fields.begin(), fields.end(), [&](const auto& field) { return field.first == name; }))
        fields.emplace_back(name.get<std::string>(), true);
    }
    for (const auto& [name, sub] : properties.items())
      if (std::find(required.begin(), required.end(), Json(name)) == required.end())
        fields.emplace_back(name, false);
    // first(i): fields i.. when none has been written yet; after(i): when one has (so a comma leads).
    RuleId first = rule_of({{}}), after = rule_of({{}});
    for (auto i = fields.size(); i-- > 0;) {
      const auto& [name, is_required] = fields[i];
      auto value = compile(properties[name], path + ".properties." + name);
      auto member =
        g_.literal(exact_text(Json(name), path + ".properties")) + colon + Symbols{Grammar::rule(value), ws()};
      std::vector<Symbols> first_alternatives{member + Symbols{Grammar::rule(after)}};
      std::vector<Symbols> after_alternatives{comma + member + Symbols{Grammar::rule(after)}};
      if (!is_required) {
        first_alternatives.push_back({Grammar::rule(first)});
        after_alternatives.push_back({Grammar::rule(after)});
      }
      first = rule_of(std::move(first_alternatives));
      after = rule_of(std::move(after_alternatives));
    }
    return rule_of({g_.literal("{") + Symbols{ws(), Grammar::rule(first)} + g_.literal("}")});
  }

  // -- JSON's own values, built once and shared --

  RuleId any_value() {
    if (value_)
      return *value_;
    value_ = g_.add_rule();
    auto comma = Symbols{g_.bytes(',', ','), ws()};
    auto member = Symbols{Grammar::rule(string()), ws(), g_.bytes(':', ':'), ws(), Grammar::rule(*value_), ws()};
    auto members = repeat(member, comma, 0, -1, "$");
    auto items = repeat({Grammar::rule(*value_), ws()}, comma, 0, -1, "$");
    g_.add_alternative(*value_, g_.literal("{") + Symbols{ws(), Grammar::rule(members)} + g_.literal("}"));
    g_.add_alternative(*value_, g_.literal("[") + Symbols{ws(), Grammar::rule(items)} + g_.literal("]"));
    g_.add_alternative(*value_, {Grammar::rule(string())});
    g_.add_alternative(*value_, {Grammar::rule(number())});
    for (const char* word : {"true", "false", "null"})
      g_.add_alternative(*value_, g_.literal(word));
    return *value_;
  }

  RuleId string() {
    if (!string_)
      string_ = rule_of({g_.literal("\"") + Symbols{Grammar::rule(repeat({Grammar::rule(character())}, {}, 0, -1, "$"))}
                         + g_.literal("\"")});
    return *string_;
  }

  // One character of a JSON string: printable ASCII but '"' and '\', well-formed UTF-8 (what a JSON
  // parser accepts), or an escape (\u of a lone surrogate left out: parsers refuse it).
  RuleId character() {
    if (character_)
      return *character_;
    std::bitset<256> plain;
    for (unsigned byte = 0x20; byte < 0x80; ++byte)
      if (byte != '"' && byte != '\\')
        plain.set(byte);
    std::bitset<256> escaped, hex, hex_not_d, leading_e;
    for (char c : std::string("\"\\/bfnrt"))
      escaped.set(static_cast<unsigned char>(c));
    for (char c : std::string("0123456789abcdefABCDEF")) {
      hex.set(static_cast<unsigned char>(c));
      if (c != 'd' && c != 'D')
        hex_not_d.set(static_cast<unsigned char>(c));
    }
    for (unsigned byte :
         {0xE1u, 0xE2u, 0xE3u, 0xE4u, 0xE5u, 0xE6u, 0xE7u, 0xE8u, 0xE9u, 0xEAu, 0xEBu, 0xECu, 0xEEu, 0xEFu})
      leading_e.set(byte);
    auto tail = g_.bytes(0x80, 0xBF), h = g_.byte_set(hex);
    std::vector<Symbols> alternatives{
      {g_.byte_set(plain)},
      {g_.bytes('\\', '\\'), g_.byte_set(escaped)},
      {g_.bytes('\\', '\\'), g_.bytes('u', 'u'), g_.byte_set(hex_not_d), h, h, h},
      {g_.bytes('\\', '\\'), g_.bytes('u', 'u'), g_.byte_set(std::bitset<256>().set('d').set('D')), g_.bytes('0', '7'),
       h, h},
      {g_.bytes(0xC2, 0xDF), tail},
      {g_.bytes(0xE0, 0xE0), g_.bytes(0xA0, 0xBF), tail},
      {g_.byte_set(leading_e), tail, tail},
      {g_.bytes(0xED, 0xED), g_.bytes(0x80, 0x9F), tail},
      {g_.bytes(0xF0, 0xF0), g_.bytes(0x90, 0xBF), tail, tail},
      {g_.bytes(0xF1, 0xF3), tail, tail, tail},
      {g_.bytes(0xF4, 0xF4), g_.bytes(0x80, 0x8F), tail, tail},
    };
    character_ = rule_of(std::move(alternatives));
    return *character_;
  }

  // -?(0|[1-9][0-9]{0,17}): at most 18 digits, so that it parses as a 64-bit integer.
  RuleId integer() {
    if (integer_)
      return *integer_;
    auto digits = repeat({g_.bytes('0', '9')}, {}, 0, 17, "$");
    auto magnitude = rule_of({g_.literal("0"), {g_.bytes('1', '9'), Grammar::rule(digits)}});
    integer_ = rule_of({{Grammar::rule(magnitude)}, g_.literal("-") + Symbols{Grammar::rule(magnitude)}});
    return *integer_;
  }

  RuleId number() {
    if (number_)
      return *number_;
    auto fraction =
      rule_of({{}, g_.literal(".") + Symbols{Grammar::rule(repeat({g_.bytes('0', '9')}, {}, 1, 16, "$"))}});
    std::bitset<256> e, sign;
    e.set('e').set('E');
    sign.set('+').set('-');
    auto exponent_digits = repeat({g_.bytes('0', '9')}, {}, 1, 2, "$");
    auto exponent = rule_of({{},
                             {g_.byte_set(e), Grammar::rule(exponent_digits)},
                             {g_.byte_set(e), g_.byte_set(sign), Grammar::rule(exponent_digits)}});
    number_ = rule_of({{Grammar::rule(integer()), Grammar::rule(fraction), Grammar::rule(exponent)}});
    return *number_;
  }

  static constexpr int kDeepest = 64;
  static constexpr std::size_t kMostRules = 100'000;
  static constexpr std::size_t kMostSymbols = 1'000'000;

  Grammar& g_;
  const Json& root_;
  int depth_ = 0;
  RuleId ws_ = 0;
  std::map<std::string, RuleId> refs_;
  std::optional<RuleId> value_, string_, character_, integer_, number_;
};

} // namespace

Grammar::RuleId add_json_schema(Grammar& grammar, const Json& schema) {
  SchemaCompiler compiler(grammar, schema);
  return compiler.compile(schema, "$");
}

Grammar json_schema_grammar(const Json& schema) {
  Grammar grammar;
  auto root = add_json_schema(grammar, schema);
  try {
    grammar.finish(root);
  } catch (const std::invalid_argument&) { // all the compiler can build that finish refuses
    throw std::invalid_argument("$: the schema refers to itself through $ref before any text is written");
  }
  try { // options so alike that the matcher cannot even begin (one that gets there later fails its sequence)
    GrammarMatcher start(grammar);
  } catch (const std::length_error& error) {
    throw std::invalid_argument(std::string("$: ") + error.what());
  }
  return grammar;
}

Grammar choice_grammar(const std::vector<std::string>& choices) {
  constexpr std::size_t kMostBytes = 1'000'000;
  if (choices.empty())
    throw std::invalid_argument("choice: expected at least one string to choose from");
  std::size_t bytes = 0;
  for (const auto& choice : choices)
    bytes += choice.size();
  if (bytes > kMostBytes)
    throw std::invalid_argument("choice: the strings to choose from hold more than " + std::to_string(kMostBytes)
                                + " bytes");
  Grammar grammar;
  grammar.finish(grammar.add_literals(choices));
  return grammar;
}

} // namespace chorus::models
