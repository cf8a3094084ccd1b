// Multi-turn RL: the model guesses a secret number; the environment answers "Higher." or "Lower."
// until the guess is right or the turns run out. The reward is 1 for finding it, less the later it is.
//
//   ./build/recipes/env_grpo/env_grpo --config examples/configs/env_grpo.json
#include <chorus/chorus.hpp>
using namespace chorus;

struct EnvGrpoConfig {
  // Games to play, one JSON object a line: {"prompt": "...", "secret": 7} (the number to guess).
  Dataset<Prompt> dataset;
  // The model to train: builtin:tiny or the path of a Hugging Face model folder.
  ModelRef model;
  // The peak learning rate.
  double lr = 1e-6;
  // Steps of linear learning-rate warm-up.
  int warmup_steps = 0;
  // After the warm-up: constant, or a decay to zero over the run along a cosine or a linear one.
  std::string lr_schedule = "constant";
  // Episodes per step (games per step: samples_per_batch / completions_per_sample).
  int samples_per_batch = 32;
  // The group size: episodes played from each game.
  int completions_per_sample = 8;
  // The most model turns in one episode.
  int max_turns = 4;
  // ENVGRPO steps to take.
  int max_num_grpo_steps = 50;
  // 0: synchronous steps; 1: generation overlaps training (samples one policy version old).
  int max_staleness = 0;
  // The longest model turn, in tokens.
  int max_tokens = 8;
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
CHORUS_CONFIG(EnvGrpoConfig, dataset, model, lr, warmup_steps, lr_schedule, samples_per_batch, completions_per_sample,
              max_turns, max_num_grpo_steps, max_staleness, max_tokens, seed, device, gradient_checkpointing, lora)

// The environment: one instance per episode.
class GuessTheNumber : public Environment {
public:
  explicit GuessTheNumber(int max_turns) : max_turns_(max_turns) {}

  Task<std::vector<ChatMessage>> reset(const Prompt& prompt) override {
    secret_ = prompt.metadata.value("secret", 0);
    co_return prompt.prompt;
  }

  Task<EnvReply> step(const std::vector<ChatMessage>& conversation) override {
    ++turn_;
    const auto& reply = conversation.back().content;
    auto digits = reply.find_first_of("0123456789");
    if (digits == std::string::npos)
      co_return EnvReply::finish(0.0, "no number in '" + reply + "'");
    int guess = std::atoi(reply.c_str() + digits);
    if (guess == secret_)
      co_return EnvReply::finish(1.0 - 0.5 * (turn_ - 1) / std::max(1, max_turns_ - 1), "found it");
    co_return EnvReply::next(guess < secret_ ? "Higher." : "Lower.");
  }

private:
  int max_turns_;
  int secret_ = 0;
  int turn_ = 0;
};

Task<void> env_grpo(EnvGrpoConfig config, RecipeContext& ctx) {
  auto builder = co_await config.model.to_builder(
    ctx, {.device = config.device, .gradient_checkpointing = config.gradient_checkpointing, .adapter = config.lora});
  auto model = co_await builder.spawn_train("env_grpo", {.max_batch_size = config.samples_per_batch});
  auto prompts = co_await config.dataset.load(ctx);
  auto max_turns = config.max_turns;
  auto result = co_await ENVGRPO({.dataset = prompts,
                                  .model = model,
                                  .logger = ctx.logger(),
                                  .lr = config.lr,
                                  .warmup_steps = config.warmup_steps,
                                  .lr_schedule = config.lr_schedule,
                                  .samples_per_batch = config.samples_per_batch,
                                  .completions_per_sample = config.completions_per_sample,
                                  .max_num_grpo_steps = config.max_num_grpo_steps,
                                  .max_staleness = config.max_staleness,
                                  .sampling = {.temperature = 1.0, .max_tokens = config.max_tokens},
                                  .seed = config.seed},
                                 {.environment = [max_turns] { return std::make_unique<GuessTheNumber>(max_turns); },
                                  .max_turns = max_turns})
                  .run();
  ctx.log().info("ENVGRPO: {} steps, last reward {:.3f}", result.steps, result.reward_mean);
  co_await model.save("env-grpo-final", ctx);
}
CHORUS_RECIPE_MAIN(env_grpo)
