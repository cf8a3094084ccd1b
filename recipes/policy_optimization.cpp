// One RL step reads top to bottom: prompts -> rollouts (generate, then grade, all concurrently) ->
// group advantages -> mini-batch policy steps -> metrics.
#include "recipes/policy_optimization.hpp"

#include <chorus/checkpoint.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>

#include "recipes/lr_schedules.hpp"
#include "recipes/rollout_pipeline.hpp"
#include "recipes/step_callbacks.hpp"

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
    // A thinking model's answer is graded; its reasoning rides along for graders that want it.
    auto turn = parse_assistant_turn(generation.text, model.thinks(), /*tool_calls=*/false, ToolCallFormat::tagged,
                                     model.opens_thinking(sampling.enable_thinking));
    result.grade = co_await grader.grade(Sample{prompt.prompt, turn.content, prompt.metadata, turn.reasoning});
  }
  result.prompt_tokens = std::move(generation.prompt_tokens);
  result.generated = static_cast<std::int64_t>(generation.tokens.size());
  result.tokens = std::move(generation.tokens);
  result.logprobs = std::move(generation.logprobs);
  result.weight_version = generation.weight_version;
  co_return result;
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
  lr_schedule_of(c.algorithm, c.lr, c.warmup_steps, c.lr_schedule, c.min_lr_ratio);
  if (!(c.clip_range >= 0) || !(c.kl_beta >= 0) || !(c.weight_decay >= 0))
    fail("clip_range, kl_beta and weight_decay must be >= 0");
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

