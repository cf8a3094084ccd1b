// Llama 3's chat format. The text is Meta's templates spelled out: Llama 3's (headers, trimmed
// contents) and Llama 3.1's, which 3.2 and 3.3 keep (a system turn first, always, with the knowledge
// cutoff and a date, tools in the first user message, JSON calls, ipython turns).
// tests/models/bpe_tokenizer_test.cpp renders conversations with Llama 3.2's own template (Python's
// Jinja2, as transformers runs it) and checks the ids are the same.
#include "models/chat_template.hpp"

#include <array>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string_view>

namespace chorus::models {

namespace {

// The length of the whitespace character Python's str.isspace accepts at the start of `text` (0:
// none): ASCII's, the separators 0x1c-0x1f, and Unicode's spaces and line breaks, in UTF-8.
std::size_t leading_space(std::string_view text) {
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

std::size_t trailing_space(std::string_view text) {
  for (std::size_t length = 1; length <= 3 && length <= text.size(); ++length) {
    auto start = text.size() - length;
    if ((static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
      continue; // a continuation byte: the character starts earlier
    return leading_space(text.substr(start)) == length ? length : 0;
  }
  return 0;
}

constexpr std::string_view kToolsIntroduction =
  "Given the following functions, please respond with a JSON for a function call with its proper arguments that "
  "best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": dictionary of "
  "argument name and its value}.Do not use variables.\n\n";

} // namespace

std::string python_strip(std::string_view text) {
  while (auto length = leading_space(text))
    text.remove_prefix(length);
  while (auto length = trailing_space(text))
    text.remove_suffix(length);
  return std::string(text);
}

std::string today_for_chat_template() {
  // strftime_now("%d %b %Y") as transformers gives it: the local date, English month abbreviations.
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char day[3];
  std::snprintf(day, sizeof day, "%02d", local.tm_mday);
  return std::string(day) + " " + kMonths[static_cast<std::size_t>(local.tm_mon)] + " "
    + std::to_string(1900 + local.tm_year);
}

std::vector<ChatPiece> render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                     const std::vector<Tool>& tools, const std::optional<std::string>& date) {
  if (!date && !tools.empty())
    throw std::invalid_argument("tools: Llama 3's first chat template has no place for them (Llama 3.1's and later "
                                "have)");
  std::vector<ChatPiece> pieces;
  auto special = [&](const char* name) { pieces.push_back({ChatPiece::Kind::special, name}); };
  auto markup = [&](std::string_view text) { pieces.push_back({ChatPiece::Kind::markup, std::string(text)}); };
  auto text = [&](std::string_view value) { pieces.push_back({ChatPiece::Kind::text, std::string(value)}); };
  auto header = [&](std::string_view role) {
    special("<|start_header_id|>");
    markup(role);
    special("<|end_header_id|>");
    markup("\n\n");
  };
  special("<|begin_of_text|>");
  std::size_t first = 0;
  if (date) { // Llama 3.1 and later: the system turn, whether or not the conversation has one
    header("system");
    if (!tools.empty())
      markup("Environment: ipython\n");
    markup("Cutting Knowledge Date: December 2023\nToday Date: " + *date + "\n\n");
    if (!messages.empty() && messages.front().role == "system") {
      text(python_strip(messages.front().content));
      first = 1;
    }
    special("<|eot_id|>");
  }
  if (!tools.empty()) { // the template's default: the tools open the first message after the system's
    if (first == messages.size())
      throw std::invalid_argument("tools: Llama 3.1's template writes them into the first user message, and the "
                                  "conversation has none");
    header("user");
    markup(kToolsIntroduction);
    for (const auto& tool : tools) {
      text(tool_json(tool).dump(4, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
      markup("\n\n");
    }
    text(python_strip(messages[first].content));
    special("<|eot_id|>");
    ++first;
  }
  for (std::size_t i = first; i < messages.size(); ++i) {
    const auto& message = messages[i];
    bool tool_result = message.role == "tool" || message.role == "ipython";
    if (!date && (tool_result || !message.tool_calls.empty()))
      throw std::invalid_argument("message " + std::to_string(i)
                                  + ": Llama 3's first chat template has no place for tool calls or tool messages "
                                    "(Llama 3.1's and later have)");
    if (tool_result) { // the template writes a result as JSON (a string is iterable to Jinja: quoted)
      header("ipython");
      text(python_json(message.content));
    } else if (!message.tool_calls.empty()) {
      if (message.tool_calls.size() != 1)
        throw std::invalid_argument("message " + std::to_string(i)
                                    + ": Llama 3.1's template takes one tool call a "
                                      "turn, and this one has "
                                    + std::to_string(message.tool_calls.size()));
      const auto& call = message.tool_calls.front();
      auto arguments = nlohmann::ordered_json::parse(call.arguments, nullptr, /*allow_exceptions=*/false);
      if (arguments.is_discarded() || !arguments.is_object())
        throw std::invalid_argument("message " + std::to_string(i) + ": the call of '" + call.name
                                    + "': arguments: expected a JSON object's text");
      header("assistant");
      markup("{\"name\": \"");
      text(call.name);
      markup("\", \"parameters\": ");
      text(python_json(arguments));
      markup("}");
    } else {
      header(message.role);
      text(python_strip(message.content));
    }
    special("<|eot_id|>");
  }
  if (add_generation_prompt)
    header("assistant");
  return pieces;
}

} // namespace chorus::models
