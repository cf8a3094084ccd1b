// evaluate(): k completions per prompt, graded by every grader; mean@k, pass@k and the samples file.
// evaluation_callback(): the same every N steps of an algorithm, with the validation loss.
#include <chorus/context.hpp>
#include <chorus/errors.hpp>
#include <chorus/evaluation.hpp>
#include <chorus/gather.hpp>
#include <chorus/sft.hpp>

#include "recipes/tokenized.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <fstream>
#include <ranges>

namespace chorus {

namespace {

Json messages_json(const std::vector<ChatMessage>& messages) {
  auto result = Json::array();
  for (const auto& message : messages)
    result.push_back({{"role", message.role}, {"content", message.content}});
  return result;
}

// One line of the samples file: the prompt, the completion and every grader's verdict.
Json sample_json(const EvaluateOptions& options, const EvaluatedSample& sample) {
  const auto& prompt = options.dataset[sample.prompt];
  Json grades = Json::object();
  for (std::size_t g = 0; g < options.graders.size(); ++g) {
    const auto& grade = sample.grades[g];
    grades[options.graders[g].key()] = {
      {"score", grade.score}, {"explanation", grade.explanation}, {"ignored", grade.ignored}};
  }
  return {{"prompt_index", sample.prompt},
          {"sample", sample.sample},
          {"prompt", messages_json(prompt.prompt)},
          {"metadata", prompt.metadata},
          {"completion", sample.generation.text},
          {"completion_tokens", sample.generation.tokens.size()},
          {"finish_reason", sample.generation.finish_reason},
          {"grades", grades}};
}

void write_samples(const EvaluateOptions& options, const std::vector<EvaluatedSample>& samples) {
  const auto& file = options.samples_file;
  std::error_code error;
  if (file.has_parent_path())
    std::filesystem::create_directories(file.parent_path(), error);
  if (error)
    throw Error(file.string() + ": cannot write the evaluation samples: cannot create its folder (" + error.message()
                + ")");
  std::ofstream out(file);
  for (const auto& sample : samples)
    // A model may end a completion inside a multi-byte character: written with U+FFFD there.
    out << sample_json(options, sample).dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  out.flush();
  if (!out)
    throw Error(file.string() + ": cannot write the evaluation samples");
}

EvaluationResult summarise(const EvaluateOptions& options, std::vector<EvaluatedSample> samples) {
  EvaluationResult result;
  result.prompts = static_cast<std::int64_t>(options.dataset.size());
  result.k = options.k;
  double tokens = 0;
  for (const auto& sample : samples)
    tokens += static_cast<double>(sample.generation.tokens.size());
  result.completion_length = samples.empty() ? 0.0 : tokens / static_cast<double>(samples.size());
  for (std::size_t g = 0; g < options.graders.size(); ++g) {
    GraderFigures figures;
    figures.key = options.graders[g].key();
    double sum = 0;
    std::vector<bool> passed(options.dataset.size(), false);
    for (const auto& sample : samples) {
      const auto& grade = sample.grades[g];
      if (grade.ignored) {
        ++figures.ignored;
        continue;
      }
      ++figures.graded;
      sum += grade.score;
      if (grade.score >= options.pass_threshold)
        passed[sample.prompt] = true;
    }
    figures.mean_at_k = figures.graded > 0 ? sum / static_cast<double>(figures.graded) : 0.0;
    figures.pass_at_k = static_cast<double>(std::count(passed.begin(), passed.end(), true))
      / static_cast<double>(std::max<std::size_t>(passed.size(), 1));
    result.graders.push_back(std::move(figures));
  }
  result.samples = std::move(samples);
  return result;
}

// Completion j of prompt i, graded by every grader, into `sample`.
Task<void> complete_and_grade(const EvaluateOptions& options, std::size_t i, std::size_t j, EvaluatedSample& sample) {
  sample.prompt = i;
  sample.sample = static_cast<int>(j);
  auto sampling = options.sampling;
  if (sampling.seed < 0)
    sampling.seed = static_cast<std::int64_t>(options.seed + i * static_cast<std::size_t>(options.k) + j);
  const auto& prompt = options.dataset[i];
  sample.generation = co_await options.model.generate(prompt.prompt, sampling);
  std::vector<Task<Grade>> grades;
  auto turn = parse_assistant_turn(sample.generation.text, options.model.thinks(), /*tool_calls=*/false,
                                   ToolCallFormat::tagged, options.model.opens_thinking(sampling.enable_thinking));
  for (const auto& grader : options.graders)
    grades.push_back(grader.grade({prompt.prompt, turn.content, prompt.metadata, turn.reasoning}));
  sample.grades = co_await when_all(std::move(grades));
}

} // namespace

std::string EvaluationResult::table() const {
  std::size_t width = 6;
  for (const auto& figures : graders)
    width = std::max(width, figures.key.size());
  auto at_k = [&](const char* name) { return fmt::format("{}@{}", name, k); };
  std::string text = fmt::format("{:<{}}  {:>9}  {:>9}  {:>7}  {:>7}\n", "grader", width, at_k("mean"), at_k("pass"),
                                 "graded", "ignored");
  for (const auto& figures : graders)
    text += fmt::format("{:<{}}  {:>9.3f}  {:>9.3f}  {:>7}  {:>7}\n", figures.key, width, figures.mean_at_k,
                        figures.pass_at_k, figures.graded, figures.ignored);
  text += fmt::format("{} prompts, {} completions each, {:.1f} tokens on average", prompts, k, completion_length);
  return text;
}

Metrics EvaluationResult::metrics(std::string_view prefix) const {
  Metrics result;
  for (const auto& figures : graders) {
    result.emplace_back(fmt::format("{}{}/mean@{}", prefix, figures.key, k), figures.mean_at_k);
    result.emplace_back(fmt::format("{}{}/pass@{}", prefix, figures.key, k), figures.pass_at_k);
  }
  result.emplace_back(fmt::format("{}completion_length", prefix), completion_length);
  return result;
}

Task<EvaluationResult> evaluate(EvaluateOptions options) {
  if (options.dataset.empty())
    throw ConfigError("evaluate: the dataset is empty");
  if (options.graders.empty())
    throw ConfigError("evaluate: no graders given");
  if (options.k < 1)
    throw ConfigError("evaluate: k must be at least 1, got " + std::to_string(options.k));
  if (options.max_concurrency < 1)
    throw ConfigError("evaluate: max_concurrency must be at least 1");
  if (!options.model)
    throw ConfigError("evaluate: no model given");
  for (const auto& grader : options.graders)
    if (!grader)
      throw ConfigError("evaluate: a grader in the list is empty");
  const auto k = static_cast<std::size_t>(options.k);
  std::vector<EvaluatedSample> samples(options.dataset.size() * k);
  co_await for_each_concurrent(std::views::iota(std::size_t{0}, options.dataset.size()),
                               static_cast<std::size_t>(options.max_concurrency), [&](std::size_t i) -> Task<void> {
                                 std::vector<Task<void>> completions;
                                 for (std::size_t j = 0; j < k; ++j)
                                   completions.push_back(complete_and_grade(options, i, j, samples[i * k + j]));
                                 co_await when_all(std::move(completions));
                               });
  if (!options.samples_file.empty())
    write_samples(options, samples);
  co_return summarise(options, std::move(samples));
}

// -- the callback -----------------------------------------------------------------

namespace {

struct EvaluationCallbackState {
  EvaluationCallbackOptions options;
  RecipeContext* ctx;
  std::vector<TrainSample> loss_samples; // tokenized on first use
  bool tokenized = false;
};

Task<Metrics> evaluate_after(std::shared_ptr<EvaluationCallbackState> state, StepEnd end) {
  const auto& o = state->options;
  bool due = end.last() || (o.every > 0 && end.step % o.every == 0);
  if (!due)
    co_return Metrics{};
  auto& ctx = *state->ctx;
  Metrics metrics;
  if (!o.dataset.empty()) {
    auto name = fmt::format("{}-step{}", end.stage, end.step);
    auto result = co_await evaluate(
      {.dataset = o.dataset,
       .model = o.model.as_inference(),
       .graders = o.graders,
       .k = o.k,
       .sampling = o.sampling,
       .pass_threshold = o.pass_threshold,
       .samples_file = o.write_samples ? ctx.output_dir() / "eval" / (name + ".jsonl") : std::filesystem::path(),
       .seed = static_cast<std::uint64_t>(end.step)});
    ctx.log().info("[{}] evaluation after step {}:\n{}", end.stage, end.step, result.table());
    for (int i = 0; i < o.log_samples && i < static_cast<int>(result.samples.size()); ++i) {
      const auto& sample = result.samples[static_cast<std::size_t>(i) * static_cast<std::size_t>(o.k)];
      ctx.log().info("[{}] sample {}: {} -> {} (score {:.2f})", end.stage, i + 1,
                     o.dataset[sample.prompt].prompt.back().content, sample.generation.text,
                     sample.grades.empty() ? 0.0 : sample.grades.front().score);
    }
    auto figures = result.metrics("eval/");
    metrics.insert(metrics.end(), figures.begin(), figures.end());
  }
  if (!o.loss_dataset.empty()) {
    if (!state->tokenized) {
      state->loss_samples = co_await detail::tokenize_completions(o.model, o.loss_dataset);
      state->tokenized = true;
    }
    metrics.emplace_back("eval/loss", co_await completion_loss(o.model, state->loss_samples));
  }
  if (o.save_model)
    co_await o.model.save(fmt::format("{}-step{}", end.stage, end.step), ctx);
  co_return metrics;
}

} // namespace

Callback evaluation_callback(EvaluationCallbackOptions options, RecipeContext& ctx) {
  if (options.every < 0)
    throw ConfigError("evaluation_callback: every must be >= 0 (0: after the last step only)");
  if (options.k < 1)
    throw ConfigError("evaluation_callback: k must be at least 1");
  if (!options.model)
    throw ConfigError("evaluation_callback: no model given");
  if (options.dataset.empty() && options.loss_dataset.empty())
    throw ConfigError("evaluation_callback: nothing to evaluate: give a dataset with graders, or a loss_dataset");
  if (!options.dataset.empty() && options.graders.empty())
    throw ConfigError("evaluation_callback: a dataset to generate from needs graders");
  auto state = std::make_shared<EvaluationCallbackState>(EvaluationCallbackState{std::move(options), &ctx, {}, false});
  return [state](StepEnd end) { return evaluate_after(state, std::move(end)); };
}

} // namespace chorus
