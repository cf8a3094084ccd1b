// Python's view of a chat template's values, as Jinja2 sees them: str(), repr(), truth, ==, <, the
// json.dumps of transformers' tojson, and the str methods' semantics (strip, split, replace, case)
// over text that keeps each character's origin.
#include "models/chat_template.hpp"
#include "models/jinja.hpp"
#include "models/jinja_builtins.hpp"

#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>

namespace chorus::models::jinja {

void raise_at(int line, const std::string& message) {
  throw JinjaError("line " + std::to_string(line) + ": " + message);
}

std::vector<std::size_t> char_starts(const std::string& s) {
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80)
      starts.push_back(i);
  starts.push_back(s.size());
  return starts;
}

namespace {

// float.__repr__: the shortest digits that round-trip, fixed from 1e-4 to 1e16, else 1e+16.
std::string python_float(double value, bool json) {
  if (std::isnan(value))
    return json ? "NaN" : "nan";
  if (std::isinf(value))
    return value > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf");
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  std::string scientific(buffer, result.ptr);
  auto e = scientific.find('e');
  std::string mantissa = scientific.substr(0, e);
  int exponent = std::stoi(scientific.substr(e + 1));
  std::string sign;
  if (mantissa[0] == '-') {
    sign = "-";
    mantissa.erase(0, 1);
  }
  std::string digits;
  for (char c : mantissa)
    if (c != '.')
      digits += c;
  if (exponent < -4 || exponent >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1)
      out += "." + digits.substr(1);
    char exp[8];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + exp;
  }
  if (exponent < 0)
    return sign + "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
  auto point = static_cast<std::size_t>(exponent + 1);
  if (digits.size() <= point)
    return sign + digits + std::string(point - digits.size(), '0') + ".0";
  return sign + digits.substr(0, point) + "." + digits.substr(point);
}

Text quoted_repr(const Text& text) {
  bool has_single = text.chars.find('\'') != std::string::npos;
  char quote = has_single && text.chars.find('"') == std::string::npos ? '"' : '\'';
  Text out = Text::markup(std::string(1, quote));
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text.chars[i]);
    std::string piece;
    if (c == '\\' || c == static_cast<unsigned char>(quote))
      piece = std::string("\\") + static_cast<char>(c);
    else if (c == '\n')
      piece = "\\n";
    else if (c == '\r')
      piece = "\\r";
    else if (c == '\t')
      piece = "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      piece = hex;
    } else
      piece = std::string(1, static_cast<char>(c));
    out.append(Text(piece, text.from_data[i] != 0));
  }
  out.append_markup(std::string(1, quote));
  return out;
}

void write_json_string(const Text& text, Text& out) {
  out.append_markup("\"");
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text.chars[i]);
    std::string piece;
    switch (c) {
      case '"': piece = "\\\""; break;
      case '\\': piece = "\\\\"; break;
      case '\n': piece = "\\n"; break;
      case '\r': piece = "\\r"; break;
      case '\t': piece = "\\t"; break;
      case '\b': piece = "\\b"; break;
      case '\f': piece = "\\f"; break;
      default:
        if (c < 0x20) {
          char hex[8];
          std::snprintf(hex, sizeof hex, "\\u%04x", c);
          piece = hex;
        } else {
          piece = std::string(1, static_cast<char>(c));
        }
    }
    out.append(Text(piece, text.from_data[i] != 0));
  }
  out.append_markup("\"");
}

