// The PPO loop: prompts -> one completion each, graded (the rollout pipeline, ahead of training) ->
// the value head's estimates when the step starts -> GAE -> (whitened) per-token advantages and
// returns -> clipped policy + value steps over mini-batches.
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>
#include <chorus/ppo.hpp>

#include "recipes/lr_schedules.hpp"
#include "recipes/policy_optimization.hpp"
#include "recipes/rollout_pipeline.hpp"
#include "recipes/step_callbacks.hpp"

#include <cmath>

namespace chorus {

GaeResult generalized_advantages(const std::vector<double>& rewards, const std::vector<double>& values, double gamma,
                                 double lambda) {
  if (rewards.size() != values.size())
    throw Error("generalized_advantages: " + std::to_string(rewards.size()) + " rewards but "
                + std::to_string(values.size()) + " values");
  GaeResult result;
  result.advantages.assign(rewards.size(), 0.0);
  result.returns.assign(rewards.size(), 0.0);
  double next_advantage = 0, next_value = 0;
  for (auto t = rewards.size(); t-- > 0;) {
    double delta = rewards[t] + gamma * next_value - values[t];
    next_advantage = delta + gamma * lambda * next_advantage;
    next_value = values[t];
    result.advantages[t] = next_advantage;
    result.returns[t] = next_advantage + values[t];
  }
  return result;
}

namespace {

using detail::mean_of;
using detail::mean_over;

// The policy's learning-rate schedule over `steps` steps.
LrSchedule lr_schedule_of(const PpoOptions& o, std::int64_t steps) {
  return detail::lr_schedule_of("PPO", o.lr, o.warmup_steps, o.lr_schedule, o.min_lr_ratio, steps);
}

// The training side of PPO; the rollouts (one per prompt) come from the pipeline, produced concurrently.
struct PpoRun {
  PpoOptions o;
  detail::RolloutPipeline pipeline;
  detail::RlProgress result;
  StageCheckpoint checkpoint;
  LrSchedule schedule;       // over the run's steps, counted from 0
  LrSchedule value_schedule; // the separate value model's: value_lr on the same schedule

  Task<void> train() {
    for (int step = static_cast<int>(checkpoint.step()) + 1; step <= o.max_num_ppo_steps; ++step) {
      auto rollouts = co_await pipeline.next_step(step);
      detail::RewardStats stats;
      auto samples = samples_of(rollouts, stats);
      std::vector<TrainReport> reports;
      double value_mean = 0;
      {
        detail::StageClock::Busy training(pipeline.clock(), detail::StageClock::train);
        value_mean = co_await add_advantages(samples);
        reports = co_await train_on(std::move(samples), step);
      }
      pipeline.step_trained(step, o.model.weight_version());
      auto metrics = step_metrics(stats, reports, value_mean, rollouts, step);
      co_await detail::run_callbacks(o.callbacks, {o.stage, step, o.max_num_ppo_steps}, metrics);
      o.logger.log(o.stage, step, metrics);
      result.steps = step;
      result.reward_mean = mean_of(stats.rewards);
      co_await checkpoint.step_done(step, detail::rl_progress(result, pipeline));
    }
    co_await checkpoint.finish(result.steps, detail::rl_progress(result, pipeline));
  }

  // The rollouts as samples whose `advantage` holds the grade for now; empty completions are left out.
  static std::vector<TrainSample> samples_of(detail::StepRollouts& rollouts, detail::RewardStats& stats) {
    std::vector<TrainSample> samples;
    for (auto& group : rollouts.groups) {
      for (auto& g : group.members) {
        stats.add(g.grade, g.generated);
        if (g.generated == 0 || g.grade.ignored) // an ignored grade is no reward to learn from
          continue;
        samples.push_back(
          {std::move(g.prompt_tokens), std::move(g.tokens), g.grade.score, std::move(g.logprobs), g.weight_version});
      }
    }
    return samples;
  }

