// The DPO loop: tokenize each preference's two turns once, then per epoch shuffle, batch and step.
#include <chorus/checkpoint.hpp>
#include <chorus/dpo.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>

#include "recipes/lr_schedules.hpp"
#include "recipes/step_callbacks.hpp"
#include "recipes/tokenized.hpp"

namespace chorus {

namespace {

Task<DpoResult> run_dpo(DpoOptions options) {
  auto& model = options.model;
  auto pairs = co_await detail::tokenize_preferences(model, options.dataset);

  auto batch_size = static_cast<std::size_t>(options.samples_per_batch);
  auto total_steps = static_cast<std::int64_t>((pairs.size() + batch_size - 1) / batch_size) * options.epochs;
  auto schedule = detail::lr_schedule_of("DPO", options.lr, options.warmup_steps, options.lr_schedule,
                                         options.min_lr_ratio, total_steps);
  DpoResult result;
  auto checkpoint = co_await StageCheckpoint::open(model, options.stage, total_steps);
  auto progress = [&result] {
    return Json{{"steps", result.steps}, {"loss", result.loss}, {"reward_accuracy", result.reward_accuracy}};
  };
  if (checkpoint.restored()) {
    const auto& state = checkpoint.state();
    result.steps = state.at("steps").get<std::int64_t>();
    result.loss = state.at("loss").get<double>();
    result.reward_accuracy = state.at("reward_accuracy").get<double>();
    if (checkpoint.finished())
      co_return result;
  }
  const auto resumed_at = result.steps;
  options.logger.begin_stage(options.stage, total_steps);
  std::int64_t batch_step = 0;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    for (auto& batch : batches_of(shuffled(pairs, options.seed + static_cast<std::uint64_t>(epoch)), batch_size)) {
      if (++batch_step <= resumed_at)
        continue; // done before the checkpoint a resumed run continues from
      TrainParams params{.lr = schedule.at(result.steps),
                         .max_grad_norm = options.max_grad_norm,
                         .weight_decay = options.weight_decay,
                         .micro_batch_size = options.samples_per_mini_batch,
                         .dpo_beta = options.beta,
                         .dpo_loss = options.loss_type,
                         .dpo_label_smoothing = options.label_smoothing};
      auto report = co_await model.train_dpo(std::move(batch), params);
      ++result.steps;
      result.loss = report.loss;
      result.reward_accuracy = report.reward_accuracy;
      Metrics metrics{{"loss", report.loss},
                      {"reward_accuracy", report.reward_accuracy},
                      {"reward_margin", report.reward_margin},
                      {"grad_norm", report.grad_norm},
                      {"lr", report.lr},
                      {"tokens_per_s", report.tokens_per_second},
                      {"epoch", epoch + 1},
                      {"policy_version", static_cast<double>(report.weight_version)}};
      co_await detail::run_callbacks(options.callbacks, {options.stage, result.steps, total_steps}, metrics);
      options.logger.log(options.stage, result.steps, metrics);
      co_await checkpoint.step_done(result.steps, progress());
    }
  }
  co_await checkpoint.finish(result.steps, progress());
  co_return result;
}

} // namespace

DPO::DPO(DpoOptions options) : options_(std::move(options)) {
  if (options_.dataset.empty())
    throw ConfigError("DPO: the dataset is empty");
  if (options_.epochs < 1 || options_.samples_per_batch < 1 || options_.samples_per_mini_batch < 1)
    throw ConfigError("DPO: epochs, samples_per_batch and samples_per_mini_batch must be at least 1");
  if (!(options_.beta > 0))
    throw ConfigError("DPO: beta must be > 0");
  if (options_.loss_type != "sigmoid" && options_.loss_type != "hinge" && options_.loss_type != "ipo")
    throw ConfigError("DPO: loss_type must be sigmoid, hinge or ipo, got '" + options_.loss_type + "'");
  if (!(options_.label_smoothing >= 0 && options_.label_smoothing < 0.5))
    throw ConfigError("DPO: label_smoothing must be in [0, 0.5), got " + std::to_string(options_.label_smoothing));
  if (options_.label_smoothing > 0 && options_.loss_type != "sigmoid")
    throw ConfigError("DPO: label_smoothing applies to the sigmoid loss only, not '" + options_.loss_type + "'");
  detail::lr_schedule_of("DPO", options_.lr, options_.warmup_steps, options_.lr_schedule, options_.min_lr_ratio);
}

Task<DpoResult> DPO::run() const {
  return run_dpo(options_);
}

} // namespace chorus