void write_json(const Value& value, int indent, bool sort_keys, int depth, int line,
                const std::pair<std::string, std::string>& separators, Text& out) {
  if (depth > 100)
    raise_at(line, "tojson: nested more than 100 deep");
  auto newline = [&](int level) {
    if (indent >= 0)
      out.append_markup("\n" + std::string(static_cast<std::size_t>(indent * level), ' '));
  };
  switch (value.kind()) {
    case Value::Kind::none: out.append_markup("null"); return;
    case Value::Kind::boolean: out.append_markup(value.as_bool() ? "true" : "false"); return;
    case Value::Kind::integer: out.append_markup(std::to_string(value.as_integer())); return;
    case Value::Kind::number: out.append_markup(python_float(value.as_double(), true)); return;
    case Value::Kind::string: write_json_string(value.text(), out); return;
    case Value::Kind::list: {
      const auto& items = value.items();
      if (items.empty()) {
        out.append_markup("[]");
        return;
      }
      out.append_markup("[");
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0)
          out.append_markup(separators.first);
        newline(depth + 1);
        write_json(items[i], indent, sort_keys, depth + 1, line, separators, out);
      }
      newline(depth);
      out.append_markup("]");
      return;
    }
    case Value::Kind::dict: {
      std::vector<const std::pair<Text, Value>*> items;
      for (const auto& item : value.dict().items)
        items.push_back(&item);
      if (sort_keys)
        std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first.chars < b->first.chars; });
      if (items.empty()) {
        out.append_markup("{}");
        return;
      }
      out.append_markup("{");
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0)
          out.append_markup(separators.first);
        newline(depth + 1);
        write_json_string(items[i]->first, out);
        out.append_markup(separators.second);
        write_json(items[i]->second, indent, sort_keys, depth + 1, line, separators, out);
      }
      newline(depth);
      out.append_markup("}");
      return;
    }
    default: raise_at(line, "tojson: Object of type " + type_name(value) + " is not JSON serializable");
  }
}

} // namespace

bool less_than(const Value& a, const Value& b, int line) {
  if (a.is_number() && b.is_number())
    return a.as_double() < b.as_double();
  if (a.is(Value::Kind::string) && b.is(Value::Kind::string))
    return a.text().chars < b.text().chars;
  raise_at(line, "'<' not supported between " + type_name(a) + " and " + type_name(b));
}

// Python's str.strip / lstrip / rstrip: whitespace, or any of `chars`.
Text text_strip(const Text& text, const Value& chars, bool left, bool right) {
  std::size_t begin = 0, end = text.size();
  const auto& s = text.chars;
  if (chars.is(Value::Kind::string)) {
    auto set = char_starts(chars.text().chars);
    std::vector<std::string> members;
    for (std::size_t i = 0; i + 1 < set.size(); ++i)
      members.push_back(chars.text().chars.substr(set[i], set[i + 1] - set[i]));
    auto member_at = [&](std::size_t at, bool backwards) -> std::size_t {
      for (const auto& m : members) {
        if (!backwards && s.compare(at, m.size(), m) == 0 && at + m.size() <= end)
          return m.size();
        if (backwards && at >= begin + m.size() && s.compare(at - m.size(), m.size(), m) == 0)
          return m.size();
      }
      return 0;
    };
    while (left && begin < end)
      if (auto n = member_at(begin, false))
        begin += n;
      else
        break;
    while (right && end > begin)
      if (auto n = member_at(end, true))
        end -= n;
      else
        break;
  } else {
    while (left && begin < end)
      if (auto n = python_leading_space(std::string_view(s).substr(begin, end - begin)))
        begin += n;
      else
        break;
    while (right && end > begin)
      if (auto n = python_trailing_space(std::string_view(s).substr(begin, end - begin)))
        end -= n;
      else
        break;
  }
  return text.substr(begin, end - begin);
}

Value text_split(const Text& text, const Value& separator, std::int64_t max_splits) {
  List parts;
  const auto& s = text.chars;
  if (separator.is(Value::Kind::string)) {
    const auto& sep = separator.text().chars;
    if (sep.empty())
      throw JinjaError("split: empty separator");
    std::size_t from = 0;
    for (std::int64_t n = 0; max_splits < 0 || n < max_splits; ++n) {
      auto at = s.find(sep, from);
      if (at == std::string::npos)
        break;
      parts.push_back(Value::string(text.substr(from, at - from)));
      from = at + sep.size();
    }
    parts.push_back(Value::string(text.substr(from)));
    return Value::list(std::move(parts));
  }
  // No separator: runs of whitespace, none empty.
  std::size_t at = 0;
  std::int64_t n = 0;
  while (at < s.size()) {
    while (at < s.size())
      if (auto w = python_leading_space(std::string_view(s).substr(at)))
        at += w;
      else
        break;
    if (at >= s.size())
      break;
    if (max_splits >= 0 && n == max_splits) {
      parts.push_back(Value::string(text.substr(at)));
      break;
    }
    auto start = at;
    while (at < s.size() && !python_leading_space(std::string_view(s).substr(at)))
      ++at;
    parts.push_back(Value::string(text.substr(start, at - start)));
    ++n;
  }
  return Value::list(std::move(parts));
}

