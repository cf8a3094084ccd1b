// Jinja2's syntax as Hugging Face chat templates use it (jinja_lexer.cpp's tokens), parsed with
// Jinja2's precedence into jinja_ast.hpp's nodes.
#include "models/jinja.hpp"
#include "models/jinja_ast.hpp"
#include "models/jinja_builtins.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace chorus::models::jinja {

namespace {

class Parser {
public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse() {
    std::string end;
    auto body = parse_body({}, end);
    if (peek().kind != Tok::end)
      raise_at(peek().line, "unexpected {% " + end + " %}");
    return body;
  }

private:
  // -- statements -------------------------------------------------------------

  // Nodes up to a {% tag %} named in `ends` (its name goes to `end`, the tag's name token consumed)
  // or the template's end.
  Body parse_body(const std::vector<std::string>& ends, std::string& end) {
    Nested nested(*this);
    Body body;
    while (true) {
      const auto& token = peek();
      if (token.kind == Tok::end) {
        if (!ends.empty())
          raise_at(token.line, "the template ends where {% " + ends.front() + " %} was expected");
        return body;
      }
      if (token.kind == Tok::text) {
        auto node = make(Node::Kind::text, token.line);
        node->text = token.value;
        body.push_back(std::move(node));
        ++at_;
      } else if (token.kind == Tok::open_output) {
        ++at_;
        auto node = make(Node::Kind::output, token.line);
        node->expr = expression();
        expect(Tok::close_output, "}}");
        body.push_back(std::move(node));
      } else {
        ++at_;
        const auto& keyword = expect(Tok::name, "a statement");
        for (const auto& e : ends)
          if (keyword.value == e) {
            end = e;
            return body;
          }
        body.push_back(statement(keyword));
      }
    }
  }

  std::unique_ptr<Node> statement(const Token& keyword) {
    const auto& k = keyword.value;
    if (k == "if")
      return branch(keyword.line);
    if (k == "for")
      return loop(keyword.line);
    if (k == "set")
      return assign(keyword.line);
    if (k == "macro")
      return macro(keyword.line);
    if (k == "break" || k == "continue") {
      expect(Tok::close_block, "%}");
      return make(k == "break" ? Node::Kind::loop_break : Node::Kind::loop_continue, keyword.line);
    }
    if (k == "generation" || k == "filter") {
      auto node = make(Node::Kind::block, keyword.line);
      if (k == "filter")
        node->text = expect(Tok::name, "a filter's name").value;
      if (k == "filter" && !is_filter(node->text))
        raise_at(keyword.line, "unknown filter '" + node->text + "'");
      expect(Tok::close_block, "%}");
      std::string end;
      node->bodies.push_back(parse_body({"end" + k}, end));
      expect(Tok::close_block, "%}");
      return node;
    }
    raise_at(keyword.line, "unknown statement {% " + k + " %}");
  }

  std::unique_ptr<Node> branch(int line) {
    auto node = make(Node::Kind::branch, line);
    node->conditions.push_back(expression());
    expect(Tok::close_block, "%}");
    while (true) {
      std::string end;
      node->bodies.push_back(parse_body({"elif", "else", "endif"}, end));
      if (end == "endif")
        break;
      node->conditions.push_back(end == "elif" ? expression() : nullptr);
      expect(Tok::close_block, "%}");
      if (end == "else") {
        node->bodies.push_back(parse_body({"endif"}, end));
        break;
      }
    }
    expect(Tok::close_block, "%}");
    return node;
  }

  std::unique_ptr<Node> loop(int line) {
    auto node = make(Node::Kind::loop, line);
    do
      node->targets.push_back(expect(Tok::name, "a loop variable").value);
    while (accept_op(","));
    if (!accept_name("in"))
      raise_at(peek().line, "expected 'in' in a for loop");
    node->expr = expression(/*conditional=*/false);
    node->conditions.push_back(accept_name("if") ? expression() : nullptr);
    if (accept_name("recursive"))
      raise_at(line, "recursive loops are not supported");
    expect(Tok::close_block, "%}");
    std::string end;
    node->bodies.push_back(parse_body({"else", "endfor"}, end));
    if (end == "else") {
      expect(Tok::close_block, "%}");
      node->bodies.push_back(parse_body({"endfor"}, end));
    }
    expect(Tok::close_block, "%}");
    return node;
  }

