// Jinja2's syntax as Hugging Face chat templates use it, lexed with the settings transformers gives
// (trim_blocks: the newline after a block tag goes; lstrip_blocks: the spaces before one on its line
// go; `-` strips all whitespace on its side, `+` keeps it) and parsed with Jinja2's precedence.
#include "models/jinja.hpp"
#include "models/jinja_ast.hpp"
#include "models/jinja_builtins.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace chorus::models::jinja {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

enum class Tok { text, open_output, close_output, open_block, close_block, name, string, integer, number, op, end };

struct Token {
  Tok kind;
  std::string value;
  int line;
};

[[noreturn]] void fail(int line, const std::string& message) {
  throw JinjaError("line " + std::to_string(line) + ": " + message);
}

class Lexer {
public:
  explicit Lexer(std::string_view source) : src_(source) {
    if (!src_.empty() && src_.back() == '\n') // Jinja2 drops the template's last newline
      src_.remove_suffix(1);
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      auto at = next_tag(pos_);
      std::string text(src_.substr(pos_, at - pos_));
      if (strip_next_) {
        std::size_t lead = 0;
        while (lead < text.size() && is_space(text[lead]))
          ++lead;
        line_starting_ = lead > 0 && text[lead - 1] == '\n' ? true : line_starting_;
        text.erase(0, lead);
        strip_next_ = false;
      }
      if (at == src_.size()) {
        emit_text(std::move(text));
        break;
      }
      char kind = src_[at + 1];
      char control = at + 2 < src_.size() ? src_[at + 2] : '\0';
      if (control == '-') {
        while (!text.empty() && is_space(text.back()))
          text.pop_back();
      } else if (control != '+' && kind != '{') { // lstrip_blocks
        auto line_start = text.rfind('\n');
        std::size_t from = line_start == std::string::npos ? 0 : line_start + 1;
        if ((from > 0 || line_starting_) && from < text.size()
            && text.find_first_not_of(" \t\r\f\v", from) == std::string::npos)
          text.erase(from);
      }
      emit_text(std::move(text));
      count_lines(pos_, at);
      pos_ = at + 2 + (control == '-' || control == '+' ? 1 : 0);
      if (kind == '#')
        comment();
      else
        tag(kind == '{');
    }
    tokens_.push_back({Tok::end, "", line_});
    return std::move(tokens_);
  }

