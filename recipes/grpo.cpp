// GRPO and GSPO: their options, variants and defaults, mapped onto the shared loop.
#include <chorus/errors.hpp>
#include <chorus/gspo.hpp>

#include "recipes/policy_optimization.hpp"

namespace chorus {

namespace detail {

namespace {

// The fields GRPO's and GSPO's options share, under the same names.
template <class Options>
PolicyOptimization shared_fields(const Options& o, const char* algorithm) {
  PolicyOptimization c;
  c.algorithm = algorithm;
  c.dataset = o.dataset;
  c.model = o.model;
  c.grader = o.grader;
  c.logger = o.logger;
  c.lr = o.lr;
  c.warmup_steps = o.warmup_steps;
  c.lr_schedule = o.lr_schedule;
  c.min_lr_ratio = o.min_lr_ratio;
  c.samples_per_batch = o.samples_per_batch;
  c.samples_per_mini_batch = o.samples_per_mini_batch;
  c.micro_batch_size = o.micro_batch_size;
  c.completions_per_sample = o.completions_per_sample;
  c.max_grad_norm = o.max_grad_norm;
  c.weight_decay = o.weight_decay;
  c.clip_range = o.clip_range;
  c.clip_range_high = o.clip_range_high;
  c.kl_beta = o.kl_beta;
  c.reset_reference = o.reset_reference;
  c.max_staleness = o.max_staleness;
  c.group_timeout_s = o.group_timeout_s;
  c.max_rollout_retries = o.max_rollout_retries;
  c.max_grading_queue = o.max_grading_queue;
  c.sampling = o.sampling;
  c.seed = o.seed;
  c.stage = o.stage;
  c.callbacks = o.callbacks;
  return c;
}

} // namespace

PolicyOptimization from(const GrpoOptions& o) {
  auto c = shared_fields(o, "GRPO");
  c.loss_aggregation = o.loss_aggregation;
  c.ratio_level = "token";
  c.advantages = {.baseline = o.baseline, .normalize_std = o.normalize_std};
  c.drop_uniform_groups = o.drop_uniform_groups;
  c.max_steps = o.max_num_grpo_steps;
  if (o.variant == "dr_grpo") {
    c.advantages.normalize_std = false;
    c.loss_aggregation = "sequence_sum";
  } else if (o.variant == "dapo") {
    c.clip_range_high = 0.28;
    c.loss_aggregation = "token_mean";
    c.drop_uniform_groups = true;
  } else if (o.variant == "rloo") {
    c.advantages = {.baseline = "rloo", .normalize_std = false};
  } else if (o.variant != "grpo") {
    throw ConfigError("GRPO: unknown variant '" + o.variant + "' (expected grpo, dr_grpo, dapo or rloo)");
  }
  if (c.advantages.baseline != "mean" && c.advantages.baseline != "rloo")
    throw ConfigError("GRPO: baseline must be mean or rloo, got '" + c.advantages.baseline + "'");
  if (c.loss_aggregation != "token_mean" && c.loss_aggregation != "sequence_mean"
      && c.loss_aggregation != "sequence_sum")
    throw ConfigError("GRPO: loss_aggregation must be token_mean, sequence_mean or sequence_sum, got '"
                      + c.loss_aggregation + "'");
  return c;
}

PolicyOptimization from(const GspoOptions& o) {
  auto c = shared_fields(o, "GSPO");
  c.loss_aggregation = "sequence_mean"; // the sequence ratio is applied per sequence
  c.ratio_level = "sequence";
  c.advantages = {.baseline = "mean", .normalize_std = o.normalize_std};
  c.max_steps = o.max_num_gspo_steps;
  return c;
}

} // namespace detail

GRPO::GRPO(GrpoOptions options) : options_(std::move(options)) {
  detail::check(detail::from(options_));
}

Task<GrpoResult> GRPO::run() const {
  return detail::run_policy_optimization_as<GrpoResult>(detail::from(options_));
}

GSPO::GSPO(GspoOptions options) : options_(std::move(options)) {
  detail::check(detail::from(options_));
}

Task<GspoResult> GSPO::run() const {
  return detail::run_policy_optimization_as<GspoResult>(detail::from(options_));
}

} // namespace chorus
