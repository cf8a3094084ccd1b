// Jinja2's tokens as Hugging Face chat templates are lexed with the settings transformers gives:
// trim_blocks (the newline after a block tag goes), lstrip_blocks (the spaces before one on its line
// go), `-` strips all whitespace on its side, `+` keeps it; a template's last newline goes.
#include "models/jinja.hpp"
#include "models/jinja_ast.hpp"
#include "models/jinja_builtins.hpp"

#include <cctype>
#include <cstdlib>
#include <string>

namespace chorus::models::jinja {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
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

  // After a tag's closing: `-` strips what follows, trim_blocks drops one newline after a block
  // (`+` keeps it).
  void close(std::size_t after, char control, bool block) {
    pos_ = after;
    line_starting_ = false;
    if (control == '-') {
      strip_next_ = true;
    } else if (block && control != '+' && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      ++line_;
      line_starting_ = true;
    }
  }

  void comment() {
    auto end = src_.find("#}", pos_);
    if (end == std::string_view::npos)
      raise_at(line_, "a comment {# is not closed");
    char control = end > pos_ ? src_[end - 1] : '\0';
    count_lines(pos_, end);
    close(end + 2, control, true);
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
        raise_at(opened_at, std::string("a tag opened with ") + (output ? "{{" : "{%") + " is not closed");
      auto rest = src_.substr(pos_);
      bool controlled = (rest[0] == '-' || (rest[0] == '+' && !output)) && rest.substr(1, 2) == closer;
      if (depth == 0 && (rest.substr(0, 2) == closer || controlled)) {
        tokens_.push_back({output ? Tok::close_output : Tok::close_block, "", line_});
        close(pos_ + (controlled ? 3 : 2), controlled ? rest[0] : '\0', !output);
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
          raise_at(line_, std::string("unexpected character '") + c + "'");
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
        raise_at(opened_at, "{% raw %} has no {% endraw %}");
      std::string text(src_.substr(pos_, open - pos_));
      if (strip_next_) { // {% raw -%}
        std::size_t lead = 0;
        while (lead < text.size() && is_space(text[lead]))
          ++lead;
        text.erase(0, lead);
        strip_next_ = false;
      }
      if (src_[open + 2] == '-')
        while (!text.empty() && is_space(text.back()))
          text.pop_back();
      emit_text(std::move(text));
      count_lines(pos_, open);
      auto closing = src_.find("%}", end);
      if (closing == std::string_view::npos)
        raise_at(line_, "{% endraw is not closed");
      close(closing + 2, src_[closing - 1], true);
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
        case 'U':
        case 'u':
        case 'x': {
          std::size_t digits = e == 'U' ? 8 : e == 'u' ? 4 : 2;
          if (i + digits >= src_.size())
            raise_at(line_, "a \\" + std::string(1, e) + " escape is cut short");
          auto code = std::strtoul(std::string(src_.substr(i + 1, digits)).c_str(), nullptr, 16);
          i += digits;
          append_utf8(value, static_cast<std::uint32_t>(code));
          break;
        }
        default: value += '\\'; value += e; // Python keeps unknown escapes as written
      }
    }
    if (i >= src_.size())
      raise_at(line_, "a string literal is not closed");
    tokens_.push_back({Tok::string, value, line_});
    pos_ = i + 1;
  }

  static void append_utf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x110000) {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
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

} // namespace

std::vector<Token> lex_template(std::string_view source) {
  return Lexer(source).run();
}

} // namespace chorus::models::jinja
