// Datasets: JSONL files of demonstrations (Completion), prompts (Prompt), preferences (Preference) or
// labelled completions (Metric), named in a config and loaded by a recipe:
//
//   struct Config { Dataset<Completion> sft_dataset; };      // --set sft_dataset=data.jsonl
//   auto examples = co_await config.sft_dataset.load(ctx);  // std::vector<Completion>
//
// Accepted lines (one JSON object each; other keys go to `metadata`):
//   Completion  {"messages": [..., {"role": "assistant", "content": "..."}]}  or  {"prompt": "...", "completion": "..."}
//   Prompt      {"messages": [...]}  or  {"prompt": "..."}
//   Preference  {"messages" or "prompt": ..., "chosen": "...", "rejected": "..."}
//   Metric      a Completion line with a number: {"prompt": "...", "completion": "...", "label": 0.8}
//               (the label's key is the dataset's label_key)
// A malformed line is a DatasetError naming the file, line and field; with `skip_bad_lines` it is
// skipped instead, and every skipped line is reported in the log with its reason.
#pragma once

#include <chorus/config.hpp>
#include <chorus/errors.hpp>
#include <chorus/generation.hpp>
#include <chorus/task.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace chorus {

class RecipeContext;

/// A demonstration: the conversation so far and the assistant turn to learn.
struct Completion {
  std::vector<ChatMessage> prompt; ///< System / user / assistant turns before the completion.
  std::string completion;          ///< The final assistant turn.
  Json metadata = Json::object();  ///< The line's other keys.
};

/// A prompt to generate from, with whatever the graders need (e.g. metadata["answer"]).
struct Prompt {
  /// The conversation to continue.
  std::vector<ChatMessage> prompt;
  /// The line's other keys, e.g. the expected answer.
  Json metadata = Json::object();
};

/// A preference: after `prompt`, `chosen` is better than `rejected`.
struct Preference {
  /// The conversation before the two answers.
  std::vector<ChatMessage> prompt;
  /// The better assistant turn.
  std::string chosen;
  /// The worse assistant turn.
  std::string rejected;
  /// The line's other keys.
  Json metadata = Json::object();
};

/// A completion with a numeric label: what a reward model learns to predict by regression (e.g. a
/// human rating).
struct Metric {
  /// The conversation before the completion.
  std::vector<ChatMessage> prompt;
  /// The assistant turn that was rated.
  std::string completion;
  /// Its label (any finite number).
  double label = 0.0;
  /// The line's other keys.
  Json metadata = Json::object();
};

/// The field of a Metric line that holds its label, unless a dataset names another.
inline const std::string kDefaultLabelKey = "label";

/// Parses one JSONL line as `Kind` (a Metric's label read from `label_key`).
/// @throws DatasetError "FILE:LINE: field 'F': what was expected".
template <class Kind>
Kind parse_dataset_line(const Json& line, const std::string& where, const std::string& label_key = kDefaultLabelKey);

/// Reads `file`: every line must parse (DatasetError otherwise), unless `skip_bad_lines`, which keeps
/// the good ones and returns the reasons for the others in `skipped`.
template <class Kind>
std::vector<Kind> read_dataset(const std::filesystem::path& file, bool skip_bad_lines,
                               std::vector<std::string>* skipped = nullptr,
                               const std::string& label_key = kDefaultLabelKey);

/// Reads `file` (see read_dataset) and logs how many examples were loaded and each skipped line.
template <class Kind>
Task<std::vector<Kind>> load_dataset(std::filesystem::path file, bool skip_bad_lines, RecipeContext& ctx,
                                     std::string label_key = kDefaultLabelKey);

/// A JSONL dataset named in a config: a path, or {"path": ..., "skip_bad_lines": true} (a Metric
/// dataset also takes "label_key").
template <class Kind>
struct Dataset {
  /// The JSONL file.
  std::filesystem::path path;
  /// Skip (and log) malformed lines instead of failing with DatasetError.
  bool skip_bad_lines = false;
  /// Metric datasets: the field of each line that holds its label.
  std::string label_key = kDefaultLabelKey;

  /// Reads the file (see read_dataset); logs how many examples were loaded and each skipped line.
  /// @throws DatasetError naming the file and line.
  Task<std::vector<Kind>> load(RecipeContext& ctx) const {
    return load_dataset<Kind>(path, skip_bad_lines, ctx, label_key);
  }
};

// -- working with loaded data ---------------------------------------------------

/// `items` in an order drawn from `seed` (the same seed, the same order).
template <class T>
std::vector<T> shuffled(std::vector<T> items, std::uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::shuffle(items.begin(), items.end(), generator);
  return items;
}

