// ChatML with tools, and the calls a turn makes read back and guided in either format (Qwen's
// <tool_call> blocks, Llama 3.1's JSON object). The ChatML text is Qwen3's chat template
// (tokenizer_config.json of Qwen3) spelled out; tests/models/bpe_tokenizer_test.cpp renders
// conversations with the template itself (Python's Jinja2, as transformers runs it) and checks the
// ids are the same.
#include "models/chat_template.hpp"

#include "models/json_grammar.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace chorus::models {

namespace {

constexpr std::string_view kToolsHeader =
  "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with "
  "function signatures within <tools></tools> XML tags:\n<tools>";
constexpr std::string_view kToolsFooter =
  "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
  "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
  "<args-json-object>}\n</tool_call>";

// A tool's parameters schema as JSON (`Json` for the grammar, `ordered_json` to keep the key order
// in the prompt); any object when it has none.
template <class JsonType>
JsonType parameters_of(const Tool& tool) {
  if (tool.parameters.empty())
    return JsonType{{"type", "object"}};
  auto parameters = JsonType::parse(tool.parameters, nullptr, /*allow_exceptions=*/false);
  if (parameters.is_discarded() || !parameters.is_object())
    throw std::invalid_argument("tool '" + tool.name + "': parameters: expected a JSON Schema object's text");
  return parameters;
}

void write_python_json(const nlohmann::ordered_json& value, std::string& out) {
  if (value.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, item] : value.items()) {
      if (!first)
        out += ", ";
      first = false;
      out += nlohmann::ordered_json(key).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
      out += ": ";
      write_python_json(item, out);
    }
    out += '}';
  } else if (value.is_array()) {
    out += '[';
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (i > 0)
        out += ", ";
      write_python_json(value[i], out);
    }
    out += ']';
  } else {
    out += value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
}

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

// One past the closing brace of the JSON object opening at text[begin] (strings and their escapes
// skipped), npos if it does not close: where one of several concatenated objects ends.
std::size_t json_object_end(std::string_view text, std::size_t begin) {
  int depth = 0;
  bool in_string = false;
  for (auto i = begin; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}
// Python's str.lstrip('\n') and str.rstrip('\n'), as the template writes them.
std::string_view lstrip_newlines(std::string_view text) {
  while (!text.empty() && text.front() == '\n')
    text.remove_prefix(1);
  return text;
}
std::string_view rstrip_newlines(std::string_view text) {
  while (!text.empty() && text.back() == '\n')
    text.remove_suffix(1);
  return text;
}

} // namespace

// A tool as OpenAI's API and Hugging Face's templates hold it: {"type": "function", "function": {...}}.
nlohmann::ordered_json tool_json(const Tool& tool) {
  nlohmann::ordered_json function{{"name", tool.name}};
  if (!tool.description.empty())
    function["description"] = tool.description;
  if (!tool.parameters.empty())
    function["parameters"] = parameters_of<nlohmann::ordered_json>(tool);
  return {{"type", "function"}, {"function", std::move(function)}};
}

nlohmann::ordered_json openai_conversation(const std::vector<ChatMessage>& messages, const std::vector<Tool>& tools) {
  using json = nlohmann::ordered_json;
  json list = json::array();
  const ChatMessage* calling = nullptr; // the assistant turn the tool messages answer
  std::size_t answered = 0;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& message = messages[i];
    json m{{"role", message.role}, {"content", message.content}};
    if (!message.reasoning.empty())
      m["reasoning_content"] = message.reasoning;
    if (!message.tool_calls.empty()) {
      json calls = json::array();
      for (std::size_t c = 0; c < message.tool_calls.size(); ++c) {
        const auto& call = message.tool_calls[c];
        auto arguments = json::parse(call.arguments, nullptr, /*allow_exceptions=*/false);
        if (arguments.is_discarded() || !arguments.is_object())
          throw std::invalid_argument("message " + std::to_string(i) + ", call " + std::to_string(c) + " ('" + call.name
                                      + "'): arguments: expected a JSON object's text");
        json entry = json::object();
        if (!call.id.empty())
          entry["id"] = call.id;
        entry["type"] = "function";
        entry["function"] = json{{"name", call.name}, {"arguments", std::move(arguments)}};
        calls.push_back(std::move(entry));
      }
      m["tool_calls"] = std::move(calls);
    }
    if (message.role == "assistant") {
      calling = &message;
      answered = 0;
    } else if (message.role == "tool") {
      if (calling && answered < calling->tool_calls.size()) {
        const auto& call = calling->tool_calls[answered];
        if (!call.id.empty())
          m["tool_call_id"] = call.id;
        m["name"] = call.name;
      }
      ++answered;
    } else {
      calling = nullptr;
    }
    list.push_back(std::move(m));
  }
  json offered = json::array();
  for (const auto& tool : tools)
    offered.push_back(tool_json(tool));
  return json{{"messages", std::move(list)}, {"tools", tools.empty() ? json() : std::move(offered)}};
}

