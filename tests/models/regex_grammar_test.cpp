// Regular expressions as guided decoding's grammars: the texts a pattern's grammar accepts, that every
// text a writer finishes matches the pattern as PCRE2 (schema_violation) reads it, raw and inside a
// JSON string, the characters of classes against the code points they name, and what is refused.
#include <chorus/json_schema.hpp>

#include "grammar_writer.hpp"
#include "models/json_grammar.hpp"
#include "models/regex.hpp"
#include "models/regex_grammar.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cstdio>
#include <functional>

using chorus::Json;
using namespace chorus::models;

namespace {

// PCRE2's reading of a whole-text match, through the validator.
bool pcre2_matches_whole(const std::string& pattern, const std::string& text) {
  return chorus::schema_violation(Json(text), {{"pattern", "^(?:" + pattern + ")$"}}).empty();
}

std::string refusal(const std::string& pattern) {
  try {
    regex_grammar(pattern);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "(accepted)";
}

} // namespace

TEST(RegexGrammar, AcceptsTheWholeTextsOfThePattern) {
  struct Case {
    std::string pattern;
    std::vector<std::string> accepted, refused;
  };
  const std::vector<Case> cases{
    {"[A-Z]{3}-\\d+", {"ABC-1", "XYZ-0042"}, {"AB-1", "ABC-", "abc-1", "ABC-1x", ""}},
    {"(yes|no)", {"yes", "no"}, {"", "ye", "yesno"}},
    {"^a.c$",
     {"abc",
      "a\xe2\x82\xac"
      "c",
      "a\"c"},
     {"a\nc", "a\rc", "ac",
      "a\xff"
      "c",
      "a\xed\xa0\x80"
      "c"}},
    {"colou?r", {"color", "colour"}, {"colouur"}},
    {"(ab)*", {"", "ab", "abab"}, {"a", "aba"}},
    {"(a?b?)*c", {"c", "abc", "babac", "aabbc"}, {"ca", "abca"}},
    {"[^,]+,[^,]+", {"a,b", "\xc3\xa9,\xc3\xbc"}, {",b", "a,b,c", "a,"}},
    {"x{2,4}", {"xx", "xxx", "xxxx"}, {"x", "xxxxx"}},
    {"a{2,}", {"aa", "aaaaaaa"}, {"a"}},
    {"a{0}b", {"b"}, {"ab"}},
    {"[\\d\\s]+", {"1 2\t3\n"}, {"1a"}},
    {"\\u00e9\\x41\\.\\\\",
     {"\xc3\xa9"
      "A.\\"},
     {"\xc3\xa9"
      "Ab\\"}},
    {"[a-]", {"a", "-"}, {"b"}},
    {"[\\]\\[]", {"]", "["}, {"\\"}},
    {"(?:a|b)(?<name>c)(?P<other>d)", {"acd", "bcd"}, {"cd"}},
    {"a|^b$|c", {"a", "b", "c"}, {"ab"}},
    {".*?x", {"x", "abcx"}, {"abc"}},
    {"\\S\\W", {"a!", "\xe4\xb8\xad "}, {" !", "\xc2\xa0!", "ab"}},
    // Unicode's spaces are in ECMAScript's \s and not in PCRE2's: neither in \S nor in [^\s], [^\S].
    {"[^\\s][^\\S]", {"a ", "a\t"}, {"\xc2\xa0 ", "a\xc2\xa0", "  "}},
    {"red|green|blue|", {"red", "green", "blue", ""}, {"re", "redd"}},
    {"[\\b]", {"\b"}, {"b"}},
    {"\xf0\x9f\x98\x80+", {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80"}, {"\xf0\x9f\x98"}},
  };
  for (const auto& c : cases) {
    auto grammar = regex_grammar(c.pattern);
    for (const auto& text : c.accepted)
      EXPECT_TRUE(accepts(grammar, text)) << c.pattern << " should accept " << text;
    for (const auto& text : c.refused)
      EXPECT_FALSE(accepts(grammar, text)) << c.pattern << " should refuse " << text;
  }
}

// Whatever a writer finishes is a whole match as PCRE2 reads the pattern; inside a JSON schema, the
// string parses and satisfies the (anchored) pattern, escapes and all.
TEST(RegexGrammar, EveryTextAWriterFinishesMatchesThePatternAsPcre2ReadsIt) {
  const std::vector<std::string> patterns{
    "[A-Z]{3}-\\d{1,5}",
    "(a?b?)*c",
    ".{0,12}",
    "[^a-z\\s]{1,6}",
    "\\S+ \\w*",
    "(\\d+|[\"\\\\]{2})x?",
    "[\\x00-\\x1f\"\\\\/]{1,4}",
    "\\u00e9+|\\u4e2d{2}|\xf0\x9f\x98\x80",
    "(cat|dog)(, (cat|dog)){0,3}",
    "[^\"]{0,5}\\.",
  };
  std::mt19937 random(11);
  for (const auto& pattern : patterns) {
    auto raw = regex_grammar(pattern);
    const Json schema = {{"type", "string"}, {"pattern", "^(?:" + pattern + ")$"}};
    auto quoted = json_schema_grammar(schema);
    int complete = 0;
    for (int walk = 0; walk < 150; ++walk) {
      if (auto text = random_sentence(raw, random)) {
        ++complete;
        EXPECT_TRUE(pcre2_matches_whole(pattern, *text)) << pattern << " let a writer produce '" << *text << "'";
      }
      if (auto text = random_sentence(quoted, random)) {
        auto value = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
        ASSERT_FALSE(value.is_discarded()) << pattern << " let a writer produce " << *text;
        EXPECT_EQ(chorus::schema_violation(value, schema), "") << *text;
      }
    }
    EXPECT_GT(complete, 75) << pattern;
  }
}

// A class's grammar accepts exactly the UTF-8 encodings of its code points (sampled over all of
// Unicode, every edge of an encoded length included), and never a surrogate or an overlong form.
TEST(RegexGrammar, ClassesHoldExactlyTheirCodePoints) {
  std::vector<char32_t> samples;
  for (char32_t c = 0; c <= 0x10FFFF; c += 97)
    samples.push_back(c);
  for (char32_t edge : {0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFFu, 0x10000u, 0x10FFFFu, 0x2028u, 0x2029u,
                        0xA0u, 0x0Au, 0x0Du, 0x61u, 0x62u, 0x100u, 0xFFu})
    samples.push_back(edge);
  auto is_surrogate = [](char32_t c) { return c >= 0xD800 && c <= 0xDFFF; };
  struct Class {
    std::string pattern;
    std::function<bool(char32_t)> holds;
  };
  const std::vector<Class> classes{
    {"[^a]", [](char32_t c) { return c != 'a'; }},
    {".", [](char32_t c) { return c != '\n' && c != '\r' && c != 0x2028 && c != 0x2029; }},
    {"[\\u0100-\\uffff]", [](char32_t c) { return c >= 0x100 && c <= 0xFFFF; }},
    {"[a-z\\u00e0-\\u00ff\\x00]",
     [](char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFF) || c == 0; }},
    {"\\W", [](char32_t c) { return c >= 0x80 || !(std::isalnum(static_cast<int>(c)) || c == '_'); }},
  };
  for (const auto& cls : classes) {
    auto grammar = regex_grammar(cls.pattern);
    for (auto c : samples) {
      if (is_surrogate(c))
        continue;
      const bool expected = cls.holds(c);
      EXPECT_EQ(accepts(grammar, utf8_encode(c)), expected) << cls.pattern << " at U+" << std::hex << unsigned(c);
      if (expected) // and PCRE2 agrees
        EXPECT_TRUE(pcre2_matches_whole(cls.pattern, utf8_encode(c)))
          << cls.pattern << " at U+" << std::hex << unsigned(c);
    }
    EXPECT_FALSE(accepts(grammar, "\xed\xa0\x80")) << cls.pattern;     // U+D800 written as UTF-8
    EXPECT_FALSE(accepts(grammar, "\xc0\xaf")) << cls.pattern;         // '/' overlong
    EXPECT_FALSE(accepts(grammar, "\xf4\x90\x80\x80")) << cls.pattern; // past U+10FFFF
  }
}

TEST(RegexGrammar, RefusesWhatItCannotFollowNamingTheByte) {
  EXPECT_EQ(refusal("ab(?=c)"), "regex: at byte 4: lookaround '(?=' is not supported in guided decoding");
  // Where the problem is: the construct's first byte.
  const std::vector<std::pair<std::string, std::string>> placed{
    {"ab[cd", "at byte 2: a '[' that is never closed"},
    {"x[^\\d\\D]", "at byte 1: a class that matches no character"},
    {"x[z-a]", "at byte 2: a range out of order"},
    {"x[\\d-z]", "at byte 2: a range that begins with a class escape"},
    {"x[a-\\d]", "at byte 4: a range that ends with a class escape"},
    {"a{1001}", "at byte 2: a bound above 1000"},
    {"a{2,1}", "at byte 1: the bound's maximum is below its minimum"},
    {"ab\\07", "at byte 2: an octal escape"},
    {"ab\\", "at byte 2: the pattern ends in a backslash"},
    {"a$)", "at byte 2: an unmatched ')'"},
    {"(?<n>a)(?<n>b)", "at byte 10: a second group named 'n'"},
  };
  for (const auto& [pattern, expected] : placed)
    EXPECT_EQ(refusal(pattern).rfind("regex: " + expected, 0), 0u) << pattern << ": " << refusal(pattern);
  const std::vector<std::pair<std::string, std::string>> cases{
    {"(?<!a)b", "lookaround '(?<!'"},
    {"(a)\\1", "at byte 3: a backreference"},
    {"\\bword", "the word boundary \\b"},
    {"a^b", "at byte 1: the anchor '^' inside a pattern"},
    {"a$b", "at byte 1: the anchor '$' inside a pattern"},
    {"(a$)", "the anchor '$'"},
    {"x(a", "at byte 1: a '(' that is never closed"},
    {"a)", "at byte 1: an unmatched ')'"},
    {"a{1001}", "a bound above 1000"},
    {"a{3,2}", "maximum is below its minimum"},
    {"a**", "a quantifier after a quantifier"},
    {"*a", "at byte 0: '*' repeats nothing"},
    {"x{a}", "at byte 2: expected a bound {n}, {n,} or {n,m}"},
    {"{", "'{' that does not begin a bound"},
    {"[]a]", "']' first in a class"},
    {"[[:alpha:]]", "'[' inside a class"},
    {"[z-a]", "a range out of order"},
    {"[\\d-z]", "a range that begins with a class escape"},
    {"[^\\d\\D]", "a class that matches no character"},
    {"[abc", "a '[' that is never closed"},
    {"\\p{L}", "a Unicode property \\p"},
    {"\\v", "the escape \\v"},
    {"(?<1a>x)", "expected a group name"},
    {"(?<" + std::string(33, 'n') + ">x)", "expected a group name"},
    {"[:alpha:]", "':' first in a class"},
    {"[.a.]", "'.' first in a class"},
    {"(?i)a", "the group '(?i'"},
    {"a++", "a possessive quantifier"},
    {"\\q", "the escape \\q"},
    {"\\x4", "expected 2 hex digits after \\x"},
    {"\\uD800", "a surrogate escape"},
    {"\\07", "an octal escape"},
    {"a\xff", "at byte 1: text that is not UTF-8"},
    {"\\", "the pattern ends in a backslash"},
    {std::string(65, '(') + std::string(65, ')'), "groups nested deeper than 64"},
    {std::string(4097, 'a'), "patterns longer than 4096 bytes"},
  };
  for (const auto& [pattern, expected] : cases) {
    auto message = refusal(pattern);
    EXPECT_EQ(message.rfind("regex: at byte ", 0), 0u) << pattern << ": " << message;
    EXPECT_NE(message.find(expected), std::string::npos) << pattern << ": " << message;
  }
}

// Patterns come from HTTP clients: a grammar's size grows with the pattern's bounds, added, not
// multiplied (a repeated group is one rule); what would be too ambiguous is refused at the start.
TEST(RegexGrammar, BoundsWhatAPatternCanCost) {
  auto nested = regex_grammar("((a{1000}){1000}){1000}");
  EXPECT_LT(nested.symbol_count(), 10'000u);
  GrammarMatcher matcher(nested);
  EXPECT_TRUE(matcher.advance(std::string(5000, 'a')));
  EXPECT_FALSE(matcher.accepting());

  // 2,000 optional items: every one could be the next; chains of groups that match nothing, under
  // many ways to read the text, would make each byte open millions of rules.
  std::string many_options;
  for (int k = 0; k < 2000; ++k)
    many_options += "a?";
  std::string empty_chain = "(?:[a-z]";
  for (int k = 0; k < 10; ++k)
    empty_chain += "(?:|)";
  for (int k = 0; k < 2000; ++k)
    empty_chain += "()";
  empty_chain += "){1000}";
  for (const auto& costly : {many_options, "(" + many_options + ")*"}) {
    auto message = refusal(costly);
    EXPECT_TRUE(message.find("too ambiguous") != std::string::npos || message.find("too costly") != std::string::npos)
      << costly.substr(0, 40) << "...: " << message;
  }
  auto chain = regex_grammar(empty_chain); // its start is cheap; the first letter is not
  GrammarMatcher chained(chain);
  EXPECT_THROW(chained.advance('a'), std::length_error);

  // Thousands of plain options are one way to read the text (a trie), behind a prefix too.
  std::string codes; // 1,352 of them
  for (char a = 'a'; a <= 'z'; ++a)
    for (char b = 'a'; b <= 'z'; ++b)
      for (char first : {a, static_cast<char>(a - 'a' + 'A')})
        codes += std::string(codes.empty() ? "" : "|") + first + b;
  auto code_grammar = regex_grammar("x(?:" + codes + ")");
  GrammarMatcher code(code_grammar);
  EXPECT_TRUE(code.advance("xQz"));
  EXPECT_TRUE(code.accepting());
  EXPECT_FALSE(code.advance("z"));

  std::string long_literal(4000, 'z'); // long, but one way to read it
  auto literal_grammar = regex_grammar(long_literal + "|y");
  GrammarMatcher literal(literal_grammar);
  EXPECT_TRUE(literal.advance(long_literal));
  EXPECT_TRUE(literal.accepting());
}

TEST(JsonSchemaGrammar, APatternShapesTheStringAndIsRefusedWhereItCannotBeFollowed) {
  const Json schema = Json::parse(R"({"type": "object", "required": ["code"],
    "properties": {"code": {"type": "string", "pattern": "^[A-Z]{2}\\d{2}$"}, "note": {"pattern": "\"q\""}}})");
  auto grammar = json_schema_grammar(schema);
  EXPECT_TRUE(accepts(grammar, R"({"code": "AB12"})"));
  EXPECT_TRUE(accepts(grammar, R"({"code": "AB12", "note": "\"q\""})"));
  EXPECT_FALSE(accepts(grammar, R"({"code": "AB1"})"));
  EXPECT_FALSE(accepts(grammar, R"({"code": "ab12"})"));
  auto refused = [](const char* text) { return schema_refusal(Json::parse(text)); };
  EXPECT_EQ(refused(R"j({"properties": {"id": {"type": "string", "pattern": "a(?=b)"}}})j"),
            "$.properties.id.pattern: at byte 3: lookaround '(?=' is not supported in guided decoding");
  EXPECT_EQ(refused(R"({"type": "string", "pattern": "a+", "maxLength": 3})"),
            "$: 'pattern' beside minLength or maxLength is not supported in guided decoding");
  EXPECT_EQ(refused(R"({"type": "string", "pattern": 5})"), "$.pattern: expected a string, got 5");
  // What the validator could not compile would make every value a violation.
  EXPECT_EQ(refused(R"({"type": "string", "pattern": "((a{1000}){1000}){1000}"})"),
            "$.pattern: PCRE2, which schema_violation checks patterns with, cannot compile it at byte 23: regular "
            "expression is too large");
}

namespace {

int days_in_month(int year, int month) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}

bool valid_date(const std::string& text) {
  int year = 0, month = 0, day = 0, read = 0;
  return std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &year, &month, &day, &read) == 3 && read == 10 && text.size() == 10
    && month >= 1 && month <= 12 && day >= 1 && day <= days_in_month(year, month);
}

bool valid_time(const std::string& text) {
  int hour = 0, minute = 0, second = 0, read = 0;
  if (std::sscanf(text.c_str(), "%2d:%2d:%2d%n", &hour, &minute, &second, &read) != 3 || read != 8 || hour > 23
      || minute > 59 || second > 59)
    return false;
  auto rest = text.substr(8);
  if (!rest.empty() && rest[0] == '.') {
    auto digits = rest.find_first_not_of("0123456789", 1);
    if (digits == 1)
      return false;
    rest = rest.substr(digits == std::string::npos ? rest.size() : digits);
  }
  int offset_hour = 0, offset_minute = 0;
  return rest == "Z"
    || ((rest[0] == '+' || rest[0] == '-') && rest.size() == 6
        && std::sscanf(rest.c_str() + 1, "%2d:%2d", &offset_hour, &offset_minute) == 2 && offset_hour < 24
        && offset_minute < 60);
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts{""};
  for (char c : text) {
    if (c == separator)
      parts.emplace_back();
    else
      parts.back().push_back(c);
  }
  return parts;
}

// RFC 1123's labels, less what IDNA reserves ("--" as the 3rd and 4th characters).
bool valid_label(const std::string& label) {
  return !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-'
    && label.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos
    && (label.size() < 4 || label.compare(2, 2, "--") != 0);
}

// A host name's labels, the last not all digits (RFC 1123: a name never looks like an address).
bool valid_host(const std::string& name) {
  auto labels = split(name, '.');
  return name.size() <= 253 && std::all_of(labels.begin(), labels.end(), valid_label)
    && labels.back().find_first_not_of("0123456789") != std::string::npos;
}

// Each format's values checked by hand (not by the pattern that wrote them).
bool valid_value(const std::string& format, const std::string& text) {
  if (format == "date")
    return valid_date(text);
  if (format == "time")
    return valid_time(text);
  if (format == "date-time")
    return text.size() > 11 && text[10] == 'T' && valid_date(text.substr(0, 10)) && valid_time(text.substr(11));
  if (format == "ipv4") {
    in_addr address{};
    return inet_pton(AF_INET, text.c_str(), &address) == 1;
  }
  if (format == "ipv6") {
    in6_addr address{};
    return inet_pton(AF_INET6, text.c_str(), &address) == 1;
  }
  if (format == "uuid")
    return text.size() == 36 && text[8] == '-' && text[13] == '-' && text[18] == '-' && text[23] == '-'
      && text.find_first_not_of("0123456789abcdef-") == std::string::npos;
  if (format == "hostname")
    return valid_host(text);
  if (format == "email") {
    auto at = split(text, '@');
    if (at.size() != 2 || at[0].empty() || at[0].size() > 64 || at[0].front() == '.' || at[0].back() == '.'
        || at[0].find("..") != std::string::npos)
      return false;
    return split(at[1], '.').size() >= 2 && valid_host(at[1]);
  }
  if (format == "duration") { // P, then at least one number-and-unit; a T only before a time part
    auto t = text.find('T');
    return text.size() > 1 && text[0] == 'P' && text.back() != 'P' && text.back() != 'T'
      && std::isalpha(static_cast<unsigned char>(text.back())) && (t == std::string::npos || t + 1 < text.size());
  }
  return false;
}

} // namespace

