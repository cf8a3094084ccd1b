// The two-stage recipe of the README: SFT warm-up on demonstrations, then GSPO on prompts graded by
// a judge model (docs/architecture.md follows its awaits down to the actors). With a judge_dataset a
// first stage trains the judge on labelled verdicts in the grader's own prompt format. Run with a config
// (examples/configs/sft_to_gspo.json: the main example's even-number task on builtin:tiny, whose judge
// stage trains a second builtin:tiny into the task's judge first):
//
//   ./build/recipes/sft_to_gspo/sft_to_gspo --config examples/configs/sft_to_gspo.json
#include <chorus/chorus.hpp>
using namespace chorus;

struct SftToGspoConfig {
  // Demonstrations with expected outputs: {"prompt": ..., "completion": ...} or {"messages": [...]}.
  Dataset<Completion> sft_dataset;
  // Prompts only, for GSPO: {"prompt": ...} or {"messages": [...]}.
  Dataset<Prompt> gspo_dataset;
  // The model to train: builtin:tiny or a Hugging Face model folder.
  ModelRef model_to_train;
  // The judge's model; empty: model_to_train, as the seed grades with the model it starts from.
  std::string judge_model;
  // Verdicts that first train judge_model into the judge: {"prompt": ..., "completion": ..., "label":
  // 1 (pass) or 0 (fail), "reasoning": ...} ({"path": ..., "label_key": "pass"} names another label
  // field). The judge is saved in judge-model/ and its held-out accuracy logged. Empty: judge_model
  // grades as it is.
  Dataset<Metric> judge_dataset;
  // What the judge checks.
  std::string judge_criteria = "Is the output high-quality, well-formed, and correct?";
  // The JSON Schema every completion must satisfy (chorus/json_schema.hpp's subset): a JsonGrader
  // beside the judge, the two weighed the same, so that an answer the judge passes but the schema
  // refuses earns no more than a well-formed wrong one (GSPO finds such answers: '{"answwer"no":"}',
  // '{"answer":"nyes"}' from a judge trained on well-formed ones). Null: the judge alone, as the seed
  // grades.
  Json format_schema;
  // The judge's SFT learning rate.
  double judge_learning_rate = 1e-3;
  // Passes over the judge's verdicts.
  int judge_epochs = 1;
  // Verdicts per judge SFT step.
  int judge_batch_size = 16;
  // Share of judge_dataset held out to measure the judge's accuracy.
  double judge_eval_fraction = 0.1;
  // SFT's peak learning rate.
  double sft_learning_rate = 1e-5;
  // Passes over the demonstrations.
  int sft_epochs = 1;
  // Demonstrations per SFT optimizer step.
  int sft_batch_size = 512;
  // GSPO's learning rate.
  double gspo_learning_rate = 5e-7;
  // GSPO steps to take.
  int gspo_max_steps = 1000;
  // Completions per GSPO step.
  int gspo_batch_size = 256;
  // The group size: completions sampled per prompt.
  int completions_per_sample = 4;
  // Weight of the KL penalty to the model after SFT.
  double kl_beta = 0.1;
  // The longest completion, in tokens.
  int max_tokens = 256;
  // Where the models run: cpu, or cuda / cuda:N with a CUDA build of LibTorch (docs/gpu.md).
  std::string device = "cpu";
  // Recompute each layer in the backward pass instead of keeping its activations: less memory for
  // long sequences and big batches, one more forward pass of compute (docs/models.md).
  bool gradient_checkpointing = false;
  // LoRA adapters trained instead of every weight: lora.r > 0 (e.g. --set lora.r=16); 0: full fine-tuning.
  LoraOptions lora;
  // Seeds the judge's held-out split, its initial weights (builtin:tiny) and the order of its verdicts.
  std::uint64_t seed = 0;
};
CHORUS_CONFIG(SftToGspoConfig, sft_dataset, gspo_dataset, model_to_train, judge_model, judge_dataset, judge_criteria,
              format_schema, judge_learning_rate, judge_epochs, judge_batch_size, judge_eval_fraction,
              sft_learning_rate, sft_epochs, sft_batch_size, gspo_learning_rate, gspo_max_steps, gspo_batch_size,
              completions_per_sample, kl_beta, max_tokens, device, gradient_checkpointing, seed, lora)

BinaryJudgeOptions judge_options(const SftToGspoConfig& config, InferenceModel judge) {
  return {.grader_key = "output-quality",
          .criteria = config.judge_criteria,
          .model = std::move(judge),
          .sampling = {.temperature = 0.0, .max_tokens = 128}};
}

