// One RL step reads top to bottom: prompts -> rollouts (generate, then grade, all concurrently) ->
// group advantages -> mini-batch policy steps -> metrics.
#include "recipes/policy_optimization.hpp"

#include <chorus/checkpoint.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>

#include "recipes/rollout_pipeline.hpp"

#include <cmath>
#include <map>

namespace chorus::detail {

Task<Rollout> generate_and_grade(TrainingModel model, Grader grader, Prompt prompt, SamplingParams sampling,
                                 StageClock& clock) {
  Generation generation;
  {
    StageClock::Busy busy(clock, StageClock::generate);
    generation = co_await model.generate(prompt.prompt, sampling);
  }
  Rollout result;
  co_await clock.wait_for_room(StageClock::grade);
  {
    StageClock::Busy busy(clock, StageClock::grade);
    result.grade = co_await grader.grade(Sample{prompt.prompt, generation.text, prompt.metadata});
  }
  result.prompt_tokens = std::move(generation.prompt_tokens);
  result.generated = static_cast<std::int64_t>(generation.tokens.size());
  result.tokens = std::move(generation.tokens);
  result.logprobs = std::move(generation.logprobs);
  result.weight_version = generation.weight_version;
  co_return result;
}

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  for (auto v : values)
    sum += v;
  return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
}

SamplingParams seeded(SamplingParams sampling, std::uint64_t run_seed, int step, std::size_t index) {
  if (sampling.seed < 0)
    sampling.seed = static_cast<std::int64_t>((run_seed * 1000003 + static_cast<std::uint64_t>(step) * 10007 + index)
                                              & 0x7fffffffffffffffULL);
  return sampling;
}

namespace {

double std_of(const std::vector<double>& values) {
  auto mean = mean_of(values);
  double sum = 0;
  for (auto v : values)
    sum += (v - mean) * (v - mean);
  return values.empty() ? 0.0 : std::sqrt(sum / static_cast<double>(values.size()));
}

} // namespace

std::vector<Prompt> PromptStream::next(std::size_t count) {
  std::vector<Prompt> result;
  while (result.size() < count) {
    if (position_ == order_.size()) {
      order_ = shuffled(prompts_, seed_ + epoch_++);
      position_ = 0;
    }
    result.push_back(order_[position_++]);
  }
  return result;
}

void check(const PolicyOptimization& c) {
  auto fail = [&](const std::string& what) { throw ConfigError(c.algorithm + ": " + what); };
  if (c.dataset.empty())
    fail("the dataset is empty");
  if (!c.grader && !c.rollout)
    fail("no grader given");
  if (c.completions_per_sample < 1)
    fail("completions_per_sample must be at least 1");
  if (c.samples_per_batch < c.completions_per_sample)
    fail("samples_per_batch (" + std::to_string(c.samples_per_batch) + ") must be at least completions_per_sample ("
         + std::to_string(c.completions_per_sample) + ")");
  if (c.samples_per_mini_batch < 1 || c.micro_batch_size < 1)
    fail("samples_per_mini_batch and micro_batch_size must be at least 1");
  if (c.max_steps < 0)
    fail("the step limit must be >= 0");
  if (!(c.lr >= 0) || !(c.clip_range >= 0) || !(c.kl_beta >= 0))
    fail("lr, clip_range and kl_beta must be >= 0");
  if (c.sampling.max_tokens < 1)
    fail("sampling.max_tokens must be at least 1");
  check_overlap(c.algorithm, c.max_staleness, c.group_timeout_s, c.max_rollout_retries, c.max_grading_queue);
}

void check_overlap(const std::string& algorithm, int max_staleness, double group_timeout_s, int max_rollout_retries,
                   int max_grading_queue) {
  auto fail = [&](const std::string& what) { throw ConfigError(algorithm + ": " + what); };
  if (max_staleness < 0)
    fail("max_staleness must be >= 0 (0: synchronous), got " + std::to_string(max_staleness));
  if (!(group_timeout_s >= 0))
    fail("group_timeout_s must be >= 0 (0: no deadline)");
  if (max_rollout_retries < 0)
    fail("max_rollout_retries must be >= 0");
  if (max_grading_queue < 0)
    fail("max_grading_queue must be >= 0 (0: one step's rollouts)");
}

Task<RlStage> open_rl_stage(TrainingModel model, std::string stage, int steps, bool reset_reference) {
  RlStage result{co_await StageCheckpoint::open(model, std::move(stage), steps), {}, {model.weight_version()}};
  const auto& checkpoint = result.checkpoint;
  if (checkpoint.restored()) {
    const auto& state = checkpoint.state();
    result.result.steps = state.at("steps").get<std::int64_t>();
    result.result.reward_mean = state.at("reward_mean").get<double>();
    result.versions = state.at("versions").get<std::vector<std::int64_t>>();
  } else if (reset_reference) {
    co_await model.reset_reference(); // a resumed stage restored its reference with its weights
  }
  co_return result;
}

Json rl_progress(const RlResult& result, const RolloutPipeline& pipeline) {
  return {{"steps", result.steps}, {"reward_mean", result.reward_mean}, {"versions", pipeline.versions()}};
}

namespace {

// The training side of the loop; the rollouts come from the pipeline, produced concurrently.
struct PolicyOptimizationRun {
  PolicyOptimization c;
  RolloutPipeline pipeline;
  RlResult result;
  StageCheckpoint checkpoint;

