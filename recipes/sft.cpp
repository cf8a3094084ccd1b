// The SFT loop: tokenize once, then per epoch shuffle, cut into batches and take one optimizer step
// per batch; measure the held-out loss after each epoch.
#include <chorus/checkpoint.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>
#include <chorus/sft.hpp>

#include "recipes/lr_schedules.hpp"
#include "recipes/step_callbacks.hpp"
#include "recipes/tokenized.hpp"

#include <cmath>
#include <limits>

namespace chorus {

namespace {

Task<SftResult> run_sft(SftOptions options) {
  auto& model = options.model;
  auto samples = co_await detail::tokenize_completions(model, options.dataset);
  std::vector<TrainSample> eval_samples;
  if (!options.eval_dataset.empty())
    eval_samples = co_await detail::tokenize_completions(model, options.eval_dataset);

  auto batch_size = static_cast<std::size_t>(options.samples_per_batch);
  auto steps_per_epoch = static_cast<std::int64_t>((samples.size() + batch_size - 1) / batch_size);
  auto total_steps = steps_per_epoch * options.epochs;
  auto schedule = detail::lr_schedule_of("SFT", options.lr, options.warmup_steps, options.lr_schedule,
                                         options.min_lr_ratio, total_steps);
  SftResult result;
  result.eval_loss = std::numeric_limits<double>::quiet_NaN();
  auto checkpoint = co_await StageCheckpoint::open(model, options.stage, total_steps);
  auto progress = [&result] {
    return Json{{"steps", result.steps}, {"train_loss", result.train_loss}, {"eval_loss", result.eval_loss}};
  };
  if (checkpoint.restored()) {
    const auto& state = checkpoint.state();
    result.steps = state.at("steps").get<std::int64_t>();
    result.train_loss = state.at("train_loss").get<double>();
    // A NaN was written as null.
    result.eval_loss = state.at("eval_loss").is_number() ? state.at("eval_loss").get<double>() : result.eval_loss;
    if (checkpoint.finished())
      co_return result;
  }
  const auto resumed_at = result.steps;
  options.logger.begin_stage(options.stage, total_steps);
  if (!eval_samples.empty())
    options.logger.begin_stage(options.stage + "_eval", options.epochs);

  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    // A resumed run skips the epochs it finished, evaluation included (logged before the checkpoint).
    if (resumed_at > steps_per_epoch * (epoch + 1))
      continue;
    auto order = shuffled(samples, options.seed + static_cast<std::uint64_t>(epoch));
    std::int64_t batch_step = steps_per_epoch * epoch;
    for (auto& batch : batches_of(order, batch_size)) {
      if (++batch_step <= resumed_at)
        continue;
      TrainParams params{.lr = schedule.at(result.steps),
                         .max_grad_norm = options.max_grad_norm,
                         .weight_decay = options.weight_decay,
                         .micro_batch_size = options.samples_per_mini_batch};
      auto report = co_await model.train_sft(std::move(batch), params);
      ++result.steps;
      result.train_loss = report.loss;
      Metrics metrics{{"loss", report.loss}, {"grad_norm", report.grad_norm},
                      {"lr", report.lr},     {"tokens_per_s", report.tokens_per_second},
                      {"epoch", epoch + 1},  {"policy_version", static_cast<double>(report.weight_version)}};
      co_await detail::run_callbacks(options.callbacks, {options.stage, result.steps, total_steps}, metrics);
      options.logger.log(options.stage, result.steps, metrics);
      co_await checkpoint.step_done(result.steps, progress());
    }
    if (!eval_samples.empty()) {
      result.eval_loss = co_await completion_loss(model, eval_samples);
      options.logger.log(options.stage + "_eval", epoch + 1, {{"eval_loss", result.eval_loss}});
    }
  }
  co_await checkpoint.finish(result.steps, progress());
  co_return result;
}

} // namespace

SFT::SFT(SftOptions options) : options_(std::move(options)) {
  if (options_.dataset.empty())
    throw ConfigError("SFT: the dataset is empty");
  if (options_.epochs < 1 || options_.samples_per_batch < 1 || options_.samples_per_mini_batch < 1)
    throw ConfigError("SFT: epochs, samples_per_batch and samples_per_mini_batch must be at least 1");
  detail::lr_schedule_of("SFT", options_.lr, options_.warmup_steps, options_.lr_schedule, options_.min_lr_ratio);
}

Task<SftResult> SFT::run() const {
  return run_sft(options_);
}

Task<double> completion_loss(TrainingModel model, std::vector<TrainSample> samples) {
  std::vector<double> sums(samples.size());
  std::vector<std::size_t> indices(samples.size());
  std::size_t tokens = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    indices[i] = i;
    tokens += samples[i].completion_tokens.size();
  }
  co_await for_each_concurrent(indices, 64, [&](std::size_t i) -> Task<void> {
    auto logprobs = co_await model.logprobs(samples[i].prompt_tokens, samples[i].completion_tokens);
    for (auto value : logprobs)
      sums[i] -= value;
  });
  double total = 0;
  for (auto sum : sums)
    total += sum;
  co_return tokens > 0 ? total / static_cast<double>(tokens) : 0.0;
}

} // namespace chorus
