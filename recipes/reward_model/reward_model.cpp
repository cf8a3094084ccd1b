// A reward model: a scoring model trained on preferences ({"prompt", "chosen", "rejected"}, the
// Bradley-Terry loss) or on labelled completions ({"prompt", "completion", "label"}, the squared
// error), with a share held out to measure it. Saves a ...ForSequenceClassification folder that
// ScoringModelGrader (and transformers) load:
//
//   ./build/recipes/reward_model/reward_model --config examples/configs/reward_model.json
#include <chorus/chorus.hpp>
using namespace chorus;

struct RewardModelConfig {
  // Preference pairs, one JSON object a line: {"prompt": ..., "chosen": ..., "rejected": ...}. Trained
  // with the Bradley-Terry loss. Leave empty to train on metric_dataset instead.
  Dataset<Preference> preference_dataset;
  // Labelled completions, one a line: {"prompt": ..., "completion": ..., "label": 0.8} (the label's key:
  // {"path": ..., "label_key": "rating"}). Trained with the squared error. Used when preference_dataset
  // is empty.
  Dataset<Metric> metric_dataset;
  // Where the scoring model starts: builtin:tiny, a language model's folder (its body under a new score
  // head) or a scoring model's folder (...ForSequenceClassification).
  ModelRef model;
  // The peak learning rate.
  double lr = 1e-5;
  // Passes over the training data.
  int epochs = 1;
  // Pairs (or labelled completions) per optimizer step.
  int samples_per_batch = 32;
  // Share of the data held out to measure the model: its pairwise accuracy (or squared error).
  double eval_fraction = 0.2;
  // Seeds the new score head, the held-out split and the order of the data.
  std::uint64_t seed = 0;
  // Where the model runs: cpu, or cuda / cuda:N with a CUDA build of LibTorch (docs/gpu.md).
  std::string device = "cpu";
  // Recompute each layer in the backward pass instead of keeping its activations: less memory for
  // long sequences and big batches, one more forward pass of compute (docs/models.md).
  bool gradient_checkpointing = false;
  // LoRA adapters trained instead of every weight: lora.r > 0 (e.g. --set lora.r=16); 0: full fine-tuning.
  LoraOptions lora;
};
CHORUS_CONFIG(RewardModelConfig, preference_dataset, metric_dataset, model, lr, epochs, samples_per_batch,
              eval_fraction, seed, device, gradient_checkpointing, lora)

Task<void> reward_model(RewardModelConfig config, RecipeContext& ctx) {
  bool by_pairs = !config.preference_dataset.path.empty();
  if (!by_pairs && config.metric_dataset.path.empty())
    throw ConfigError("give preference_dataset (pairs) or metric_dataset (labelled completions)");
  RewardModellingOptions options{
    .lr = config.lr, .epochs = config.epochs, .samples_per_batch = config.samples_per_batch, .seed = config.seed};
  if (by_pairs)
    std::tie(options.preferences, options.eval_preferences) =
      train_eval_split(co_await config.preference_dataset.load(ctx), config.eval_fraction, config.seed);
  else
    std::tie(options.metrics, options.eval_metrics) =
      train_eval_split(co_await config.metric_dataset.load(ctx), config.eval_fraction, config.seed);
  auto builder = co_await config.model.to_builder(ctx,
                                                  {.device = config.device,
                                                   .gradient_checkpointing = config.gradient_checkpointing,
                                                   .seed = config.seed,
                                                   .adapter = config.lora});
  auto model = co_await builder.spawn_scoring("reward_model");
  options.model = model;
  options.logger = ctx.logger();
  auto result = co_await RewardModelling(std::move(options)).run();
  if (by_pairs)
    ctx.log().info("reward model: {} steps, last loss {:.4f}, held-out pairwise accuracy {}", result.steps, result.loss,
                   result.eval_accuracy >= 0 ? fmt::format("{:.2f}", result.eval_accuracy) : "n/a");
  else
    ctx.log().info("reward model: {} steps, last loss {:.4f}, held-out squared error {}", result.steps, result.loss,
                   result.eval_mse >= 0 ? fmt::format("{:.4f}", result.eval_mse) : "n/a");
  co_await model.save("reward-model", ctx);
}
CHORUS_RECIPE_MAIN(reward_model)