std::string python_json(const nlohmann::ordered_json& value) {
  std::string out;
  write_python_json(value, out);
  return out;
}

std::vector<ChatPiece> render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                     const std::vector<Tool>& tools) {
  std::vector<ChatPiece> pieces;
  auto special = [&](const char* name) { pieces.push_back({ChatPiece::Kind::special, name}); };
  auto markup = [&](std::string_view text) { pieces.push_back({ChatPiece::Kind::markup, std::string(text)}); };
  auto text = [&](std::string_view value) { pieces.push_back({ChatPiece::Kind::text, std::string(value)}); };
  bool system_first = !messages.empty() && messages.front().role == "system";
  if (!tools.empty()) {
    special("<|im_start|>");
    markup("system\n");
    if (system_first) {
      text(messages.front().content);
      markup("\n\n");
    }
    markup(kToolsHeader);
    for (const auto& tool : tools) {
      markup("\n");
      text(python_json(tool_json(tool)));
    }
    markup(kToolsFooter);
    special("<|im_end|>");
    markup("\n");
  }
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& message = messages[i];
    if (message.role == "system" && i == 0 && !tools.empty())
      continue; // written with the tools above
    if (message.role == "user" || message.role == "system") {
      special("<|im_start|>");
      markup(message.role + "\n");
      text(message.content);
      special("<|im_end|>");
      markup("\n");
    } else if (message.role == "assistant") {
      special("<|im_start|>");
      markup("assistant\n");
      const auto& content = message.content;
      text(content);
      for (std::size_t c = 0; c < message.tool_calls.size(); ++c) {
        const auto& call = message.tool_calls[c];
        if (c > 0 || !content.empty())
          markup("\n");
        markup("<tool_call>\n{\"name\": \"");
        text(call.name);
        markup("\", \"arguments\": ");
        text(call.arguments);
        markup("}\n</tool_call>");
      }
      special("<|im_end|>");
      markup("\n");
    } else if (message.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") {
        special("<|im_start|>");
        markup("user");
      }
      markup("\n<tool_response>\n");
      text(message.content);
      markup("\n</tool_response>");
      if (i + 1 == messages.size() || messages[i + 1].role != "tool") {
        special("<|im_end|>");
        markup("\n");
      }
    } else {
      throw std::invalid_argument("message " + std::to_string(i) + ": role '" + message.role
                                  + "' is not system, user, assistant or tool");
    }
  }
  if (add_generation_prompt) {
    special("<|im_start|>");
    markup("assistant\n");
  }
  return pieces;
}

Grammar tool_call_grammar(const std::vector<Tool>& tools, const std::string& tool_choice, bool parallel,
                          ToolCallFormat format) {
  if (tools.empty())
    throw std::invalid_argument("tool_choice '" + tool_choice + "': the request has no tools");
  Grammar grammar;
  auto call = grammar.add_rule();
  bool named = tool_choice != "required", found = false;
  for (const auto& tool : tools) {
    if (named && tool.name != tool_choice)
      continue;
    found = true;
    auto parameters = parameters_of<Json>(tool);
    Grammar::RuleId arguments = 0;
    try {
      arguments = add_json_schema(grammar, parameters);
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument("tool '" + tool.name + "': parameters: " + error.what());
    }
    // A call as the format writes it; Mistral's calls are the items of one list (below).
    auto name = "{\"name\": " + python_json(tool.name);
    auto head = format == ToolCallFormat::json ? grammar.add_literals({name + ", \"parameters\": "})
      : format == ToolCallFormat::mistral      ? grammar.add_literals({name + ", \"arguments\": "})
                                               : grammar.add_literals({"<tool_call>\n" + name + ", \"arguments\": "});
    auto tail = grammar.add_literals({format == ToolCallFormat::tagged ? "}\n</tool_call>" : "}"});
    grammar.add_alternative(call, {Grammar::rule(head), Grammar::rule(arguments), Grammar::rule(tail)});
  }
  if (!found)
    throw std::invalid_argument("tool_choice: '" + tool_choice + "' is not one of the request's tools");
  auto root = call;
  bool mistral = format == ToolCallFormat::mistral;
  if (!named && parallel && format != ToolCallFormat::json) { // calls ::= call | call separator calls
    root = grammar.add_rule();
    auto separator = grammar.add_literals({mistral ? ", " : "\n"});
    grammar.add_alternative(root, {Grammar::rule(call)});
    grammar.add_alternative(root, {Grammar::rule(call), Grammar::rule(separator), Grammar::rule(root)});
  }
  if (mistral) { // [TOOL_CALLS][call, call, ...]
    auto list = grammar.add_rule();
    grammar.add_alternative(list,
                            {Grammar::rule(grammar.add_literals({std::string(kMistralCalls) + "["})),
                             Grammar::rule(root), Grammar::rule(grammar.add_literals({"]"}))});
    root = list;
  }
  grammar.finish(root);
  return grammar;
}

} // namespace chorus::models

