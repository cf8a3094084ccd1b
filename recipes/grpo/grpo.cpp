// GRPO (or its variants dr_grpo, dapo, rloo) on prompts whose metadata holds the expected answer:
//
//   ./build/recipes/grpo/grpo --config examples/configs/grpo.json
#include <chorus/chorus.hpp>
using namespace chorus;

struct GrpoConfig {
  Dataset<Prompt> dataset; // {"prompt": ..., "answer": ...}
  ModelRef model;
  /// Where the answer is in a completion: a regex whose first group is compared with "answer".
  std::string answer_pattern = "(-?[0-9]+)";
  std::string variant = "grpo";
  double lr = 1e-6;
  int samples_per_batch = 64;
  int samples_per_mini_batch = 32;
  int completions_per_sample = 8;
  double kl_beta = 0.0;
  int max_num_grpo_steps = 100;
  /// 0: synchronous steps; 1: generation overlaps training (samples one policy version old).
  int max_staleness = 0;
  int max_tokens = 64;
  double temperature = 1.0;
  std::uint64_t seed = 0;
};
CHORUS_CONFIG(GrpoConfig, dataset, model, answer_pattern, variant, lr, samples_per_batch, samples_per_mini_batch,
              completions_per_sample, kl_beta, max_num_grpo_steps, max_staleness, max_tokens, temperature, seed)

Task<void> grpo(GrpoConfig config, RecipeContext& ctx) {
  auto builder = co_await config.model.to_builder(ctx);
  auto model = co_await builder.spawn_train("grpo", {.max_batch_size = config.samples_per_batch});
  auto prompts = co_await config.dataset.load(ctx);
  auto correct = ExactMatchGrader({.grader_key = "correct", .metadata_key = "answer", .extract = config.answer_pattern});
  auto result = co_await GRPO({.dataset = prompts, .model = model, .grader = correct, .logger = ctx.logger(),
                               .lr = config.lr, .samples_per_batch = config.samples_per_batch,
                               .samples_per_mini_batch = config.samples_per_mini_batch,
                               .completions_per_sample = config.completions_per_sample, .kl_beta = config.kl_beta,
                               .variant = config.variant, .max_num_grpo_steps = config.max_num_grpo_steps,
                               .max_staleness = config.max_staleness,
                               .sampling = {.temperature = config.temperature, .max_tokens = config.max_tokens},
                               .seed = config.seed})
                  .run();
  ctx.log().info("GRPO: {} steps, last reward {:.3f}", result.steps, result.reward_mean);
  co_await model.save("grpo-final", ctx);
}
CHORUS_RECIPE_MAIN(grpo)
