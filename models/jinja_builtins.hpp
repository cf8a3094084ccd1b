// What a chat template's values do, as Python and Jinja2 do it: str() and truth, comparison, the
// str methods' semantics (jinja_python.cpp), and the filters, tests, globals and str / dict methods
// the templates call (jinja_filters.cpp).
#pragma once

#include "models/jinja_value.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace chorus::models::jinja {

/// Throws JinjaError("line N: message"): what the lexer, parser and renderer raise.
[[noreturn]] void raise_at(int line, const std::string& message);

/// Python's str(): None, True, 1.5, a list or dict as Python's repr of it; undefined is "".
Text to_text(const Value& value);
/// Python's repr() (a string quoted).
Text to_repr(const Value& value);
/// Python's truth: empty strings, lists and dicts, 0, None and undefined are false.
bool truthy(const Value& value);
/// Python's ==.
bool equal(const Value& a, const Value& b);
/// The value's type in Python's words, for errors ("str", "dict", "undefined"...).
std::string type_name(const Value& value);
/// Python's < for numbers and for strings; an error for other pairs.
bool less_than(const Value& a, const Value& b, int line);
/// The number of characters of a string (code points), items of a list or dict.
std::int64_t length(const Value& value, int line);
/// A list, a dict's keys, a string's characters, nothing for undefined; as `for` iterates.
List iterate(const Value& value, int line);

/// json.dumps(value, ensure_ascii=False, indent=indent (<0: none), separators, sort_keys) as
/// transformers' tojson filter calls it; strings keep their origin.
Text to_json(const Value& value, int indent, bool sort_keys, const std::pair<std::string, std::string>& separators,
             int line);

/// Byte offsets where each UTF-8 character of `s` starts, and s.size() last.
std::vector<std::size_t> char_starts(const std::string& s);
/// str.strip / lstrip / rstrip: Python's white space, or any of the characters of `chars` (a str).
Text text_strip(const Text& text, const Value& chars, bool left, bool right);
/// str.split(separator, max_splits): on a str, or on runs of white space for none.
Value text_split(const Text& text, const Value& separator, std::int64_t max_splits);
/// str.replace(from, to, count) (count < 0: all).
Text text_replace(const Text& text, const std::string& from, const Text& to, std::int64_t count);
/// str.lower / upper / capitalize / title over Unicode, and Jinja2's title filter, which starts
/// words after "-", white space and opening brackets only.
enum class Case { lower, upper, capitalize, title, jinja_title };
Case case_named(const std::string& name, bool filter);
Text text_case(const Text& text, Case mode);

bool is_filter(const std::string& name);
bool is_test(const std::string& name);
Value apply_filter(const std::string& name, const Value& operand, Arguments& args, int line);
bool apply_test(const std::string& name, const Value& operand, const Arguments& args, int line);
/// Whether `object` (a str, or a dict that is not a namespace) has the method `name`: a Python
/// attribute, which Jinja2 looks up before an item of that name.
bool has_method(const Value& object, const std::string& name);
/// `object.name(args)` for a method has_method knows.
Value call_method(const Value& object, const std::string& name, Arguments& args, int line);

/// range(), namespace(), raise_exception(), strftime_now(): the globals transformers gives.
Value global_function(const std::string& name);

} // namespace chorus::models::jinja