Task<RlStage> open_rl_stage(TrainingModel model, std::string stage, int steps, bool reset_reference,
                            ScoringModel value_model) {
  RlStage result{co_await StageCheckpoint::open(model, std::move(stage), steps, std::move(value_model)),
                 {},
                 {model.weight_version()}};
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

Json rl_progress(const RlProgress& result, const RolloutPipeline& pipeline) {
  return {{"steps", result.steps}, {"reward_mean", result.reward_mean}, {"versions", pipeline.versions()}};
}

namespace {

// One step's rollouts as training samples, and the counts its metrics report.
struct StepSamples {
  std::vector<TrainSample> samples;
  RewardStats stats;
  int unparseable = 0, groups_kept = 0, empty = 0, cache_hits = 0;
};

// The training side of the loop; the rollouts come from the pipeline, produced concurrently.
struct PolicyOptimizationRun {
  PolicyOptimization c;
  RolloutPipeline pipeline;
  RlProgress result;
  StageCheckpoint checkpoint;
  LrSchedule schedule; // over the run's steps, counted from 0

  Task<void> train() {
    for (int step = static_cast<int>(checkpoint.step()) + 1; step <= c.max_steps; ++step) {
      auto rollouts = co_await pipeline.next_step(step);
      auto batch = samples_of(rollouts);
      auto reports = co_await train_on(std::move(batch.samples), step);
      pipeline.step_trained(step, c.model.weight_version());
      auto metrics = step_metrics(batch, reports, rollouts, step);
      co_await run_callbacks(c.callbacks, {c.stage, step, c.max_steps}, metrics);
      c.logger.log(c.stage, step, metrics);
      result.steps = step;
      result.reward_mean = mean_of(batch.stats.rewards);
      co_await checkpoint.step_done(step, rl_progress(result, pipeline));
    }
    co_await checkpoint.finish(result.steps, rl_progress(result, pipeline));
  }

  // Group-relative advantages, group by group (a group of equal rewards dropped if asked). Empty
  // completions are counted, not trained on.
  StepSamples samples_of(StepRollouts& rollouts) const {
    StepSamples step;
    for (auto& group : rollouts.groups) {
      // Ignored grades (a judge's NA, no verdict) are no reward: the group is the members graded.
      std::vector<double> rewards;
      std::vector<Rollout*> graded;
      for (auto& r : group.members) {
        step.stats.add(r.grade, r.generated);
        step.unparseable += r.grade.unparseable;
        step.cache_hits += r.grade.cached;
        if (!r.grade.ignored) {
          rewards.push_back(r.grade.score);
          graded.push_back(&r);
        }
      }
      if (graded.empty() || (c.drop_uniform_groups && uniform_rewards(rewards)))
        continue;
      ++step.groups_kept;
      auto advantages = group_advantages(rewards, c.advantages);
      for (std::size_t k = 0; k < graded.size(); ++k) {
        auto& r = *graded[k];
        if (r.generated == 0) {
          ++step.empty;
          continue;
        }
        step.samples.push_back({std::move(r.prompt_tokens), std::move(r.tokens), advantages[k], std::move(r.logprobs),
                                r.weight_version, std::move(r.mask)});
      }
    }
    return step;
  }

  // Policy steps over shuffled mini-batches; the sampler's log-probs stay the old policy throughout.
  Task<std::vector<TrainReport>> train_on(std::vector<TrainSample> samples, int step) {
    StageClock::Busy training(pipeline.clock(), StageClock::train);
    const auto on_policy_version = c.model.weight_version();
    std::vector<TrainReport> reports;
    for (auto& mini_batch : batches_of(shuffled(std::move(samples), c.seed + static_cast<std::uint64_t>(step)),
                                       static_cast<std::size_t>(c.samples_per_mini_batch)))
      reports.push_back(co_await c.model.train_policy(std::move(mini_batch), train_params(step, on_policy_version)));
    co_return reports;
  }

  TrainParams train_params(int step, std::int64_t on_policy_version) const {
    return {.lr = schedule.at(step - 1),
            .max_grad_norm = c.max_grad_norm,
            .weight_decay = c.weight_decay,
            .micro_batch_size = c.micro_batch_size,
            .clip_range = c.clip_range,
            .clip_range_high = c.clip_range_high,
            .loss_aggregation = c.loss_aggregation,
            .ratio_level = c.ratio_level,
            .kl_beta = c.kl_beta,
            .on_policy_version = on_policy_version};
  }

  Metrics step_metrics(const StepSamples& step, const std::vector<TrainReport>& reports, const StepRollouts& rollouts,
                       int step_number) {
    const auto& rewards = step.stats.rewards;
    Metrics metrics{{"reward_mean", mean_of(rewards)}, {"reward_std", std_of(rewards)}};
    for (const auto& [key, scores] : step.stats.by_key)
      metrics.emplace_back("reward/" + key, mean_of(scores));
    if (!reports.empty())
      metrics.insert(metrics.end(),
                     {{"loss", mean_over(reports, &TrainReport::loss)},
                      {"kl", mean_over(reports, &TrainReport::kl)},
                      {"clip_fraction", mean_over(reports, &TrainReport::clip_fraction)},
                      {"grad_norm", mean_over(reports, &TrainReport::grad_norm)},
                      {"lr", mean_over(reports, &TrainReport::lr)},
                      {"tokens_per_s", mean_over(reports, &TrainReport::tokens_per_second)},
                      {"logprob_gap", reports.front().logprob_gap}});
    metrics.insert(metrics.end(),
                   {{"completion_length", mean_of(step.stats.lengths)},
                    {"policy_version", static_cast<double>(c.model.weight_version())},
                    {"groups_kept", step.groups_kept},
                    {"unparseable", step.unparseable},
                    {"judge_cache_hits", step.cache_hits},
                    {"empty_completions", step.empty}});
    step.stats.add_grading_metrics(metrics, c.grader, c.stage, step_number);
    rollouts.add_to(metrics, pipeline.lap());
    return metrics;
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
  p.losses = [model = c.model] { return model.losses(); };
  return p;
}

} // namespace

Task<RlProgress> run_policy_optimization(PolicyOptimization c) {
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
  auto schedule = lr_schedule_of(c.algorithm, c.lr, c.warmup_steps, c.lr_schedule, c.min_lr_ratio, c.max_steps);
  PolicyOptimizationRun run{std::move(c), RolloutPipeline(std::move(options), std::move(stage.versions)), stage.result,
                            std::move(stage.checkpoint), schedule};
  co_await gather(run.pipeline.produce(), run.train());
  co_return run.result;
}

} // namespace chorus::detail