// The judge: judge_model as it is, or trained on judge_dataset's verdicts first (and measured on the
// held-out ones).
Task<InferenceModel> spawn_judge(const SftToGspoConfig& config, RecipeContext& ctx) {
  auto folder = config.judge_model.empty() ? config.model_to_train : ModelRef{config.judge_model};
  std::vector<Metric> held_out;
  if (!config.judge_dataset.path.empty()) {
    auto [train, eval] =
      train_eval_split(co_await config.judge_dataset.load(ctx), config.judge_eval_fraction, config.seed);
    held_out = std::move(eval);
    auto builder = co_await folder.to_builder(ctx,
                                              {.kv_cache_len = 1024,
                                               .device = config.device,
                                               .gradient_checkpointing = config.gradient_checkpointing,
                                               .seed = config.seed});
    auto trainee = co_await builder.spawn_train("judge_training", {.max_batch_size = 16, .keep_reference = false});
    co_await SFT({.dataset = binary_judge_demonstrations(judge_options(config, {}), train),
                  .model = trainee,
                  .logger = ctx.logger(),
                  .lr = config.judge_learning_rate,
                  .epochs = config.judge_epochs,
                  .samples_per_batch = config.judge_batch_size,
                  .max_grad_norm = 1.0,
                  .weight_decay = 0.01,
                  .warmup_steps = 10,
                  .seed = config.seed,
                  .stage = "judge_sft"})
      .run();
    folder = ModelRef{co_await trainee.save("judge-model", ctx)};
  }
  auto builder = co_await folder.to_builder(ctx, {.kv_cache_len = 1024, .device = config.device});
  auto judge = co_await builder.spawn_inference("judge", {.max_batch_size = 128});
  if (!held_out.empty()) {
    auto grader = judge_options(config, judge);
    grader.cache = false;
    co_await measure_judge(BinaryJudgeGrader(grader), std::move(held_out), folder.reference, ctx);
  }
  co_return judge;
}

Task<void> sft_to_gspo(SftToGspoConfig config, RecipeContext& ctx) {
  // Checked before any training: a bad value should not cost a run.
  if (!config.format_schema.is_null() && !config.format_schema.is_object())
    throw ConfigError("format_schema: expected a JSON Schema (an object such as {\"type\": \"object\", ...}), got "
                      + config.format_schema.dump());
  auto builder = co_await config.model_to_train.to_builder(ctx,
                                                           {.tp = 1,
                                                            .kv_cache_len = 4096,
                                                            .device = config.device,
                                                            .gradient_checkpointing = config.gradient_checkpointing,
                                                            .adapter = config.lora});
  auto model = co_await builder.spawn_train("sft_then_gspo", {.max_batch_size = 10'000});
  auto logger = ctx.logger();

  auto sft_data = co_await config.sft_dataset.load(ctx);
  co_await SFT({.dataset = sft_data,
                .model = model,
                .logger = logger,
                .lr = config.sft_learning_rate,
                .epochs = config.sft_epochs,
                .samples_per_batch = config.sft_batch_size,
                .max_grad_norm = 1.0,
                .weight_decay = 0.01})
    .run();

  auto prompts = co_await config.gspo_dataset.load(ctx);
  std::vector<Grader> graders = {BinaryJudgeGrader(judge_options(config, co_await spawn_judge(config, ctx)))};
  if (!config.format_schema.is_null())
    graders.push_back(JsonGrader({.grader_key = "format", .schema = config.format_schema}));
  auto combined = CombinedGrader({.grader_key = "combined", .graders = graders});
  co_await GSPO({.dataset = prompts,
                 .model = model,
                 .grader = combined,
                 .logger = logger,
                 .lr = config.gspo_learning_rate,
                 .samples_per_batch = config.gspo_batch_size,
                 .samples_per_mini_batch = 64,
                 .completions_per_sample = config.completions_per_sample,
                 .max_grad_norm = 1.0,
                 .clip_range = 0.2,
                 .kl_beta = config.kl_beta,
                 .max_num_gspo_steps = config.gspo_max_steps,
                 .sampling = {.temperature = 1.0, .max_tokens = config.max_tokens}})
    .run();
  co_await model.save("sft-then-gspo-final", ctx);
}
CHORUS_RECIPE_MAIN(sft_to_gspo)
