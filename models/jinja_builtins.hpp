// What a chat template's values do, as Python and Jinja2 do it: str() and truth, comparison, the
// filters, tests, globals and string / dict methods the templates call.
#pragma once

#include "models/jinja_value.hpp"

#include <string>

namespace chorus::models::jinja {

/// The error to raise while rendering: "line N: message".
[[noreturn]] void render_error(int line, const std::string& message);

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
/// The number of characters of a string (code points), items of a list or dict.
std::int64_t length(const Value& value, int line);
/// A list, a dict's keys, a string's characters, nothing for undefined; as `for` iterates.
List iterate(const Value& value, int line);

/// json.dumps(value, ensure_ascii=False, indent=indent (<0: none), sort_keys) as transformers'
/// tojson filter calls it; strings keep their origin.
Text to_json(const Value& value, int indent, bool sort_keys, int line);

bool is_filter(const std::string& name);
bool is_test(const std::string& name);
Value apply_filter(const std::string& name, const Value& operand, Arguments& args, int line);
bool apply_test(const std::string& name, const Value& operand, const Arguments& args, int line);
/// `object.name(args)` for a str or dict method; `found` false when there is none of that name.
Value call_method(const Value& object, const std::string& name, Arguments& args, int line, bool& found);

/// range(), namespace(), raise_exception(), strftime_now(): the globals transformers gives.
Value global_function(const std::string& name);

} // namespace chorus::models::jinja
