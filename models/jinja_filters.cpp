// The filters, tests, str and dict methods and globals that chat templates call, as Jinja2 and
// transformers give them.
#include "models/jinja.hpp"
#include "models/jinja_builtins.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <ctime>
#include <set>

namespace chorus::models::jinja {

namespace {

// Jinja2's attribute lookup for filters (selectattr, map, sort): "a.b" and "0" walk dicts and lists.
Value attribute_path(const Value& value, const std::string& path) {
  Value current = value;
  std::size_t from = 0;
  while (from <= path.size()) {
    auto dot = path.find('.', from);
    auto part = path.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
    if (current.is(Value::Kind::dict)) {
      const auto* found = current.dict().find(part);
      current = found ? *found : Value();
    } else if (current.is(Value::Kind::list) && !part.empty()
               && part.find_first_not_of("0123456789") == std::string::npos) {
      auto index = std::stoull(part);
      current = index < current.items().size() ? current.items()[index] : Value();
    } else {
      return Value();
    }
    if (dot == std::string::npos)
      break;
    from = dot + 1;
  }
  return current;
}

std::string require_string(const Value& value, const char* what, int line) {
  if (!value.is(Value::Kind::string))
    raise_at(line, std::string(what) + ": expected a string, got " + type_name(value));
  return value.text().chars;
}

std::int64_t integer_argument(const Value& value, std::int64_t fallback) {
  return value.is_number() ? value.as_integer() : fallback;
}

const std::set<std::string>& filter_names() {
  static const std::set<std::string> names = {
    "abs",    "attr",   "capitalize", "count",   "d",       "default", "e",     "escape",   "first",      "float",
    "int",    "items",  "indent",     "join",    "last",    "length",  "list",  "lower",    "map",        "max",
    "min",    "reject", "rejectattr", "replace", "reverse", "round",   "safe",  "select",   "selectattr", "sort",
    "string", "sum",    "title",      "tojson",  "trim",    "unique",  "upper", "wordcount"};
  return names;
}

const std::set<std::string>& test_names() {
  static const std::set<std::string> names = {
    "boolean",  "callable",  "defined",     "divisibleby", "eq",      "equalto",  "even",   "false",    "float",
    "ge",       "gt",        "greaterthan", "in",          "integer", "iterable", "le",     "lower",    "lt",
    "lessthan", "mapping",   "ne",          "none",        "number",  "odd",      "sameas", "sequence", "string",
    "true",     "undefined", "upper",       "==",          "!=",      "<",        "<=",     ">",        ">="};
  return names;
}

} // namespace

// -- filters ----------------------------------------------------------------------

bool is_filter(const std::string& name) {
  return filter_names().count(name) > 0;
}

bool is_test(const std::string& name) {
  return test_names().count(name) > 0;
}

Value apply_filter(const std::string& name, const Value& operand, Arguments& args, int line) {
  auto arg = [&](std::size_t i, const char* keyword) { return args.get(i, keyword); };
  if (name == "tojson") {
    // indent as Python takes it (negative: newlines without indentation), up to 64 spaces.
    auto indent = arg(0, "indent");
    auto separators = arg(1, "separators");
    std::pair<std::string, std::string> seps{indent.is_number() ? "," : ", ", ": "};
    if (separators.is(Value::Kind::list) && separators.items().size() == 2)
      seps = {to_text(separators.items()[0]).chars, to_text(separators.items()[1]).chars};
    int spaces = indent.is_number() ? static_cast<int>(std::clamp<std::int64_t>(indent.as_integer(), 0, 64)) : -1;
    return Value::string(to_json(operand, spaces, truthy(arg(3, "sort_keys")), seps, line));
  }
  if (name == "length" || name == "count")
    return Value::integer(length(operand, line));
  if (name == "string")
    return Value::string(to_text(operand));
  if (name == "safe")
    return operand.is(Value::Kind::string) ? operand : Value::string(to_text(operand));
  if (name == "trim")
    return Value::string(text_strip(to_text(operand), arg(0, "chars"), true, true));
  if (name == "upper" || name == "lower" || name == "capitalize" || name == "title")
    return Value::string(text_case(to_text(operand), case_named(name, /*filter=*/true)));
  if (name == "default" || name == "d") {
    bool boolean = truthy(arg(1, "boolean"));
    if (operand.is(Value::Kind::undefined) || (boolean && !truthy(operand)))
      return arg(0, "default_value").is(Value::Kind::undefined) ? Value::markup("") : arg(0, "default_value");
    return operand;
  }
  if (name == "escape" || name == "e") {
    Text out;
    auto text = to_text(operand);
    for (std::size_t i = 0; i < text.size(); ++i) {
      char c = text.chars[i];
      std::string piece = c == '&' ? "&amp;"
        : c == '<'                 ? "&lt;"
        : c == '>'                 ? "&gt;"
        : c == '"'                 ? "&#34;"
        : c == '\''                ? "&#39;"
                                   : std::string(1, c);
      out.append(Text(piece, text.from_data[i] != 0));
    }
    return Value::string(std::move(out));
  }
  if (name == "int") { // int(default=0, base=10): "0x1A" with base 16, "2.5" read as a float
    if (operand.is_number())
      return Value::integer(operand.as_integer());
    if (operand.is(Value::Kind::string)) {
      auto base = static_cast<int>(std::clamp<std::int64_t>(integer_argument(arg(1, "base"), 10), 0, 36));
      const auto& s = operand.text().chars;
      errno = 0;
      char* end = nullptr;
      auto value = std::strtoll(s.c_str(), &end, base);
      if (errno == 0 && end != s.c_str() && *end == '\0')
        return Value::integer(value);
      auto real = std::strtod(s.c_str(), &end);
      if (end != s.c_str() && *end == '\0')
        return Value::integer(Value::number(real).as_integer());
    }
    return arg(0, "default").is(Value::Kind::undefined) ? Value::integer(0) : arg(0, "default");
  }
  if (name == "float") {
    if (operand.is_number())
      return Value::number(operand.as_double());
    if (operand.is(Value::Kind::string)) {
      try {
        return Value::number(std::stod(operand.text().chars));
      } catch (const std::exception&) {
      }
    }
    return Value::number(0);
  }
  if (name == "abs")
    return operand.is(Value::Kind::number) ? Value::number(std::fabs(operand.as_double()))
                                           : Value::integer(std::llabs(operand.as_integer()));
  if (name == "round") { // round(precision=0, method="common" | "ceil" | "floor"); an int stays one
    auto precision = integer_argument(arg(0, "precision"), 0);
    auto method = arg(1, "method");
    auto how = method.is(Value::Kind::string) ? method.text().chars : std::string("common");
    if (how != "common" && how != "ceil" && how != "floor")
      raise_at(line, "round: method must be common, ceil or floor");
    if (how == "common" && operand.is(Value::Kind::integer))
      return operand;
    auto scale = std::pow(10.0, static_cast<double>(precision));
    auto scaled = operand.as_double() * scale;
    auto rounded = how == "ceil" ? std::ceil(scaled) : how == "floor" ? std::floor(scaled) : std::nearbyint(scaled);
    return Value::number(rounded / scale);
  }
  if (name == "attr") { // Python's getattr, never the item: a dict's keys are not its attributes
    auto attribute = require_string(arg(0, "name"), "attr", line);
    if (operand.is(Value::Kind::dict) && operand.dict().is_namespace) {
      const auto* found = operand.dict().find(attribute);
      return found ? *found : Value();
    }
    return Value();
  }
  if (name == "replace") {
    auto from = require_string(arg(0, "old"), "replace", line);
    return Value::string(
      text_replace(to_text(operand), from, to_text(arg(1, "new")), integer_argument(arg(2, "count"), -1)));
  }
  if (name == "indent") {
    auto width_value = arg(0, "width");
    std::string pad = width_value.is(Value::Kind::string)
      ? width_value.text().chars
      : std::string(static_cast<std::size_t>(integer_argument(width_value, 4)), ' ');
    bool first = truthy(arg(1, "first")), blank = truthy(arg(2, "blank"));
    auto text = to_text(operand);
    Text out;
    std::size_t from = 0;
    bool first_line = true;
    while (from <= text.size()) {
      auto end = text.chars.find('\n', from);
      auto piece = text.substr(from, end == std::string::npos ? std::string::npos : end - from + 1);
      bool empty_line = piece.chars == "\n" || piece.chars.empty();
      if ((!first_line || first) && (blank || !empty_line) && !(end == std::string::npos && piece.empty()))
        out.append_markup(pad);
      out.append(piece);
      first_line = false;
      if (end == std::string::npos)
        break;
      from = end + 1;
    }
    return Value::string(std::move(out));
  }
  if (name == "wordcount")
    return Value::integer(static_cast<std::int64_t>(text_split(to_text(operand), Value(), -1).items().size()));
  // Filters over a sequence.
  auto items = iterate(operand, line);
  if (name == "list")
    return Value::list(std::move(items));
  if (name == "first")
    return items.empty() ? Value() : items.front();
  if (name == "last")
    return items.empty() ? Value() : items.back();
  if (name == "reverse") {
    if (operand.is(Value::Kind::string)) {
      Text out;
      for (auto it = items.rbegin(); it != items.rend(); ++it)
        out.append(it->text());
      return Value::string(std::move(out));
    }
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  if (name == "join") {
    auto separator = to_text(arg(0, "d"));
    auto attribute = arg(1, "attribute");
    Text out;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0)
        out.append(separator);
      out.append(
        to_text(attribute.is(Value::Kind::string) ? attribute_path(items[i], attribute.text().chars) : items[i]));
    }
    return Value::string(std::move(out));
  }
  if (name == "items") {
    if (operand.is(Value::Kind::undefined))
      return Value::list({});
    if (!operand.is(Value::Kind::dict))
      raise_at(line, "items: expected a dict, got " + type_name(operand));
    List pairs;
    for (const auto& [key, item] : operand.dict().items)
      pairs.push_back(Value::tuple({Value::string(key), item}));
    return Value::list(std::move(pairs));
  }
  if (name == "sum") {
    auto attribute = arg(0, "attribute");
    Value total = arg(1, "start").is(Value::Kind::undefined) ? Value::integer(0) : arg(1, "start");
    for (const auto& item : items) {
      auto v = attribute.is(Value::Kind::string) ? attribute_path(item, attribute.text().chars) : item;
      total = total.is(Value::Kind::number) || v.is(Value::Kind::number)
        ? Value::number(total.as_double() + v.as_double())
        : Value::integer(static_cast<std::int64_t>(static_cast<std::uint64_t>(total.as_integer())
                                                   + static_cast<std::uint64_t>(v.as_integer()))); // wraps, never UB
    }
    return total;
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    bool by_attribute = name == "selectattr" || name == "rejectattr";
    bool keep_if = name == "select" || name == "selectattr";
    std::size_t first_test_arg = by_attribute ? 1 : 0;
    std::string attribute = by_attribute ? require_string(arg(0, "attribute"), name.c_str(), line) : "";
    std::string test;
    if (args.positional.size() > first_test_arg)
      test = require_string(args.positional[first_test_arg], name.c_str(), line);
    if (!test.empty() && !is_test(test))
      raise_at(line, name + ": no test named '" + test + "'");
    Arguments test_args;
    for (auto i = first_test_arg + 1; i < args.positional.size(); ++i)
      test_args.positional.push_back(args.positional[i]);
    List kept;
    for (const auto& item : items) {
      auto subject = by_attribute ? attribute_path(item, attribute) : item;
      bool passes = test.empty() ? truthy(subject) : apply_test(test, subject, test_args, line);
      if (passes == keep_if)
        kept.push_back(item);
    }
    return Value::list(std::move(kept));
  }
  if (name == "map") {
    auto attribute = arg(99, "attribute");
    List mapped;
    if (attribute.is(Value::Kind::string)) {
      auto fallback = arg(99, "default");
      for (const auto& item : items) {
        auto v = attribute_path(item, attribute.text().chars);
        mapped.push_back(v.is(Value::Kind::undefined) ? fallback : v);
      }
    } else {
      auto filter = require_string(arg(0, "filter"), "map", line);
      if (!is_filter(filter))
        raise_at(line, "map: no filter named '" + filter + "'");
      Arguments rest;
      rest.positional.assign(args.positional.begin() + 1, args.positional.end());
      for (const auto& item : items)
        mapped.push_back(apply_filter(filter, item, rest, line));
    }
    return Value::list(std::move(mapped));
  }
  if (name == "unique") { // unique(case_sensitive=false, attribute=none)
    bool case_sensitive = truthy(arg(0, "case_sensitive"));
    auto attribute = arg(1, "attribute");
    auto key = [&](const Value& v) {
      auto k = attribute.is(Value::Kind::string) ? attribute_path(v, attribute.text().chars) : v;
      return !case_sensitive && k.is(Value::Kind::string) ? Value::string(text_case(k.text(), Case::lower)) : k;
    };
    List kept, keys;
    for (const auto& item : items) {
      auto k = key(item);
      if (std::none_of(keys.begin(), keys.end(), [&](const Value& seen) { return equal(seen, k); })) {
        keys.push_back(k);
        kept.push_back(item);
      }
    }
    return Value::list(std::move(kept));
  }
  if (name == "sort" || name == "min" || name == "max") {
    auto attribute = arg(name == "sort" ? 2 : 1, "attribute");
    auto key = [&](const Value& v) {
      return attribute.is(Value::Kind::string) ? attribute_path(v, attribute.text().chars) : v;
    };
    // Stable, as Python's sort: equal keys keep their order.
    std::vector<std::size_t> order(items.size());
    for (std::size_t i = 0; i < order.size(); ++i)
      order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      if (less_than(key(items[a]), key(items[b]), line))
        return true;
      return !less_than(key(items[b]), key(items[a]), line) && a < b;
    });
    List sorted;
    for (auto i : order)
      sorted.push_back(items[i]);
    items = std::move(sorted);
    if (name == "min")
      return items.empty() ? Value() : items.front();
    if (name == "max")
      return items.empty() ? Value() : items.back();
    if (truthy(arg(0, "reverse")))
      std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  raise_at(line, "no filter named '" + name + "'");
}

