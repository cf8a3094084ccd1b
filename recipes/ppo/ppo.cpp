// PPO with a value head on prompts whose metadata holds the expected answer:
//
//   ./build/recipes/ppo/ppo --config examples/configs/ppo.json
#include <chorus/chorus.hpp>
using namespace chorus;

struct PpoConfig {
  // Prompts, one JSON object a line, with the expected answer: {"prompt": ..., "answer": ...}.
  Dataset<Prompt> dataset;
  // The model to train: builtin:tiny or the path of a Hugging Face model folder.
  ModelRef model;
  // Where the answer is in a completion: a regex whose first group is compared with "answer".
  std::string answer_pattern = "(-?[0-9]+)";
  // The learning rate (of the policy and its value head).
  double lr = 1e-6;
  // Steps of linear learning-rate warm-up.
  int warmup_steps = 0;
  // After the warm-up: constant, or a decay to zero over the run along a cosine or a linear one.
  std::string lr_schedule = "constant";
  // Prompts per step, one completion each.
  int samples_per_batch = 64;
  // Completions per optimizer step.
  int samples_per_mini_batch = 32;
  // Passes over each step's rollouts.
  int ppo_epochs = 1;
  // Discount of later rewards (1: none).
  double gamma = 1.0;
  // GAE's lambda: trades the advantages' bias (0) against their variance (1).
  double lambda = 0.95;
  // Weight of the KL penalty to the model as it was at the start (0: none).
  double kl_beta = 0.0;
  // PPO steps to take.
  int max_num_ppo_steps = 100;
  // 0: synchronous steps; 1: generation overlaps training (samples one policy version old).
  int max_staleness = 0;
  // The longest completion, in tokens.
  int max_tokens = 64;
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
CHORUS_CONFIG(PpoConfig, dataset, model, answer_pattern, lr, warmup_steps, lr_schedule, samples_per_batch,
              samples_per_mini_batch, ppo_epochs, gamma, lambda, kl_beta, max_num_ppo_steps, max_staleness, max_tokens,
              seed, device, gradient_checkpointing, lora)

Task<void> ppo(PpoConfig config, RecipeContext& ctx) {
  auto builder = co_await config.model.to_builder(
    ctx, {.device = config.device, .gradient_checkpointing = config.gradient_checkpointing, .adapter = config.lora});
  auto model = co_await builder.spawn_train("ppo", {.max_batch_size = config.samples_per_batch});
  auto prompts = co_await config.dataset.load(ctx);
  auto correct =
    ExactMatchGrader({.grader_key = "correct", .metadata_key = "answer", .extract = config.answer_pattern});
  auto result = co_await PPO({.dataset = prompts,
                              .model = model,
                              .grader = correct,
                              .logger = ctx.logger(),
                              .lr = config.lr,
                              .warmup_steps = config.warmup_steps,
                              .lr_schedule = config.lr_schedule,
                              .samples_per_batch = config.samples_per_batch,
                              .samples_per_mini_batch = config.samples_per_mini_batch,
                              .kl_beta = config.kl_beta,
                              .ppo_epochs = config.ppo_epochs,
                              .gamma = config.gamma,
                              .lambda = config.lambda,
                              .max_num_ppo_steps = config.max_num_ppo_steps,
                              .max_staleness = config.max_staleness,
                              .sampling = {.temperature = 1.0, .max_tokens = config.max_tokens},
                              .seed = config.seed})
                  .run();
  ctx.log().info("PPO: {} steps, last reward {:.3f}", result.steps, result.reward_mean);
  co_await model.save("ppo-final", ctx);
}
CHORUS_RECIPE_MAIN(ppo)
