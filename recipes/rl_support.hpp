// What the RL loops (GRPO, GSPO, PPO and the environment variants) draw on besides the rollout
// pipeline: the order of the prompts, the sampling seeds, and the statistics of a step's rewards and
// train reports. Internal to recipes/.
#pragma once

#include <chorus/dataset.hpp>
#include <chorus/generation.hpp>
#include <chorus/grader.hpp>
#include <chorus/metrics.hpp>
#include <chorus/training.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace chorus::detail {

/// Prompts in a shuffled order (drawn from `seed`), reshuffled each time the dataset runs out.
class PromptStream {
public:
  PromptStream(const std::vector<Prompt>& prompts, std::uint64_t seed) : prompts_(prompts), seed_(seed) {}

  /// The next `count` prompts.
  std::vector<Prompt> next(std::size_t count);

private:
  const std::vector<Prompt>& prompts_;
  std::uint64_t seed_;
  std::uint64_t epoch_ = 0;
  std::vector<Prompt> order_;
  std::size_t position_ = 0;
};

/// A sampling seed for completion `index` of step `step`, drawn from the run's seed unless the
/// options fix one: runs repeat exactly.
SamplingParams seeded(SamplingParams sampling, std::uint64_t run_seed, int step, std::size_t index);

/// The mean of `values` (0 if empty).
double mean_of(const std::vector<double>& values);

/// The population standard deviation of `values` (0 if empty).
double std_of(const std::vector<double>& values);

/// The mean of one figure of `reports`, e.g. mean_over(reports, &TrainReport::loss) (0 if empty).
double mean_over(const std::vector<TrainReport>& reports, double TrainReport::* figure);

/// The rewards of a step's rollouts, for its metrics.
struct RewardStats {
  std::vector<double> rewards;                       // one per graded rollout (ignored ones have none)
  std::vector<double> lengths;                       // tokens generated, one per rollout
  std::map<std::string, std::vector<double>> by_key; // the parts of a combined grade, by grader key
  int samples = 0, ignored = 0;                      // rollouts, and those whose grade is ignored
  std::map<std::string, int> left_out;               // the parts left out of a combined grade, by key

  void add(const Grade& grade, std::int64_t generated);

  // Adds ignored_samples and left_out/<part> (the share of the step's rollouts) to `metrics`, and warns
  // about a part left out of more than `grader`'s failure_rate_warning of them.
  void add_grading_metrics(Metrics& metrics, const Grader& grader, const std::string& stage, int step) const;
};

} // namespace chorus::detail