  // The value head's estimates now, then GAE with the grade on each completion's last token: each
  // sample's per-token advantages, old values and returns (advantages whitened over the batch if
  // asked). Returns the mean value estimate.
  Task<double> add_advantages(std::vector<TrainSample>& samples) {
    auto values = o.value_model ? co_await o.value_model.values(samples) : co_await o.model.values(samples);
    std::vector<double> all_advantages;
    double value_sum = 0, count = 0;
    for (std::size_t i = 0; i < samples.size(); ++i) {
      auto& sample = samples[i];
      std::vector<double> token_rewards(sample.completion_tokens.size(), 0.0),
        token_values(values[i].begin(), values[i].end());
      token_rewards.back() = sample.advantage; // the grade
      auto gae = generalized_advantages(token_rewards, token_values, o.gamma, o.lambda);
      sample.old_values.assign(values[i].begin(), values[i].end());
      sample.returns.assign(gae.returns.begin(), gae.returns.end());
      sample.token_advantages.assign(gae.advantages.begin(), gae.advantages.end());
      all_advantages.insert(all_advantages.end(), gae.advantages.begin(), gae.advantages.end());
      for (auto x : values[i]) {
        value_sum += x;
        ++count;
      }
    }
    if (o.whiten_advantages && all_advantages.size() > 1)
      whiten(samples, all_advantages);
    co_return count > 0 ? value_sum / count : 0.0;
  }

  // Advantages to mean 0 and std 1 over the batch.
  static void whiten(std::vector<TrainSample>& samples, const std::vector<double>& all_advantages) {
    double mean = mean_of(all_advantages), scale = detail::std_of(all_advantages) + 1e-8;
    for (auto& sample : samples)
      for (auto& a : sample.token_advantages)
        a = static_cast<float>((a - mean) / scale);
  }

  // ppo_epochs passes of clipped policy + value steps over shuffled mini-batches; a separate value
  // model takes its value step on each mini-batch at the same time as the policy its step.
  Task<std::vector<TrainReport>> train_on(std::vector<TrainSample> samples, int step) {
    TrainParams params{.lr = schedule.at(step - 1),
                       .max_grad_norm = o.max_grad_norm,
                       .weight_decay = o.weight_decay,
                       .micro_batch_size = o.micro_batch_size,
                       .clip_range = o.clip_range,
                       .clip_range_high = o.clip_range_high,
                       .loss_aggregation = "token_mean",
                       .kl_beta = o.kl_beta,
                       .value_coef = o.value_model ? 0.0 : o.value_coef,
                       .value_clip_range = o.value_clip_range};
    auto value_params = params;
    value_params.lr = value_schedule.at(step - 1);
    std::vector<TrainReport> reports;
    for (int pass = 0; pass < o.ppo_epochs; ++pass) {
      auto order = shuffled(samples, o.seed + static_cast<std::uint64_t>(step * 131 + pass));
      for (auto& mini_batch : batches_of(order, static_cast<std::size_t>(o.samples_per_mini_batch))) {
        if (!o.value_model) {
          reports.push_back(co_await o.model.train_ppo(std::move(mini_batch), params));
          continue;
        }
        auto [policy, value] =
          co_await gather(o.model.train_ppo(mini_batch, params), o.value_model.train_values(mini_batch, value_params));
        policy.value_loss = value.value_loss;
        reports.push_back(policy);
      }
    }
    co_return reports;
  }

