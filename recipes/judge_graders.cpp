// Graders that ask a judge model. The prompt states the criterion, shows the conversation and the
// response, and asks for a final line in a fixed form; parsing accepts that form first and falls back
// to the last verdict-like word, since small judges drift from instructions.
#include <chorus/errors.hpp>
#include <chorus/grader.hpp>

#include "recipes/judgement_cache.hpp"
#include "recipes/openai_chat_client.hpp"

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

// How a judge grader reaches its judge: a prompt and sampling in, the judge's text out.
using AskJudge = std::function<Task<std::string>(std::vector<ChatMessage> prompt, SamplingParams sampling)>;

AskJudge ask_model(InferenceModel model) {
  return [model = std::move(model)](std::vector<ChatMessage> prompt, SamplingParams sampling) -> Task<std::string> {
    auto reply = co_await model.generate(std::move(prompt), std::move(sampling));
    co_return reply.text;
  };
}

AskJudge ask_endpoint(OpenAIEndpoint endpoint, const std::string& key) {
  auto client = std::make_shared<detail::OpenAIChatClient>(std::move(endpoint), key);
  return [client](std::vector<ChatMessage> prompt, SamplingParams sampling) -> Task<std::string> {
    co_return co_await client->chat(std::move(prompt), std::move(sampling));
  };
}

// Asks the judge, through the cache when there is one.
Task<Grade> ask_judge(const AskJudge& ask, const SamplingParams& sampling,
                      const std::shared_ptr<detail::JudgementCache>& cache, std::vector<ChatMessage> prompt,
                      std::function<Grade(const std::string& reply)> verdict) {
  auto judge = [ask, sampling, prompt, verdict]() -> Task<Grade> {
    auto reply = co_await ask(prompt, sampling);
    co_return verdict(reply);
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

// What every judge grader is configured with, whichever way it reaches its judge.
struct JudgeSetup {
  std::string key;
  std::string criteria;
  SamplingParams sampling;
  bool cache = true;
  int cache_size = 0;
};

void check_criteria(const JudgeSetup& setup) {
  if (setup.criteria.empty())
    throw ConfigError("grader '" + setup.key + "': criteria must not be empty");
}

struct BinaryJudge : Grader::Impl {
  JudgeSetup setup;
  std::shared_ptr<detail::JudgementCache> cache;
  AskJudge ask;
  Task<Grade> grade(Sample sample) const override {
    auto instruction = "Criterion: " + setup.criteria
      + "\nDoes the response meet the criterion? Reason briefly, then end with a line "
        "'VERDICT: PASS' or 'VERDICT: FAIL'.";
    co_return co_await ask_judge(ask, setup.sampling, cache, judge_prompt(instruction, sample),
                                 [key = key](const std::string& text) { return pass_fail_grade(key, text); });
  }
};

struct RangeJudge : Grader::Impl {
  JudgeSetup setup;
  std::shared_ptr<detail::JudgementCache> cache;
  AskJudge ask;
  double min_score = 1, max_score = 10;
  Task<Grade> grade(Sample sample) const override {
    auto scale =
      std::to_string(static_cast<long long>(min_score)) + " to " + std::to_string(static_cast<long long>(max_score));
    auto instruction = "Criterion: " + setup.criteria
      + "\nRate how well the response meets the criterion on a scale "
        "from "
      + scale + ". Reason briefly, then end with a line 'SCORE: <number>'.";
    co_return co_await ask_judge(ask, setup.sampling, cache, judge_prompt(instruction, sample),
                                 [key = key, low = min_score, high = max_score](const std::string& text) {
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

// Each builder checks the options first and only then makes the way to the judge (an OpenAI
// client reads the environment and starts threads): `make_ask` runs last.
std::shared_ptr<const Grader::Impl> binary_judge(JudgeSetup setup, const std::function<AskJudge()>& make_ask) {
  check_criteria(setup);
  auto impl = std::make_shared<BinaryJudge>();
  impl->key = setup.key;
  impl->cache = make_cache(setup.cache, setup.cache_size, setup.key);
  impl->setup = std::move(setup);
  impl->ask = make_ask();
  return impl;
}

std::shared_ptr<const Grader::Impl> range_judge(JudgeSetup setup, double min_score, double max_score,
                                                const std::function<AskJudge()>& make_ask) {
  check_criteria(setup);
  if (!(max_score > min_score))
    throw ConfigError("grader '" + setup.key + "': max_score must be greater than min_score");
  auto impl = std::make_shared<RangeJudge>();
  impl->key = setup.key;
  impl->cache = make_cache(setup.cache, setup.cache_size, setup.key);
  impl->setup = std::move(setup);
  impl->min_score = min_score;
  impl->max_score = max_score;
  impl->ask = make_ask();
  return impl;
}

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
  : Grader(binary_judge({options.grader_key, options.criteria, options.sampling, options.cache, options.cache_size},
                        [&] { return ask_model(options.model); })) {}

RangeJudgeGrader::RangeJudgeGrader(RangeJudgeOptions options)
  : Grader(range_judge({options.grader_key, options.criteria, options.sampling, options.cache, options.cache_size},
                       options.min_score, options.max_score, [&] { return ask_model(options.model); })) {}

OpenAIJudgeGrader::OpenAIJudgeGrader(OpenAIJudgeOptions options)
  : Grader(binary_judge({options.grader_key, options.criteria, options.sampling, options.cache, options.cache_size},
                        [&] { return ask_endpoint(std::move(options.endpoint), options.grader_key); })) {}

OpenAIRangeJudgeGrader::OpenAIRangeJudgeGrader(OpenAIRangeJudgeOptions options)
  : Grader(range_judge({options.grader_key, options.criteria, options.sampling, options.cache, options.cache_size},
                       options.min_score, options.max_score,
                       [&] { return ask_endpoint(std::move(options.endpoint), options.grader_key); })) {}

} // namespace chorus
