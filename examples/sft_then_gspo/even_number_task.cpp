#include "even_number_task.hpp"

#include <fstream>
#include <random>

namespace even_number {

using namespace chorus;

Json answer_schema() {
  return {{"type", "object"},
          {"required", {"answer"}},
          {"properties", {{"answer", {{"type", "string"}, {"enum", {"yes", "no"}}}}}}};
}

std::vector<Prompt> prompts(int count, std::uint64_t seed, const std::set<int>& excluded, bool distinct) {
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<int> number(10, 999);
  std::vector<Prompt> result;
  std::set<int> used;
  while (static_cast<int>(result.size()) < count) {
    int n = number(random);
    if (excluded.count(n) || (distinct && !used.insert(n).second))
      continue;
    auto text = "Is " + std::to_string(n) + " even? JSON please.";
    result.push_back({{{"user", text}}, Json{{"answer", n % 2 == 0 ? "yes" : "no"}, {"number", n}}});
  }
  return result;
}

void write_jsonl(const std::filesystem::path& file, const std::vector<Prompt>& prompts) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file);
  for (const auto& prompt : prompts)
    out << Json{{"prompt", prompt.prompt.front().content},
                {"answer", prompt.metadata["answer"]},
                {"number", prompt.metadata["number"]}}
             .dump()
        << '\n';
  if (!out.flush())
    throw Error("cannot write " + file.string());
}

std::vector<Completion> demonstrations(const std::vector<Prompt>& prompts, std::size_t count) {
  std::vector<Completion> result;
  for (std::size_t i = 0; i < std::min(count, prompts.size()); ++i)
    result.push_back({prompts[i].prompt, Json{{"answer", prompts[i].metadata["answer"]}}.dump(), prompts[i].metadata});
  return result;
}

namespace {

bool right(const Sample& sample) {
  auto value = Json::parse(sample.completion, nullptr, /*allow_exceptions=*/false);
  return value.is_object() && value.contains("answer") && value["answer"] == sample.metadata["answer"];
}

// The rule's reasoning about a response: writing the last digit down first makes the rule a lookup
// the small model learns from a few thousand examples.
std::string judge_reasoning(const Sample& sample) {
  auto number = sample.metadata["number"].get<int>();
  auto expected = sample.metadata["answer"].get<std::string>();
  auto value = Json::parse(sample.completion, nullptr, /*allow_exceptions=*/false);
  std::string given = value.is_object() && value.contains("answer") && value["answer"].is_string()
    ? value["answer"].get<std::string>()
    : "";
  auto rule = "Ends in " + std::to_string(number % 10) + ": " + (number % 2 == 0 ? "even" : "odd") + ", so \""
    + expected + "\". ";
  if (given != "yes" && given != "no")
    return rule + "The response is not the JSON object asked for.";
  return rule + "The response says \"" + given + "\".";
}

} // namespace

Grader reward() {
  auto format = JsonGrader({.grader_key = "format", .schema = answer_schema()});
  auto correct = FunctionGrader("correct", [](const Sample& sample) { return right(sample) ? 1.0 : 0.0; });
  return CombinedGrader({.grader_key = "reward", .graders = {format, correct}, .weights = {0.2, 0.8}});
}

BinaryJudgeOptions judge_options(InferenceModel judge) {
  return {.grader_key = "judge",
          .criteria = "The user asked whether a number is even. Is the response a JSON object "
                      "{\"answer\": \"yes\"} or {\"answer\": \"no\"}, and the right one?",
          .model = std::move(judge),
          .sampling = {.temperature = 0.0, .max_tokens = 96}};
}

std::vector<Metric> verdicts(const std::vector<Prompt>& prompts, std::uint64_t seed) {
  static const std::vector<std::string> malformed = {
    "yes", "no", "{\"answer\": \"maybe\"}", "{\"answer\": \"yes\"", "{\"result\": \"no\"}", "\"no\"", "{}"};
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> kind(0.0, 1.0);
  std::vector<Metric> result;
  for (const auto& prompt : prompts) {
    auto answer = prompt.metadata["answer"].get<std::string>();
    auto draw = kind(random);
    std::string response;
    if (draw < 0.4)
      response = Json{{"answer", answer}}.dump();
    else if (draw < 0.8)
      response = Json{{"answer", answer == "yes" ? "no" : "yes"}}.dump();
    else
      response = malformed[random() % malformed.size()];
    Sample sample{prompt.prompt, response, prompt.metadata};
    auto metadata = prompt.metadata;
    metadata["reasoning"] = judge_reasoning(sample);
    result.push_back({prompt.prompt, response, right(sample) ? 1.0 : 0.0, std::move(metadata)});
  }
  return result;
}

Task<Evaluation> evaluate(TrainingModel model, std::vector<Prompt> eval) {
  std::vector<Task<Generation>> answers;
  for (const auto& prompt : eval)
    answers.push_back(model.generate(prompt.prompt, {.temperature = 0.0, .max_tokens = 24}));
  auto generations = co_await when_all(std::move(answers));
  auto format = JsonGrader({.grader_key = "format", .schema = answer_schema()});
  Evaluation result;
  for (std::size_t i = 0; i < eval.size(); ++i) {
    Sample sample{eval[i].prompt, generations[i].text, eval[i].metadata};
    result.format += (co_await format.grade(sample)).score;
    result.accuracy += right(sample) ? 1.0 : 0.0;
  }
  result.format /= static_cast<double>(eval.size());
  result.accuracy /= static_cast<double>(eval.size());
  co_return result;
}

} // namespace even_number
