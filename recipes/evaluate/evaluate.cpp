// Judging a trained model: k completions of every prompt of a dataset, graded by the graders the
// config lists; prints each grader's mean@k and pass@k and writes every sample to
// <output>/eval_samples.jsonl.
//
//   ./build/recipes/evaluate/evaluate --config examples/configs/evaluate.json --set model=runs/x/sft-final
#include <chorus/chorus.hpp>
using namespace chorus;

struct GraderConfig {
  // exact_match: the completion (or the first group of `extract`) equals metadata[metadata_key];
  // regex: the completion matches `pattern`; json: the completion is a JSON object with the `required`
  // keys; judge: judge_model answers PASS to `criteria`.
  std::string type = "exact_match";
  // The key its figures are logged and printed under (empty: the type).
  std::string key;
  // exact_match: the metadata field holding the expected answer.
  std::string metadata_key = "answer";
  // exact_match: a regular expression whose first group is the answer (empty: the whole completion).
  std::string extract;
  // regex: the pattern the completion must match.
  std::string pattern;
  // json: the keys the object must have.
  std::vector<std::string> required;
  // judge: what the judge decides, in plain words.
  std::string criteria;
};
CHORUS_CONFIG(GraderConfig, type, key, metadata_key, extract, pattern, required, criteria)

struct EvaluateConfig {
  // The model to evaluate: a Hugging Face folder (e.g. a recipe's saved model) or builtin:tiny.
  ModelRef model;
  // The prompts, with what the graders read in their other fields: {"prompt": ..., "answer": ...}.
  Dataset<Prompt> dataset;
  // The graders, each reported on its own.
  std::vector<GraderConfig> graders;
  // The judge of `judge` graders (spawned only if one is listed).
  ModelRef judge_model;
  // The longest answer of the judge, in tokens: its reasoning and its verdict line must fit.
  int judge_max_tokens = 256;
  // Completions per prompt.
  int k = 4;
  // Sampling temperature of the completions (0: greedy, then k = 1 says all).
  double temperature = 1.0;
  // The longest completion, in tokens.
  int max_tokens = 256;
  // A completion passes a grader with a score at least this.
  double pass_threshold = 0.5;
  // Seeds the completions: the same seed, the same samples.
  std::uint64_t seed = 0;
  // Where the models run: cpu, or cuda / cuda:N with a CUDA build of LibTorch (docs/gpu.md).
  std::string device = "cpu";
};
CHORUS_CONFIG(EvaluateConfig, model, dataset, graders, judge_model, judge_max_tokens, k, temperature, max_tokens,
              pass_threshold, seed, device)

Grader make_grader(const GraderConfig& g, const InferenceModel& judge, int judge_max_tokens, std::size_t index) {
  auto key = g.key.empty() ? g.type : g.key;
  if (g.type == "exact_match")
    return ExactMatchGrader({.grader_key = key, .metadata_key = g.metadata_key, .extract = g.extract});
  if (g.type == "regex")
    return RegexGrader({.grader_key = key, .pattern = g.pattern});
  if (g.type == "json") {
    Json schema = {{"type", "object"}, {"required", g.required}};
    return JsonGrader({.grader_key = key, .schema = schema});
  }
  if (g.type == "judge")
    return BinaryJudgeGrader({.grader_key = key,
                              .criteria = g.criteria,
                              .model = judge,
                              .sampling = {.temperature = 0.0, .max_tokens = judge_max_tokens}});
  throw ConfigError("graders[" + std::to_string(index) + "].type: '" + g.type
                    + "' is not a grader (expected exact_match, regex, json or judge)");
}

Task<void> evaluate_model(EvaluateConfig config, RecipeContext& ctx) {
  if (config.graders.empty())
    throw ConfigError("graders: list at least one grader");
  InferenceModel judge;
  for (const auto& g : config.graders)
    if (g.type == "judge" && !judge)
      judge =
        co_await (co_await config.judge_model.to_builder(ctx, {.device = config.device})).spawn_inference("judge");
  std::vector<Grader> graders;
  for (std::size_t i = 0; i < config.graders.size(); ++i)
    graders.push_back(make_grader(config.graders[i], judge, config.judge_max_tokens, i));
  auto prompts = co_await config.dataset.load(ctx);
  auto builder = co_await config.model.to_builder(ctx, {.device = config.device});
  auto model = co_await builder.spawn_inference("model", {.max_batch_size = 64});
  auto result = co_await evaluate({.dataset = std::move(prompts),
                                   .model = model,
                                   .graders = graders,
                                   .k = config.k,
                                   .sampling = {.temperature = config.temperature, .max_tokens = config.max_tokens},
                                   .pass_threshold = config.pass_threshold,
                                   .samples_file = ctx.output_dir() / "eval_samples.jsonl",
                                   .seed = config.seed});
  ctx.logger().log("evaluate", 1, result.metrics());
  ctx.log().info("evaluation of {}:\n{}", builder.reference(), result.table());
  ctx.log().info("every sample: {}", (ctx.output_dir() / "eval_samples.jsonl").string());
}
CHORUS_RECIPE_MAIN(evaluate_model)
