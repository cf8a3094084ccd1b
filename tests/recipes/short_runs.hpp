// The short training runs the algorithm tests and the GPU recipe tests share: SFT on one answer and
// GSPO on the x task, each returning the figure before and after.
#pragma once

#include <chorus/chorus.hpp>

#include "recipes/tokenized.hpp"
#include "tests/recipes/x_task.hpp"

#include <string>
#include <utility>
#include <vector>

namespace chorus::test {

// SFT on twelve demonstrations of one answer, 4 per step, for `epochs`: the loss on them before, and
// the result (its eval_loss on the same demonstrations after).
inline Task<std::pair<double, SftResult>> sft_on_one_answer(TrainingModel model, int epochs) {
  std::vector<Completion> examples;
  for (int i = 0; i < 12; ++i)
    examples.push_back({{{"user", "Name a color " + std::to_string(i)}}, "blue", Json::object()});
  auto before = co_await completion_loss(model, co_await detail::tokenize_completions(model, examples));
  auto result = co_await SFT({.dataset = examples,
                              .model = model,
                              .lr = 3e-3,
                              .epochs = epochs,
                              .samples_per_batch = 4,
                              .eval_dataset = examples})
                  .run();
  co_return std::pair{before, result};
}

// GSPO on the x task: the reward of one step at learning rate 0, then of 12 steps at 2e-3.
inline Task<std::pair<double, double>> gspo_on_x(TrainingModel model, double kl_beta) {
  auto grader = FunctionGrader("x", share_of_x);
  auto options = GspoOptions{.dataset = x_task_prompts(),
                             .model = model,
                             .grader = grader,
                             .lr = 0.0,
                             .samples_per_batch = 32,
                             .completions_per_sample = 8,
                             .max_num_gspo_steps = 1,
                             .sampling = {.temperature = 1.0, .max_tokens = 8}};
  auto first = co_await GSPO(options).run();
  options.lr = 2e-3;
  options.samples_per_mini_batch = 16;
  options.kl_beta = kl_beta;
  options.max_num_gspo_steps = 12;
  auto trained = co_await GSPO(options).run();
  co_return std::pair{first.reward_mean, trained.reward_mean};
}

} // namespace chorus::test
