// The reward-modelling loop: tokenize pairs (or labelled completions) once through the scoring
// model's chat template, then per epoch shuffle, batch and step; held-out figures every eval_every
// steps and at the end.
#include <chorus/checkpoint.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>
#include <chorus/reward_modelling.hpp>

#include "recipes/lr_schedules.hpp"
#include "recipes/step_callbacks.hpp"
#include "recipes/tokenized.hpp"

namespace chorus {

namespace {

// The held-out figures of tokenized pairs and labelled samples.
Task<ScoringEvaluation> evaluate_tokens(ScoringModel model, const std::vector<PreferencePair>& pairs,
                                        const std::vector<TrainSample>& labelled) {
  ScoringEvaluation result;
  if (!pairs.empty()) {
    std::vector<TrainSample> sequences;
    for (const auto& pair : pairs) {
      sequences.push_back({pair.prompt_tokens, pair.chosen_tokens});
      sequences.push_back({pair.prompt_tokens, pair.rejected_tokens});
    }
    auto scores = co_await model.score_tokens(std::move(sequences));
    double right = 0;
    for (std::size_t i = 0; i < pairs.size(); ++i)
      right += scores[2 * i] > scores[2 * i + 1] ? 1.0 : 0.0;
    result.accuracy = right / static_cast<double>(pairs.size());
  }
  if (!labelled.empty()) {
    auto scores = co_await model.score_tokens(labelled);
    double squared = 0;
    for (std::size_t i = 0; i < labelled.size(); ++i)
      squared += (scores[i] - labelled[i].label) * (scores[i] - labelled[i].label);
    result.mse = squared / static_cast<double>(labelled.size());
  }
  co_return result;
}

Task<RewardModellingResult> run_reward_modelling(RewardModellingOptions options) {
  auto& model = options.model;
  bool by_pairs = !options.preferences.empty();
  auto pairs = co_await detail::tokenize_preferences(model, options.preferences);
  auto labelled = co_await detail::tokenize_completions(model, options.metrics);
  auto eval_pairs = co_await detail::tokenize_preferences(model, options.eval_preferences);
  auto eval_labelled = co_await detail::tokenize_completions(model, options.eval_metrics);
  bool held_out = !eval_pairs.empty() || !eval_labelled.empty();

  auto count = by_pairs ? pairs.size() : labelled.size();
  auto batch_size = static_cast<std::size_t>(options.samples_per_batch);
  auto total_steps = static_cast<std::int64_t>((count + batch_size - 1) / batch_size) * options.epochs;
  auto schedule = detail::lr_schedule_of("RewardModelling", options.lr, options.warmup_steps, options.lr_schedule,
                                         options.min_lr_ratio, total_steps);
  RewardModellingResult result;
  auto checkpoint = co_await StageCheckpoint::open(model, options.stage, total_steps);
  auto progress = [&result] {
    return Json{{"steps", result.steps},
                {"loss", result.loss},
                {"train_accuracy", result.train_accuracy},
                {"eval_accuracy", result.eval_accuracy},
                {"eval_mse", result.eval_mse}};
  };
  if (checkpoint.restored()) {
    const auto& state = checkpoint.state();
    result.steps = state.at("steps").get<std::int64_t>();
    result.loss = state.at("loss").get<double>();
    result.train_accuracy = state.at("train_accuracy").get<double>();
    result.eval_accuracy = state.at("eval_accuracy").get<double>();
    result.eval_mse = state.at("eval_mse").get<double>();
    if (checkpoint.finished())
      co_return result;
  }
  // The held-out figures, kept in the result and added to `logged`.
  auto evaluate = [&](Metrics& logged) -> Task<void> {
    auto figures = co_await evaluate_tokens(model, eval_pairs, eval_labelled);
    result.eval_accuracy = figures.accuracy;
    result.eval_mse = figures.mse;
    if (figures.accuracy >= 0)
      logged.emplace_back("eval/accuracy", figures.accuracy);
    if (figures.mse >= 0)
      logged.emplace_back("eval/mse", figures.mse);
  };

  const auto resumed_at = result.steps;
  options.logger.begin_stage(options.stage, total_steps);
  std::int64_t batch_step = 0;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    auto seed = options.seed + static_cast<std::uint64_t>(epoch);
    auto pair_batches = batches_of(shuffled(pairs, seed), batch_size);
    auto labelled_batches = batches_of(shuffled(labelled, seed), batch_size);
    auto batches = by_pairs ? pair_batches.size() : labelled_batches.size();
    for (std::size_t b = 0; b < batches; ++b) {
      if (++batch_step <= resumed_at)
        continue; // done before the checkpoint a resumed run continues from
      TrainParams params{.lr = schedule.at(result.steps),
                         .max_grad_norm = options.max_grad_norm,
                         .weight_decay = options.weight_decay,
                         .micro_batch_size = options.samples_per_mini_batch};
      auto report = by_pairs ? co_await model.train_pairs(std::move(pair_batches[b]), params)
                             : co_await model.train_regression(std::move(labelled_batches[b]), params);
      ++result.steps;
      result.loss = report.loss;
      result.train_accuracy = report.reward_accuracy;
      Metrics logged{{"loss", report.loss},
                     {"grad_norm", report.grad_norm},
                     {"lr", report.lr},
                     {"tokens_per_s", report.tokens_per_second},
                     {"epoch", epoch + 1}};
      if (by_pairs) {
        logged.emplace_back("reward_accuracy", report.reward_accuracy);
        logged.emplace_back("reward_margin", report.reward_margin);
      }
      bool due = result.steps == total_steps || (options.eval_every > 0 && result.steps % options.eval_every == 0);
      if (held_out && due)
        co_await evaluate(logged);
      co_await detail::run_callbacks(options.callbacks, {options.stage, result.steps, total_steps}, logged);
      options.logger.log(options.stage, result.steps, logged);
      co_await checkpoint.step_done(result.steps, progress());
    }
  }
  if (held_out && result.eval_accuracy < 0 && result.eval_mse < 0) { // resumed after its last step
    Metrics unused;
    co_await evaluate(unused);
  }
  co_await checkpoint.finish(result.steps, progress());
  co_return result;
}

} // namespace