  std::unique_ptr<Node> assign(int line) {
    auto node = make(Node::Kind::assign, line);
    node->targets.push_back(expect(Tok::name, "a variable").value);
    if (accept_op("."))
      node->attribute = expect(Tok::name, "an attribute").value;
    else
      while (accept_op(","))
        node->targets.push_back(expect(Tok::name, "a variable").value);
    if (accept_op("=")) {
      node->expr = expression();
      if (node->targets.size() > 1 && peek().kind == Tok::op && peek().value == ",") { // `a, b = 1, 2`
        auto tuple = make_expr(Expr::Kind::list, line);
        tuple->name = "tuple";
        tuple->args.push_back(std::move(node->expr));
        while (accept_op(","))
          tuple->args.push_back(expression());
        node->expr = std::move(tuple);
      }
      expect(Tok::close_block, "%}");
      return node;
    }
    expect(Tok::close_block, "%}");
    std::string end;
    node->bodies.push_back(parse_body({"endset"}, end));
    expect(Tok::close_block, "%}");
    return node;
  }

  std::unique_ptr<Node> macro(int line) {
    auto node = make(Node::Kind::macro, line);
    node->text = expect(Tok::name, "the macro's name").value;
    expect_op("(");
    while (!accept_op(")")) {
      node->targets.push_back(expect(Tok::name, "a parameter").value);
      node->conditions.push_back(accept_op("=") ? expression() : nullptr);
      if (!accept_op(",")) {
        expect_op(")");
        break;
      }
    }
    expect(Tok::close_block, "%}");
    std::string end;
    node->bodies.push_back(parse_body({"endmacro"}, end));
    expect(Tok::close_block, "%}");
    return node;
  }

  // -- expressions, loosest first ------------------------------------------------

  // Nesting deeper than this (brackets, blocks) is refused rather than run off the stack.
  static constexpr int kMaxDepth = 200;

  struct Nested {
    explicit Nested(Parser& parser) : parser_(parser) {
      if (++parser_.depth_ > kMaxDepth)
        raise_at(parser_.peek().line, "nested more than 200 deep");
    }
    ~Nested() {
      --parser_.depth_;
    }
    Parser& parser_;
  };

  ExprPtr expression(bool conditional = true) {
    Nested nested(*this);
    auto value = logical_or();
    while (conditional && accept_name("if")) {
      auto node = make_expr(Expr::Kind::conditional, value->line);
      node->args.push_back(std::move(value));
      node->args.push_back(logical_or());
      node->args.push_back(accept_name("else") ? expression() : nullptr);
      value = std::move(node);
    }
    return value;
  }

  ExprPtr logical_or() {
    auto left = logical_and();
    while (accept_name("or"))
      left = binary(Expr::Kind::logical_or, "or", std::move(left), logical_and());
    return left;
  }

  ExprPtr logical_and() {
    auto left = logical_not();
    while (accept_name("and"))
      left = binary(Expr::Kind::logical_and, "and", std::move(left), logical_not());
    return left;
  }

  ExprPtr logical_not() {
    Nested nested(*this);
    if (peek().kind == Tok::name && peek().value == "not") {
      int line = peek().line;
      ++at_;
      auto node = make_expr(Expr::Kind::logical_not, line);
      node->args.push_back(logical_not());
      return node;
    }
    return comparison();
  }

  // `a < b < c` is Python's chain, (a < b) and (b < c) with b once: a chain node when longer.
  ExprPtr comparison() {
    auto first = sum();
    int line = first->line;
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    operands.push_back(std::move(first));
    while (true) {
      std::string op;
      for (const char* candidate : {"==", "!=", "<=", ">=", "<", ">"})
        if (accept_op(candidate)) {
          op = candidate;
          break;
        }
      if (op.empty()) {
        if (accept_name("in"))
          op = "in";
        else if (peek().kind == Tok::name && peek().value == "not" && peek(1).kind == Tok::name
                 && peek(1).value == "in") {
          at_ += 2;
          op = "not in";
        } else {
          break;
        }
      }
      ops.push_back(op);
      operands.push_back(sum());
    }
    if (ops.empty())
      return std::move(operands.front());
    if (ops.size() == 1)
      return binary(Expr::Kind::binary, ops.front(), std::move(operands[0]), std::move(operands[1]));
    auto chain = make_expr(Expr::Kind::comparison_chain, line);
    chain->args = std::move(operands);
    chain->keywords = std::move(ops);
    return chain;
  }

  ExprPtr sum() {
    auto left = concatenation();
    while (true) {
      if (accept_op("+"))
        left = binary(Expr::Kind::binary, "+", std::move(left), concatenation());
      else if (accept_op("-"))
        left = binary(Expr::Kind::binary, "-", std::move(left), concatenation());
      else
        return left;
    }
  }

  ExprPtr concatenation() {
    auto left = product();
    while (accept_op("~"))
      left = binary(Expr::Kind::binary, "~", std::move(left), product());
    return left;
  }

  ExprPtr product() {
    auto left = power();
    while (true) {
      std::string op;
      for (const char* candidate : {"//", "*", "/", "%"})
        if (accept_op(candidate)) {
          op = candidate;
          break;
        }
      if (op.empty())
        return left;
      left = binary(Expr::Kind::binary, op, std::move(left), power());
    }
  }

