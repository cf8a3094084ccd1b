// Reading the comments above config fields (runtime/config_docs.hpp): a small lexer, then the struct
// bodies of the types CHORUS_CONFIG names, split into member declarations.
#include "runtime/config_docs.hpp"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <set>

namespace chorus::config_docs {

namespace {

enum class Kind { identifier, punctuation, comment, literal };

struct Token {
  Kind kind;
  std::string text; // an identifier, one punctuation character, or a comment's cleaned text
  int line;
  bool own_line = false; // a comment with only white space before it on its line
  int last_line = 0;     // a block comment's last line (0: `line`)
};

bool is_identifier_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}

bool is_identifier_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

std::string trim(std::string_view text) {
  auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos)
    return {};
  auto end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

// "// text", "/// text", "///< text" and "//! text" -> "text".
std::string line_comment_text(std::string_view comment) {
  std::size_t start = 0;
  while (start < comment.size() && comment[start] == '/')
    ++start;
  if (start < comment.size() && (comment[start] == '<' || comment[start] == '!'))
    ++start;
  return trim(comment.substr(start));
}

// "/* a\n * b */" -> "a b".
std::string block_comment_text(std::string_view comment) {
  auto inner = comment.substr(2, comment.size() >= 4 ? comment.size() - 4 : 0);
  if (!inner.empty() && (inner.front() == '*' || inner.front() == '!' || inner.front() == '<'))
    inner.remove_prefix(1);
  std::string text;
  std::size_t start = 0;
  while (start <= inner.size()) {
    auto end = inner.find('\n', start);
    auto line = trim(inner.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (!line.empty() && line.front() == '*')
      line = trim(std::string_view(line).substr(1));
    if (!line.empty())
      text += (text.empty() ? "" : " ") + line;
    if (end == std::string_view::npos)
      break;
    start = end + 1;
  }
  return text;
}

class Lexer {
public:
  explicit Lexer(std::string_view source) : source_(source) {}

  std::vector<Token> tokens() {
    std::vector<Token> result;
    while (position_ < source_.size()) {
      char c = source_[position_];
      if (c == '\n') {
        ++line_;
        ++position_;
        line_has_code_ = false;
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        ++position_;
      } else if (starts_with("//")) {
        auto end = source_.find('\n', position_);
        end = end == std::string_view::npos ? source_.size() : end;
        result.push_back(
          {Kind::comment, line_comment_text(source_.substr(position_, end - position_)), line_, !line_has_code_});
        position_ = end;
      } else if (starts_with("/*")) {
        auto end = source_.find("*/", position_ + 2);
        end = end == std::string_view::npos ? source_.size() : end + 2;
        auto comment = source_.substr(position_, end - position_);
        auto first_line = line_;
        line_ += static_cast<int>(std::count(comment.begin(), comment.end(), '\n'));
        result.push_back({Kind::comment, block_comment_text(comment), first_line, !line_has_code_, line_});
        position_ = end;
      } else if (c == '#' && !line_has_code_) {
        skip_directive();
      } else if (is_raw_string_start()) {
        skip_raw_string();
        push_literal(result);
      } else if (c == '"' || c == '\'') {
        skip_quoted(c);
        push_literal(result);
      } else if (is_identifier_start(c)) {
        auto begin = position_;
        while (position_ < source_.size() && is_identifier_char(source_[position_]))
          ++position_;
        result.push_back({Kind::identifier, std::string(source_.substr(begin, position_ - begin)), line_});
        line_has_code_ = true;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        // A number, with its digit separators (1'000) and suffixes.
        while (position_ < source_.size()
               && (is_identifier_char(source_[position_]) || source_[position_] == '.' || source_[position_] == '\''))
          ++position_;
        push_literal(result);
      } else {
        result.push_back({Kind::punctuation, std::string(1, c), line_});
        line_has_code_ = true;
        ++position_;
      }
    }
    return result;
  }

private:
  bool starts_with(std::string_view text) const {
    return source_.substr(position_, text.size()) == text;
  }

  // R"delimiter( ... )delimiter", with an optional encoding prefix (u8R, LR, ...).
  bool is_raw_string_start() const {
    auto at = position_;
    while (at < source_.size() && at - position_ < 2
           && (source_[at] == 'u' || source_[at] == '8' || source_[at] == 'L' || source_[at] == 'U'))
      ++at;
    return source_.substr(at, 2) == "R\"";
  }

  void skip_raw_string() {
    auto quote = source_.find('"', position_);
    auto open = source_.find('(', quote);
    if (open == std::string_view::npos) {
      position_ = source_.size();
      return;
    }
    std::string closing = ")" + std::string(source_.substr(quote + 1, open - quote - 1)) + "\"";
    auto end = source_.find(closing, open);
    end = end == std::string_view::npos ? source_.size() : end + closing.size();
    count_lines(position_, end);
    position_ = end;
  }

  void skip_quoted(char quote) {
    ++position_;
    while (position_ < source_.size() && source_[position_] != quote && source_[position_] != '\n')
      position_ += source_[position_] == '\\' ? 2 : 1;
    position_ = std::min(position_ + 1, source_.size());
  }

  // A preprocessor line, with its backslash continuations.
  void skip_directive() {
    while (position_ < source_.size() && source_[position_] != '\n') {
      if (source_[position_] == '\\' && position_ + 1 < source_.size() && source_[position_ + 1] == '\n') {
        ++line_;
        ++position_;
      }
      ++position_;
    }
  }

  void push_literal(std::vector<Token>& tokens) {
    tokens.push_back({Kind::literal, {}, line_});
    line_has_code_ = true;
  }

  void count_lines(std::size_t begin, std::size_t end) {
    line_ += static_cast<int>(std::count(source_.begin() + static_cast<std::ptrdiff_t>(begin),
                                         source_.begin() + static_cast<std::ptrdiff_t>(end), '\n'));
  }

  std::string_view source_;
  std::size_t position_ = 0;
  int line_ = 1;
  bool line_has_code_ = false;
};

bool is(const Token& token, std::string_view text) {
  return token.kind != Kind::comment && token.kind != Kind::literal && token.text == text;
}

// The type names given to CHORUS_CONFIG(Type, ...).
std::vector<std::string> config_types(const std::vector<Token>& tokens) {
  std::vector<std::string> types;
  for (std::size_t i = 0; i + 2 < tokens.size(); ++i)
    if (is(tokens[i], "CHORUS_CONFIG") && is(tokens[i + 1], "(") && tokens[i + 2].kind == Kind::identifier
        && std::find(types.begin(), types.end(), tokens[i + 2].text) == types.end())
      types.push_back(tokens[i + 2].text);
  return types;
}

// The index of the `{` that opens `struct type {` (or `class type {`); tokens.size() if there is none.
std::size_t struct_body(const std::vector<Token>& tokens, const std::string& type) {
  for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (!(is(tokens[i], "struct") || is(tokens[i], "class")) || !is(tokens[i + 1], type))
      continue;
    for (std::size_t j = i + 2; j < tokens.size(); ++j) {
      if (is(tokens[j], ";"))
        break; // a declaration, not the definition
      if (is(tokens[j], "{"))
        return j;
    }
  }
  return tokens.size();
}

// The names a member declaration declares (`int a = 1, b = 2` -> a, b); none for functions, types,
// static members and the like, which are not config fields.
std::vector<std::string> declared_fields(const std::vector<const Token*>& declaration) {
  static const std::set<std::string, std::less<>> kNotFields{
    "using",    "typedef",   "static",        "friend",  "struct",   "class",    "enum",    "union",
    "template", "constexpr", "static_assert", "virtual", "explicit", "operator", "requires"};
  std::vector<std::string> names;
  if (declaration.empty() || kNotFields.contains(declaration.front()->text))
    return names;
  int depth = 0;  // inside (), [] or {}
  int angles = 0; // inside <> before the initialiser
  bool in_initialiser = false;
  std::string last_identifier;
  auto finish_declarator = [&] {
    if (!last_identifier.empty())
      names.push_back(last_identifier);
    last_identifier.clear();
    in_initialiser = false;
  };
  for (const Token* token : declaration) {
    const auto& text = token->text;
    if (token->kind == Kind::punctuation) {
      if (!in_initialiser && depth == 0 && text == "(" && angles == 0)
        return {}; // a function or constructor
      if (text == "(" || text == "[" || text == "{")
        ++depth;
      else if (text == ")" || text == "]" || text == "}")
        --depth;
      else if (!in_initialiser && depth == 0 && text == "<")
        ++angles;
      else if (!in_initialiser && depth == 0 && text == ">")
        --angles;
      if (depth == 0 && angles == 0 && text == ",")
        finish_declarator();
      else if ((depth == 0 && text == "=") || (depth == 1 && text == "{" && !in_initialiser))
        in_initialiser = true;
    } else if (token->kind == Kind::identifier && depth == 0 && angles == 0 && !in_initialiser) {
      last_identifier = text;
    }
  }
  finish_declarator();
  return names;
}

// The comment of a declaration: the block of own-line comments right above its first token, or else
// a comment after its `;` on the same line.
std::string comment_of(const std::vector<Token>& tokens, std::size_t first, std::size_t semicolon) {
  std::vector<std::string> above;
  int line = tokens[first].line;
  for (std::size_t i = first; i-- > 0;) {
    const auto& token = tokens[i];
    if (token.kind != Kind::comment || !token.own_line || std::max(token.line, token.last_line) != line - 1)
      break;
    above.push_back(token.text);
    line = token.line;
  }
  std::string text;
  for (auto it = above.rbegin(); it != above.rend(); ++it)
    if (!it->empty())
      text += (text.empty() ? "" : " ") + *it;
  if (text.empty() && semicolon + 1 < tokens.size() && tokens[semicolon + 1].kind == Kind::comment
      && tokens[semicolon + 1].line == tokens[semicolon].line)
    text = tokens[semicolon + 1].text;
  return text;
}

// The next token after `i` that is not a comment; tokens.size() if none.
std::size_t next_code(const std::vector<Token>& tokens, std::size_t i) {
  while (++i < tokens.size() && tokens[i].kind == Kind::comment) {
  }
  return i;
}

ConfigDoc document(const std::vector<Token>& tokens, const std::string& type) {
  ConfigDoc doc{type, {}};
  auto open = struct_body(tokens, type);
  std::vector<const Token*> declaration;
  std::size_t first = 0;
  auto finish = [&](std::size_t end) {
    for (const auto& name : declared_fields(declaration)) {
      auto text = comment_of(tokens, first, end);
      if (!text.empty())
        doc.fields.push_back({name, text});
    }
    declaration.clear();
  };
  int depth = 1; // inside the struct's braces; more inside (), {} of its members
  for (std::size_t i = next_code(tokens, open); i < tokens.size() && depth > 0; i = next_code(tokens, i)) {
    const auto& token = tokens[i];
    if (is(token, "{") || is(token, "("))
      ++depth;
    else if (is(token, "}") || is(token, ")"))
      --depth;
    if (depth == 0)
      break; // the struct's closing brace
    if (depth == 1 && is(token, ";")) {
      finish(i);
      continue;
    }
    // `public:` and the like start no declaration.
    if (depth == 1 && declaration.size() == 1 && is(token, ":")
        && (is(*declaration.front(), "public") || is(*declaration.front(), "private")
            || is(*declaration.front(), "protected"))) {
      declaration.clear();
      continue;
    }
    if (declaration.empty())
      first = i;
    declaration.push_back(&token);
    // A brace that closes a member function's body ends its declaration (no `;` follows); one that
    // closes an initialiser (`Dataset<Prompt> data{"a.jsonl"};`) does not.
    if (depth == 1 && is(token, "}")) {
      auto next = next_code(tokens, i);
      if (next >= tokens.size() || !(is(tokens[next], ";") || is(tokens[next], ",")))
        finish(i);
    }
  }
  return doc;
}

// A C++ string literal of `text`.
std::string quoted(std::string_view text) {
  std::string result = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      result += '\\';
    if (c == '\n') {
      result += "\\n";
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20)
      continue;
    result += c;
  }
  return result + "\"";
}

} // namespace

std::vector<ConfigDoc> extract(std::string_view source) {
  auto tokens = Lexer(source).tokens();
  std::vector<ConfigDoc> docs;
  for (const auto& type : config_types(tokens))
    if (auto doc = document(tokens, type); !doc.fields.empty())
      docs.push_back(std::move(doc));
  return docs;
}

std::string generate_source(const std::vector<ConfigDoc>& docs, std::string_view origin) {
  std::string text = "// Generated by chorus-config-docs from " + std::string(origin)
    + ": the comments above\n// the config fields, which --schema gives as their descriptions. "
      "Do not edit.\n#include <chorus/config.hpp>\n\nnamespace {\n";
  for (std::size_t i = 0; i < docs.size(); ++i) {
    text += "const chorus::detail::ConfigDocs config_docs_" + std::to_string(i) + "{" + quoted(docs[i].type) + ", {\n";
    for (const auto& field : docs[i].fields)
      text += "  {" + quoted(field.field) + ", " + quoted(field.text) + "},\n";
    text += "}};\n";
  }
  return text + "} // namespace\n";
}

} // namespace chorus::config_docs
