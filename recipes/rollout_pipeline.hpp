// The rollout side of the RL algorithms, running ahead of training. Rollout coroutines take prompts,
// generate on the policy replicas and grade, and hand each group (the completions of one prompt) to a
// bounded channel as soon as it is complete; the training loop takes one step's worth of groups at a
// time. So grading of one group overlaps generation of the next, and generation for step k+1
// overlaps training on step k.
//
// Staleness. Policy version s is the weights after training step s (0: the weights the run started
// from). The rollouts for step k start once the trainer has finished step k - 1 - max_staleness, so a
// sample trained on at step k was made by a policy at most max_staleness versions old; with 0 every
// step waits for the previous one: the synchronous loop, with the same numbers. The loss corrects the
// remaining staleness with the behaviour log-probs recorded at generation time. A step trains on the
// first groups to arrive, so with max_staleness > 0 a straggling group of step k may be trained at
// step k + 1; members that are older than the bound by then are dropped and counted, never silently
// used (with 0 no group can be late).
//
// Stragglers and failures, the rule:
//   - A rollout that fails (an error from the policy, the grader or an environment) is retried with
//     the same seed, up to max_rollout_retries times, while its group's deadline has not passed.
//   - group_timeout_s after its first request, a group's rollouts still running are cancelled (the
//     policy actor frees their slots) and not retried.
//   - A group is trained on with the members it has, if it has at least min(2, group size) (group
//     advantages need two); otherwise it is dropped.
//   - Each of these is counted in the step's metrics. A step left with nothing to train on because
//     rollouts failed stops the run with the first failure's message.
//
// The run's first step has the policy and the judges to itself: until its rollouts are in, the
// trainer has nothing to do, and rollouts of later steps would only share the replicas' batches and
// the judges with it and delay the first training step (bench_overlap: 7.5 s instead of 5). Later
// steps start as the staleness bound allows.
//
// Back-pressure: at most max_grading_queue rollouts are graded at once (the judge actors batch them);
// while that many more wait for a grade, no new group starts generating, so a slow judge holds
// rollout back instead of piling up work.
#pragma once

#include <chorus/channel.hpp>

#include "recipes/policy_optimization.hpp"
#include "recipes/stage_clock.hpp"

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace chorus::detail {

struct PipelineOptions {
  std::string algorithm;
  std::vector<Prompt> dataset;
  int steps = 0;
  std::size_t groups_per_step = 1;
  std::size_t group_size = 1;
  int max_staleness = 0;
  double group_timeout_s = 0; // 0: no deadline
  int max_rollout_retries = 1;
  std::size_t max_grading_queue = 0; // 0: one step's rollouts
  SamplingParams sampling;
  std::uint64_t seed = 0;
  RolloutFn rollout;
  /// The policy's losses so far (TrainingModel::losses), for each step's share; empty: none counted.
  std::function<ReplicaLosses()> losses;
};

/// The completions of one prompt that finished, in sampling order.
struct RolloutGroup {
  int step = 0;          // the step whose rollouts it was started for
  std::size_t index = 0; // its prompt's position in that step
  Prompt prompt;
  std::vector<Rollout> members;
  int failed = 0, retried = 0, timed_out = 0;
};

/// What happened to one step's rollouts, for its metrics.
struct StepRollouts {
  std::vector<RolloutGroup> groups;      // the trainable ones, ordered by (step, index)
  std::map<std::int64_t, int> staleness; // members trained on, by staleness in policy versions
  int stale_dropped = 0, failed = 0, retried = 0, timed_out = 0, groups_partial = 0, groups_dropped = 0;
  ReplicaLosses losses; // the policy's, since the previous step's rollouts were collected
  /// Appends the counts, the staleness histogram and `stages` (the step's stage times, from lap()) to
  /// `metrics`.
  void add_to(Metrics& metrics, const StageClock::Totals& stages) const;
};

class RolloutPipeline {
public:
  /// `versions`: the trainer's weight version before the first step, then after each step a resumed
  /// run has done (versions()): it produces the steps after those.
  RolloutPipeline(PipelineOptions options, std::vector<std::int64_t> versions);

  /// The weight version at the start, then after each step trained.
  const std::vector<std::int64_t>& versions() const noexcept {
    return versions_;
  }

  /// Produces every step's rollouts; run it next to the training loop (gather). Returns when the last
  /// group is in the channel.
  Task<void> produce();

  /// The groups for training step `step` (1-based, in order): one step's worth from the channel,
  /// members beyond max_staleness dropped, groups below the minimum dropped.
  /// @throws Error when rollout failures left nothing to train on.
  Task<StepRollouts> next_step(int step);

  /// Called after training step `step` with the trainer's weight version: releases the rollouts that
  /// waited for it.
  void step_trained(int step, std::int64_t weight_version);

  StageClock& clock() {
    return clock_;
  }

  /// The stages' busy times since the previous lap.
  StageClock::Totals lap();

private:
  Task<void> produce_step(int step);
  Task<void> produce_group(int step, std::size_t index, Prompt prompt);
  Task<void> produce_member(RolloutGroup& group, std::size_t member, std::chrono::steady_clock::time_point deadline,
                            std::vector<std::optional<Rollout>>& results);
  const std::vector<Prompt>& prompts_of(int step);
  // The policy version (completed steps) whose weights were `weight_version`.
  std::int64_t policy_version(std::int64_t weight_version) const;

  PipelineOptions options_;
  PromptStream stream_;
  std::vector<std::vector<Prompt>> prompts_; // by step - 1, drawn in step order
  Channel<RolloutGroup> ready_;
  StageClock clock_;
  StageClock::Totals reported_;
  std::vector<std::int64_t> versions_; // weight version after each step; [0]: at the start
  WaitQueue trained_;
  int first_step_ = 1;                   // the first step this run produces (after a resume: later)
  std::size_t first_step_delivered_ = 0; // groups of the run's first step in the channel
  WaitQueue first_step_done_;
  std::exception_ptr first_failure_;
  ReplicaLosses losses_; // the policy's when the last step's rollouts were collected
};

} // namespace chorus::detail
