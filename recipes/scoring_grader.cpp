// ScoringModelGrader: a reward model's raw score, squashed into [0, 1].
#include <chorus/errors.hpp>
#include <chorus/grader.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace chorus {

namespace {

struct ScoringModelImpl : Grader::Impl {
  ScoringModelOptions options;

  double squashed(double raw) const {
    if (options.squash == "linear")
      return std::clamp((raw - options.low) / (options.high - options.low), 0.0, 1.0);
    return 1.0 / (1.0 + std::exp(-(raw - options.center) / options.temperature));
  }

  Task<Grade> grade(Sample sample) const override {
    double raw = co_await options.model.score(std::move(sample.prompt), std::move(sample.completion));
    Grade grade;
    grade.score = squashed(raw);
    char text[96];
    std::snprintf(text, sizeof text, "reward model score %.4g (%s: %.3f)", raw, options.squash.c_str(), grade.score);
    grade.explanation = text;
    grade.scores[key] = grade.score;
    co_return grade;
  }
};

} // namespace

ScoringModelGrader::ScoringModelGrader(ScoringModelOptions options)
  : Grader([&options] {
      auto where = "ScoringModelGrader '" + options.grader_key + "': ";
      if (!options.model)
        throw ConfigError(where + "no model (spawn one with ModelBuilder::spawn_scoring)");
      if (options.squash != "sigmoid" && options.squash != "linear")
        throw ConfigError(where + "squash must be sigmoid or linear, got '" + options.squash + "'");
      if (options.squash == "sigmoid" && !(options.temperature > 0))
        throw ConfigError(where + "temperature must be > 0");
      if (options.squash == "linear" && !(options.high > options.low))
        throw ConfigError(where + "high must be above low");
      auto impl = std::make_shared<ScoringModelImpl>();
      impl->key = options.grader_key;
      impl->options = std::move(options);
      return std::shared_ptr<const Grader::Impl>(std::move(impl));
    }()) {}

} // namespace chorus