// -- tests ------------------------------------------------------------------------

bool apply_test(const std::string& name, const Value& operand, const Arguments& args, int line) {
  using Kind = Value::Kind;
  auto other = args.get(0, "value");
  if (name == "defined")
    return !operand.is(Kind::undefined);
  if (name == "undefined")
    return operand.is(Kind::undefined);
  if (name == "none")
    return operand.is(Kind::none);
  if (name == "boolean")
    return operand.is(Kind::boolean);
  if (name == "true")
    return operand.is(Kind::boolean) && operand.as_bool();
  if (name == "false")
    return operand.is(Kind::boolean) && !operand.as_bool();
  if (name == "integer")
    return operand.is(Kind::integer);
  if (name == "float")
    return operand.is(Kind::number);
  if (name == "number")
    return operand.is_number();
  if (name == "string")
    return operand.is(Kind::string);
  if (name == "mapping")
    return operand.is(Kind::dict) && !operand.dict().is_namespace;
  if (name == "iterable" || name == "sequence")
    return operand.is(Kind::undefined) || operand.is(Kind::string) || operand.is(Kind::list)
      || (operand.is(Kind::dict) && !operand.dict().is_namespace);
  if (name == "callable")
    return operand.is(Kind::function);
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (!operand.is_number())
      raise_at(line, "'" + name + "' needs a number, got " + type_name(operand));
    auto n = operand.as_integer();
    if (name == "divisibleby")
      return other.as_integer() != 0 && (other.as_integer() == -1 || n % other.as_integer() == 0);
    return (n % 2 != 0) == (name == "odd");
  }
  if (name == "sameas") // Python's `is`: None, True and False are themselves only; other values by value
    return (operand.is(Value::Kind::none) || operand.is(Value::Kind::boolean) || other.is(Value::Kind::none)
            || other.is(Value::Kind::boolean))
      ? operand.kind() == other.kind() && equal(operand, other)
      : equal(operand, other);
  if (name == "eq" || name == "equalto" || name == "==")
    return equal(operand, other);
  if (name == "ne" || name == "!=")
    return !equal(operand, other);
  if (name == "lt" || name == "lessthan" || name == "<")
    return less_than(operand, other, line);
  if (name == "gt" || name == "greaterthan" || name == ">")
    return less_than(other, operand, line);
  if (name == "le" || name == "<=")
    return !less_than(other, operand, line);
  if (name == "ge" || name == ">=")
    return !less_than(operand, other, line);
  if (name == "in") {
    if (other.is(Kind::string) && operand.is(Kind::string))
      return other.text().chars.find(operand.text().chars) != std::string::npos;
    for (const auto& item : iterate(other, line))
      if (equal(item, operand))
        return true;
    return false;
  }
  if (name == "lower" || name == "upper") { // str(value).islower(): a cased letter, none of the other case
    auto text = to_text(operand);
    auto lowered = text_case(text, Case::lower).chars, raised = text_case(text, Case::upper).chars;
    bool cased = lowered != raised;
    return cased && text.chars == (name == "lower" ? lowered : raised);
  }
  raise_at(line, "no test named '" + name + "'");
}

