// GSPO (sequence-level importance ratios) on prompts whose metadata holds the expected answer:
//
//   ./build/recipes/gspo/gspo --config examples/configs/gspo.json
#include <chorus/chorus.hpp>
using namespace chorus;

struct GspoConfig {
  // Prompts, one JSON object a line, with the expected answer: {"prompt": ..., "answer": ...}.
  Dataset<Prompt> dataset;
  // The model to train: builtin:tiny or the path of a Hugging Face model folder.
  ModelRef model;
  // Where the answer is in a completion: a regex whose first group is compared with "answer".
  std::string answer_pattern = "(-?[0-9]+)";
  // The peak learning rate.
  double lr = 5e-7;
  // Steps of linear learning-rate warm-up.
  int warmup_steps = 0;
  // After the warm-up: constant, or a decay to zero over the run along a cosine or a linear one.
  std::string lr_schedule = "constant";
  // Completions per step (prompts per step: samples_per_batch / completions_per_sample).
  int samples_per_batch = 64;
  // Completions per optimizer step: a step takes samples_per_batch / samples_per_mini_batch updates.
  int samples_per_mini_batch = 32;
  // The group size: completions sampled per prompt.
  int completions_per_sample = 8;
  // GSPO's sequence-ratio clip range: ratios are clipped to [1 - clip_range, 1 + clip_range].
  double clip_range = 0.2;
  // Weight of the KL penalty to the model as it was at the start (0: none).
  double kl_beta = 0.0;
  // GSPO steps to take.
  int max_num_gspo_steps = 100;
  // 0: synchronous steps; 1: generation overlaps training (samples one policy version old).
  int max_staleness = 0;
  // The longest completion, in tokens.
  int max_tokens = 64;
  // Sampling temperature of the completions.
  double temperature = 1.0;
  // Seeds sampling and the order of the data: the same seed, the same run.
  std::uint64_t seed = 0;
  // Where the models run: cpu, or cuda / cuda:N with a CUDA build of LibTorch (docs/gpu.md).
  std::string device = "cpu";
  // Recompute each layer in the backward pass instead of keeping its activations: less memory for
  // long sequences and big batches, one more forward pass of compute (docs/models.md).
  bool gradient_checkpointing = false;
  // LoRA adapters trained instead of every weight: lora.r > 0 (e.g. --set lora.r=16); 0: full fine-tuning.
  LoraOptions lora;
};
CHORUS_CONFIG(GspoConfig, dataset, model, answer_pattern, lr, warmup_steps, lr_schedule, samples_per_batch,
              samples_per_mini_batch, completions_per_sample, clip_range, kl_beta, max_num_gspo_steps, max_staleness,
              max_tokens, temperature, seed, device, gradient_checkpointing, lora)

Task<void> gspo(GspoConfig config, RecipeContext& ctx) {
  auto builder = co_await config.model.to_builder(
    ctx, {.device = config.device, .gradient_checkpointing = config.gradient_checkpointing, .adapter = config.lora});
  auto model = co_await builder.spawn_train("gspo", {.max_batch_size = config.samples_per_batch});
  auto prompts = co_await config.dataset.load(ctx);
  auto correct =
    ExactMatchGrader({.grader_key = "correct", .metadata_key = "answer", .extract = config.answer_pattern});
  auto result = co_await GSPO({.dataset = prompts,
                               .model = model,
                               .grader = correct,
                               .logger = ctx.logger(),
                               .lr = config.lr,
                               .warmup_steps = config.warmup_steps,
                               .lr_schedule = config.lr_schedule,
                               .samples_per_batch = config.samples_per_batch,
                               .samples_per_mini_batch = config.samples_per_mini_batch,
                               .completions_per_sample = config.completions_per_sample,
                               .clip_range = config.clip_range,
                               .kl_beta = config.kl_beta,
                               .max_num_gspo_steps = config.max_num_gspo_steps,
                               .max_staleness = config.max_staleness,
                               .sampling = {.temperature = config.temperature, .max_tokens = config.max_tokens},
                               .seed = config.seed})
                  .run();
  ctx.log().info("GSPO: {} steps, last reward {:.3f}", result.steps, result.reward_mean);
  co_await model.save("gspo-final", ctx);
}
CHORUS_RECIPE_MAIN(gspo)
