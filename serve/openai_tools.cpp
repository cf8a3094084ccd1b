#include "serve/openai_tools.hpp"

#include "models/chat_template.hpp"
#include "serve/openai_protocol.hpp"

namespace chorus::serve {

namespace {

[[noreturn]] void invalid(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param);
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64)
    return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

} // namespace

std::vector<Tool> parse_tools(const nlohmann::ordered_json& tools) {
  if (!tools.is_array())
    invalid("tools", "'tools' must be an array of function tools.");
  std::vector<Tool> result;
  for (std::size_t i = 0; i < tools.size(); ++i) {
    auto where = "tools[" + std::to_string(i) + "]";
    const auto& tool = tools[i];
    if (!tool.is_object() || tool.value("type", "") != "function" || !tool.contains("function")
        || !tool["function"].is_object())
      invalid(where, "'" + where + "' must be {\"type\": \"function\", \"function\": {...}}.");
    for (const auto& [key, value] : tool.items())
      if (key != "type" && key != "function")
        invalid(where + "." + key, "Unrecognized argument of '" + where + "': " + key);
    const auto& function = tool["function"];
    Tool parsed;
    for (const auto& [key, value] : function.items()) {
      auto field = where + ".function." + key;
      if (key == "name" && value.is_string())
        parsed.name = value.get<std::string>();
      else if (key == "description" && value.is_string())
        parsed.description = value.get<std::string>();
      else if (key == "parameters" && value.is_object())
        parsed.parameters = value.dump();
      else if (key == "strict" && (value.is_boolean() || value.is_null()))
        continue; // arguments follow the schema whenever guided decoding asks for a call
      else if (key == "name" || key == "description" || key == "parameters" || key == "strict")
        invalid(field, "'" + field + "' has the wrong type.");
      else
        invalid(field, "Unrecognized argument of '" + where + ".function': " + key);
    }
    if (!valid_name(parsed.name))
      invalid(where + ".function.name",
              "'" + where + ".function.name' must be 1 to 64 letters, digits, underscores or dashes.");
    for (const auto& earlier : result)
      if (earlier.name == parsed.name)
        invalid(where + ".function.name", "Two tools are named '" + parsed.name + "'.");
    result.push_back(std::move(parsed));
  }
  return result;
}

std::string parse_tool_choice(const nlohmann::json* choice, const std::vector<Tool>& tools) {
  std::string result = tools.empty() ? "none" : "";
  if (choice && choice->is_string()) {
    auto value = choice->get<std::string>();
    if (value != "none" && value != "auto" && value != "required")
      invalid("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or a function, got '" + value + "'.");
    result = value == "auto" ? "" : value;
  } else if (choice) {
    if (!choice->is_object() || choice->value("type", "") != "function" || !choice->contains("function")
        || !(*choice)["function"].is_object() || !(*choice)["function"].contains("name")
        || !(*choice)["function"]["name"].is_string())
      invalid("tool_choice",
              "'tool_choice' must be 'none', 'auto', 'required' or "
              "{\"type\": \"function\", \"function\": {\"name\": ...}}.");
    result = (*choice)["function"]["name"].get<std::string>();
  }
  if (tools.empty() && result != "none")
    invalid("tool_choice", "'tool_choice' needs 'tools'.");
  if (!result.empty() && result != "none") {
    try {
      models::tool_call_grammar(tools, result);
    } catch (const std::exception& error) {
      invalid(result == "required" ? "tools" : "tool_choice",
              std::string("The tool call cannot be guided: ") + error.what());
    }
  }
  return result;
}

std::vector<ToolCall> parse_message_tool_calls(const nlohmann::json& calls, const std::string& where) {
  auto field = where + ".tool_calls";
  if (!calls.is_array())
    invalid(field, "'" + field + "' must be an array.");
  std::vector<ToolCall> result;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    auto at = field + "[" + std::to_string(i) + "]";
    const auto& call = calls[i];
    if (!call.is_object() || call.value("type", "function") != "function" || !call.contains("function")
        || !call["function"].is_object() || !call["function"].contains("name") || !call["function"]["name"].is_string()
        || !call["function"].contains("arguments") || !call["function"]["arguments"].is_string())
      invalid(at,
              "'" + at
                + "' must be {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}} "
                  "with string name and arguments.");
    result.push_back({call["function"]["name"].get<std::string>(), call["function"]["arguments"].get<std::string>(),
                      call.contains("id") && call["id"].is_string() ? call["id"].get<std::string>() : ""});
  }
  return result;
}

nlohmann::json tool_calls_value(const std::vector<ToolCall>& calls, bool with_index) {
  auto value = nlohmann::json::array();
  for (std::size_t i = 0; i < calls.size(); ++i) {
    nlohmann::json call = {{"id", calls[i].id},
                           {"type", "function"},
                           {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
    if (with_index)
      call["index"] = i;
    value.push_back(std::move(call));
  }
  return value;
}

} // namespace chorus::serve
