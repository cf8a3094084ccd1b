// Graders that ask a judge model. The prompt states the criterion, shows the conversation and the
// response, and asks for a final line in a fixed form; parsing accepts that form first and falls back
// to the last verdict-like word, since small judges drift from instructions.
#include <chorus/errors.hpp>
#include <chorus/grader.hpp>

#include "recipes/judgement_cache.hpp"

#include <cctype>
#include <cmath>
#include <limits>
#include <regex>

namespace chorus {

namespace {

std::string upper(std::string text) {
  for (auto& c : text)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string render(const Sample& sample) {
  std::string text = "[Conversation]\n";
  for (const auto& message : sample.prompt)
    text += message.role + ": " + message.content + "\n";
  return text + "\n[Response]\n" + sample.completion + "\n";
}

std::vector<ChatMessage> judge_prompt(const std::string& instruction, const Sample& sample) {
  return {{"system", "You are a careful, strict grader of an AI assistant's responses."},
          {"user", render(sample) + "\n" + instruction}};
}

Grade pass_fail_grade(const std::string& key, const std::string& text) {
  Grade result;
  auto verdict = parse_pass_fail(text);
  result.score = verdict == 1 ? 1.0 : 0.0;
  result.unparseable = verdict < 0 ? 1 : 0;
  result.explanation = verdict < 0 ? "unparseable verdict: " + text : text;
  result.scores[key] = result.score;
  return result;
}

// What makes two judgements identical: the whole judge prompt and the sampling.
std::string cache_key(const std::vector<ChatMessage>& prompt, const SamplingParams& s) {
  std::string key;
  for (const auto& message : prompt)
    key += message.role + '\x1f' + message.content + '\x1e';
  key += std::to_string(s.temperature) + ',' + std::to_string(s.top_k) + ',' + std::to_string(s.top_p) + ','
         + std::to_string(s.max_tokens) + ',' + std::to_string(s.seed);
  for (const auto& stop : s.stop)
    key += '\x1f' + stop;
  return key;
}

// Asks the judge, through the cache when there is one.
Task<Grade> ask_judge(const InferenceModel& model, const SamplingParams& sampling,
                      const std::shared_ptr<detail::JudgementCache>& cache, std::vector<ChatMessage> prompt,
                      std::function<Grade(const std::string& reply)> verdict) {
  auto judge = [model, sampling, prompt, verdict]() -> Task<Grade> {
    auto reply = co_await model.generate(prompt, sampling);
    co_return verdict(reply.text);
  };
  if (!cache)
    co_return co_await judge();
  co_return co_await cache->get_or_judge(cache_key(prompt, sampling), judge);
}

std::shared_ptr<detail::JudgementCache> make_cache(bool enabled, int size, const std::string& key) {
  if (!enabled)
    return nullptr;
  if (size < 1)
    throw ConfigError("grader '" + key + "': cache_size must be at least 1");
  return std::make_shared<detail::JudgementCache>(static_cast<std::size_t>(size));
}

struct BinaryJudge : Grader::Impl {
  BinaryJudgeOptions options;
  std::shared_ptr<detail::JudgementCache> cache;
  Task<Grade> grade(Sample sample) const override {
    auto instruction = "Criterion: " + options.criteria
                       + "\nDoes the response meet the criterion? Reason briefly, then end with a line "
                         "'VERDICT: PASS' or 'VERDICT: FAIL'.";
    co_return co_await ask_judge(options.model, options.sampling, cache, judge_prompt(instruction, sample),
                                 [key = key](const std::string& text) { return pass_fail_grade(key, text); });
  }
};

struct RangeJudge : Grader::Impl {
  RangeJudgeOptions options;
  std::shared_ptr<detail::JudgementCache> cache;
  Task<Grade> grade(Sample sample) const override {
    auto scale = std::to_string(static_cast<long long>(options.min_score)) + " to "
                 + std::to_string(static_cast<long long>(options.max_score));
    auto instruction = "Criterion: " + options.criteria + "\nRate how well the response meets the criterion on a scale "
                       "from " + scale + ". Reason briefly, then end with a line 'SCORE: <number>'.";
    co_return co_await ask_judge(options.model, options.sampling, cache, judge_prompt(instruction, sample),
                                 [key = key, low = options.min_score, high = options.max_score](const std::string& text) {
                                   Grade result;
                                   auto value = parse_scale_score(text, low, high);
                                   if (std::isnan(value)) {
                                     result.unparseable = 1;
                                     result.explanation = "unparseable score: " + text;
                                   } else {
                                     result.score = (value - low) / (high - low);
                                     result.explanation = text;
                                   }
                                   result.scores[key] = result.score;
                                   return result;
                                 });
  }
};

} // namespace

int parse_pass_fail(const std::string& text) {
  auto upper_text = upper(text);
  auto tag = upper_text.rfind("VERDICT:");
  if (tag != std::string::npos) {
    auto rest = upper_text.substr(tag + 8);
    auto word = rest.find_first_not_of(" \t*_\"'`");
    if (word != std::string::npos && rest.compare(word, 4, "PASS") == 0)
      return 1;
    if (word != std::string::npos && rest.compare(word, 4, "FAIL") == 0)
      return 0;
  }
  static const std::regex words(R"(\b(PASS|FAIL)\b)");
  int verdict = -1;
  for (std::sregex_iterator it(upper_text.begin(), upper_text.end(), words), end; it != end; ++it)
    verdict = (*it)[1].str() == "PASS" ? 1 : 0;
  return verdict;
}

double parse_scale_score(const std::string& text, double min_score, double max_score) {
  static const std::regex number(R"(-?\d+(?:\.\d+)?)");
  auto upper_text = upper(text);
  auto tag = upper_text.rfind("SCORE:");
  auto searched = tag != std::string::npos ? text.substr(tag + 6) : text;
  std::optional<double> found;
  for (std::sregex_iterator it(searched.begin(), searched.end(), number), end; it != end; ++it) {
    found = std::stod(it->str());
    if (tag != std::string::npos)
      break; // the number right after the tag
  }
  if (!found || *found < min_score || *found > max_score)
    return std::numeric_limits<double>::quiet_NaN();
  return *found;
}

BinaryJudgeGrader::BinaryJudgeGrader(BinaryJudgeOptions options)
  : Grader([&] {
      if (options.criteria.empty())
        throw ConfigError("grader '" + options.grader_key + "': criteria must not be empty");
      auto impl = std::make_shared<BinaryJudge>();
      impl->key = options.grader_key;
      impl->cache = make_cache(options.cache, options.cache_size, options.grader_key);
      impl->options = std::move(options);
      return std::shared_ptr<const Grader::Impl>(impl);
    }()) {
}

RangeJudgeGrader::RangeJudgeGrader(RangeJudgeOptions options)
  : Grader([&] {
      if (options.criteria.empty())
        throw ConfigError("grader '" + options.grader_key + "': criteria must not be empty");
      if (!(options.max_score > options.min_score))
        throw ConfigError("grader '" + options.grader_key + "': max_score must be greater than min_score");
      auto impl = std::make_shared<RangeJudge>();
      impl->key = options.grader_key;
      impl->cache = make_cache(options.cache, options.cache_size, options.grader_key);
      impl->options = std::move(options);
      return std::shared_ptr<const Grader::Impl>(impl);
    }()) {
}

} // namespace chorus
