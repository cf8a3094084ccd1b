// The rollout pipeline: step producers gated by the trainer's progress, group producers with a
// deadline and retries, and the training side's view of one step's groups.
#include "recipes/rollout_pipeline.hpp"

#include <chorus/deadline.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>

#include <algorithm>

namespace chorus::detail {

void StepRollouts::add_to(Metrics& metrics, const StageClock::Totals& stages) const {
  double stale_sum = 0, members = 0;
  for (const auto& [staleness, count] : this->staleness) {
    stale_sum += static_cast<double>(staleness * count);
    members += count;
  }
  metrics.insert(metrics.end(),
                 {{"staleness", members > 0 ? stale_sum / members : 0.0},
                  {"stale_dropped", stale_dropped},
                  {"rollouts_failed", failed},
                  {"rollouts_retried", retried},
                  {"requests_retried", static_cast<double>(losses.requests_retried)},
                  {"rejoin_wait_s", losses.rejoin_wait_s},
                  {"rollouts_timed_out", timed_out},
                  {"groups_partial", groups_partial},
                  {"groups_dropped", groups_dropped}});
  for (const auto& [staleness, count] : this->staleness)
    metrics.emplace_back("staleness/" + std::to_string(staleness), count);
  for (int stage = 0; stage < StageClock::kStages; ++stage)
    metrics.emplace_back(std::string("busy_s/") + StageClock::name(static_cast<StageClock::Stage>(stage)),
                         stages.busy[static_cast<std::size_t>(stage)]);
  metrics.emplace_back("step_s", stages.wall);
  metrics.emplace_back("overlap", stages.wall > 0 ? stages.overlap / stages.wall : 0.0);
}

RolloutPipeline::RolloutPipeline(PipelineOptions options, std::vector<std::int64_t> versions)
  : options_(std::move(options)), stream_(options_.dataset, options_.seed),
    ready_(std::max<std::size_t>(1, options_.groups_per_step)), versions_(std::move(versions)) {
  if (versions_.empty())
    throw std::logic_error("RolloutPipeline: no initial weight version");
  first_step_ = static_cast<int>(versions_.size());
  if (options_.losses)
    losses_ = options_.losses();
  if (options_.max_grading_queue == 0)
    options_.max_grading_queue = options_.groups_per_step * options_.group_size;
  clock_.set_limit(StageClock::grade, static_cast<int>(options_.max_grading_queue));
}

const std::vector<Prompt>& RolloutPipeline::prompts_of(int step) {
  // Drawn in step order whatever order the step producers ask in, so the prompts never depend on timing.
  while (prompts_.size() < static_cast<std::size_t>(step))
    prompts_.push_back(stream_.next(options_.groups_per_step));
  return prompts_[static_cast<std::size_t>(step - 1)];
}

Task<void> RolloutPipeline::produce() {
  std::vector<Task<void>> steps;
  // The prompts of the steps a resumed run has done are drawn (not used): the stream goes on from there.
  if (first_step_ > 1)
    prompts_of(first_step_ - 1);
  for (int step = first_step_; step <= options_.steps; ++step)
    steps.push_back(produce_step(step));
  co_await when_all(std::move(steps));
}

Task<void> RolloutPipeline::produce_step(int step) {
  // Step `step`'s rollouts may use a policy max_staleness versions older than the one it trains.
  auto needed = static_cast<std::size_t>(std::max(0, step - 1 - options_.max_staleness));
  while (versions_.size() <= needed)
    co_await trained_.wait();
  if (step != first_step_)
    while (first_step_delivered_ < options_.groups_per_step)
      co_await first_step_done_.wait();
  std::vector<Task<void>> groups;
  const auto& prompts = prompts_of(step);
  for (std::size_t index = 0; index < prompts.size(); ++index)
    groups.push_back(produce_group(step, index, prompts[index]));
  co_await when_all(std::move(groups));
}

Task<void> RolloutPipeline::produce_group(int step, std::size_t index, Prompt prompt) {
  // Back-pressure: while the graders' queue is full, generating more only lengthens it.
  while (static_cast<std::size_t>(clock_.waiting(StageClock::grade)) >= options_.max_grading_queue)
    co_await clock_.left().wait();
  RolloutGroup group{step, index, std::move(prompt), {}};
  auto deadline = options_.group_timeout_s > 0
    ? std::chrono::steady_clock::now() + from_seconds(options_.group_timeout_s)
    : std::chrono::steady_clock::time_point::max();
  std::vector<std::optional<Rollout>> results(options_.group_size);
  std::vector<Task<void>> members;
  for (std::size_t member = 0; member < options_.group_size; ++member)
    members.push_back(produce_member(group, member, deadline, results));
  co_await when_all(std::move(members));
  for (auto& result : results)
    if (result)
      group.members.push_back(std::move(*result));
  co_await ready_.send(std::move(group));
  if (step == first_step_ && ++first_step_delivered_ == options_.groups_per_step)
    first_step_done_.notify_all();
}

Task<void> RolloutPipeline::produce_member(RolloutGroup& group, std::size_t member,
                                           std::chrono::steady_clock::time_point deadline,
                                           std::vector<std::optional<Rollout>>& results) {
  auto sampling = seeded(options_.sampling, options_.seed, group.step, group.index * options_.group_size + member);
  for (int attempt = 0;; ++attempt) {
    std::exception_ptr failure;
    try {
      results[member] = co_await with_deadline(options_.rollout(group.prompt, sampling, clock_), deadline, "rollout");
      co_return;
    } catch (const DeadlineError&) {
      ++group.timed_out;
      co_return;
    } catch (const CancelledError&) {
      throw;
    } catch (const std::exception&) {
      failure = std::current_exception();
    }
    if (!first_failure_)
      first_failure_ = failure;
    if (attempt >= options_.max_rollout_retries || std::chrono::steady_clock::now() >= deadline) {
      ++group.failed;
      co_return;
    }
    ++group.retried;
  }
}

std::int64_t RolloutPipeline::policy_version(std::int64_t weight_version) const {
  // versions_ is non-decreasing: the last step whose weights are not newer than the sample's.
  auto after = std::upper_bound(versions_.begin(), versions_.end(), weight_version);
  return after == versions_.begin() ? 0 : static_cast<std::int64_t>(after - versions_.begin()) - 1;
}

Task<StepRollouts> RolloutPipeline::next_step(int step) {
  StepRollouts result;
  std::size_t members_started = 0, members_finished = 0;
  for (std::size_t received = 0; received < options_.groups_per_step; ++received) {
    auto group = co_await ready_.receive();
    if (!group)
      throw Error(options_.algorithm + ": the rollouts ended before step " + std::to_string(step));
    result.failed += group->failed;
    result.retried += group->retried;
    result.timed_out += group->timed_out;
    members_started += options_.group_size;
    members_finished += group->members.size();
    // The trainer holds policy version step - 1 while it trains on this step.
    auto current = static_cast<std::int64_t>(step - 1);
    std::erase_if(group->members, [&](const Rollout& rollout) {
      auto staleness = current - policy_version(rollout.weight_version);
      if (staleness > options_.max_staleness) {
        ++result.stale_dropped;
        return true;
      }
      return false;
    });
    auto minimum = std::min<std::size_t>(2, options_.group_size);
    if (group->members.size() < minimum) {
      ++result.groups_dropped;
      continue;
    }
    if (group->members.size() < options_.group_size)
      ++result.groups_partial;
    for (const auto& rollout : group->members)
      ++result.staleness[current - policy_version(rollout.weight_version)];
    result.groups.push_back(std::move(*group));
  }
  if (members_finished == 0 && first_failure_) {
    try {
      std::rethrow_exception(first_failure_);
    } catch (const std::exception& error) {
      throw Error(options_.algorithm + ": every rollout of step " + std::to_string(step)
                  + " failed; the first: " + error.what());
    }
  }
  if (members_finished == 0 && members_started > 0 && result.timed_out > 0)
    throw Error(options_.algorithm + ": every rollout of step " + std::to_string(step)
                + " missed its group's deadline (" + std::to_string(options_.group_timeout_s)
                + " s): raise group_timeout_s");
  std::sort(result.groups.begin(), result.groups.end(),
            [](const auto& a, const auto& b) { return std::tie(a.step, a.index) < std::tie(b.step, b.index); });
  if (options_.losses) {
    auto now = options_.losses();
    result.losses = {now.requests_retried - losses_.requests_retried, now.rejoin_wait_s - losses_.rejoin_wait_s};
    losses_ = now;
  }
  co_return result;
}

StageClock::Totals RolloutPipeline::lap() {
  auto now = clock_.totals();
  auto result = now - reported_;
  reported_ = now;
  return result;
}

void RolloutPipeline::step_trained(int step, std::int64_t weight_version) {
  if (static_cast<std::size_t>(step) != versions_.size())
    throw std::logic_error("RolloutPipeline: steps must be reported in order");
  versions_.push_back(weight_version);
  trained_.notify_all();
}

} // namespace chorus::detail