TEST(JsonSchemaGrammar, FormatsWriteOnlyValidValues) {
  std::mt19937 random(5);
  for (std::string format : {"date", "time", "date-time", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}) {
    auto values = written_values(json_schema_grammar({{"type", "string"}, {"format", format}}), 100, random);
    for (const auto& value : values)
      EXPECT_TRUE(value.is_string() && valid_value(format, value.get<std::string>())) << format << ": " << value;
    EXPECT_GT(values.size(), 50u) << format;
  }
  auto accepts_format = [](const std::string& format, const std::string& value) {
    return accepts(json_schema_grammar({{"format", format}}), Json(value).dump());
  };
  EXPECT_TRUE(accepts_format("date", "2024-02-28"));
  EXPECT_FALSE(accepts_format("date", "2023-04-31"));
  EXPECT_FALSE(accepts_format("date", "2024-13-01"));
  EXPECT_TRUE(accepts_format("date-time", "2023-12-31T23:59:59.5+01:00"));
  EXPECT_FALSE(accepts_format("date-time", "2023-12-31 23:59:59Z"));
  EXPECT_TRUE(accepts_format("duration", "P1Y2M3DT4H5M6S"));
  EXPECT_TRUE(accepts_format("duration", "PT5M"));
  EXPECT_TRUE(accepts_format("duration", "P3W"));
  EXPECT_FALSE(accepts_format("duration", "P"));
  EXPECT_FALSE(accepts_format("duration", "P1YT"));
  EXPECT_TRUE(accepts_format("ipv4", "192.168.0.255"));
  EXPECT_FALSE(accepts_format("ipv4", "256.1.1.1"));
  EXPECT_TRUE(accepts_format("email", "first.last+tag@mail.example.org"));
  EXPECT_FALSE(accepts_format("email", "first..last@example.org"));
  EXPECT_FALSE(accepts_format("email", std::string(16, 'a') + "@example.org")); // atoms of at most 15
  EXPECT_TRUE(accepts_format("hostname", "db-1.example.org"));
  EXPECT_FALSE(accepts_format("hostname", "1.2.3.4"));
  EXPECT_FALSE(accepts_format("hostname", "xn--a.org"));
  EXPECT_TRUE(accepts_format("uuid", "123e4567-e89b-12d3-a456-426614174000"));
  try {
    json_schema_grammar({{"type", "string"}, {"format", "uri"}});
    ADD_FAILURE() << "an unknown format was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string(error.what()),
              "$.format: the format 'uri' is not supported in guided decoding (supported: "
              "date-time, date, time, duration, email, hostname, ipv4, ipv6, uuid)");
  }
}
