// A recursive-descent reader of regular expressions. Patterns come from HTTP clients (guided_regex,
// a schema's "pattern"), so nesting and bounds are limited and every refusal names its byte.
#include "models/regex.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

namespace chorus::models {

namespace {

constexpr char32_t kLastCodePoint = 0x10FFFF;
constexpr char32_t kFirstSurrogate = 0xD800, kLastSurrogate = 0xDFFF;
constexpr int kMostRepeats = 1000;
constexpr int kDeepest = 64;

CodePointRanges normalized(CodePointRanges ranges) {
  // Surrogates are no characters of UTF-8 text: cut them out of every set.
  CodePointRanges cut;
  for (auto [first, last] : ranges) {
    last = std::min(last, kLastCodePoint);
    if (first < kFirstSurrogate)
      cut.emplace_back(first, std::min<char32_t>(last, kFirstSurrogate - 1));
    if (last > kLastSurrogate)
      cut.emplace_back(std::max<char32_t>(first, kLastSurrogate + 1), last);
  }
  std::sort(cut.begin(), cut.end());
  CodePointRanges merged;
  for (auto [first, last] : cut) {
    if (first > last)
      continue;
    if (!merged.empty() && first <= merged.back().second + 1)
      merged.back().second = std::max(merged.back().second, last);
    else
      merged.emplace_back(first, last);
  }
  return merged;
}

RegexNodePtr node_of(RegexNode node) {
  return std::make_shared<const RegexNode>(std::move(node));
}

RegexNodePtr characters(CodePointRanges ranges) {
  RegexNode node;
  node.kind = RegexNode::characters;
  node.ranges = normalized(std::move(ranges));
  node.nullable = false;
  return node_of(std::move(node));
}

CodePointRanges ascii_whitespace() {
  return {{'\t', '\r'}, {' ', ' '}}; // \t \n \v \f \r and space
}

// What ECMAScript's \s holds beyond ASCII (PCRE2's does not): left out of \S, and of a negated class
// holding \s or \S, so that every reading accepts what is written.
const CodePointRanges& unicode_spaces() {
  static const CodePointRanges spaces = {{0x85, 0x85},     {0xA0, 0xA0},     {0x1680, 0x1680},
                                         {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F},
                                         {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
  return spaces;
}

class RegexParser {
public:
  explicit RegexParser(std::string_view pattern) : p_(pattern) {}

  RegexNodePtr parse() {
    auto tree = alternation();
    if (at_end())
      return tree;
    fail("an unmatched ')'"); // alternation stops only at the end or a ')'
  }

private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument("at byte " + std::to_string(i_) + ": " + what);
  }
  [[noreturn]] void refuse(const std::string& what) const {
    fail(what + " is not supported in guided decoding");
  }

  bool at_end() const {
    return i_ >= p_.size();
  }
  char peek(std::size_t ahead = 0) const {
    return i_ + ahead < p_.size() ? p_[i_ + ahead] : '\0';
  }
  bool eat(char c) {
    if (at_end() || p_[i_] != c)
      return false;
    ++i_;
    return true;
  }
  bool looking_at(std::string_view text) const {
    return p_.substr(i_, text.size()) == text;
  }

  RegexNodePtr alternation() {
    std::vector<RegexNodePtr> options{sequence()};
    while (eat('|'))
      options.push_back(sequence());
    return joined(RegexNode::alternation, std::move(options));
  }

  // Anchors: "^" may begin and "$" end an option of the whole pattern, where nothing could stand
  // before or after them in a whole-text match; anywhere else they would exclude texts.
  RegexNodePtr sequence() {
    std::vector<RegexNodePtr> items;
    if (depth_ == 0)
      eat('^');
    while (!at_end() && peek() != '|' && peek() != ')') {
      if (peek() == '$') {
        if (depth_ == 0 && (i_ + 1 == p_.size() || peek(1) == '|' || peek(1) == ')')) {
          ++i_;
          break;
        }
        refuse("the anchor '$' inside a pattern (only at its end)");
      }
      items.push_back(quantified(atom()));
    }
    return joined(RegexNode::concat, std::move(items));
  }

  // `items` one after the other (concat) or as options (alternation): nothing for no items, the item
  // itself for one.
  static RegexNodePtr joined(RegexNode::Kind kind, std::vector<RegexNodePtr> items) {
    if (items.empty())
      return node_of({});
    if (items.size() == 1)
      return items.front();
    auto nullable = [](const RegexNodePtr& item) { return item->nullable; };
    RegexNode node;
    node.kind = kind;
    node.nullable = kind == RegexNode::concat ? std::all_of(items.begin(), items.end(), nullable)
                                              : std::any_of(items.begin(), items.end(), nullable);
    node.items = std::move(items);
    return node_of(std::move(node));
  }

  RegexNodePtr atom() {
    switch (peek()) {
      case '(': return group();
      case '[': return character_class();
      case '.': ++i_; return characters(complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
      case '\\': {
        CodePointRanges ranges;
        escape(/*in_class=*/false, ranges);
        return characters(std::move(ranges));
      }
      case '^': refuse("the anchor '^' inside a pattern (only at its start)");
      case '*':
      case '+':
      case '?': fail(std::string("'") + peek() + "' repeats nothing");
      case '{': fail("'{' that does not begin a bound {n}, {n,} or {n,m} (write \\{ for the character)");
      default: {
        auto c = code_point();
        return characters({{c, c}});
      }
    }
  }

  RegexNodePtr group() {
    auto start = i_++;
    if (eat('?')) {
      if (looking_at("=") || looking_at("!") || looking_at("<=") || looking_at("<!"))
        refuse("lookaround '(?" + std::string(p_.substr(i_, peek() == '<' ? 2 : 1)) + "'");
      if (looking_at("P<") || looking_at("<")) { // a named group: the name changes nothing here
        i_ += peek() == 'P' ? 2 : 1;
        auto name_start = i_;
        while (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_')
          ++i_;
        auto name = std::string(p_.substr(name_start, i_ - name_start));
        if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) || name.size() > 32 || !eat('>')) {
          i_ = name_start;
          fail("expected a group name (a letter or '_', then letters, digits and '_'; at most 32), then '>'");
        }
        if (!names_.insert(name).second) {
          i_ = name_start;
          fail("a second group named '" + name + "'");
        }
      } else if (!eat(':')) {
        refuse("the group '(?" + std::string(p_.substr(i_, 1))
               + "' (flags, comments and other extensions; groups are (...), (?:...) and (?<name>...))");
      }
    }
    if (++depth_ > kDeepest)
      refuse("groups nested deeper than " + std::to_string(kDeepest));
    auto inside = alternation();
    --depth_;
    if (!eat(')')) {
      i_ = start;
      fail("a '(' that is never closed");
    }
    return inside;
  }

  RegexNodePtr quantified(RegexNodePtr item) {
    int least = 0, most = 0;
    if (eat('*')) {
      least = 0, most = -1;
    } else if (eat('+')) {
      least = 1, most = -1;
    } else if (eat('?')) {
      least = 0, most = 1;
    } else if (peek() == '{') {
      auto brace = i_++;
      least = number();
      most = least;
      if (eat(','))
        most = peek() == '}' ? -1 : number();
      if (!eat('}'))
        fail("expected a bound {n}, {n,} or {n,m} (write \\{ for the character)");
      if (most >= 0 && most < least) {
        i_ = brace;
        fail("the bound's maximum is below its minimum");
      }
    } else {
      return item;
    }
    eat('?'); // lazy: the same texts
    if (peek() == '+')
      refuse("a possessive quantifier");
    if (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{')
      fail("a quantifier after a quantifier (group the first: (a*)*)");
    RegexNode node;
    node.kind = RegexNode::repeat;
    node.least = least;
    node.most = most;
    node.nullable = least == 0 || item->nullable;
    node.items = {std::move(item)};
    return node_of(std::move(node));
  }

  int number() {
    if (!std::isdigit(static_cast<unsigned char>(peek())))
      fail("expected a bound {n}, {n,} or {n,m} (write \\{ for the character)");
    auto start = i_;
    long value = 0;
    while (std::isdigit(static_cast<unsigned char>(peek())))
      value = std::min<long>(value * 10 + (p_[i_++] - '0'), kMostRepeats + 1);
    if (value > kMostRepeats) {
      i_ = start;
      refuse("a bound above " + std::to_string(kMostRepeats));
    }
    return static_cast<int>(value);
  }

  RegexNodePtr character_class() {
    const auto open = i_++;
    const bool negated = eat('^');
    if (peek() == ']')
      fail("']' first in a class (an empty class, or a ']' to match: write \\])");
    if (peek() == ':' || peek() == '.' || peek() == '=')
      fail(std::string("'") + peek() + "' first in a class (PCRE2 reads [:name:] as a POSIX class): write \\" + peek());
    // Members every reading agrees on, and characters that some readings count in and others out
    // (Unicode's spaces, for \s and \S): neither drawn from the class nor from its negation.
    CodePointRanges ranges, unsure;
    while (!eat(']')) {
      if (at_end()) {
        i_ = open;
        fail("a '[' that is never closed");
      }
      if (peek() == '[')
        fail("'[' inside a class (write \\[)");
      const auto member = i_;
      auto first = class_member(ranges, unsure);
      if (peek() == '-' && i_ + 1 < p_.size() && peek(1) != ']') {
        if (!first) {
          i_ = member;
          fail("a range that begins with a class escape (\\d, \\w, \\s...)");
        }
        const auto end_member = ++i_;
        auto last = class_member(ranges, unsure);
        if (!last) {
          i_ = end_member;
          fail("a range that ends with a class escape (\\d, \\w, \\s...)");
        }
        if (*last < *first) {
          i_ = member;
          fail("a range out of order");
        }
        ranges.emplace_back(*first, *last);
      } else if (first) {
        ranges.emplace_back(*first, *first);
      }
    }
    if (negated) {
      ranges.insert(ranges.end(), unsure.begin(), unsure.end());
      ranges = complement(ranges);
    }
    ranges = normalized(std::move(ranges));
    if (ranges.empty()) {
      i_ = open;
      fail("a class that matches no character");
    }
    return characters(std::move(ranges));
  }

  // One character of a class, or (nullopt) a class escape whose ranges go into `ranges`.
  std::optional<char32_t> class_member(CodePointRanges& ranges, CodePointRanges& unsure) {
    if (peek() != '\\')
      return code_point();
    CodePointRanges escaped;
    auto single = escape(/*in_class=*/true, escaped, &unsure);
    if (single)
      return single;
    ranges.insert(ranges.end(), escaped.begin(), escaped.end());
    return std::nullopt;
  }

  // The escape at a backslash: its character (also put into `ranges`), or nullopt for a class escape
  // (in a class, the characters readings disagree on go into `unsure`).
  std::optional<char32_t> escape(bool in_class, CodePointRanges& ranges, CodePointRanges* unsure = nullptr) {
    auto start = i_++;
    if (at_end()) {
      i_ = start;
      fail("the pattern ends in a backslash");
    }
    auto single = [&](char32_t c) -> std::optional<char32_t> {
      ranges.emplace_back(c, c);
      return c;
    };
    auto set = [&](CodePointRanges set) -> std::optional<char32_t> {
      ranges.insert(ranges.end(), set.begin(), set.end());
      return std::nullopt;
    };
    const char c = p_[i_];
    if (static_cast<unsigned char>(c) >= 0x80 || !std::isalnum(static_cast<unsigned char>(c)))
      return single(code_point()); // punctuation (or any non-ASCII character) stands for itself
    ++i_;
    switch (c) {
      case 'd': return set({{'0', '9'}});
      case 'D': return set(complement({{'0', '9'}}));
      case 'w': return set({{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}});
      case 'W': return set(complement({{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}));
      case 's':
        if (unsure)
          unsure->insert(unsure->end(), unicode_spaces().begin(), unicode_spaces().end());
        return set(ascii_whitespace());
      case 'S': {
        if (unsure)
          unsure->insert(unsure->end(), unicode_spaces().begin(), unicode_spaces().end());
        auto spaces = ascii_whitespace();
        for (auto range : unicode_spaces())
          spaces.push_back(range);
        return set(complement(normalized(spaces)));
      }
      case 'n': return single('\n');
      case 't': return single('\t');
      case 'r': return single('\r');
      case 'f': return single('\f');
      case 'v':
        i_ = start;
        refuse("the escape \\v (one character in ECMAScript and Python, any vertical space in PCRE2: write \\x0b)");
      case '0':
        if (std::isdigit(static_cast<unsigned char>(peek()))) {
          i_ = start;
          refuse("an octal escape");
        }
        return single(0);
      case 'x': return single(hex(2, start));
      case 'u': {
        auto value = hex(4, start);
        if (value >= kFirstSurrogate && value <= kLastSurrogate) {
          i_ = start;
          refuse("a surrogate escape (\\uD800-\\uDFFF: write the character itself)");
        }
        return single(value);
      }
      case 'b':
        if (in_class)
          return single('\b');
        i_ = start;
        refuse("the word boundary \\b");
      default:
        i_ = start;
        if (c >= '1' && c <= '9')
          refuse("a backreference");
        if (c == 'k')
          refuse("a backreference");
        if (c == 'p' || c == 'P')
          refuse("a Unicode property \\" + std::string(1, c));
        refuse(std::string("the escape \\") + c);
    }
  }

  char32_t hex(int digits, std::size_t start) {
    char32_t value = 0;
    for (int k = 0; k < digits; ++k) {
      auto c = static_cast<unsigned char>(peek());
      if (!std::isxdigit(c)) {
        i_ = start;
        fail(std::string("expected ") + std::to_string(digits) + " hex digits after \\" + p_[start + 1]);
      }
      value = value * 16 + static_cast<char32_t>(std::isdigit(c) ? c - '0' : std::tolower(c) - 'a' + 10);
      ++i_;
    }
    return value;
  }

  // The UTF-8 character at the cursor.
  char32_t code_point() {
    auto lead = static_cast<unsigned char>(peek());
    int length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    char32_t value = length == 1 ? lead : length == 2 ? lead & 0x1F : length == 3 ? lead & 0x0F : lead & 0x07;
    bool valid = length > 0 && i_ + static_cast<std::size_t>(length) <= p_.size();
    for (int k = 1; valid && k < length; ++k) {
      auto next = static_cast<unsigned char>(p_[i_ + static_cast<std::size_t>(k)]);
      valid = (next & 0xC0) == 0x80;
      value = (value << 6) | (next & 0x3F);
    }
    static constexpr char32_t kLeast[] = {0, 0, 0x80, 0x800, 0x10000};
    if (!valid || value < kLeast[length] || value > kLastCodePoint
        || (value >= kFirstSurrogate && value <= kLastSurrogate))
      fail("text that is not UTF-8");
    i_ += static_cast<std::size_t>(length);
    return value;
  }

  std::string_view p_;
  std::size_t i_ = 0;
  int depth_ = 0;
  std::set<std::string> names_; // of the named groups
};

} // namespace

CodePointRanges complement(const CodePointRanges& ranges) {
  auto sorted = normalized(ranges);
  CodePointRanges rest;
  char32_t next = 0;
  for (auto [first, last] : sorted) {
    if (first > next)
      rest.emplace_back(next, first - 1);
    next = last + 1;
  }
  if (next <= kLastCodePoint)
    rest.emplace_back(next, kLastCodePoint);
  return normalized(std::move(rest));
}

std::string utf8_encode(char32_t c) {
  std::string bytes;
  auto put = [&](unsigned value) { bytes += static_cast<char>(value); };
  if (c < 0x80) {
    put(c);
  } else if (c < 0x800) {
    put(0xC0 | (c >> 6)), put(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    put(0xE0 | (c >> 12)), put(0x80 | ((c >> 6) & 0x3F)), put(0x80 | (c & 0x3F));
  } else {
    put(0xF0 | (c >> 18)), put(0x80 | ((c >> 12) & 0x3F)), put(0x80 | ((c >> 6) & 0x3F)), put(0x80 | (c & 0x3F));
  }
  return bytes;
}

RegexNodePtr parse_regex(std::string_view pattern) {
  return RegexParser(pattern).parse();
}

} // namespace chorus::models