private:
  std::size_t next_tag(std::size_t from) const {
    for (auto at = src_.find('{', from); at != std::string_view::npos; at = src_.find('{', at + 1))
      if (at + 1 < src_.size() && (src_[at + 1] == '{' || src_[at + 1] == '%' || src_[at + 1] == '#'))
        return at;
    return src_.size();
  }

  void emit_text(std::string text) {
    if (!text.empty())
      tokens_.push_back({Tok::text, std::move(text), line_});
  }

  void count_lines(std::size_t from, std::size_t to) {
    for (auto i = from; i < to; ++i)
      line_ += src_[i] == '\n';
  }

  // After a tag's closing: `-` strips what follows, trim_blocks drops one newline after a block.
  void close(std::size_t after, bool strip, bool block) {
    pos_ = after;
    line_starting_ = false;
    if (strip) {
      strip_next_ = true;
    } else if (block && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      ++line_;
      line_starting_ = true;
    }
  }

  void comment() {
    auto end = src_.find("#}", pos_);
    if (end == std::string_view::npos)
      fail(line_, "a comment {# is not closed");
    bool strip = end > pos_ && src_[end - 1] == '-';
    count_lines(pos_, end);
    close(end + 2, strip, true);
  }

  void tag(bool output) {
    int opened_at = line_;
    tokens_.push_back({output ? Tok::open_output : Tok::open_block, "", line_});
    std::size_t first_token = tokens_.size();
    int depth = 0;
    const char* closer = output ? "}}" : "%}";
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_]))
        line_ += src_[pos_++] == '\n';
      if (pos_ >= src_.size())
        fail(opened_at, std::string("a tag opened with ") + (output ? "{{" : "{%") + " is not closed");
      auto rest = src_.substr(pos_);
      if (depth == 0 && (rest.substr(0, 2) == closer || (rest[0] == '-' && rest.substr(1, 2) == closer))) {
        bool strip = rest[0] == '-';
        tokens_.push_back({output ? Tok::close_output : Tok::close_block, "", line_});
        close(pos_ + (strip ? 3 : 2), strip, !output);
        break;
      }
      char c = rest[0];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        std::size_t n = 1;
        while (n < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[n])) || rest[n] == '_'))
          ++n;
        tokens_.push_back({Tok::name, std::string(rest.substr(0, n)), line_});
        pos_ += n;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        std::size_t n = 0;
        bool real = false;
        while (n < rest.size()
               && (std::isdigit(static_cast<unsigned char>(rest[n])) || rest[n] == '_'
                   || (rest[n] == '.' && !real && n + 1 < rest.size()
                       && std::isdigit(static_cast<unsigned char>(rest[n + 1])))
                   || ((rest[n] == 'e' || rest[n] == 'E') && n + 1 < rest.size()))) {
          if (rest[n] == '.' || rest[n] == 'e' || rest[n] == 'E') {
            real = true;
            if ((rest[n] == 'e' || rest[n] == 'E') && (rest[n + 1] == '+' || rest[n + 1] == '-'))
              ++n;
          }
          ++n;
        }
        std::string digits;
        for (char d : rest.substr(0, n))
          if (d != '_')
            digits += d;
        tokens_.push_back({real ? Tok::number : Tok::integer, digits, line_});
        pos_ += n;
      } else if (c == '"' || c == '\'') {
        string_literal(c);
      } else {
        static const char* const kOperators[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "|",
                                                 ".",  ",",  ":",  "(",  ")",  "[",  "]", "{", "}", "<", ">", "="};
        std::string op;
        for (const char* candidate : kOperators)
          if (rest.substr(0, std::char_traits<char>::length(candidate)) == candidate) {
            op = candidate;
            break;
          }
        if (op.empty())
          fail(line_, std::string("unexpected character '") + c + "'");
        if (op == "(" || op == "[" || op == "{")
          ++depth;
        else if ((op == ")" || op == "]" || op == "}") && depth > 0)
          --depth;
        tokens_.push_back({Tok::op, op, line_});
        pos_ += op.size();
      }
    }
    // {% raw %}: the text up to {% endraw %} as it is.
    if (!output && tokens_.size() == first_token + 2 && tokens_[first_token].value == "raw") {
      tokens_.resize(first_token - 1);
      auto end = src_.find("endraw", pos_);
      auto open = end == std::string_view::npos ? end : src_.rfind("{%", end);
      if (open == std::string_view::npos || open < pos_)
        fail(opened_at, "{% raw %} has no {% endraw %}");
      std::string text(src_.substr(pos_, open - pos_));
      if (src_[open + 2] == '-')
        while (!text.empty() && is_space(text.back()))
          text.pop_back();
      emit_text(std::move(text));
      count_lines(pos_, open);
      auto closing = src_.find("%}", end);
      if (closing == std::string_view::npos)
        fail(line_, "{% endraw is not closed");
      close(closing + 2, src_[closing - 1] == '-', true);
    }
  }

  void string_literal(char quote) {
    std::string value;
    std::size_t i = pos_ + 1;
    for (; i < src_.size() && src_[i] != quote; ++i) {
      char c = src_[i];
      if (c == '\n')
        ++line_;
      if (c != '\\' || i + 1 >= src_.size()) {
        value += c;
        continue;
      }
      char e = src_[++i];
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case '\n': break; // a continued line
        case 'u':
        case 'x': {
          std::size_t digits = e == 'u' ? 4 : 2;
          if (i + digits >= src_.size())
            fail(line_, "a \\" + std::string(1, e) + " escape is cut short");
          auto code = std::strtoul(std::string(src_.substr(i + 1, digits)).c_str(), nullptr, 16);
          i += digits;
          append_utf8(value, static_cast<std::uint32_t>(code));
          break;
        }
        default: value += '\\'; value += e; // Python keeps unknown escapes as written
      }
    }
    if (i >= src_.size())
      fail(line_, "a string literal is not closed");
    tokens_.push_back({Tok::string, value, line_});
    pos_ = i + 1;
  }

  static void append_utf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  std::string_view src_;
  std::size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  bool strip_next_ = false;
  std::vector<Token> tokens_;
};

class Parser {
public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse() {
    std::string end;
    auto body = parse_body({}, end);
    if (peek().kind != Tok::end)
      fail(peek().line, "unexpected {% " + end + " %}");
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
          fail(token.line, "the template ends where {% " + ends.front() + " %} was expected");
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
        fail(keyword.line, "unknown filter '" + node->text + "'");
      expect(Tok::close_block, "%}");
      std::string end;
      node->bodies.push_back(parse_body({"end" + k}, end));
      expect(Tok::close_block, "%}");
      return node;
    }
    fail(keyword.line, "unknown statement {% " + k + " %}");
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
      fail(peek().line, "expected 'in' in a for loop");
    node->expr = expression(/*conditional=*/false);
    node->conditions.push_back(accept_name("if") ? expression() : nullptr);
    if (accept_name("recursive"))
      fail(line, "recursive loops are not supported");
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
        fail(parser_.peek().line, "nested more than 200 deep");
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

  ExprPtr comparison() {
    auto left = sum();
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
          return left;
        }
      }
      left = binary(Expr::Kind::binary, op, std::move(left), sum());
    }
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
          fail(node->line, "unknown filter '" + node->name + "'");
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
          fail(name.line, "expected a test's name after 'is'");
        }
        if (!is_test(node->name))
          fail(node->line, "unknown test '" + node->name + "'");
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
          fail(name.line, "expected an attribute after '.'");
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
          fail(line, "a slice has at most three parts");
        continue;
      }
      if (parts[part])
        fail(peek().line, "expected ']'");
      parts[part] = expression();
    }
    if (!sliced) {
      if (!parts[0])
        fail(line, "an empty subscript []");
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
                                                    : Value::number(std::stod(token.value)));
        } catch (const std::out_of_range&) {
          fail(line, "the number " + token.value + " is out of range");
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
    fail(line, "expected a value, found " + describe(token));
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
      fail(token.line, "expected " + what + ", found " + describe(token));
    ++at_;
    return token;
  }

  void expect_op(const char* op) {
    if (!accept_op(op))
      fail(peek().line, std::string("expected '") + op + "', found " + describe(peek()));
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
  return Parser(Lexer(source).run()).parse();
}

} // namespace chorus::models::jinja
