// Graders that ask a judge model. The prompt states the criterion, shows the conversation and the
// response, and asks for a final line in a fixed form; parsing accepts that form first and falls back
// to the last verdict-like word, since small judges drift from instructions.
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>
#include <chorus/grader.hpp>
#include <chorus/json_schema.hpp>

#include "recipes/judgement_cache.hpp"
#include "recipes/openai_chat_client.hpp"

#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <regex>
#include <string>

namespace chorus {

namespace {

std::string upper(std::string text) {
  for (auto& c : text)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string render(const std::vector<ChatMessage>& conversation, const std::string& response) {
  std::string text = "[Conversation]\n";
  for (const auto& message : conversation)
    text += message.role + ": " + message.content + "\n";
  return text + "\n[Response]\n" + response + "\n";
}

// The judge's prompt: the worked examples, if any, then the case and the instruction. `tag` is the
// line a verdict starts with ("VERDICT:", "SCORE:").
std::vector<ChatMessage> judge_prompt(const std::string& instruction, const std::string& tag,
                                      const std::vector<JudgeShot>& shots, const Sample& sample) {
  std::string text;
  if (!shots.empty()) {
    text = instruction + "\n\nGraded examples:\n";
    for (std::size_t i = 0; i < shots.size(); ++i) {
      const auto& shot = shots[i];
      text += "\n[Example " + std::to_string(i + 1) + "]\n" + render(shot.conversation, shot.response) + "[Grading]\n"
        + (shot.reasoning.empty() ? "" : shot.reasoning + "\n") + tag + " " + shot.verdict + "\n";
    }
    text += "\nNow the case to grade.\n\n";
  }
  return {{"system", "You are a careful, strict grader of an AI assistant's responses."},
          {"user", text + render(sample.prompt, sample.completion) + "\n" + instruction}};
}

// A judge's answer as a grade; nullopt when it holds no verdict to parse.
using Interpret = std::function<std::optional<Grade>(const std::string& reply)>;

std::optional<Grade> pass_fail_grade(const std::string& key, const std::string& text) {
  auto verdict = parse_verdict(text);
  if (verdict == Verdict::none)
    return std::nullopt;
  Grade result;
  result.ignored = verdict == Verdict::not_applicable;
  result.score = verdict == Verdict::pass ? 1.0 : 0.0;
  result.explanation = text;
  if (!result.ignored)
    result.scores[key] = result.score;
  return result;
}

// What makes two judgements identical: the whole judge prompt and the sampling.
std::string cache_key(const std::vector<ChatMessage>& prompt, const SamplingParams& s) {
  std::string key;
  for (const auto& message : prompt)
    key += message.role + '\x1f' + message.content + '\x1e';
  key += std::to_string(s.temperature) + ',' + std::to_string(s.top_k) + ',' + std::to_string(s.top_p) + ','
    + std::to_string(s.max_tokens) + ',' + std::to_string(s.seed) + ',' + std::to_string(s.min_tokens) + ','
    + std::to_string(s.presence_penalty) + ',' + std::to_string(s.frequency_penalty) + ','
    + std::to_string(s.repetition_penalty);
  for (const auto& stop : s.stop)
    key += '\x1f' + stop;
  for (const auto& [token, bias] : s.logit_bias)
    key += '\x1d' + std::to_string(token) + ':' + std::to_string(bias);
  key += '\x1c' + s.json_schema.dump(-1, ' ', false, Json::error_handler_t::replace);
  for (const auto& choice : s.choice)
    key += '\x1f' + choice;
  key += '\x1c' + s.regex;
  key += s.enable_thinking ? "\x1cthinking" : "\x1cnot thinking";
  return key;
}

// How a judge grader reaches its judge: a prompt and sampling in, the judge's text out.
using AskJudge = std::function<Task<std::string>(std::vector<ChatMessage> prompt, SamplingParams sampling)>;

AskJudge ask_model(InferenceModel model) {
  return [model = std::move(model)](std::vector<ChatMessage> prompt, SamplingParams sampling) -> Task<std::string> {
    bool opened = model.opens_thinking(sampling.enable_thinking);
    auto reply = co_await model.generate(std::move(prompt), std::move(sampling));
    // A thinking judge's verdict is in its answer: its reasoning may quote the verdict's form.
    co_return parse_assistant_turn(reply.text, model.thinks(), /*tool_calls=*/false, ToolCallFormat::tagged, opened)
      .content;
  };
}

AskJudge ask_endpoint(OpenAIEndpoint endpoint, const std::string& key) {
  auto client = std::make_shared<detail::OpenAIChatClient>(std::move(endpoint), key);
  return [client](std::vector<ChatMessage> prompt, SamplingParams sampling) -> Task<std::string> {
    co_return co_await client->chat(std::move(prompt), std::move(sampling));
  };
}

// Asks the judge until its answer parses, at most 1 + `retries` times, each retry shown its last
// answer and the form expected (`reminder`); after that the sample is ignored.
Task<Grade> ask_until_parsed(AskJudge ask, SamplingParams sampling, std::vector<ChatMessage> conversation,
                             Interpret interpret, std::string reminder, int retries) {
  std::string reply;
  for (int attempt = 0; attempt <= retries; ++attempt) {
    reply = co_await ask(conversation, sampling);
    if (auto grade = interpret(reply)) {
      grade->unparseable = attempt;
      co_return std::move(*grade);
    }
    conversation.push_back({"assistant", reply});
    conversation.push_back({"user", reminder});
  }
  Grade ignored;
  ignored.ignored = true;
  ignored.unparseable = retries + 1;
  ignored.explanation = "no verdict after " + std::to_string(retries + 1) + " answer(s); the last: " + reply;
  co_return ignored;
}

// Asks the judge, through the cache when there is one.
Task<Grade> ask_judge(const AskJudge& ask, const SamplingParams& sampling,
                      const std::shared_ptr<detail::JudgementCache>& cache, std::vector<ChatMessage> prompt,
                      Interpret interpret, std::string reminder, int retries) {
  auto judge = [ask, sampling, prompt, interpret, reminder, retries]() -> Task<Grade> {
    return ask_until_parsed(ask, sampling, prompt, interpret, reminder, retries);
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
  std::vector<JudgeShot> shots;
  int max_parsing_retries = 1;
};

// `accepted` says whether a shot's verdict is one the judge may give; `expected` names them.
void check_setup(JudgeSetup& setup, const std::function<bool(const std::string&)>& accepted,
                 const std::string& expected) {
  auto fail = [&](const std::string& what) { throw ConfigError("grader '" + setup.key + "': " + what); };
  if (setup.criteria.empty())
    fail("criteria must not be empty");
  if (setup.max_parsing_retries < 0)
    fail("max_parsing_retries must be >= 0");
  for (std::size_t i = 0; i < setup.shots.size(); ++i) {
    auto& verdict = setup.shots[i].verdict;
    verdict = upper(verdict);
    if (verdict == "N/A")
      verdict = "NA";
    if (!accepted(verdict))
      fail("shot " + std::to_string(i + 1) + "'s verdict '" + setup.shots[i].verdict + "' is not " + expected);
  }
}

// The setup of judge options `o` (any of the four judge option structs).
template <class Options>
JudgeSetup setup_of(const Options& o) {
  return {o.grader_key, o.criteria, o.sampling, o.cache, o.cache_size, o.shots, o.max_parsing_retries};
}

// What a binary judge is asked after the case.
std::string binary_instruction(const std::string& criteria) {
  return "Criterion: " + criteria
    + "\nDoes the response meet the criterion? Reason briefly, then end with a line 'VERDICT: PASS' or "
      "'VERDICT: FAIL' ('VERDICT: NA' if the criterion does not apply to this conversation).";
}

struct BinaryJudge : Grader::Impl {
  JudgeSetup setup;
  std::shared_ptr<detail::JudgementCache> cache;
  AskJudge ask;
  Task<Grade> grade(Sample sample) const override {
    co_return co_await ask_judge(
      ask, setup.sampling, cache, judge_prompt(binary_instruction(setup.criteria), "VERDICT:", setup.shots, sample),
      [key = key](const std::string& text) { return pass_fail_grade(key, text); },
      "Your answer did not end with a verdict. End it with one line: 'VERDICT: PASS', 'VERDICT: FAIL' or "
      "'VERDICT: NA'.",
      setup.max_parsing_retries);
  }
};

struct RangeJudge : Grader::Impl {
  JudgeSetup setup;
  std::shared_ptr<detail::JudgementCache> cache;
  AskJudge ask;
  double min_score = 1, max_score = 10;

  std::string scale() const {
    return number(min_score) + " to " + number(max_score);
  }

  // Set for `scoring = "logprobs"`: the judge, whose probabilities of the scale's numbers are read.
  std::optional<InferenceModel> scoring_model;

  std::string instruction() const {
    return "Criterion: " + setup.criteria + "\nRate how well the response meets the criterion on a scale from "
      + scale()
      + ". Reason briefly, then end with a line 'SCORE: <number>' ('SCORE: NA' if the criterion does not "
        "apply to this conversation).";
  }

  // The judge reasons up to "SCORE:"; the score is the expectation of the scale's numbers under its
  // probabilities for the token that follows (NA is a candidate too: when it is the most likely, the
  // sample is ignored).
  Task<Grade> expected_score(Sample sample) const {
    const auto& model = *scoring_model;
    auto prompt = judge_prompt(instruction(), "SCORE:", setup.shots, sample);
    auto sampling = setup.sampling;
    sampling.stop.push_back("SCORE:");
    // "SCORE:" must end the answer, not a line of thinking: a thinking judge reasons in its answer.
    if (model.thinks())
      sampling.enable_thinking = false;
    auto reasoning = co_await model.generate(prompt, sampling);
    auto prefix = reasoning.prompt_tokens;
    for (auto id : co_await model.tokenize(reasoning.text + "SCORE: "))
      prefix.push_back(id);
    std::vector<std::string> candidates{"NA"};
    for (auto v = static_cast<long long>(min_score); v <= static_cast<long long>(max_score); ++v)
      candidates.push_back(std::to_string(v));
    std::vector<Task<std::vector<float>>> asks;
    for (const auto& candidate : candidates) {
      auto ids = co_await model.tokenize(candidate);
      if (ids.size() != 1 && candidate != "NA")
        throw ConfigError("grader '" + key
                          + "': scoring = logprobs needs each score on the scale to be one token of "
                            "the judge's tokenizer; '"
                          + candidate + "' is " + std::to_string(ids.size()));
      ids.resize(1); // NA: its first token stands for it
      asks.push_back(model.logprobs(prefix, ids));
    }
    auto logprobs = co_await when_all(std::move(asks));
    double total = 0, weighted = 0, not_applicable = std::exp(static_cast<double>(logprobs[0][0])), best = 0;
    for (std::size_t i = 1; i < candidates.size(); ++i) {
      auto p = std::exp(static_cast<double>(logprobs[i][0]));
      total += p;
      weighted += p * std::stod(candidates[i]);
      best = std::max(best, p);
    }
    Grade result;
    result.explanation = reasoning.text;
    if (not_applicable > best || total <= 0) {
      result.ignored = true;
      co_return result;
    }
    auto expected = weighted / total;
    result.score = (expected - min_score) / (max_score - min_score);
    result.scores[key] = result.score;
    result.explanation += " (expected score " + std::to_string(expected) + ")";
    co_return result;
  }

  Task<Grade> grade(Sample sample) const override {
    if (scoring_model)
      co_return co_await expected_score(std::move(sample));
    co_return co_await ask_judge(
      ask, setup.sampling, cache, judge_prompt(instruction(), "SCORE:", setup.shots, sample),
      [key = key, low = min_score, high = max_score](const std::string& text) -> std::optional<Grade> {
        Grade result;
        result.explanation = text;
        if (says_not_applicable(text, "SCORE:")) {
          result.ignored = true;
          return result;
        }
        auto value = parse_scale_score(text, low, high);
        if (std::isnan(value))
          return std::nullopt;
        result.score = (value - low) / (high - low);
        result.scores[key] = result.score;
        return result;
      },
      "Your answer did not end with a score from " + scale()
        + ". End it with one line: 'SCORE: <number>' or "
          "'SCORE: NA'.",
      setup.max_parsing_retries);
  }

  static std::string number(double value) {
    auto text = std::to_string(value);
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.')
      text.pop_back();
    return text;
  }
};

// Each builder checks the options first and only then makes the way to the judge (an OpenAI
// client reads the environment and starts threads): `make_ask` runs last.
std::shared_ptr<const Grader::Impl> binary_judge(JudgeSetup setup, const std::function<AskJudge()>& make_ask) {
  check_setup(setup, [](const std::string& v) { return v == "PASS" || v == "FAIL" || v == "NA"; }, "PASS, FAIL or NA");
  auto impl = std::make_shared<BinaryJudge>();
  impl->key = setup.key;
  impl->cache = make_cache(setup.cache, setup.cache_size, setup.key);
  impl->setup = std::move(setup);
  impl->ask = make_ask();
  return impl;
}

std::shared_ptr<const Grader::Impl> range_judge(JudgeSetup setup, double min_score, double max_score,
                                                const std::function<AskJudge()>& make_ask) {
  if (!(max_score > min_score))
    throw ConfigError("grader '" + setup.key + "': max_score must be greater than min_score");
  check_setup(
    setup,
    [&](const std::string& v) {
      return v == "NA" || !std::isnan(parse_scale_score("SCORE: " + v, min_score, max_score));
    },
    "NA or a number from " + RangeJudge::number(min_score) + " to " + RangeJudge::number(max_score));
  auto impl = std::make_shared<RangeJudge>();
  impl->key = setup.key;
  impl->cache = make_cache(setup.cache, setup.cache_size, setup.key);
  impl->setup = std::move(setup);
  impl->min_score = min_score;
  impl->max_score = max_score;
  impl->ask = make_ask();
  return impl;
}

// -- TemplatedJudgeGrader ----------------------------------------------------------

// The names {{...}} in `text`, in order.
std::vector<std::string> placeholders(const std::string& text) {
  static const std::regex pattern(R"(\{\{\s*([A-Za-z0-9_.-]+)\s*\}\})");
  std::vector<std::string> names;
  for (std::sregex_iterator it(text.begin(), text.end(), pattern), end; it != end; ++it)
    names.push_back((*it)[1].str());
  return names;
}

// `text` with its placeholders filled from `sample`; nullopt and `missing` set when the sample's
// metadata lacks a field the text names.
std::optional<std::string> fill(const std::string& text, const Sample& sample, std::string& missing) {
  static const std::regex pattern(R"(\{\{\s*([A-Za-z0-9_.-]+)\s*\}\})");
  std::string result;
  auto last = text.cbegin();
  for (std::sregex_iterator it(text.begin(), text.end(), pattern), end; it != end; ++it) {
    result.append(last, (*it)[0].first);
    last = (*it)[0].second;
    auto name = (*it)[1].str();
    if (name == "conversation") {
      for (const auto& message : sample.prompt)
        result += message.role + ": " + message.content + "\n";
    } else if (name == "prompt") {
      for (auto message = sample.prompt.rbegin(); message != sample.prompt.rend(); ++message)
        if (message->role == "user") {
          result += message->content;
          break;
        }
    } else if (name == "completion") {
      result += sample.completion;
    } else { // metadata.FIELD, checked at construction
      auto field = name.substr(9);
      if (!sample.metadata.is_object() || !sample.metadata.contains(field)) {
        missing = field;
        return std::nullopt;
      }
      const auto& value = sample.metadata[field];
      result += value.is_string() ? value.get<std::string>() : value.dump();
    }
  }
  result.append(last, text.cend());
  return result;
}

struct TemplatedJudge : Grader::Impl {
  TemplatedJudgeOptions options;
  AskJudge ask;

  std::string answer_form() const {
    return "Answer with only a JSON object with the fields \"" + options.reasoning_field
      + "\" (a string: your reasoning, first) and \"" + options.score_field + "\" (a number from "
      + RangeJudge::number(options.min_score) + " to " + RangeJudge::number(options.max_score)
      + ", or null if the criterion does not apply).";
  }

  // The answer's form as a schema, for guided decoding: the reasoning comes first ("required"'s order);
  // on a scale of whole numbers (3 to 101 of them: 1-5, 0-10) the score is one of them, else any number.
  Json answer_schema() const {
    Json score = {{"anyOf", {{{"type", "number"}}, {{"type", "null"}}, {{"enum", {"NA"}}}}}};
    const auto low = options.min_score, high = options.max_score;
    if (low == std::floor(low) && high == std::floor(high) && high - low >= 2 && high - low <= 100) {
      Json values = Json::array();
      for (auto value = low; value <= high; ++value)
        values.push_back(static_cast<std::int64_t>(value));
      values.push_back(nullptr);
      values.push_back("NA");
      score = {{"enum", values}};
    }
    return {{"type", "object"},
            {"properties", {{options.reasoning_field, {{"type", "string"}}}, {options.score_field, score}}},
            {"required", {options.reasoning_field, options.score_field}},
            {"additionalProperties", false}};
  }

  std::optional<Grade> interpret(const std::string& reply) const {
    auto value = parse_json_reply(reply);
    Json schema = {{"type", "object"},
                   {"required", {options.score_field, options.reasoning_field}},
                   {"properties", {{options.reasoning_field, {{"type", "string"}}}}}};
    if (!value || !schema_violation(*value, schema).empty())
      return std::nullopt;
    const auto& score = (*value)[options.score_field];
    Grade result;
    result.explanation = (*value)[options.reasoning_field].get<std::string>();
    if (score.is_null() || (score.is_string() && says_not_applicable("SCORE: " + score.get<std::string>(), "SCORE:"))) {
      result.ignored = true;
      return result;
    }
    if (!score.is_number() || score.get<double>() < options.min_score || score.get<double>() > options.max_score)
      return std::nullopt;
    result.score = (score.get<double>() - options.min_score) / (options.max_score - options.min_score);
    result.scores[key] = result.score;
    return result;
  }

  Task<Grade> grade(Sample sample) const override {
    std::string missing;
    auto system = fill(options.system_template, sample, missing);
    auto user = system ? fill(options.user_template, sample, missing) : std::nullopt;
    if (!user) {
      Grade ignored;
      ignored.ignored = true;
      ignored.explanation = "the sample's metadata has no '" + missing + "', which the judge's template names";
      co_return ignored;
    }
    std::vector<ChatMessage> prompt{{"system", *system}, {"user", *user + "\n\n" + answer_form()}};
    auto sampling = options.sampling;
    if (options.guided)
      sampling.json_schema = answer_schema();
    co_return co_await ask_until_parsed(
      ask, std::move(sampling), std::move(prompt), [this](const std::string& reply) { return interpret(reply); },
      "That answer is not usable. " + answer_form(), options.max_parsing_retries);
  }
};

} // namespace

TemplatedJudgeGrader::TemplatedJudgeGrader(TemplatedJudgeOptions options)
  : Grader([&] {
      auto fail = [&](const std::string& what) { throw ConfigError("grader '" + options.grader_key + "': " + what); };
      if (options.user_template.empty())
        fail("user_template must not be empty");
      for (const auto* text : {&options.system_template, &options.user_template})
        for (const auto& name : placeholders(*text))
          if (name != "conversation" && name != "prompt" && name != "completion"
              && !(name.rfind("metadata.", 0) == 0 && name.size() > 9))
            fail("unknown placeholder {{" + name + "}} (expected conversation, prompt, completion or metadata.FIELD)");
      bool has_endpoint = !options.endpoint.base_url.empty();
      if (static_cast<bool>(options.model) == has_endpoint)
        fail("give the judge as exactly one of model and endpoint");
      if (!(options.max_score > options.min_score))
        fail("max_score must be greater than min_score");
      if (options.max_parsing_retries < 0)
        fail("max_parsing_retries must be >= 0");
      auto impl = std::make_shared<TemplatedJudge>();
      impl->key = options.grader_key;
      impl->ask = has_endpoint ? ask_endpoint(options.endpoint, options.grader_key) : ask_model(options.model);
      impl->options = std::move(options);
      return std::shared_ptr<const Grader::Impl>(impl);
    }()) {}

bool says_not_applicable(const std::string& text, const std::string& tag) {
  auto upper_text = upper(text);
  auto at = upper_text.rfind(upper(tag));
  if (at == std::string::npos)
    return false;
  auto rest = upper_text.substr(at + tag.size());
  auto word = rest.find_first_not_of(" \t*_\"'`");
  if (word == std::string::npos)
    return false;
  for (const char* na : {"N/A", "NA"}) {
    auto length = std::char_traits<char>::length(na);
    if (rest.compare(word, length, na) == 0
        && (word + length == rest.size() || !std::isalnum(static_cast<unsigned char>(rest[word + length]))))
      return true;
  }
  return false;
}

Verdict parse_verdict(const std::string& text) {
  if (says_not_applicable(text, "VERDICT:"))
    return Verdict::not_applicable;
  auto upper_text = upper(text);
  auto tag = upper_text.rfind("VERDICT:");
  if (tag != std::string::npos) {
    auto rest = upper_text.substr(tag + 8);
    auto word = rest.find_first_not_of(" \t*_\"'`");
    if (word != std::string::npos && rest.compare(word, 4, "PASS") == 0)
      return Verdict::pass;
    if (word != std::string::npos && rest.compare(word, 4, "FAIL") == 0)
      return Verdict::fail;
  }
  static const std::regex words(R"(\b(PASS|FAIL)\b)");
  auto verdict = Verdict::none;
  for (std::sregex_iterator it(upper_text.begin(), upper_text.end(), words), end; it != end; ++it)
    verdict = (*it)[1].str() == "PASS" ? Verdict::pass : Verdict::fail;
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

std::vector<ChatMessage> binary_judge_prompt(const BinaryJudgeOptions& options, const Sample& sample) {
  auto setup = setup_of(options);
  check_setup(setup, [](const std::string&) { return true; }, ""); // the verdicts as the grader writes them
  return judge_prompt(binary_instruction(setup.criteria), "VERDICT:", setup.shots, sample);
}

BinaryJudgeGrader::BinaryJudgeGrader(BinaryJudgeOptions options)
  : Grader(binary_judge(setup_of(options), [&] { return ask_model(options.model); })) {}

RangeJudgeGrader::RangeJudgeGrader(RangeJudgeOptions options)
  : Grader([&] {
      auto impl =
        range_judge(setup_of(options), options.min_score, options.max_score, [&] { return ask_model(options.model); });
      if (options.scoring == "parsed")
        return impl;
      auto fail = [&](const std::string& what) { throw ConfigError("grader '" + options.grader_key + "': " + what); };
      if (options.scoring != "logprobs")
        fail("scoring must be parsed or logprobs, got '" + options.scoring + "'");
      if (options.min_score != std::floor(options.min_score) || options.max_score != std::floor(options.max_score)
          || options.max_score - options.min_score > 20)
        fail("scoring = logprobs needs a scale of whole numbers with at most 21 values");
      auto logprob_judge = std::make_shared<RangeJudge>(static_cast<const RangeJudge&>(*impl));
      logprob_judge->scoring_model = options.model;
      return std::shared_ptr<const Grader::Impl>(logprob_judge);
    }()) {}

OpenAIJudgeGrader::OpenAIJudgeGrader(OpenAIJudgeOptions options)
  : Grader(
      binary_judge(setup_of(options), [&] { return ask_endpoint(std::move(options.endpoint), options.grader_key); })) {}

OpenAIRangeJudgeGrader::OpenAIRangeJudgeGrader(OpenAIRangeJudgeOptions options)
  : Grader(range_judge(setup_of(options), options.min_score, options.max_score,
                       [&] { return ask_endpoint(std::move(options.endpoint), options.grader_key); })) {}

} // namespace chorus