  Task<void> train() {
    auto& model = c.model;
    for (int step = static_cast<int>(checkpoint.step()) + 1; step <= c.max_steps; ++step) {
      auto rollouts = co_await pipeline.next_step(step);

      // Advantages, group by group.
      std::vector<TrainSample> samples;
      std::vector<double> rewards, lengths;
      std::map<std::string, std::vector<double>> by_key;
      int unparseable = 0, groups_kept = 0, empty = 0, cache_hits = 0;
      for (auto& g : rollouts.groups) {
        std::vector<double> group_rewards;
        for (const auto& r : g.members) {
          group_rewards.push_back(r.grade.score);
          rewards.push_back(r.grade.score);
          lengths.push_back(static_cast<double>(r.generated));
          unparseable += r.grade.unparseable;
          cache_hits += r.grade.cached;
          for (const auto& [key, score] : r.grade.scores)
            by_key[key].push_back(score);
        }
        if (c.drop_uniform_groups && uniform_rewards(group_rewards))
          continue;
        ++groups_kept;
        auto advantages = group_advantages(group_rewards, c.advantages);
        for (std::size_t k = 0; k < g.members.size(); ++k) {
          auto& r = g.members[k];
          if (r.generated == 0) {
            ++empty;
            continue;
          }
          samples.push_back({std::move(r.prompt_tokens), std::move(r.tokens), advantages[k], std::move(r.logprobs),
                             r.weight_version, std::move(r.mask)});
        }
      }

      // Policy steps over mini-batches; the sampler's log-probs stay the old policy throughout.
      std::vector<TrainReport> reports;
      const auto on_policy_version = model.weight_version();
      {
        StageClock::Busy training(pipeline.clock(), StageClock::train);
        for (auto& mini_batch : batches_of(shuffled(samples, c.seed + static_cast<std::uint64_t>(step)),
                                           static_cast<std::size_t>(c.samples_per_mini_batch))) {
          TrainParams params{.lr = c.lr,
                             .max_grad_norm = c.max_grad_norm,
                             .micro_batch_size = c.micro_batch_size,
                             .clip_range = c.clip_range,
                             .clip_range_high = c.clip_range_high,
                             .loss_aggregation = c.loss_aggregation,
                             .ratio_level = c.ratio_level,
                             .kl_beta = c.kl_beta,
                             .on_policy_version = on_policy_version};
          reports.push_back(co_await model.train_policy(std::move(mini_batch), params));
        }
      }
      pipeline.step_trained(step, model.weight_version());

      Metrics metrics{{"reward_mean", mean_of(rewards)}, {"reward_std", std_of(rewards)}};
      for (const auto& [key, scores] : by_key)
        metrics.emplace_back("reward/" + key, mean_of(scores));
      if (!reports.empty()) {
        std::vector<double> losses, kls, clips, norms, speeds;
        for (const auto& report : reports) {
          losses.push_back(report.loss);
          kls.push_back(report.kl);
          clips.push_back(report.clip_fraction);
          norms.push_back(report.grad_norm);
          speeds.push_back(report.tokens_per_second);
        }
        metrics.insert(metrics.end(),
                       {{"loss", mean_of(losses)},
                        {"kl", mean_of(kls)},
                        {"clip_fraction", mean_of(clips)},
                        {"grad_norm", mean_of(norms)},
                        {"lr", c.lr},
                        {"tokens_per_s", mean_of(speeds)},
                        {"logprob_gap", reports.front().logprob_gap}});
      }
      metrics.insert(metrics.end(),
                     {{"completion_length", mean_of(lengths)},
                      {"policy_version", static_cast<double>(model.weight_version())},
                      {"groups_kept", groups_kept},
                      {"unparseable", unparseable},
                      {"judge_cache_hits", cache_hits},
                      {"empty_completions", empty}});
      rollouts.add_to(metrics, pipeline.lap());
      c.logger.log(c.stage, step, metrics);
      result.steps = step;
      result.reward_mean = mean_of(rewards);
      co_await checkpoint.step_done(step, rl_progress(result, pipeline));
    }
    co_await checkpoint.finish(result.steps, rl_progress(result, pipeline));
  }
};

// The rollout pipeline's settings for `c`'s run.
PipelineOptions pipeline_options(const PolicyOptimization& c) {
  PipelineOptions p;
  p.algorithm = c.algorithm;
  p.dataset = c.dataset;
  p.steps = c.max_steps;
  p.group_size = static_cast<std::size_t>(c.completions_per_sample);
  p.groups_per_step = static_cast<std::size_t>(c.samples_per_batch / c.completions_per_sample);
  p.max_staleness = c.max_staleness;
  p.group_timeout_s = c.group_timeout_s;
  p.max_rollout_retries = c.max_rollout_retries;
  p.max_grading_queue = static_cast<std::size_t>(c.max_grading_queue);
  p.sampling = c.sampling;
  p.seed = c.seed;
  p.rollout = c.rollout;
  return p;
}

} // namespace

Task<RlResult> run_policy_optimization(PolicyOptimization c) {
  check(c);
  if (!c.rollout)
    c.rollout = [model = c.model, grader = c.grader](Prompt prompt, SamplingParams sampling, StageClock& clock) {
      return generate_and_grade(model, grader, std::move(prompt), std::move(sampling), clock);
    };
  auto stage = co_await open_rl_stage(c.model, c.stage, c.max_steps, c.kl_beta > 0 && c.reset_reference);
  if (stage.checkpoint.finished())
    co_return stage.result;
  c.logger.begin_stage(c.stage, c.max_steps);
  auto options = pipeline_options(c);
  PolicyOptimizationRun run{std::move(c), RolloutPipeline(std::move(options), std::move(stage.versions)), stage.result,
                            std::move(stage.checkpoint)};
  co_await gather(run.pipeline.produce(), run.train());
  co_return run.result;
}

} // namespace chorus::detail