namespace chorus {

namespace {

// Llama 3.1's calls: the turn is one JSON object, or several separated by ";", each with a "name"
// and its "parameters" ("arguments" as some fine-tunes write it); anything else is no call.
std::optional<std::vector<ToolCall>> json_calls(std::string_view text) {
  auto skip_space = [&](std::size_t at) {
    while (at < text.size() && models::is_space(text[at]))
      ++at;
    return at;
  };
  auto at = skip_space(0);
  if (text.substr(at, models::kPythonTag.size()) == models::kPythonTag)
    at = skip_space(at + models::kPythonTag.size());
  if (at == text.size() || text[at] != '{')
    return std::nullopt;
  std::vector<ToolCall> calls;
  while (at < text.size()) {
    auto end = models::json_object_end(text, at);
    if (end == std::string_view::npos)
      return std::nullopt;
    auto call = nlohmann::ordered_json::parse(text.substr(at, end - at), nullptr, /*allow_exceptions=*/false);
    if (call.is_discarded() || !call.contains("name") || !call["name"].is_string())
      return std::nullopt;
    auto arguments =
      call.contains("parameters") ? call["parameters"] : call.value("arguments", nlohmann::ordered_json());
    if (!arguments.is_object())
      return std::nullopt;
    calls.push_back({call["name"].get<std::string>(), models::python_json(arguments), {}});
    at = skip_space(end);
    if (at < text.size() && text[at] == ';')
      at = skip_space(at + 1);
  }
  return calls;
}

// A call id of Mistral's shape (nine letters and digits; its templates refuse others) for a call
// written without one, drawn from the call and its place so that a completion reads the same twice.
std::string mistral_call_id(const ToolCall& call, std::size_t index) {
  std::uint64_t hash = 14695981039346656037ull; // FNV-1a over the name, the arguments and the place
  auto mix = [&](std::uint64_t value) { hash = (hash ^ value) * 1099511628211ull; };
  for (auto part : {std::string_view(call.name), std::string_view(call.arguments)})
    for (unsigned char c : part)
      mix(c);
  mix(index);
  constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id;
  for (int i = 0; i < 9; ++i, hash /= kAlphabet.size())
    id += kAlphabet[hash % kAlphabet.size()];
  return id;
}

// One of Mistral's calls as a JSON object {"name", "arguments", "id"?}; nullopt if it is not one.
std::optional<ToolCall> mistral_call(const nlohmann::ordered_json& call) {
  if (!call.is_object() || !call.contains("name") || !call["name"].is_string() || !call.contains("arguments")
      || !call["arguments"].is_object())
    return std::nullopt;
  ToolCall read{call["name"].get<std::string>(), models::python_json(call["arguments"]), {}};
  if (call.contains("id") && call["id"].is_string())
    read.id = call["id"].get<std::string>();
  return read;
}

// Mistral's calls after [TOOL_CALLS]: a JSON list (Nemo, Small 3), or name[ARGS]{...} with an
// optional [CALL_ID]id before [ARGS], one per [TOOL_CALLS] (tokenizer v11 on).
std::optional<std::vector<ToolCall>> mistral_calls(std::string_view calls) {
  auto trim = [](std::string_view text) {
    while (!text.empty() && models::is_space(text.front()))
      text.remove_prefix(1);
    while (!text.empty() && models::is_space(text.back()))
      text.remove_suffix(1);
    return text;
  };
  std::vector<ToolCall> read;
  if (auto list = trim(calls); !list.empty() && list.front() == '[') {
    auto json = nlohmann::ordered_json::parse(list, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_array() || json.empty())
      return std::nullopt;
    for (const auto& entry : json) {
      auto call = mistral_call(entry);
      if (!call)
        return std::nullopt;
      read.push_back(std::move(*call));
    }
    return read;
  }
  for (std::size_t at = 0; at != std::string_view::npos;) {
    auto next = calls.find(models::kMistralCalls, at);
    auto piece = calls.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at);
    at = next == std::string_view::npos ? next : next + models::kMistralCalls.size();
    auto args = piece.find(models::kMistralArgs);
    if (args == std::string_view::npos)
      return std::nullopt;
    auto head = piece.substr(0, args), id = std::string_view();
    if (auto marker = head.find(models::kMistralCallId); marker != std::string_view::npos) {
      id = trim(head.substr(marker + models::kMistralCallId.size()));
      head = head.substr(0, marker);
    }
    auto name = trim(head);
    auto arguments = nlohmann::ordered_json::parse(piece.substr(args + models::kMistralArgs.size()), nullptr,
                                                   /*allow_exceptions=*/false);
    if (name.empty() || arguments.is_discarded() || !arguments.is_object())
      return std::nullopt;
    read.push_back({std::string(name), models::python_json(arguments), std::string(id)});
  }
  return read;
}

ChatMessage tagged_calls(const std::string& text) {
  ChatMessage whole{"assistant", text, {}};
  auto first = text.find(models::kCallOpen);
  if (first == std::string::npos)
    return whole;
  ChatMessage message{"assistant", text.substr(0, first), {}};
  while (!message.content.empty() && models::is_space(message.content.back()))
    message.content.pop_back();
  for (auto open = first; open != std::string::npos;) {
    auto body = open + models::kCallOpen.size();
    auto close = text.find(models::kCallClose, body);
    auto inner = std::string_view(text).substr(body, close == std::string::npos ? std::string::npos : close - body);
    auto call = nlohmann::ordered_json::parse(inner, nullptr, /*allow_exceptions=*/false);
    if (call.is_discarded() || !call.is_object() || !call.contains("name") || !call["name"].is_string()
        || !call.contains("arguments") || !call["arguments"].is_object())
      return whole;
    message.tool_calls.push_back({call["name"].get<std::string>(), models::python_json(call["arguments"]), {}});
    if (close == std::string::npos)
      break;
    open = text.find(models::kCallOpen, close + models::kCallClose.size());
  }
  return message;
}

} // namespace

