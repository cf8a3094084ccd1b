// The programmatic graders and the combined grader. Each grade is a plain function of the sample;
// the combined grader runs its parts concurrently.
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>
#include <chorus/grader.hpp>
#include <chorus/json_schema.hpp>

#include <algorithm>
#include <cctype>
#include <exception>
#include <regex>

namespace chorus {

// -- Grader -----------------------------------------------------------------------

namespace {

Task<Grade> grade_with(std::shared_ptr<const Grader::Impl> impl, Sample sample) {
  co_return co_await impl->grade(std::move(sample));
}

std::string trimmed(const std::string& text) {
  auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos)
    return {};
  auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

std::string lowered(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// A grader whose grade is a plain (non-suspending) function of the sample.
struct PlainGrader : Grader::Impl {
  std::function<Grade(const Sample&)> fn;
  Task<Grade> grade(Sample sample) const override {
    auto result = fn(sample);
    result.score = std::clamp(result.score, 0.0, 1.0);
    if (!result.ignored) // an ignored sample has no score to log
      result.scores.emplace(key, result.score);
    co_return result;
  }
};

std::shared_ptr<const Grader::Impl> plain(std::string key, std::function<Grade(const Sample&)> fn) {
  auto impl = std::make_shared<PlainGrader>();
  impl->key = std::move(key);
  impl->fn = std::move(fn);
  return impl;
}

Grade verdict(bool passed, std::string explanation) {
  return {passed ? 1.0 : 0.0, std::move(explanation), {}, 0};
}

std::regex compile(const std::string& pattern, const std::string& key) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& error) {
    throw ConfigError("grader '" + key + "': invalid regex '" + pattern + "': " + error.what());
  }
}

} // namespace

Task<Grade> Grader::grade(Sample sample) const {
  if (!impl_)
    throw ConfigError("no grader given");
  return grade_with(impl_, std::move(sample));
}

const std::string& Grader::key() const {
  static const std::string none = "<no grader>";
  return impl_ ? impl_->key : none;
}

double Grader::failure_rate_warning() const {
  return impl_ ? impl_->failure_rate_warning : 1.0;
}

// -- FunctionGrader ---------------------------------------------------------------

FunctionGrader::FunctionGrader(std::string grader_key, std::function<double(const Sample&)> score)
  : Grader(plain(std::move(grader_key),
                 [score = std::move(score)](const Sample& sample) { return Grade{score(sample), {}, {}, 0}; })) {}

FunctionGrader::FunctionGrader(std::string grader_key, std::function<Grade(const Sample&)> grade)
  : Grader(plain(std::move(grader_key), std::move(grade))) {}

// -- ExactMatchGrader -------------------------------------------------------------

ExactMatchGrader::ExactMatchGrader(ExactMatchOptions options)
  : Grader(plain(options.grader_key,
                 [options,
                  extract = options.extract.empty()
                    ? std::optional<std::regex>()
                    : std::optional<std::regex>(compile(options.extract, options.grader_key))](const Sample& sample) {
                   if (!sample.metadata.contains(options.metadata_key))
                     return verdict(false, "metadata has no '" + options.metadata_key + "'");
                   const auto& value = sample.metadata[options.metadata_key];
                   auto expected = value.is_string() ? value.get<std::string>() : value.dump();
                   auto answer = sample.completion;
                   if (extract) {
                     std::smatch match;
                     if (!std::regex_search(sample.completion, match, *extract))
                       return verdict(false, "no answer found by '" + options.extract + "'");
                     answer = match.size() > 1 ? match[1].str() : match[0].str();
                   }
                   if (options.normalize) {
                     answer = lowered(trimmed(answer));
                     expected = lowered(trimmed(expected));
                   }
                   return verdict(answer == expected, "answer '" + answer + "', expected '" + expected + "'");
                 })) {}

// -- RegexGrader ------------------------------------------------------------------

RegexGrader::RegexGrader(RegexOptions options)
  : Grader(
      plain(options.grader_key,
            [pattern = options.pattern, regex = compile(options.pattern, options.grader_key)](const Sample& sample) {
              bool found = std::regex_search(sample.completion, regex);
              return verdict(found, found ? "matches " + pattern : "does not match " + pattern);
            })) {}

// -- JsonGrader -------------------------------------------------------------------

