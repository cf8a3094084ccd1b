// chorus-tokenize: the BPE tokenizer and the model's chat template on the command line.
//
//   chorus-tokenize --tokenizer FILE_OR_DIR            < text   prints the ids as a JSON array
//   chorus-tokenize --tokenizer FILE_OR_DIR --decode   < ids    prints the text of a JSON array of ids
//   chorus-tokenize --tokenizer DIR --chat [--text]    < chat   prints the ids (or the text) of a
//                                                               conversation as the model's prompt
//
// No special tokens are added to text; special tokens spelled out in it are recognised, as Hugging
// Face tokenizers do. A chat is OpenAI's shape: {"messages": [...], "tools": [...],
// "add_generation_prompt": true, "enable_thinking": true} (all but messages optional), and is
// rendered as recipes and chorus-serve render it (message text stays text). Exit codes: 0 done, 1
// bad input or tokenizer file, 2 bad command line.
#include <chorus/errors.hpp>

#include "models/bpe_tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <iostream>
#include <iterator>
#include <stdexcept>

namespace {

using json = nlohmann::ordered_json; // the tools' schemas keep their key order

std::string string_at(const json& object, const char* key, const std::string& where) {
  if (!object.contains(key) || object[key].is_null())
    return "";
  if (!object[key].is_string())
    throw chorus::Error("stdin: " + where + "." + key + ": expected a string");
  return object[key].get<std::string>();
}

// The ids of the conversation `input` holds (OpenAI's shapes) as the model's prompt.
std::vector<std::int64_t> chat_ids(const chorus::models::BpeTokenizer& tokenizer, const std::string& input) {
  auto chat = json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (chat.is_discarded() || !chat.is_object() || !chat.contains("messages") || !chat["messages"].is_array())
    throw chorus::Error("stdin: expected a JSON object with a \"messages\" array");
  std::vector<chorus::ChatMessage> messages;
  for (std::size_t i = 0; i < chat["messages"].size(); ++i) {
    const auto& m = chat["messages"][i];
    auto where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object())
      throw chorus::Error("stdin: " + where + ": expected an object");
    chorus::ChatMessage message{string_at(m, "role", where), string_at(m, "content", where), {}};
    message.reasoning = string_at(m, "reasoning_content", where);
    for (const auto& call : m.value("tool_calls", json::array())) {
      const auto& function = call.value("function", json::object());
      auto arguments = function.value("arguments", json::object());
      message.tool_calls.push_back({string_at(function, "name", where + ".tool_calls[].function"),
                                    arguments.is_string() ? arguments.get<std::string>() : arguments.dump(),
                                    string_at(call, "id", where + ".tool_calls[]")});
    }
    messages.push_back(std::move(message));
  }
  std::vector<chorus::Tool> tools;
  for (const auto& tool : chat.value("tools", json::array())) {
    const auto& function = tool.value("function", json::object());
    tools.push_back({string_at(function, "name", "tools[].function"),
                     string_at(function, "description", "tools[].function"),
                     function.contains("parameters") ? function["parameters"].dump() : ""});
  }
  try {
    return tokenizer.apply_chat_template(messages, chat.value("add_generation_prompt", true), tools,
                                         chat.value("enable_thinking", true));
  } catch (const std::invalid_argument& error) {
    throw chorus::Error(error.what());
  }
}

} // namespace

int main(int argc, char** argv) {
  std::string path;
  bool decode = false, chat = false, text = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) {
      path = argv[++i];
    } else if (std::strcmp(argv[i], "--decode") == 0) {
      decode = true;
    } else if (std::strcmp(argv[i], "--chat") == 0) {
      chat = true;
    } else if (std::strcmp(argv[i], "--text") == 0) {
      text = true;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::cout << "Usage: chorus-tokenize --tokenizer FILE_OR_DIR [--decode | --chat [--text]]\n"
                   "Reads UTF-8 text on stdin and prints its ids as a JSON array; with --decode reads a\n"
                   "JSON array of ids and prints the text. No special tokens are added.\n"
                   "With --chat reads {\"messages\": [...], \"tools\": [...], \"add_generation_prompt\": true,\n"
                   "\"enable_thinking\": true} and prints the ids of the prompt the model's chat template\n"
                   "makes of it (with --text, its text).\n";
      return 0;
    } else {
      std::cerr << "chorus-tokenize: unexpected argument '" << argv[i] << "'; try --help\n";
      return 2;
    }
  }
  if ((decode && chat) || (text && !chat)) {
    std::cerr << "chorus-tokenize: --text goes with --chat, and --chat not with --decode; try --help\n";
    return 2;
  }
  if (path.empty()) {
    std::cerr << "chorus-tokenize: --tokenizer FILE_OR_DIR is required; try --help\n";
    return 2;
  }
  try {
    auto tokenizer = chorus::models::BpeTokenizer::load(path);
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (chat) {
      auto ids = chat_ids(*tokenizer, input);
      if (text)
        std::cout << tokenizer->decode(ids);
      else
        std::cout << nlohmann::json(ids).dump() << "\n";
    } else if (decode) {
      auto ids = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
      if (ids.is_discarded() || !ids.is_array())
        throw chorus::Error("stdin: expected a JSON array of token ids");
      std::vector<std::int64_t> values;
      for (const auto& id : ids) {
        if (!id.is_number_integer())
          throw chorus::Error("stdin: expected integer token ids, got " + id.dump());
        values.push_back(id.get<std::int64_t>());
      }
      std::cout << tokenizer->decode(values);
    } else {
      std::cout << nlohmann::json(tokenizer->encode(input)).dump() << "\n";
    }
  } catch (const std::exception& error) {
    std::cerr << "chorus-tokenize: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
