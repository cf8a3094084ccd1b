// Llama 3's first chat format (headers, trimmed contents), and Python's idea of white space, which
// the templates' `trim` and `strip()` follow. tests/models/bpe_tokenizer_test.cpp renders
// conversations with Llama 3's own template (Python's Jinja2, as transformers runs it) and checks
// the ids are the same.
#include "models/chat_template.hpp"

#include <array>
#include <stdexcept>
#include <string_view>

namespace chorus::models {

std::size_t python_leading_space(std::string_view text) {
  if (text.empty())
    return 0;
  auto c = static_cast<unsigned char>(text[0]);
  if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f))
    return 1;
  static constexpr std::array<std::string_view, 18> kUnicode = {
    "\u0085", "\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005",
    "\u2006", "\u2007", "\u2008", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f"};
  for (auto space : kUnicode)
    if (text.substr(0, space.size()) == space)
      return space.size();
  return text.substr(0, 3) == "\u3000" ? 3 : 0;
}

std::size_t python_trailing_space(std::string_view text) {
  for (std::size_t length = 1; length <= 3 && length <= text.size(); ++length) {
    auto start = text.size() - length;
    if ((static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
      continue; // a continuation byte: the character starts earlier
    return python_leading_space(text.substr(start)) == length ? length : 0;
  }
  return 0;
}

std::string python_strip(std::string_view text) {
  while (auto length = python_leading_space(text))
    text.remove_prefix(length);
  while (auto length = python_trailing_space(text))
    text.remove_suffix(length);
  return std::string(text);
}

std::vector<ChatPiece> render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                     const std::vector<Tool>& tools) {
  if (!tools.empty())
    throw std::invalid_argument("tools: Llama 3's first chat template has no place for them (Llama 3.1's and later "
                                "have)");
  std::vector<ChatPiece> pieces;
  auto special = [&](const char* name) { pieces.push_back({ChatPiece::Kind::special, name}); };
  auto markup = [&](std::string_view text) { pieces.push_back({ChatPiece::Kind::markup, std::string(text)}); };
  auto header = [&](std::string_view role) {
    special("<|start_header_id|>");
    markup(role);
    special("<|end_header_id|>");
    markup("\n\n");
  };
  special("<|begin_of_text|>");
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& message = messages[i];
    if (message.role == "tool" || message.role == "ipython" || !message.tool_calls.empty())
      throw std::invalid_argument("message " + std::to_string(i)
                                  + ": Llama 3's first chat template has no place for tool calls or tool messages "
                                    "(Llama 3.1's and later have)");
    header(message.role);
    pieces.push_back({ChatPiece::Kind::text, python_strip(message.content)});
    special("<|eot_id|>");
  }
  if (add_generation_prompt)
    header("assistant");
  return pieces;
}

} // namespace chorus::models