  Metrics step_metrics(const detail::RewardStats& stats, const std::vector<TrainReport>& reports, double value_mean,
                       const detail::StepRollouts& rollouts, int step) {
    Metrics metrics{{"reward_mean", mean_of(stats.rewards)}};
    for (const auto& [key, scores] : stats.by_key)
      metrics.emplace_back("reward/" + key, mean_of(scores));
    metrics.insert(metrics.end(),
                   {{"loss", mean_over(reports, &TrainReport::loss)},
                    {"value_loss", mean_over(reports, &TrainReport::value_loss)},
                    {"value_mean", value_mean},
                    {"kl", mean_over(reports, &TrainReport::kl)},
                    {"clip_fraction", mean_over(reports, &TrainReport::clip_fraction)},
                    {"grad_norm", mean_over(reports, &TrainReport::grad_norm)},
                    {"lr", mean_over(reports, &TrainReport::lr)},
                    {"tokens_per_s", mean_over(reports, &TrainReport::tokens_per_second)},
                    {"completion_length", mean_of(stats.lengths)},
                    {"policy_version", static_cast<double>(o.model.weight_version())}});
    stats.add_grading_metrics(metrics, o.grader, o.stage, step);
    rollouts.add_to(metrics, pipeline.lap());
    return metrics;
  }
};

detail::PipelineOptions ppo_pipeline(const PpoOptions& o) {
  detail::PipelineOptions p;
  p.algorithm = "PPO";
  p.dataset = o.dataset;
  p.steps = o.max_num_ppo_steps;
  p.groups_per_step = static_cast<std::size_t>(o.samples_per_batch);
  p.group_size = 1;
  p.max_staleness = o.max_staleness;
  p.group_timeout_s = o.group_timeout_s;
  p.max_rollout_retries = o.max_rollout_retries;
  p.max_grading_queue = static_cast<std::size_t>(o.max_grading_queue);
  p.sampling = o.sampling;
  p.seed = o.seed;
  p.rollout = [model = o.model, grader = o.grader](Prompt prompt, SamplingParams sampling, detail::StageClock& clock) {
    return detail::generate_and_grade(model, grader, std::move(prompt), std::move(sampling), clock);
  };
  p.losses = [model = o.model] { return model.losses(); };
  return p;
}

Task<PpoResult> run_ppo(PpoOptions o) {
  auto stage = co_await detail::open_rl_stage(o.model, o.stage, o.max_num_ppo_steps, o.kl_beta > 0 && o.reset_reference,
                                              o.value_model);
  if (stage.checkpoint.finished())
    co_return PpoResult{stage.result.steps, stage.result.reward_mean};
  o.logger.begin_stage(o.stage, o.max_num_ppo_steps);
  auto pipeline = ppo_pipeline(o);
  auto schedule = lr_schedule_of(o, o.max_num_ppo_steps);
  auto value_schedule = schedule;
  if (o.value_lr >= 0)
    value_schedule.base_lr = o.value_lr;
  PpoRun run{std::move(o), detail::RolloutPipeline(std::move(pipeline), std::move(stage.versions)),
             stage.result, std::move(stage.checkpoint),
             schedule,     value_schedule};
  co_await gather(run.pipeline.produce(), run.train());
  co_return PpoResult{run.result.steps, run.result.reward_mean};
}

} // namespace

PPO::PPO(PpoOptions options) : options_(std::move(options)) {
  if (options_.dataset.empty())
    throw ConfigError("PPO: the dataset is empty");
  if (!options_.grader)
    throw ConfigError("PPO: no grader given");
  if (options_.samples_per_batch < 1 || options_.samples_per_mini_batch < 1 || options_.micro_batch_size < 1
      || options_.ppo_epochs < 1)
    throw ConfigError("PPO: samples_per_batch, samples_per_mini_batch, micro_batch_size and ppo_epochs must be at "
                      "least 1");
  if (!(options_.gamma >= 0 && options_.gamma <= 1) || !(options_.lambda >= 0 && options_.lambda <= 1))
    throw ConfigError("PPO: gamma and lambda must be in [0, 1]");
  lr_schedule_of(options_, 1);
  if (std::isnan(options_.value_lr))
    throw ConfigError("PPO: value_lr must be a number (< 0: lr)");
  if (!(options_.weight_decay >= 0))
    throw ConfigError("PPO: weight_decay must be >= 0");
  detail::check_overlap("PPO", options_.max_staleness, options_.group_timeout_s, options_.max_rollout_retries,
                        options_.max_grading_queue);
}

Task<PpoResult> PPO::run() const {
  return run_ppo(options_);
}

} // namespace chorus