Text text_replace(const Text& text, const std::string& from, const Text& to, std::int64_t count) {
  if (from.empty()) { // before every character and at the end, as Python does
    Text out;
    auto starts = char_starts(text.chars);
    std::int64_t n = 0;
    for (std::size_t i = 0; i < starts.size(); ++i) {
      if (count < 0 || n++ < count)
        out.append(to);
      if (i + 1 < starts.size())
        out.append(text.substr(starts[i], starts[i + 1] - starts[i]));
    }
    return out;
  }
  Text out;
  std::size_t at = 0;
  for (std::int64_t n = 0; count < 0 || n < count; ++n) {
    auto found = text.chars.find(from, at);
    if (found == std::string::npos)
      break;
    out.append(text.substr(at, found - at));
    out.append(to);
    at = found + from.size();
  }
  out.append(text.substr(at));
  return out;
}

Case case_named(const std::string& name, bool filter) {
  if (name == "lower")
    return Case::lower;
  if (name == "upper")
    return Case::upper;
  if (name == "capitalize")
    return Case::capitalize;
  return filter ? Case::jinja_title : Case::title;
}

// Python's str.lower / upper / capitalize / title over Unicode (full case mappings: "ß" upper is
// "SS"), character by character so that each keeps its origin; Jinja2's title filter starts words
// after "-", white space and opening brackets only.
Text text_case(const Text& text, Case mode) {
  Text out;
  bool word_start = true, first = true;
  std::size_t i = 0;
  while (i < text.size()) {
    auto start = i;
    UChar32 c = 0;
    U8_NEXT(reinterpret_cast<const std::uint8_t*>(text.chars.data()), i, text.size(), c);
    bool upper = mode == Case::upper || (mode == Case::capitalize && first)
      || ((mode == Case::title || mode == Case::jinja_title) && word_start);
    std::string mapped;
    if (c < 0) {
      mapped = text.chars.substr(start, i - start);
    } else {
      icu::UnicodeString one(c);
      if (upper)
        (mode == Case::upper || mode == Case::jinja_title ? one.toUpper(icu::Locale::getRoot())
                                                          : one.toTitle(nullptr, icu::Locale::getRoot()));
      else
        one.toLower(icu::Locale::getRoot());
      one.toUTF8String(mapped);
    }
    out.append(Text(mapped, text.from_data[start] != 0));
    first = false;
    if (mode == Case::jinja_title)
      word_start = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || u_isUWhiteSpace(c);
    else
      word_start = !u_isalpha(c);
  }
  return out;
}

// -- Python's view of values -----------------------------------------------------

std::string type_name(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::undefined: return "undefined";
    case Value::Kind::none: return "NoneType";
    case Value::Kind::boolean: return "bool";
    case Value::Kind::integer: return "int";
    case Value::Kind::number: return "float";
    case Value::Kind::string: return "str";
    case Value::Kind::list: return "list";
    case Value::Kind::dict: return value.dict().is_namespace ? "Namespace" : "dict";
    case Value::Kind::function: return "function";
  }
  return "?";
}

Text to_text(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::undefined: return {};
    case Value::Kind::string: return value.text();
    default: return to_repr(value);
  }
}

namespace {
Text repr_at(const Value& value, int depth);
}

Text to_repr(const Value& value) {
  return repr_at(value, 0);
}

