// Hugging Face chat templates run as transformers runs them: the Jinja2 language (statements,
// expressions, filters, tests, Python's string and dict methods) in the environment
// apply_chat_template sets up (trim_blocks, lstrip_blocks, loop controls, tojson, raise_exception,
// strftime_now). What a template writes from the conversation comes back as text pieces, what it
// writes itself as markup, so a tokenizer can keep message text plain text.
#pragma once

#include "models/chat_template.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace chorus::models {

namespace jinja {
struct Node;
}

/// What Jinja2 would refuse: a template it cannot parse ("line 12: ..."), or one that fails while
/// rendering (raise_exception's message, an undefined value used, a type mismatch).
struct JinjaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class JinjaTemplate {
public:
  /// Parses `source`. @throws JinjaError naming the line for syntax Jinja2 refuses or a statement,
  /// filter or test this engine does not know.
  explicit JinjaTemplate(std::string_view source);
  ~JinjaTemplate();
  JinjaTemplate(JinjaTemplate&&) noexcept;
  JinjaTemplate& operator=(JinjaTemplate&&) noexcept;

  /// Renders with the variables of `conversation` (messages, tools, documents: their strings are
  /// the pieces of kind text) and of `settings` (add_generation_prompt, bos_token, eos_token,
  /// enable_thinking...: their strings are the template's own, markup), the latter winning.
  /// Consecutive output of one kind is one piece. @throws JinjaError.
  std::vector<ChatPiece> render(const nlohmann::ordered_json& conversation,
                                const nlohmann::ordered_json& settings) const;

private:
  std::shared_ptr<const std::vector<std::unique_ptr<jinja::Node>>> body_;
};

} // namespace chorus::models