JsonGrader::JsonGrader(JsonOptions options)
  : Grader(plain(options.grader_key, [schema = options.schema](const Sample& sample) {
      auto value = Json::parse(trimmed(sample.completion), nullptr, /*allow_exceptions=*/false);
      if (value.is_discarded())
        return verdict(false, "not valid JSON");
      auto problem = schema_violation(value, schema);
      return verdict(problem.empty(), problem.empty() ? "valid" : problem);
    })) {}

// -- CombinedGrader ---------------------------------------------------------------

namespace {

struct Combined : Grader::Impl {
  std::vector<Grader> graders;
  std::vector<double> weights;
  bool sum = false; // else the weighted mean

  // A part's grade; one that throws is a part left out, its exception kept in `failure`.
  static Task<Grade> part(Grader grader, Sample sample, std::exception_ptr& failure) {
    std::string what;
    try {
      co_return co_await grader.grade(std::move(sample));
    } catch (const std::exception& error) {
      failure = std::current_exception();
      what = error.what();
    }
    Grade failed;
    failed.ignored = true;
    failed.left_out[grader.key()] = "failed: " + what;
    failed.explanation = "failed: " + what;
    co_return failed;
  }

  Task<Grade> grade(Sample sample) const override {
    std::vector<std::exception_ptr> failures(graders.size());
    std::vector<Task<Grade>> parts;
    for (std::size_t i = 0; i < graders.size(); ++i)
      parts.push_back(part(graders[i], sample, failures[i]));
    auto grades = co_await when_all(std::move(parts));
    // Every part threw (a judge that cannot be reached): the grading failed, as a lone grader's would.
    if (std::all_of(failures.begin(), failures.end(), [](const auto& failure) { return failure != nullptr; }))
      std::rethrow_exception(failures.front());
    Grade result;
    double total = 0, weighted = 0;
    std::size_t graded = 0;
    for (std::size_t i = 0; i < grades.size(); ++i) {
      const auto& grade = grades[i];
      result.unparseable += grade.unparseable;
      result.cached += grade.cached;
      result.scores.insert(grade.scores.begin(), grade.scores.end());
      result.left_out.insert(grade.left_out.begin(), grade.left_out.end());
      result.explanation += (i ? "; " : "") + graders[i].key() + ": " + grade.explanation;
      if (grade.ignored) {
        result.left_out.emplace(graders[i].key(), "ignored: " + grade.explanation);
        result.scores.erase(graders[i].key()); // no score to average or log
        continue;
      }
      weighted += weights[i] * grade.score;
      total += weights[i];
      ++graded;
    }
    if (graded == 0) {
      result.ignored = true;
      co_return result;
    }
    result.score = sum ? std::clamp(weighted, 0.0, 1.0) : (total > 0 ? weighted / total : 0.0);
    result.scores[key] = result.score;
    co_return result;
  }
};

} // namespace

CombinedGrader::CombinedGrader(CombinedOptions options)
  : Grader([&] {
      if (options.graders.empty())
        throw ConfigError("grader '" + options.grader_key + "': a combined grader needs at least one grader");
      if (options.weights.empty())
        options.weights.assign(options.graders.size(), 1.0);
      if (options.weights.size() != options.graders.size())
        throw ConfigError("grader '" + options.grader_key + "': " + std::to_string(options.weights.size())
                          + " weights for " + std::to_string(options.graders.size()) + " graders");
      for (auto weight : options.weights)
        if (!(weight >= 0))
          throw ConfigError("grader '" + options.grader_key + "': weights must be >= 0");
      if (options.aggregation != "mean" && options.aggregation != "sum")
        throw ConfigError("grader '" + options.grader_key + "': aggregation must be mean or sum, got '"
                          + options.aggregation + "'");
      if (!(options.failure_rate_warning >= 0 && options.failure_rate_warning <= 1))
        throw ConfigError("grader '" + options.grader_key + "': failure_rate_warning must be in [0, 1]");
      auto impl = std::make_shared<Combined>();
      impl->key = options.grader_key;
      impl->sum = options.aggregation == "sum";
      impl->failure_rate_warning = options.failure_rate_warning;
      impl->graders = std::move(options.graders);
      impl->weights = std::move(options.weights);
      return std::shared_ptr<const Grader::Impl>(impl);
    }()) {}

} // namespace chorus