namespace {

Text repr_at(const Value& value, int depth) {
  if (depth > 100)
    throw JinjaError("a value nested more than 100 deep");
  switch (value.kind()) {
    case Value::Kind::undefined: return {};
    case Value::Kind::none: return Text::markup("None");
    case Value::Kind::boolean: return Text::markup(value.as_bool() ? "True" : "False");
    case Value::Kind::integer: return Text::markup(std::to_string(value.as_integer()));
    case Value::Kind::number: return Text::markup(python_float(value.as_double(), false));
    case Value::Kind::string: return quoted_repr(value.text());
    case Value::Kind::list: {
      bool tuple = value.is_tuple();
      Text out = Text::markup(tuple ? "(" : "[");
      for (std::size_t i = 0; i < value.items().size(); ++i) {
        if (i > 0)
          out.append_markup(", ");
        out.append(to_repr(value.items()[i]));
      }
      out.append_markup(tuple ? (value.items().size() == 1 ? ",)" : ")") : "]");
      return out;
    }
    case Value::Kind::dict: {
      Text out = Text::markup(value.dict().is_namespace ? "<Namespace {" : "{");
      bool first = true;
      for (const auto& [key, item] : value.dict().items) {
        if (!first)
          out.append_markup(", ");
        first = false;
        out.append(quoted_repr(key));
        out.append_markup(": ");
        out.append(to_repr(item));
      }
      out.append_markup(value.dict().is_namespace ? "}>" : "}");
      return out;
    }
    case Value::Kind::function: return Text::markup("<function>");
  }
  return {};
}

} // namespace

bool truthy(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none: return false;
    case Value::Kind::boolean:
    case Value::Kind::integer: return value.as_integer() != 0;
    case Value::Kind::number: return value.as_double() != 0;
    case Value::Kind::string: return !value.text().empty();
    case Value::Kind::list: return !value.items().empty();
    case Value::Kind::dict: return value.dict().is_namespace || !value.dict().items.empty();
    case Value::Kind::function: return true;
  }
  return false;
}

bool equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number())
    return a.as_double() == b.as_double();
  if (a.kind() != b.kind())
    return false;
  switch (a.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none: return true;
    case Value::Kind::string: return a.text().chars == b.text().chars;
    case Value::Kind::list:
      return std::equal(a.items().begin(), a.items().end(), b.items().begin(), b.items().end(), equal);
    case Value::Kind::dict: {
      if (&a.dict() == &b.dict())
        return true;
      if (a.dict().items.size() != b.dict().items.size())
        return false;
      for (const auto& [key, item] : a.dict().items) {
        const auto* other = b.dict().find(key.chars);
        if (!other || !equal(item, *other))
          return false;
      }
      return true;
    }
    default: return &a.call() == &b.call();
  }
}

std::int64_t length(const Value& value, int line) {
  switch (value.kind()) {
    case Value::Kind::undefined: return 0;
    case Value::Kind::string: return static_cast<std::int64_t>(char_starts(value.text().chars).size()) - 1;
    case Value::Kind::list: return static_cast<std::int64_t>(value.items().size());
    case Value::Kind::dict: return static_cast<std::int64_t>(value.dict().items.size());
    default: raise_at(line, "object of type '" + type_name(value) + "' has no len()");
  }
}

List iterate(const Value& value, int line) {
  switch (value.kind()) {
    case Value::Kind::undefined: return {};
    case Value::Kind::list: return value.items();
    case Value::Kind::dict: {
      List keys;
      for (const auto& item : value.dict().items)
        keys.push_back(Value::string(item.first));
      return keys;
    }
    case Value::Kind::string: {
      List chars;
      auto starts = char_starts(value.text().chars);
      for (std::size_t i = 0; i + 1 < starts.size(); ++i)
        chars.push_back(Value::string(value.text().substr(starts[i], starts[i + 1] - starts[i])));
      return chars;
    }
    default: raise_at(line, "'" + type_name(value) + "' object is not iterable");
  }
}

Text to_json(const Value& value, int indent, bool sort_keys, const std::pair<std::string, std::string>& separators,
             int line) {
  Text out;
  write_json(value, indent, sort_keys, 0, line, separators, out);
  return out;
}

} // namespace chorus::models::jinja
