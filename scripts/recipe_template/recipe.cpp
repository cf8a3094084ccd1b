// @NAME@: a recipe of your own. GRPO teaches the model to answer each prompt with the word it asks
// for, rewarded by a grader written as a plain function.
//
//   ./build/@NAME@                                   # defaults: builtin:tiny, data/prompts.jsonl
//   ./build/@NAME@ --set steps=20 --set lr=1e-3      # change any config field
//   ./build/@NAME@ --help                            # every field, its type and default
#include <chorus/chorus.hpp>

#include <algorithm>
#include <cctype>

using namespace chorus;

struct RecipeConfig {
  // Prompts, one JSON object a line: {"prompt": "...", "word": "..."} ("word" is the expected answer).
  Dataset<Prompt> prompts{RECIPE_DATA_DIR "/prompts.jsonl"};
  // A Hugging Face folder, or builtin:tiny (a small model created from scratch, for trying things out).
  ModelRef model;
  // Adam's learning rate.
  double lr = 5e-4;
  // GRPO steps to take.
  int steps = 20;
  // Completions per step, and completions sampled for each prompt (the group size).
  int samples_per_batch = 32;
  int completions_per_sample = 8;
  std::uint64_t seed = 0;
};
CHORUS_CONFIG(RecipeConfig, prompts, model, lr, steps, samples_per_batch, completions_per_sample, seed)

// The reward: 1 for an answer that starts with the expected word; otherwise partial credit, so that
// an untrained model already gets a signal: half the share of the word's letters the answer contains.
double says_the_word(const Sample& sample) {
  std::string word = sample.metadata.value("word", "");
  std::string answer = sample.completion;
  std::transform(answer.begin(), answer.end(), answer.begin(), [](unsigned char c) { return std::tolower(c); });
  if (word.empty())
    return 0.0;
  if (answer.rfind(word, 0) == 0)
    return 1.0;
  auto found = std::count_if(word.begin(), word.end(), [&](char c) { return answer.find(c) != std::string::npos; });
  return 0.5 * static_cast<double>(found) / static_cast<double>(word.size());
}

Task<void> @NAME@(RecipeConfig config, RecipeContext& ctx) {
  auto builder = co_await config.model.to_builder(ctx, {.kv_cache_len = 256});
  auto model = co_await builder.spawn_train("policy", {.max_batch_size = config.samples_per_batch});
  auto prompts = co_await config.prompts.load(ctx);

  auto grader = FunctionGrader("says_the_word", says_the_word);
  auto result = co_await GRPO({.dataset = prompts, .model = model, .grader = grader, .logger = ctx.logger(),
                               .lr = config.lr, .samples_per_batch = config.samples_per_batch,
                               .samples_per_mini_batch = config.samples_per_batch,
                               .completions_per_sample = config.completions_per_sample,
                               .max_num_grpo_steps = config.steps,
                               .sampling = {.temperature = 1.0, .max_tokens = 8}, .seed = config.seed})
                    .run();
  ctx.log().info("GRPO: {} steps, reward of the last step {:.3f}", result.steps, result.reward_mean);
  co_await model.save("@NAME@-final", ctx);
}
CHORUS_RECIPE_MAIN(@NAME@)
