// The PPO loop: prompts -> one completion each, graded (the rollout pipeline, ahead of training) ->
// the value head's estimates when the step starts -> GAE -> (whitened) per-token advantages and
// returns -> clipped policy + value steps over mini-batches.
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>
#include <chorus/ppo.hpp>

#include "recipes/policy_optimization.hpp"
#include "recipes/rollout_pipeline.hpp"

#include <cmath>
#include <map>

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

// The training side of PPO; the rollouts (one per prompt) come from the pipeline, produced concurrently.
struct PpoRun {
  PpoOptions o;
  detail::RolloutPipeline pipeline;
  RlResult result;
  StageCheckpoint checkpoint;

  Task<void> train() {
    auto& model = o.model;
    for (int step = static_cast<int>(checkpoint.step()) + 1; step <= o.max_num_ppo_steps; ++step) {
      auto rollouts = co_await pipeline.next_step(step);
      std::vector<TrainSample> samples;
      std::vector<double> rewards, lengths;
      std::map<std::string, std::vector<double>> by_key;
      for (auto& group : rollouts.groups) {
        for (auto& g : group.members) {
          rewards.push_back(g.grade.score);
          for (const auto& [key, score] : g.grade.scores)
            by_key[key].push_back(score);
          lengths.push_back(static_cast<double>(g.generated));
          if (g.generated == 0)
            continue;
          samples.push_back(
            {std::move(g.prompt_tokens), std::move(g.tokens), g.grade.score, std::move(g.logprobs), g.weight_version});
        }
      }
      std::vector<double> losses, value_losses, clips, kls, norms, speeds;
      double value_mean = 0, count = 0;
      {
        detail::StageClock::Busy training(pipeline.clock(), detail::StageClock::train);
        // Values from the trainer now, then GAE with the reward on each completion's last token.
        auto values = co_await model.values(samples);
        std::vector<double> all_advantages;
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
            value_mean += x;
            ++count;
          }
        }
        if (o.whiten_advantages && all_advantages.size() > 1) {
          double mean = mean_of(all_advantages), variance = 0;
          for (auto a : all_advantages)
            variance += (a - mean) * (a - mean);
          double scale = std::sqrt(variance / static_cast<double>(all_advantages.size())) + 1e-8;
          for (auto& sample : samples)
            for (auto& a : sample.token_advantages)
              a = static_cast<float>((a - mean) / scale);
        }
        for (int pass = 0; pass < o.ppo_epochs; ++pass) {
          auto order_of_samples = shuffled(samples, o.seed + static_cast<std::uint64_t>(step * 131 + pass));
          for (auto& mini_batch : batches_of(order_of_samples, static_cast<std::size_t>(o.samples_per_mini_batch))) {
            TrainParams params{.lr = o.lr,
                               .max_grad_norm = o.max_grad_norm,
                               .micro_batch_size = o.micro_batch_size,
                               .clip_range = o.clip_range,
                               .loss_aggregation = "token_mean",
                               .kl_beta = o.kl_beta,
                               .value_coef = o.value_coef,
                               .value_clip_range = o.value_clip_range};
            auto report = co_await model.train_ppo(std::move(mini_batch), params);
            losses.push_back(report.loss);
            value_losses.push_back(report.value_loss);
            clips.push_back(report.clip_fraction);
            kls.push_back(report.kl);
            norms.push_back(report.grad_norm);
            speeds.push_back(report.tokens_per_second);
          }
        }
      }
      pipeline.step_trained(step, model.weight_version());

      Metrics metrics{{"reward_mean", mean_of(rewards)}};
      for (const auto& [key, scores] : by_key)
        metrics.emplace_back("reward/" + key, mean_of(scores));
      metrics.insert(metrics.end(),
                     {{"loss", mean_of(losses)},
                      {"value_loss", mean_of(value_losses)},
                      {"value_mean", count > 0 ? value_mean / count : 0.0},
                      {"kl", mean_of(kls)},
                      {"clip_fraction", mean_of(clips)},
                      {"grad_norm", mean_of(norms)},
                      {"lr", o.lr},
                      {"tokens_per_s", mean_of(speeds)},
                      {"completion_length", mean_of(lengths)},
                      {"policy_version", static_cast<double>(model.weight_version())}});
      rollouts.add_to(metrics, pipeline.lap());
      o.logger.log(o.stage, step, metrics);
      result.steps = step;
      result.reward_mean = mean_of(rewards);
      co_await checkpoint.step_done(step, detail::rl_progress(result, pipeline));
    }
    co_await checkpoint.finish(result.steps, detail::rl_progress(result, pipeline));
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
  return p;
}

Task<RlResult> run_ppo(PpoOptions o) {
  auto stage =
    co_await detail::open_rl_stage(o.model, o.stage, o.max_num_ppo_steps, o.kl_beta > 0 && o.reset_reference);
  if (stage.checkpoint.finished())
    co_return stage.result;
  o.logger.begin_stage(o.stage, o.max_num_ppo_steps);
  auto pipeline = ppo_pipeline(o);
  PpoRun run{std::move(o), detail::RolloutPipeline(std::move(pipeline), std::move(stage.versions)), stage.result,
             std::move(stage.checkpoint)};
  co_await gather(run.pipeline.produce(), run.train());
  co_return run.result;
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
  detail::check_overlap("PPO", options_.max_staleness, options_.group_timeout_s, options_.max_rollout_retries,
                        options_.max_grading_queue);
}

Task<RlResult> PPO::run() const {
  return run_ppo(options_);
}

} // namespace chorus
