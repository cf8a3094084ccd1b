// A recipe of your own, in one file: a config, a custom grader, a custom multi-turn environment, and
// the algorithms awaited one after the other. Runs on the built-in tiny model in under a minute:
//
//   ./build/examples/custom_recipe/custom_recipe --set grpo_steps=10
#include <chorus/chorus.hpp>

#include <cctype>

using namespace chorus;

struct CustomConfig {
  // The model to train: builtin:tiny or the path of a Hugging Face model folder.
  ModelRef model;
  // Steps of GRPO on the tidy-answer grader.
  int grpo_steps = 5;
  // Steps of ENVGRPO on the counting game.
  int env_steps = 5;
  // The learning rate of both stages.
  double lr = 5e-4;
  // Seeds sampling: the same seed, the same run.
  std::uint64_t seed = 0;
};
CHORUS_CONFIG(CustomConfig, model, grpo_steps, env_steps, lr, seed)

// A grader is any function of the sample: here, answers that are short and end with a period.
double tidy_answer(const Sample& sample) {
  const auto& text = sample.completion;
  if (text.empty())
    return 0.0;
  double score = text.size() <= 12 ? 0.5 : 0.0;
  return score + (text.back() == '.' ? 0.5 : 0.0);
}

// An environment plays the other side of the conversation: it says a number, the model must answer
// with the next one, three rounds; the reward is the share of right answers.
class CountingGame : public Environment {
public:
  Task<std::vector<ChatMessage>> reset(const Prompt& prompt) override {
    number_ = prompt.metadata.value("start", 1);
    co_return std::vector<ChatMessage>{{"user", "Count with me, one number per turn: " + std::to_string(number_)}};
  }

  Task<EnvReply> step(const std::vector<ChatMessage>& conversation) override {
    auto expected = std::to_string(number_ + 1);
    right_ += conversation.back().content.find(expected) != std::string::npos ? 1 : 0;
    number_ += 2; // the model said number_ + 1; the environment says the next one
    if (++round_ == 3)
      co_return EnvReply::finish(right_ / 3.0, std::to_string(right_) + " of 3 right");
    co_return EnvReply::next(std::to_string(number_));
  }

private:
  int number_ = 1, round_ = 0, right_ = 0;
};

Task<void> custom_recipe(CustomConfig config, RecipeContext& ctx) {
  auto builder = co_await config.model.to_builder(ctx, {.kv_cache_len = 512});
  auto model = co_await builder.spawn_train("policy", {.max_batch_size = 64});

  // Prompts made here; a real recipe would load a Dataset<Prompt> from a JSONL file.
  std::vector<Prompt> questions, games;
  for (int i = 0; i < 16; ++i) {
    questions.push_back({{{"user", "Describe the number " + std::to_string(i) + " in a few words."}}, Json::object()});
    games.push_back({{}, Json{{"start", 1 + i}}});
  }

  auto tidy = FunctionGrader("tidy", tidy_answer);
  auto graded = co_await GRPO({.dataset = questions,
                               .model = model,
                               .grader = tidy,
                               .logger = ctx.logger(),
                               .lr = config.lr,
                               .samples_per_batch = 32,
                               .completions_per_sample = 8,
                               .max_num_grpo_steps = config.grpo_steps,
                               .sampling = {.temperature = 1.0, .max_tokens = 16},
                               .seed = config.seed})
                  .run();

  auto played = co_await ENVGRPO({.dataset = games,
                                  .model = model,
                                  .logger = ctx.logger(),
                                  .lr = config.lr,
                                  .samples_per_batch = 32,
                                  .completions_per_sample = 8,
                                  .max_num_grpo_steps = config.env_steps,
                                  .sampling = {.temperature = 1.0, .max_tokens = 8},
                                  .seed = config.seed},
                                 {.environment = [] { return std::make_unique<CountingGame>(); }, .max_turns = 3})
                  .run();

  std::printf("tidy-answer reward after %lld GRPO steps: %.3f\n", static_cast<long long>(graded.steps),
              graded.reward_mean);
  std::printf("counting-game reward after %lld ENVGRPO steps: %.3f\n", static_cast<long long>(played.steps),
              played.reward_mean);
}
CHORUS_RECIPE_MAIN(custom_recipe)