// -- methods ----------------------------------------------------------------------

bool has_method(const Value& object, const std::string& name) {
  static const std::set<std::string> kStr = {"capitalize", "count",   "endswith", "find",   "index", "isalnum",
                                             "isalpha",    "isdigit", "isspace",  "join",   "lower", "lstrip",
                                             "replace",    "rfind",   "rsplit",   "rstrip", "split", "splitlines",
                                             "startswith", "strip",   "title",    "upper"};
  static const std::set<std::string> kDict = {"get", "items", "keys", "values"};
  if (object.is(Value::Kind::string))
    return kStr.count(name) > 0;
  return object.is(Value::Kind::dict) && !object.dict().is_namespace && kDict.count(name) > 0;
}

Value call_method(const Value& object, const std::string& name, Arguments& args, int line) {
  auto arg = [&](std::size_t i, const char* keyword) { return args.get(i, keyword); };
  if (object.is(Value::Kind::string)) {
    const auto& text = object.text();
    if (name == "strip" || name == "lstrip" || name == "rstrip")
      return Value::string(text_strip(text, arg(0, "chars"), name != "rstrip", name != "lstrip"));
    if (name == "split")
      return text_split(text, arg(0, "sep"), integer_argument(arg(1, "maxsplit"), -1));
    if (name == "startswith" || name == "endswith") { // (prefix or a tuple of them, start, end)
      auto prefix = arg(0, "prefix");
      List candidates = prefix.is(Value::Kind::list) ? prefix.items() : List{prefix};
      auto starts = char_starts(text.chars);
      auto count = static_cast<std::int64_t>(starts.size()) - 1;
      auto bound = [&](const Value& v, std::int64_t fallback) {
        if (!v.is_number())
          return fallback;
        auto i = v.as_integer();
        return std::clamp<std::int64_t>(i < 0 ? i + count : i, 0, count);
      };
      auto from = starts[static_cast<std::size_t>(bound(arg(1, "start"), 0))];
      auto to = starts[static_cast<std::size_t>(bound(arg(2, "end"), count))];
      auto window = to >= from ? std::string_view(text.chars).substr(from, to - from) : std::string_view();
      for (const auto& candidate : candidates) {
        auto c = require_string(candidate, name.c_str(), line);
        if (to >= from && c.size() <= window.size()
            && (name == "startswith" ? window.substr(0, c.size()) == c : window.substr(window.size() - c.size()) == c))
          return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    if (name == "rsplit") { // split's parts, max_splits counted from the right (a separator given)
      auto sep_value = arg(0, "sep");
      auto parts = text_split(text, sep_value, -1).items();
      auto max_splits = integer_argument(arg(1, "maxsplit"), -1);
      if (!sep_value.is(Value::Kind::string) || max_splits < 0
          || static_cast<std::size_t>(max_splits) + 1 >= parts.size())
        return Value::list(std::move(parts));
      const auto& sep = sep_value.text();
      auto keep = parts.size() - static_cast<std::size_t>(max_splits); // joined back into the first
      Text head = parts[0].text();
      for (std::size_t i = 1; i < keep; ++i) {
        head.append(sep);
        head.append(parts[i].text());
      }
      List out{Value::string(std::move(head))};
      out.insert(out.end(), parts.begin() + static_cast<std::ptrdiff_t>(keep), parts.end());
      return Value::list(std::move(out));
    }
    if (name == "replace")
      return Value::string(text_replace(text, require_string(arg(0, "old"), "replace", line), to_text(arg(1, "new")),
                                        integer_argument(arg(2, "count"), -1)));
    if (name == "upper" || name == "lower" || name == "capitalize" || name == "title")
      return Value::string(text_case(text, case_named(name, /*filter=*/false)));
    if (name == "find" || name == "rfind" || name == "count" || name == "index") {
      auto needle = require_string(arg(0, "sub"), name.c_str(), line);
      if (name == "count") {
        if (needle.empty()) // between every two characters and at both ends
          return Value::integer(static_cast<std::int64_t>(char_starts(text.chars).size()));
        std::int64_t n = 0;
        for (auto at = text.chars.find(needle); at != std::string::npos;
             at = text.chars.find(needle, at + needle.size()))
          ++n;
        return Value::integer(n);
      }
      auto at = name == "rfind" ? text.chars.rfind(needle) : text.chars.find(needle);
      if (at == std::string::npos) {
        if (name == "index")
          raise_at(line, "index: substring not found");
        return Value::integer(-1);
      }
      auto starts = char_starts(text.chars);
      return Value::integer(std::lower_bound(starts.begin(), starts.end(), at) - starts.begin());
    }
    if (name == "join") {
      Text out;
      auto items = iterate(arg(0, "iterable"), line);
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0)
          out.append(text);
        out.append(to_text(items[i]));
      }
      return Value::string(std::move(out));
    }
    if (name == "splitlines") { // at Python's line boundaries: \n \r \r\n \v \f \x1c-\x1e \x85 U+2028 U+2029
      List lines;
      const auto& s = text.chars;
      std::size_t from = 0, at = 0;
      while (at < s.size()) {
        std::size_t length = 0;
        auto c = static_cast<unsigned char>(s[at]);
        if (c == '\r')
          length = at + 1 < s.size() && s[at + 1] == '\n' ? 2 : 1;
        else if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e))
          length = 1;
        else if (s.compare(at, 2, "\u0085") == 0)
          length = 2;
        else if (s.compare(at, 3, "\u2028") == 0 || s.compare(at, 3, "\u2029") == 0)
          length = 3;
        if (length == 0) {
          ++at;
          continue;
        }
        lines.push_back(Value::string(text.substr(from, at - from)));
        at += length;
        from = at;
      }
      if (from < s.size())
        lines.push_back(Value::string(text.substr(from)));
      return Value::list(std::move(lines));
    }
    if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isalnum") {
      const auto& s = text.chars;
      return Value::boolean(!s.empty() && std::all_of(s.begin(), s.end(), [&](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return name == "isdigit" ? std::isdigit(c) != 0
          : name == "isspace"    ? std::isspace(c) != 0
          : name == "isalpha"    ? std::isalpha(c) != 0
                                 : std::isalnum(c) != 0;
      }));
    }
  } else if (object.is(Value::Kind::dict) && !object.dict().is_namespace) {
    if (name == "items")
      return apply_filter("items", object, args, line);
    if (name == "keys" || name == "values") {
      List out;
      for (const auto& [key, item] : object.dict().items)
        out.push_back(name == "keys" ? Value::string(key) : item);
      return Value::list(std::move(out));
    }
    if (name == "get") {
      auto key = arg(0, "key");
      const auto* item = key.is(Value::Kind::string) ? object.dict().find(key.text().chars) : nullptr;
      if (item)
        return *item;
      auto fallback = arg(1, "default");
      return fallback.is(Value::Kind::undefined) ? Value::none() : fallback;
    }
  }
  raise_at(line, "a " + type_name(object) + " has no method '" + name + "'");
}

