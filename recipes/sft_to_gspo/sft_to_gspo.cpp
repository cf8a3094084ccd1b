// The two-stage recipe of the README: SFT warm-up on demonstrations, then GSPO on prompts graded by
// a judge model (docs/architecture.md follows its awaits down to the actors). Run with a config
// (examples/configs/sft_to_gspo.json runs on builtin:tiny):
//
//   ./build/recipes/sft_to_gspo/sft_to_gspo --config examples/configs/sft_to_gspo.json
#include <chorus/chorus.hpp>
using namespace chorus;

struct SftToGspoConfig {
  // Demonstrations with expected outputs: {"prompt": ..., "completion": ...} or {"messages": [...]}.
  Dataset<Completion> sft_dataset;
  // Prompts only, for GSPO: {"prompt": ...} or {"messages": [...]}.
  Dataset<Prompt> gspo_dataset;
  // The model to train (and, as a judge, to grade): builtin:tiny or a Hugging Face model folder.
  ModelRef model_to_train;
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
  // The longest completion, in tokens.
  int max_tokens = 256;
  // Where the models run: cpu, or cuda / cuda:N with a CUDA build of LibTorch (docs/gpu.md).
  std::string device = "cpu";
};
CHORUS_CONFIG(SftToGspoConfig, sft_dataset, gspo_dataset, model_to_train, sft_learning_rate, sft_epochs, sft_batch_size,
              gspo_learning_rate, gspo_max_steps, gspo_batch_size, max_tokens, device)

Task<void> sft_to_gspo(SftToGspoConfig config, RecipeContext& ctx) {
  auto builder =
    co_await config.model_to_train.to_builder(ctx, {.tp = 1, .kv_cache_len = 4096, .device = config.device});
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
  auto judge_builder = co_await config.model_to_train.to_builder(ctx, {.tp = 1, .device = config.device});
  auto judge = co_await judge_builder.spawn_inference("judge");
  auto grader = BinaryJudgeGrader({.grader_key = "output-quality",
                                   .criteria = "Is the output high-quality, well-formed, and correct?",
                                   .model = judge});
  auto combined = CombinedGrader({.grader_key = "combined", .graders = {grader}});
  co_await GSPO({.dataset = prompts,
                 .model = model,
                 .grader = combined,
                 .logger = logger,
                 .lr = config.gspo_learning_rate,
                 .samples_per_batch = config.gspo_batch_size,
                 .samples_per_mini_batch = 64,
                 .completions_per_sample = 4,
                 .max_grad_norm = 1.0,
                 .clip_range = 0.2,
                 .kl_beta = 0.1,
                 .max_num_gspo_steps = config.gspo_max_steps,
                 .sampling = {.temperature = 1.0, .max_tokens = config.max_tokens}})
    .run();
  co_await model.save("sft-then-gspo-final", ctx);
}
CHORUS_RECIPE_MAIN(sft_to_gspo)