  ExprPtr power() {
    auto left = unary();
    while (accept_op("**"))
      left = binary(Expr::Kind::binary, "**", std::move(left), unary());
    return left;
  }

  // As Jinja2's parse_unary: `-x|abs` is (-x)|abs.
  ExprPtr unary(bool with_filters = true) {
    Nested nested(*this);
    int line = peek().line;
    ExprPtr node;
    if (accept_op("-")) {
      node = make_expr(Expr::Kind::negate, line);
      node->args.push_back(unary(false));
    } else if (accept_op("+")) {
      node = unary(false);
    } else {
      node = primary();
    }
    node = postfix(std::move(node));
    return with_filters ? filters_and_tests(std::move(node)) : std::move(node);
  }

  ExprPtr filters_and_tests(ExprPtr value) {
    while (true) {
      if (accept_op("|")) {
        auto node = make_expr(Expr::Kind::filter, peek().line);
        node->name = expect(Tok::name, "a filter's name").value;
        if (!is_filter(node->name))
          raise_at(node->line, "unknown filter '" + node->name + "'");
        node->args.push_back(std::move(value));
        if (peek().kind == Tok::op && peek().value == "(") {
          ++at_;
          call_arguments(*node);
        }
        value = std::move(node);
      } else if (accept_name("is")) {
        auto node = make_expr(Expr::Kind::test, peek().line);
        node->negated = accept_name("not");
        const auto& name = peek();
        if (name.kind == Tok::name) {
          node->name = name.value;
          ++at_;
        } else if (name.kind == Tok::op
                   && (name.value == "==" || name.value == "!=" || name.value == "<" || name.value == ">"
                       || name.value == "<=" || name.value == ">=")) {
          node->name = name.value;
          ++at_;
        } else {
          raise_at(name.line, "expected a test's name after 'is'");
        }
        if (!is_test(node->name))
          raise_at(node->line, "unknown test '" + node->name + "'");
        node->args.push_back(std::move(value));
        if (accept_op("(")) {
          call_arguments(*node);
        } else if (starts_operand()) { // `is divisibleby 3`, `is sameas false`
          node->args.push_back(postfix(primary()));
          node->keywords.emplace_back();
        }
        value = std::move(node);
      } else {
        return value;
      }
    }
  }

  bool starts_operand() const {
    const auto& t = peek();
    if (t.kind == Tok::string || t.kind == Tok::integer || t.kind == Tok::number)
      return true;
    if (t.kind == Tok::name)
      return t.value != "and" && t.value != "or" && t.value != "if" && t.value != "else" && t.value != "is"
        && t.value != "in" && t.value != "not";
    return t.kind == Tok::op && (t.value == "(" || t.value == "[" || t.value == "{");
  }

  ExprPtr postfix(ExprPtr value) {
    while (true) {
      int line = peek().line;
      if (accept_op(".")) {
        auto node = make_expr(Expr::Kind::attribute, line);
        const auto& name = peek();
        if (name.kind != Tok::name && name.kind != Tok::integer)
          raise_at(name.line, "expected an attribute after '.'");
        node->name = name.value;
        ++at_;
        node->args.push_back(std::move(value));
        value = std::move(node);
      } else if (accept_op("[")) {
        value = subscript(std::move(value), line);
      } else if (accept_op("(")) {
        auto node = make_expr(Expr::Kind::call, line);
        node->args.push_back(std::move(value));
        call_arguments(*node);
        value = std::move(node);
      } else {
        return value;
      }
    }
  }

  ExprPtr subscript(ExprPtr value, int line) {
    ExprPtr parts[3];
    int part = 0;
    bool sliced = false;
    while (true) {
      if (accept_op("]"))
        break;
      if (accept_op(":")) {
        sliced = true;
        if (++part > 2)
          raise_at(line, "a slice has at most three parts");
        continue;
      }
      if (parts[part])
        raise_at(peek().line, "expected ']'");
      parts[part] = expression();
    }
    if (!sliced) {
      if (!parts[0])
        raise_at(line, "an empty subscript []");
      auto node = make_expr(Expr::Kind::subscript, line);
      node->args.push_back(std::move(value));
      node->args.push_back(std::move(parts[0]));
      return node;
    }
    auto node = make_expr(Expr::Kind::slice, line);
    node->args.push_back(std::move(value));
    for (auto& p : parts)
      node->args.push_back(std::move(p));
    return node;
  }

  // After "(": arguments up to ")", keyword ones as name=value.
  void call_arguments(Expr& node) {
    while (!accept_op(")")) {
      if (peek().kind == Tok::name && peek(1).kind == Tok::op && peek(1).value == "=") {
        node.keywords.push_back(peek().value);
        at_ += 2;
      } else {
        node.keywords.emplace_back();
      }
      node.args.push_back(expression());
      if (!accept_op(",")) {
        expect_op(")");
        break;
      }
    }
  }

