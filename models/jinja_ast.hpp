// A parsed chat template: the expressions and statements of the Jinja2 subset that Hugging Face
// chat templates are written in (jinja_parser.cpp builds it, jinja_render.cpp runs it).
#pragma once

#include "models/jinja_value.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::models::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    literal,          // value
    name,             // name
    attribute,        // args[0].name
    subscript,        // args[0][args[1]]
    slice,            // args[0][args[1]:args[2]:args[3]] (null where left out)
    call,             // args[0](args[1:], with keywords)
    filter,           // args[0] | name(args[1:], with keywords)
    test,             // args[0] is [not] name(args[1:])
    negate,           // -args[0]
    logical_not,      // not args[0]
    binary,           // args[0] op args[1]: + - * / // % ** ~ == != < <= > >= in, "not in"
    comparison_chain, // args[0] keywords[0] args[1] keywords[1] args[2]...: each pair compared
    logical_and,
    logical_or,
    conditional, // args[0] if args[1] else args[2] (null: undefined)
    list,        // [args...], or (args,...) when name is "tuple"
    dict,        // {args[0]: args[1], ...}
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name; // a name, attribute, filter, test, or operator
  std::vector<ExprPtr> args;
  std::vector<std::string> keywords; // a call's or filter's: one per args[1:], "" positional
  bool negated = false;              // `is not`
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Kind {
    text,       // text: the template's own
    output,     // {{ expr }}
    branch,     // {% if %}: conditions[i] (null: else) guards bodies[i]
    loop,       // {% for targets in expr if condition %} bodies[0] {% else %} bodies[1]
    assign,     // {% set targets[0](.attribute) = expr %}, or of the block bodies[0] when expr is null
    macro,      // {% macro name(targets with defaults) %} bodies[0]
    loop_break, // {% break %}
    loop_continue,
    block, // {% generation %} and {% filter name %}: bodies[0], filtered by `name` if any
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  std::vector<std::string> targets;
  std::string attribute;
  std::vector<ExprPtr> conditions; // branch conditions; a loop's filter; a macro's defaults
  std::vector<Body> bodies;
};

/// A token: the template's text between tags, a tag's opening and closing, and what is inside.
enum class Tok { text, open_output, close_output, open_block, close_block, name, string, integer, number, op, end };

struct Token {
  Tok kind;
  std::string value;
  int line;
};

/// The template's tokens. @throws JinjaError naming the line.
std::vector<Token> lex_template(std::string_view source);

/// The template's nodes. @throws JinjaError naming the line.
Body parse_template(std::string_view source);

} // namespace chorus::models::jinja