ChatMessage parse_tool_calls(const std::string& text, ToolCallFormat format) {
  if (format == ToolCallFormat::tagged)
    return tagged_calls(text);
  if (format == ToolCallFormat::mistral) {
    auto first = text.find(models::kMistralCalls);
    auto calls = first == std::string::npos
      ? std::nullopt
      : mistral_calls(std::string_view(text).substr(first + models::kMistralCalls.size()));
    if (!calls)
      return {"assistant", text, {}};
    for (std::size_t i = 0; i < calls->size(); ++i)
      if ((*calls)[i].id.empty())
        (*calls)[i].id = mistral_call_id((*calls)[i], i);
    ChatMessage message{"assistant", text.substr(0, first), std::move(*calls)};
    while (!message.content.empty() && models::is_space(message.content.back()))
      message.content.pop_back();
    return message;
  }
  auto calls = json_calls(text);
  if (!calls)
    return {"assistant", text, {}};
  return {"assistant", "", std::move(*calls)};
}

ChatMessage parse_assistant_turn(const std::string& text, bool reasoning, bool tool_calls, ToolCallFormat format,
                                 bool opened) {
  ChatMessage turn{"assistant", text, {}};
  opened = reasoning && opened;
  if (opened || (reasoning && models::starts_with(text, models::kThinkOpen))) {
    auto inside = std::string_view(text).substr(opened ? 0 : models::kThinkOpen.size());
    auto close = inside.find(models::kThinkClose);
    turn.reasoning = models::rstrip_newlines(models::lstrip_newlines(inside.substr(0, close)));
    turn.content = close == std::string_view::npos
      ? std::string()
      : std::string(models::lstrip_newlines(inside.substr(close + models::kThinkClose.size())));
  }
  if (tool_calls) {
    auto called = parse_tool_calls(turn.content, format);
    turn.content = std::move(called.content);
    turn.tool_calls = std::move(called.tool_calls);
  }
  return turn;
}

} // namespace chorus