// -- globals ----------------------------------------------------------------------

Value global_function(const std::string& name) {
  if (name == "raise_exception")
    return Value::function([](Arguments& args) -> Value { throw JinjaError(to_text(args.get(0, "message")).chars); });
  if (name == "strftime_now")
    return Value::function([](Arguments& args) -> Value {
      auto format = to_text(args.get(0, "format")).chars;
      auto now = std::time(nullptr);
      std::tm local{};
      localtime_r(&now, &local);
      char buffer[256];
      auto n = std::strftime(buffer, sizeof buffer, format.c_str(), &local);
      return Value::markup(std::string(buffer, n));
    });
  if (name == "range")
    return Value::function([](Arguments& args) -> Value {
      std::int64_t start = 0, stop = 0, step = 1;
      if (args.positional.size() == 1) {
        stop = args.positional[0].as_integer();
      } else if (args.positional.size() >= 2) {
        start = args.positional[0].as_integer();
        stop = args.positional[1].as_integer();
        if (args.positional.size() > 2)
          step = args.positional[2].as_integer();
      }
      if (step == 0)
        throw JinjaError("range() arg 3 must not be zero");
      List items;
      for (auto i = start; step > 0 ? i < stop : i > stop;) {
        items.push_back(Value::integer(i));
        if (items.size() > 100000)
          throw JinjaError("range(): more than 100000 items");
        if (__builtin_add_overflow(i, step, &i))
          break;
      }
      return Value::list(std::move(items));
    });
  if (name == "namespace" || name == "dict")
    return Value::function([is_namespace = name == "namespace"](Arguments& args) -> Value {
      auto dict = std::make_shared<Dict>();
      dict->is_namespace = is_namespace;
      for (const auto& item : args.positional)
        if (item.is(Value::Kind::dict))
          for (const auto& [key, value] : item.dict().items)
            dict->set(key, value);
      for (auto& [key, value] : args.named)
        dict->set(Text::markup(key), value);
      return Value::dict(std::move(dict));
    });
  return {};
}

} // namespace chorus::models::jinja