  ExprPtr primary() {
    const auto& token = peek();
    int line = token.line;
    auto literal = [&](Value value) {
      auto node = make_expr(Expr::Kind::literal, line);
      node->value = std::move(value);
      ++at_;
      return node;
    };
    switch (token.kind) {
      case Tok::string: {
        std::string value = token.value;
        ++at_;
        while (peek().kind == Tok::string) // adjacent literals join, as in Python
          value += tokens_[at_++].value;
        --at_;
        return literal(Value::markup(value));
      }
      case Tok::integer:
      case Tok::number:
        try {
          return literal(token.kind == Tok::integer ? Value::integer(std::stoll(token.value))
                                                    : Value::number(std::strtod(token.value.c_str(), nullptr)));
        } catch (const std::out_of_range&) {
          raise_at(line, "the number " + token.value + " is out of range");
        }
      case Tok::name:
        if (token.value == "true" || token.value == "True")
          return literal(Value::boolean(true));
        if (token.value == "false" || token.value == "False")
          return literal(Value::boolean(false));
        if (token.value == "none" || token.value == "None")
          return literal(Value::none());
        {
          auto node = make_expr(Expr::Kind::name, line);
          node->name = token.value;
          ++at_;
          return node;
        }
      case Tok::op:
        if (token.value == "(") {
          ++at_;
          if (accept_op(")")) {
            auto empty = make_expr(Expr::Kind::list, line);
            empty->name = "tuple";
            return empty;
          }
          auto first = expression();
          if (accept_op(")"))
            return first;
          auto node = make_expr(Expr::Kind::list, line);
          node->name = "tuple";
          node->args.push_back(std::move(first));
          while (accept_op(",")) {
            if (accept_op(")"))
              return node;
            node->args.push_back(expression());
          }
          expect_op(")");
          return node;
        }
        if (token.value == "[") {
          ++at_;
          auto node = make_expr(Expr::Kind::list, line);
          while (!accept_op("]")) {
            node->args.push_back(expression());
            if (!accept_op(",")) {
              expect_op("]");
              break;
            }
          }
          return node;
        }
        if (token.value == "{") {
          ++at_;
          auto node = make_expr(Expr::Kind::dict, line);
          while (!accept_op("}")) {
            node->args.push_back(expression());
            expect_op(":");
            node->args.push_back(expression());
            if (!accept_op(",")) {
              expect_op("}");
              break;
            }
          }
          return node;
        }
        break;
      default: break;
    }
    raise_at(line, "expected a value, found " + describe(token));
  }

  // -- tokens ---------------------------------------------------------------

  static std::string describe(const Token& token) {
    switch (token.kind) {
      case Tok::end: return "the template's end";
      case Tok::close_output: return "}}";
      case Tok::close_block: return "%}";
      case Tok::text: return "text";
      default: return "'" + token.value + "'";
    }
  }

  const Token& peek(std::size_t ahead = 0) const {
    return tokens_[std::min(at_ + ahead, tokens_.size() - 1)];
  }

  const Token& expect(Tok kind, const std::string& what) {
    const auto& token = peek();
    if (token.kind != kind)
      raise_at(token.line, "expected " + what + ", found " + describe(token));
    ++at_;
    return token;
  }

  void expect_op(const char* op) {
    if (!accept_op(op))
      raise_at(peek().line, std::string("expected '") + op + "', found " + describe(peek()));
  }

  bool accept_op(const char* op) {
    if (peek().kind == Tok::op && peek().value == op) {
      ++at_;
      return true;
    }
    return false;
  }

  bool accept_name(const char* name) {
    if (peek().kind == Tok::name && peek().value == name) {
      ++at_;
      return true;
    }
    return false;
  }

  static std::unique_ptr<Node> make(Node::Kind kind, int line) {
    auto node = std::make_unique<Node>();
    node->kind = kind;
    node->line = line;
    return node;
  }

  static ExprPtr make_expr(Expr::Kind kind, int line) {
    auto node = std::make_unique<Expr>();
    node->kind = kind;
    node->line = line;
    return node;
  }

  static ExprPtr binary(Expr::Kind kind, std::string op, ExprPtr left, ExprPtr right) {
    auto node = make_expr(kind, left->line);
    node->name = std::move(op);
    node->args.push_back(std::move(left));
    node->args.push_back(std::move(right));
    return node;
  }

  std::vector<Token> tokens_;
  std::size_t at_ = 0;
  int depth_ = 0;
};

} // namespace

Body parse_template(std::string_view source) {
  return Parser(lex_template(source)).parse();
}

} // namespace chorus::models::jinja
