// Reading JSONL datasets. Every rejected line says file:line, the field and what was expected.
#include <chorus/context.hpp>
#include <chorus/dataset.hpp>
#include <chorus/errors.hpp>

#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>

namespace chorus {

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& field, const std::string& what) {
  throw DatasetError(where + ": field '" + field + "': " + what);
}

std::string text_field(const Json& line, const std::string& where, const char* field) {
  if (!line.contains(field))
    bad(where, field, "missing");
  if (!line[field].is_string())
    bad(where, field, "expected a string, got " + std::string(line[field].type_name()));
  auto text = line[field].get<std::string>();
  if (text.empty())
    bad(where, field, "empty");
  return text;
}

// The conversation of a line: "messages" (roles in order: an optional system turn, then user and
// assistant alternating from user), or "prompt" as one user turn.
std::vector<ChatMessage> conversation(const Json& line, const std::string& where) {
  if (line.contains("messages")) {
    const auto& messages = line["messages"];
    if (!messages.is_array() || messages.empty())
      bad(where, "messages", "expected a non-empty list of {\"role\", \"content\"}");
    std::vector<ChatMessage> result;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      auto field = "messages[" + std::to_string(i) + "]";
      const auto& message = messages[i];
      if (!message.is_object() || !message.contains("role") || !message["role"].is_string()
          || !message.contains("content") || !message["content"].is_string())
        bad(where, field, "expected {\"role\": string, \"content\": string}");
      auto role = message["role"].get<std::string>();
      // Expected here: system only first; then user, assistant, user, ... alternating.
      auto first_turn = !result.empty() && result.front().role == "system" ? 1u : 0u;
      std::string expected = i == 0 && role == "system" ? "system" : (i - first_turn) % 2 == 0 ? "user" : "assistant";
      if (role != expected)
        bad(where, field + ".role",
            "expected '" + expected
              + "' here (system first if any, then user and assistant "
                "alternating), got '"
              + role + "'");
      result.push_back({role, message["content"].get<std::string>()});
      if (message.contains("reasoning_content") && !message["reasoning_content"].is_null()) {
        if (role != "assistant" || !message["reasoning_content"].is_string())
          bad(where, field + ".reasoning_content", "expected a string, in an assistant message");
        result.back().reasoning = message["reasoning_content"].get<std::string>();
      }
    }
    return result;
  }
  if (line.contains("prompt"))
    return {{"user", text_field(line, where, "prompt")}};
  bad(where, "messages", "missing (expected \"messages\" or \"prompt\")");
}

Json metadata_of(const Json& line, std::initializer_list<const char*> used) {
  auto metadata = line.contains("metadata") && line["metadata"].is_object() ? line["metadata"] : Json::object();
  for (const auto& [key, value] : line.items()) {
    bool taken = key == "metadata";
    for (const char* name : used)
      taken = taken || key == name;
    if (!taken)
      metadata[key] = value;
  }
  return metadata;
}

void expect_last_role(const std::vector<ChatMessage>& turns, const std::string& where, const char* role) {
  if (turns.back().role != role)
    bad(where, "messages", std::string("expected the last turn to be '") + role + "', got '" + turns.back().role + "'");
}

} // namespace

template <>
Completion parse_dataset_line<Completion>(const Json& line, const std::string& where, const std::string&) {
  Completion result;
  if (line.contains("messages")) {
    auto turns = conversation(line, where);
    expect_last_role(turns, where, "assistant");
    if (turns.back().content.empty() && turns.back().reasoning.empty())
      bad(where, "messages[" + std::to_string(turns.size() - 1) + "].content", "empty completion");
    // A reasoning to learn goes before the answer as a thinking model writes it (Qwen3's template
    // reads it back out of the completion; other templates keep it as text).
    result.completion = turns.back().reasoning.empty()
      ? turns.back().content
      : "<think>\n" + turns.back().reasoning + "\n</think>\n\n" + turns.back().content;
    turns.pop_back();
    result.prompt = std::move(turns);
  } else {
    result.prompt = conversation(line, where);
    result.completion = text_field(line, where, "completion");
  }
  result.metadata = metadata_of(line, {"messages", "prompt", "completion"});
  return result;
}

template <>
Prompt parse_dataset_line<Prompt>(const Json& line, const std::string& where, const std::string&) {
  Prompt result;
  result.prompt = conversation(line, where);
  expect_last_role(result.prompt, where, "user");
  result.metadata = metadata_of(line, {"messages", "prompt"});
  return result;
}