RewardModelling::RewardModelling(RewardModellingOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (o.preferences.empty() && o.metrics.empty())
    throw ConfigError("RewardModelling: no data: give preferences (Bradley-Terry) or metrics (labelled completions)");
  if (!o.preferences.empty() && !o.metrics.empty())
    throw ConfigError("RewardModelling: give preferences or metrics, not both");
  if (!o.model)
    throw ConfigError("RewardModelling: no model (spawn one with ModelBuilder::spawn_scoring)");
  if (o.epochs < 1 || o.samples_per_batch < 1 || o.samples_per_mini_batch < 1)
    throw ConfigError("RewardModelling: epochs, samples_per_batch and samples_per_mini_batch must be at least 1");
  if (o.eval_every < 0)
    throw ConfigError("RewardModelling: eval_every must be >= 0 (0: at the end only)");
  detail::lr_schedule_of("RewardModelling", o.lr, o.warmup_steps, o.lr_schedule, o.min_lr_ratio);
}

Task<RewardModellingResult> RewardModelling::run() const {
  return run_reward_modelling(options_);
}

Task<ScoringEvaluation> evaluate_scoring_model(ScoringModel model, const std::vector<Preference>& pairs,
                                               const std::vector<Metric>& labelled) {
  auto tokenized_pairs = co_await detail::tokenize_preferences(model, pairs);
  auto tokenized_labelled = co_await detail::tokenize_completions(model, labelled);
  co_return co_await evaluate_tokens(model, tokenized_pairs, tokenized_labelled);
}

} // namespace chorus