/// Splits `items` into (train, eval) with `eval_fraction` of them (at least one if the fraction is
/// positive and there are two or more items) in eval, after shuffling with `seed`.
/// @throws ConfigError if `eval_fraction` is not in [0, 1).
template <class T>
std::pair<std::vector<T>, std::vector<T>> train_eval_split(std::vector<T> items, double eval_fraction,
                                                           std::uint64_t seed) {
  if (!(eval_fraction >= 0 && eval_fraction < 1))
    throw ConfigError("eval_fraction must be in [0, 1), got " + std::to_string(eval_fraction));
  items = shuffled(std::move(items), seed);
  auto eval = static_cast<std::size_t>(eval_fraction * static_cast<double>(items.size()) + 0.5);
  if (eval_fraction > 0 && eval == 0 && items.size() >= 2)
    eval = 1;
  eval = std::min(eval, items.size());
  std::vector<T> eval_items(items.end() - static_cast<std::ptrdiff_t>(eval), items.end());
  items.resize(items.size() - eval);
  return {std::move(items), std::move(eval_items)};
}

/// `items` cut into consecutive batches of `size` (the last one may be shorter).
template <class T>
std::vector<std::vector<T>> batches_of(const std::vector<T>& items, std::size_t size) {
  std::vector<std::vector<T>> result;
  for (std::size_t begin = 0; begin < items.size(); begin += std::max<std::size_t>(size, 1))
    result.emplace_back(
      items.begin() + static_cast<std::ptrdiff_t>(begin),
      items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), begin + std::max<std::size_t>(size, 1))));
  return result;
}

// -- config ---------------------------------------------------------------------

namespace detail {

/// What a line of a `Dataset<Kind>` file holds, for its JSON Schema's format ("chorus-dataset:prompt").
template <class Kind>
constexpr const char* dataset_kind_name();
template <>
constexpr const char* dataset_kind_name<Completion>() {
  return "completion";
}
template <>
constexpr const char* dataset_kind_name<Prompt>() {
  return "prompt";
}
template <>
constexpr const char* dataset_kind_name<Preference>() {
  return "preference";
}
template <>
constexpr const char* dataset_kind_name<Metric>() {
  return "metric";
}

} // namespace detail

/// Reads and writes Dataset config fields: a path, or {"path": ..., "skip_bad_lines": true} (and
/// "label_key" for a Metric dataset).
template <class Kind>
struct ConfigCodec<Dataset<Kind>> {
  /// Whether the dataset has labels (a Metric dataset): it then takes "label_key".
  static constexpr bool kLabelled = std::is_same_v<Kind, Metric>;

  /// The type's name in messages and `--help`.
  static std::string type_name() {
    return "dataset (path of a JSONL file)";
  }
  /// The path of a JSONL file, or {"path": ..., "skip_bad_lines": true} (and "label_key": a Metric's).
  static Json schema() {
    Json path{{"type", "string"}, {"format", std::string("chorus-dataset:") + detail::dataset_kind_name<Kind>()}};
    Json properties{{"path", path}, {"skip_bad_lines", {{"type", "boolean"}}}};
    if (kLabelled)
      properties["label_key"] = {{"type", "string"}, {"minLength", 1}};
    Json object{
      {"type", "object"}, {"properties", properties}, {"required", {"path"}}, {"additionalProperties", false}};
    return {{"anyOf", {path, object}}};
  }
  /// Reads a path string or a {"path", "skip_bad_lines", "label_key"} object into `out`.
  /// @throws ConfigError for any other value or an unknown key.
  static void read(const Json& value, Dataset<Kind>& out, const ConfigLocation& at) {
    if (value.is_string()) {
      out.path = value.get<std::string>();
      return;
    }
    std::vector<std::string> keys{"path", "skip_bad_lines"};
    if (kLabelled)
      keys.push_back("label_key");
    if (!value.is_object() || !value.contains("path") || !value["path"].is_string())
      at.fail("the path of a JSONL file, or {\"path\": ..., \"skip_bad_lines\": true}", value);
    for (const auto& [key, item] : value.items())
      if (std::find(keys.begin(), keys.end(), key) == keys.end())
        at.child(key).fail_unknown(keys);
    out.path = value["path"].get<std::string>();
    if (value.contains("skip_bad_lines")) {
      if (!value["skip_bad_lines"].is_boolean())
        at.child("skip_bad_lines").fail("bool (true or false)", value["skip_bad_lines"]);
      out.skip_bad_lines = value["skip_bad_lines"].get<bool>();
    }
    if (value.contains("label_key")) {
      const auto& key = value["label_key"];
      if (!key.is_string() || key.get<std::string>().empty())
        at.child("label_key").fail("the name of the field holding each line's label", key);
      out.label_key = key.get<std::string>();
    }
  }
  /// The path as a JSON string, or an object if `skip_bad_lines` or `label_key` is set.
  static Json write(const Dataset<Kind>& value) {
    if (!value.skip_bad_lines && value.label_key == kDefaultLabelKey)
      return value.path.string();
    Json object{{"path", value.path.string()}, {"skip_bad_lines", value.skip_bad_lines}};
    if (kLabelled)
      object["label_key"] = value.label_key;
    return object;
  }
  /// Reads a `--set` value: the text as the path.
  static Json parse_text(std::string_view text, const ConfigLocation&) {
    return std::string(text);
  }
};

} // namespace chorus
