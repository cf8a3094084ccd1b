// Evaluation: a model's completions of held-out prompts, graded. After training, `evaluate` gives
// each grader's mean@k and pass@k over k completions per prompt (and a table of them) and writes
// every sample to a JSONL file; during training, an evaluation callback does the same every N steps
// of any algorithm (with the validation loss and a few samples in the log), its figures logged with
// the step:
//
//   auto result = co_await evaluate({.dataset = test_prompts, .model = policy.as_inference(),
//                                    .graders = {correct, format}, .k = 4,
//                                    .samples_file = ctx.output_dir() / "eval_samples.jsonl"});
//   ctx.log().info("\n{}", result.table());
//
//   co_await GSPO({..., .callbacks = {evaluation_callback({.every = 10, .model = policy, .dataset = test_prompts,
//                                                          .graders = {correct}}, ctx)}}).run();
#pragma once

#include <chorus/callbacks.hpp>
#include <chorus/dataset.hpp>
#include <chorus/grader.hpp>
#include <chorus/metrics.hpp>
#include <chorus/model.hpp>
#include <chorus/task.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

class RecipeContext;

/// Options of evaluate().
struct EvaluateOptions {
  /// The prompts; their metadata reaches the graders (e.g. the expected answer).
  std::vector<Prompt> dataset;
  /// The model that answers: an inference model, or a training model's replicas (as_inference()).
  InferenceModel model;
  /// Each grades every completion; each gets its own mean\@k and pass\@k.
  std::vector<Grader> graders;
  /// Completions per prompt.
  int k = 1;
  /// How completions are sampled; a negative `sampling.seed` gives completion j of prompt i the seed
  /// `seed + i * k + j` (the same run, the same completions).
  SamplingParams sampling{.temperature = 1.0, .max_tokens = 256};
  /// A completion passes a grader with a score at least this.
  double pass_threshold = 0.5;
  /// Every sample (prompt, completion, each grader's score and explanation) as one JSON line; empty:
  /// none written.
  std::filesystem::path samples_file;
  /// Prompts in flight at once.
  int max_concurrency = 64;
  /// Seeds the sampling (see sampling).
  std::uint64_t seed = 0;
};

/// One grader's figures over an evaluation.
struct GraderFigures {
  /// The grader's key.
  std::string key;
  /// The mean score over every graded completion (k per prompt).
  double mean_at_k = 0.0;
  /// The share of prompts with at least one of their k completions passing.
  double pass_at_k = 0.0;
  /// Completions graded (ignored ones, e.g. a judge's NA, are not).
  std::int64_t graded = 0;
  /// Completions the grader ignored (Grade::ignored).
  std::int64_t ignored = 0;
};

/// One completion of an evaluation and its grades.
struct EvaluatedSample {
  /// The prompt's index in the dataset.
  std::size_t prompt = 0;
  /// Which of the prompt's k completions (0 to k - 1).
  int sample = 0;
  /// The completion.
  Generation generation;
  /// Each grader's grade, in the order of the graders.
  std::vector<Grade> grades;
};

/// What evaluate() measured.
struct EvaluationResult {
  /// Prompts evaluated.
  std::int64_t prompts = 0;
  /// Completions per prompt.
  int k = 1;
  /// The mean completion length, in tokens.
  double completion_length = 0.0;
  /// Per grader, in the order given.
  std::vector<GraderFigures> graders;
  /// Every completion with its grades (one per grader, in order), prompt by prompt.
  std::vector<EvaluatedSample> samples;

  /// The figures as an aligned text table: one row per grader (mean\@k, pass\@k, graded, ignored).
  std::string table() const;

  /// The figures as metrics: `<prefix><key>/mean@k`, `<prefix><key>/pass@k` (k the number) and
  /// `<prefix>completion_length`.
  Metrics metrics(std::string_view prefix = "eval/") const;
};

/// Generates k completions of every prompt, grades each with every grader, and returns each
/// grader's mean\@k and pass\@k; writes every sample to `samples_file` if given.
/// @throws ConfigError for an empty dataset, no graders, k < 1; Error if the samples file cannot be
/// written (naming it).
Task<EvaluationResult> evaluate(EvaluateOptions options);

// -- during training ------------------------------------------------------------

/// Options of evaluation_callback().
struct EvaluationCallbackOptions {
  /// Evaluate every this many steps, and always after the stage's last step (0: only then).
  int every = 0;
  /// The model being trained: its replicas generate, its trainer measures the validation loss.
  TrainingModel model;
  /// Held-out prompts to generate from and grade (none: no grading).
  std::vector<Prompt> dataset;
  /// The graders of the held-out completions.
  std::vector<Grader> graders;
  /// Completions per prompt.
  int k = 1;
  /// How the held-out completions are sampled (greedy by default: the same model, the same figures).
  SamplingParams sampling{.temperature = 0.0, .max_tokens = 256};
  /// As EvaluateOptions::pass_threshold.
  double pass_threshold = 0.5;
  /// Held-out demonstrations: their mean cross-entropy is logged as `eval/loss` (none: not measured).
  std::vector<Completion> loss_dataset;
  /// Generated samples written to the log at each evaluation.
  int log_samples = 2;
  /// Write every evaluation's samples to `<output>/eval/<stage>-step<N>.jsonl`.
  bool write_samples = true;
  /// Save the model as a Hugging Face folder `<output>/<stage>-step<N>` at each evaluation.
  bool save_model = false;
};

/// A callback that evaluates the model every `every` steps and after the last one: each grader's
/// mean\@k and pass\@k on `dataset` (`eval/<key>/mean@k`, ...), the validation loss on `loss_dataset`
/// (`eval/loss`), a few samples in the log, and, if asked, the model saved.
/// @throws ConfigError for every < 0, k < 1, no model, or neither a dataset with graders nor a loss
/// dataset.
Callback evaluation_callback(EvaluationCallbackOptions options, RecipeContext& ctx);

} // namespace chorus
