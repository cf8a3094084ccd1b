// The values a chat template computes with, as Jinja2 sees Python's: None, bools, ints, floats,
// strings, lists, dicts, callables. Every string remembers, byte by byte, whether it came from the
// conversation (messages, tools) or from the template itself, so that the rendered prompt can keep
// message text plain text: a special token spelled inside a message must not end its turn.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chorus::models::jinja {

/// A string whose bytes each know their origin: `from_data[i]` is 1 where chars[i] came from the
/// conversation, 0 where the template wrote it.
struct Text {
  std::string chars;
  std::string from_data;

  Text() = default;
  Text(std::string value, bool data) : chars(std::move(value)), from_data(chars.size(), data ? 1 : 0) {}
  static Text markup(std::string value) {
    return Text(std::move(value), false);
  }

  std::size_t size() const {
    return chars.size();
  }
  bool empty() const {
    return chars.empty();
  }
  void append(const Text& other) {
    chars += other.chars;
    from_data += other.from_data;
  }
  void append_markup(std::string_view value) {
    chars += value;
    from_data.append(value.size(), 0);
  }
  Text substr(std::size_t pos, std::size_t count = std::string::npos) const {
    Text part;
    part.chars = chars.substr(pos, count);
    part.from_data = from_data.substr(pos, count);
    return part;
  }
};

class Value;
struct Arguments;
using List = std::vector<Value>;
using Function = std::function<Value(Arguments&)>;

/// A dict in insertion order (Python's), or a namespace() object, whose attributes can be set.
struct Dict {
  std::vector<std::pair<Text, Value>> items;
  bool is_namespace = false;

  const Value* find(std::string_view key) const;
  void set(Text key, Value value);
};

class Value {
public:
  enum class Kind { undefined, none, boolean, integer, number, string, list, dict, function };

  Value() = default; // undefined
  static Value none() {
    Value v;
    v.kind_ = Kind::none;
    return v;
  }
  static Value boolean(bool b) {
    Value v;
    v.kind_ = Kind::boolean;
    v.integer_ = b ? 1 : 0;
    return v;
  }
  static Value integer(std::int64_t i) {
    Value v;
    v.kind_ = Kind::integer;
    v.integer_ = i;
    return v;
  }
  static Value number(double d) {
    Value v;
    v.kind_ = Kind::number;
    v.number_ = d;
    return v;
  }
  static Value string(Text text) {
    Value v;
    v.kind_ = Kind::string;
    v.text_ = std::make_shared<const Text>(std::move(text));
    return v;
  }
  static Value markup(std::string text) {
    return string(Text::markup(std::move(text)));
  }
  static Value list(List items) {
    Value v;
    v.kind_ = Kind::list;
    v.list_ = std::make_shared<List>(std::move(items));
    return v;
  }
  /// A tuple: a list that Python's repr writes in parentheses.
  static Value tuple(List items) {
    Value v = list(std::move(items));
    v.tuple_ = true;
    return v;
  }
  static Value dict(std::shared_ptr<Dict> dict) {
    Value v;
    v.kind_ = Kind::dict;
    v.dict_ = std::move(dict);
    return v;
  }
  static Value function(Function f) {
    Value v;
    v.kind_ = Kind::function;
    v.function_ = std::make_shared<const Function>(std::move(f));
    return v;
  }

  Kind kind() const {
    return kind_;
  }
  bool is(Kind kind) const {
    return kind_ == kind;
  }
  bool is_tuple() const {
    return tuple_;
  }
  bool is_number() const { // Python's int, float and bool
    return kind_ == Kind::integer || kind_ == Kind::number || kind_ == Kind::boolean;
  }
  bool as_bool() const {
    return integer_ != 0;
  }
  std::int64_t as_integer() const { // a float truncated, as int() does, saturating where int64 ends
    if (kind_ != Kind::number)
      return integer_;
    if (!(number_ > -9.2e18))
      return number_ != number_ ? 0 : INT64_MIN;
    return number_ < 9.2e18 ? static_cast<std::int64_t>(number_) : INT64_MAX;
  }
  double as_double() const {
    return kind_ == Kind::number ? number_ : static_cast<double>(integer_);
  }
  const Text& text() const {
    return *text_;
  }
  const List& items() const {
    return *list_;
  }
  const Dict& dict() const {
    return *dict_;
  }
  Dict& mutable_dict() const {
    return *dict_;
  }
  const Function& call() const {
    return *function_;
  }

private:
  Kind kind_ = Kind::undefined;
  bool tuple_ = false;
  std::int64_t integer_ = 0;
  double number_ = 0;
  std::shared_ptr<const Text> text_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Function> function_;
};

/// A call's arguments: positional, then keyword ones in the order written.
struct Arguments {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;

  /// The argument at `position` or named `name`, undefined when not given.
  Value get(std::size_t position, std::string_view name) const;
};

inline const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k.chars == key)
      return &v;
  return nullptr;
}

inline void Dict::set(Text key, Value value) {
  for (auto& [k, v] : items)
    if (k.chars == key.chars) {
      v = std::move(value);
      return;
    }
  items.emplace_back(std::move(key), std::move(value));
}

inline Value Arguments::get(std::size_t position, std::string_view name) const {
  for (const auto& [n, v] : named)
    if (n == name)
      return v;
  return position < positional.size() ? positional[position] : Value();
}

} // namespace chorus::models::jinja