template <>
Preference parse_dataset_line<Preference>(const Json& line, const std::string& where, const std::string&) {
  Preference result;
  result.prompt = conversation(line, where);
  expect_last_role(result.prompt, where, "user");
  result.chosen = text_field(line, where, "chosen");
  result.rejected = text_field(line, where, "rejected");
  result.metadata = metadata_of(line, {"messages", "prompt", "chosen", "rejected"});
  return result;
}

template <>
Metric parse_dataset_line<Metric>(const Json& line, const std::string& where, const std::string& label_key) {
  if (!line.contains(label_key))
    bad(where, label_key, "missing (expected the completion's numeric label)");
  const auto& label = line[label_key];
  if (!label.is_number() || !std::isfinite(label.get<double>()))
    bad(where, label_key, "expected a finite number, got " + label.dump());
  auto completion = parse_dataset_line<Completion>(line, where);
  completion.metadata.erase(label_key);
  return Metric{std::move(completion.prompt), std::move(completion.completion), label.get<double>(),
                std::move(completion.metadata)};
}

namespace {

// One JSONL line may hold a long conversation, but not the whole file's worth of memory.
constexpr std::size_t kMaxLineBytes = std::size_t{64} << 20;

// Reads one line into `text` (without its newline); false at the end of the file. A line longer than
// kMaxLineBytes is read past (not kept) and reported in `too_long`.
bool read_line(std::istream& in, std::string& text, bool& too_long) {
  text.clear();
  too_long = false;
  auto* buffer = in.rdbuf();
  bool any = false;
  for (int c; (c = buffer->sbumpc()) != std::char_traits<char>::eof();) {
    any = true;
    if (c == '\n')
      return true;
    if (text.size() < kMaxLineBytes)
      text.push_back(static_cast<char>(c));
    else
      too_long = true;
  }
  return any;
}

} // namespace

template <class Kind>
std::vector<Kind> read_dataset(const std::filesystem::path& file, bool skip_bad_lines,
                               std::vector<std::string>* skipped, const std::string& label_key) {
  if (file.empty())
    throw DatasetError("no dataset file given (expected the path of a JSONL file)");
  std::ifstream in(file);
  if (!in)
    throw DatasetError(file.string() + ": cannot open");
  std::vector<Kind> result;
  std::string text;
  bool too_long = false;
  for (std::size_t number = 1; read_line(in, text, too_long); ++number) {
    auto where = file.string() + ":" + std::to_string(number);
    if (!too_long && text.find_first_not_of(" \t\r") == std::string::npos)
      continue; // blank lines separate nothing and mean nothing
    try {
      if (too_long)
        throw DatasetError(where + ": line longer than " + std::to_string(kMaxLineBytes >> 20) + " MiB");
      auto line = Json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (line.is_discarded())
        throw DatasetError(where + ": not valid JSON");
      if (!line.is_object())
        throw DatasetError(where + ": expected a JSON object, got " + std::string(line.type_name()));
      result.push_back(parse_dataset_line<Kind>(line, where, label_key));
    } catch (const DatasetError& error) {
      if (!skip_bad_lines)
        throw;
      if (skipped)
        skipped->push_back(error.what());
    }
  }
  if (in.bad())
    throw DatasetError(file.string() + ": read error");
  if (result.empty())
    throw DatasetError(file.string() + ": no examples" + (skip_bad_lines ? " (every line was skipped)" : ""));
  return result;
}

template <class Kind>
Task<std::vector<Kind>> load_dataset(std::filesystem::path path, bool skip_bad_lines, RecipeContext& ctx,
                                     std::string label_key) {
  std::vector<std::string> skipped;
  auto examples = read_dataset<Kind>(path, skip_bad_lines, &skipped, label_key);
  for (const auto& reason : skipped)
    ctx.log().warn("skipped: {}", reason);
  ctx.log().info("dataset {}: {} examples{}", path.string(), examples.size(),
                 skipped.empty() ? std::string() : ", " + std::to_string(skipped.size()) + " bad lines skipped");
  co_return examples;
}

#define CHORUS_DATASET_KIND(Kind)                                                                              \
  template std::vector<Kind> read_dataset<Kind>(const std::filesystem::path&, bool, std::vector<std::string>*, \
                                                const std::string&);                                           \
  template Task<std::vector<Kind>> load_dataset<Kind>(std::filesystem::path, bool, RecipeContext&, std::string);
CHORUS_DATASET_KIND(Completion)
CHORUS_DATASET_KIND(Prompt)
CHORUS_DATASET_KIND(Preference)
CHORUS_DATASET_KIND(Metric)
#undef CHORUS_DATASET_KIND

} // namespace chorus
