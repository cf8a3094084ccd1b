// Graders: turn a sample (prompt, completion, metadata) into a score in [0, 1] with an explanation.
// Grading is a coroutine, so an RL trainer grades a whole batch at once, judge calls included.
//
//   auto format = JsonGrader({.grader_key = "format", .schema = {{"required", {"answer"}}}});
//   auto correct = ExactMatchGrader({.grader_key = "correct", .metadata_key = "answer"});
//   auto judge = BinaryJudgeGrader({.grader_key = "quality", .criteria = "Is it polite?", .model = judge_model});
//   auto reward = CombinedGrader({.grader_key = "reward", .graders = {format, correct, judge}});
//   Grade grade = co_await reward.grade(sample);   // grade.score, grade.scores["format"], ...
#pragma once

#include <chorus/config.hpp>
#include <chorus/context.hpp>
#include <chorus/dataset.hpp>
#include <chorus/generation.hpp>
#include <chorus/model.hpp>
#include <chorus/task.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace chorus {

/// What a grader sees: the prompt, the model's completion and the example's metadata.
struct Sample {
  /// The conversation the completion answers.
  std::vector<ChatMessage> prompt;
  /// The model's completion; a thinking model's (InferenceModel::thinks) answer after its
  /// reasoning, which is in `reasoning` (parse_assistant_turn).
  std::string completion;
  /// The example's metadata, e.g. the expected answer.
  Json metadata = Json::object();
  /// A thinking model's reasoning: its `<think>` block ("" for other models).
  std::string reasoning;
};

/// A grader's verdict on one sample: a score with an explanation.
struct Grade {
  /// In [0, 1]; higher is better.
  double score = 0.0;
  /// Why the sample got its score, in words.
  std::string explanation;
  /// The score of every grader that contributed, by grader key (a combined grader's parts too).
  std::map<std::string, double> scores;
  /// Judge answers that could not be parsed, retries included: counted, so that a trainer reports them.
  int unparseable = 0;
  /// Judge verdicts served from a judge grader's cache instead of asking the judge again.
  int cached = 0;
  /// The grader could not grade the sample: a judge's NA ("not applicable") verdict, no verdict it
  /// could parse after its retries, or every part of a combined grader left out. The sample is left
  /// out of the reward, the advantages and the loss (and counted), instead of scoring 0.
  bool ignored = false;
  /// The parts of a combined grade that were left out, by grader key: "ignored: ..." or "failed: ..."
  /// (the part threw), with the reason.
  std::map<std::string, std::string> left_out;
};

/// A grader: a cheap, copyable handle. Build one with the classes below.
class Grader {
public:
  /// No grader: grading with it throws (an algorithm's options start with one of these).
  Grader() = default;

  /// Grades `sample`. Never throws for a bad completion (that is a low score); throws for a judge
  /// that cannot be reached.
  Task<Grade> grade(Sample sample) const;

  /// The key its score is logged under.
  const std::string& key() const;

  /// Whether this handle holds a grader.
  explicit operator bool() const noexcept {
    return impl_ != nullptr;
  }

  /// The share of a step's samples above which a part left out (Grade::left_out) is warned about and
  /// logged (CombinedOptions::failure_rate_warning); 1 for graders without parts.
  double failure_rate_warning() const;

  /// What implementations provide.
  struct Impl {
    virtual ~Impl() = default;
    /// Grades `sample`.
    virtual Task<Grade> grade(Sample sample) const = 0;
    /// The key the score is logged under.
    std::string key;
    /// As Grader::failure_rate_warning.
    double failure_rate_warning = 1.0;
  };

  /// A handle to the grader `impl`, for implementations.
  explicit Grader(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

private:
  std::shared_ptr<const Impl> impl_;
};

/// A grader from any function of a sample, returning a score in [0, 1] (or a whole Grade):
/// `FunctionGrader("short", [](const Sample& s) { return s.completion.size() < 100 ? 1.0 : 0.0; })`.
class FunctionGrader : public Grader {
public:
  /// A grader under key `grader_key` whose score is `score(sample)`, clamped to [0, 1].
  FunctionGrader(std::string grader_key, std::function<double(const Sample&)> score);
  /// A grader under key `grader_key` whose Grade is `grade(sample)`, its score clamped to [0, 1].
  FunctionGrader(std::string grader_key, std::function<Grade(const Sample&)> grade);
};

/// Options of ExactMatchGrader.
struct ExactMatchOptions {
  /// The key the score is logged under.
  std::string grader_key = "exact_match";
  /// The metadata field holding the expected answer (a string, or a number compared as text).
  std::string metadata_key = "answer";
  /// Where the answer is in the completion: a regex whose first group (or whole match) is compared;
  /// empty: the whole completion.
  std::string extract;
  /// Compare after trimming whitespace and lower-casing.
  bool normalize = true;
};

/// 1 when the completion's answer equals metadata[metadata_key], else 0.
class ExactMatchGrader : public Grader {
public:
  /// A grader with `options`.
  /// @throws ConfigError for an invalid `extract` regex.
  explicit ExactMatchGrader(ExactMatchOptions options);
};

/// Options of RegexGrader.
struct RegexOptions {
  /// The key the score is logged under.
  std::string grader_key = "regex";
  /// ECMAScript regex searched for in the completion.
  std::string pattern;
};

/// 1 when the pattern occurs in the completion. @throws ConfigError for an invalid pattern.
class RegexGrader : public Grader {
public:
  /// A grader with `options`.
  /// @throws ConfigError for an invalid pattern.
  explicit RegexGrader(RegexOptions options);
};

/// Options of JsonGrader.
struct JsonOptions {
  /// The key the score is logged under.
  std::string grader_key = "json";
  /// The JSON Schema the completion must satisfy (chorus/json_schema.hpp's subset: "type", "enum",
  /// "required", "properties", "additionalProperties", "items"). Empty: any valid JSON.
  Json schema = Json::object();
};

/// 1 when the completion (trimmed) is valid JSON satisfying the schema; the explanation says what
/// is wrong otherwise.
class JsonGrader : public Grader {
public:
  /// A grader with `options`.
  explicit JsonGrader(JsonOptions options);
};

/// A worked example placed in a judge's prompt before the case it grades (the judges' `shots`).
struct JudgeShot {
  /// The example's conversation.
  std::vector<ChatMessage> conversation;
  /// The example's response.
  std::string response;
  /// The answer the judge should give: "PASS", "FAIL" or "NA" for a binary judge; a number on the
  /// scale, or "NA", for a range judge.
  std::string verdict;
  /// The reasoning the judge should write before its verdict (may be empty).
  std::string reasoning;
};

/// Options of BinaryJudgeGrader.
struct BinaryJudgeOptions {
  /// The key the score is logged under.
  std::string grader_key = "judge";
  /// What the judge checks, in plain words.
  std::string criteria;
  /// The judge: any inference model (spawn_inference).
  InferenceModel model;
  /// The judge's sampling; greedy by default, so that a verdict is reproducible.
  SamplingParams sampling{.temperature = 0.0, .max_tokens = 64};
  /// Serve identical judgements (same criteria, conversation, response and sampling) from a cache of
  /// the last cache_size verdicts; identical requests in flight at once ask the judge once.
  bool cache = true;
  /// The most verdicts the cache keeps (at least 1 when `cache` is on).
  int cache_size = 65536;
  /// Worked examples shown to the judge before each case, in order.
  std::vector<JudgeShot> shots;
  /// Times the judge is asked again, shown its answer and the form expected, when its answer has no
  /// verdict it can parse; after them the sample is ignored (Grade::ignored).
  int max_parsing_retries = 1;
};

/// Asks a judge model whether the completion meets the criteria: PASS scores 1, FAIL 0. NA (the
/// criterion does not apply), or an answer with no verdict after the retries, ignores the sample
/// (Grade::ignored; the latter also counted in Grade::unparseable), the judge's text kept.
class BinaryJudgeGrader : public Grader {
public:
  /// A grader with `options`.
  /// @throws ConfigError for an empty criteria, or a cache_size below 1 with the cache on.
  explicit BinaryJudgeGrader(BinaryJudgeOptions options);
};

/// The conversation a BinaryJudgeGrader with `options` sends its judge about `sample` (its shots,
/// the case and the instruction): what to train a judge on, its reply ending with a line
/// "VERDICT: PASS" or "VERDICT: FAIL".
std::vector<ChatMessage> binary_judge_prompt(const BinaryJudgeOptions& options, const Sample& sample);

/// Demonstrations that train a model into the judge a BinaryJudgeGrader with `options` asks: for
/// each labelled response (a Metric whose label above 0.5 means PASS) the grader's own prompt,
/// answered with the line's metadata "reasoning" (when it has one) and the verdict line. SFT on them
/// gives a judge that follows this grader's format:
///
///   auto verdicts = co_await Dataset<Metric>{.path = "verdicts.jsonl", .label_key = "pass"}.load(ctx);
///   co_await SFT({.dataset = binary_judge_demonstrations(options, verdicts), .model = judge}).run();
std::vector<Completion> binary_judge_demonstrations(const BinaryJudgeOptions& options,
                                                    const std::vector<Metric>& verdicts);

/// The share of `verdicts` that `grader` grades as labelled (score above 0.5 for a label above 0.5;
/// an ignored grade counts as a disagreement): a judge's held-out accuracy. 0 for no verdicts.
Task<double> judge_agreement(const Grader& grader, std::vector<Metric> verdicts);

/// The share of `verdicts` with the commoner label (PASS or FAIL): the accuracy of a judge that always
/// answers the same, which a trained judge has to beat before its verdicts carry any signal (a judge
/// stage that did not learn to read the case lands here). 0 for no verdicts.
double majority_verdict_share(const std::vector<Metric>& verdicts);

/// judge_agreement on held-out verdicts, logged: "judge NAME: accuracy A on N held-out verdicts", and
/// a warning when the judge does no better than majority_verdict_share (GSPO graded by it would learn
/// from noise). Returns the accuracy.
Task<double> measure_judge(const Grader& grader, std::vector<Metric> held_out, const std::string& name,
                           RecipeContext& ctx);

/// Options of RangeJudgeGrader.
struct RangeJudgeOptions {
  /// The key the score is logged under.
  std::string grader_key = "judge_score";
  /// What the judge scores, in plain words.
  std::string criteria;
  /// The judge: any inference model (spawn_inference).
  InferenceModel model;
  /// The scale the judge answers on; the score is (answer - min_score) / (max_score - min_score).
  double min_score = 1;
  /// The top of the judge's scale (see min_score).
  double max_score = 10;
  /// The judge's sampling; greedy by default, so that a verdict is reproducible.
  SamplingParams sampling{.temperature = 0.0, .max_tokens = 64};
  /// As in BinaryJudgeOptions.
  bool cache = true;
  /// The most verdicts the cache keeps (at least 1 when `cache` is on).
  int cache_size = 65536;
  /// Worked examples shown to the judge before each case, in order.
  std::vector<JudgeShot> shots;
  /// Times the judge is asked again, shown its answer and the form expected, when its answer has no
  /// verdict it can parse; after them the sample is ignored (Grade::ignored).
  int max_parsing_retries = 1;
  /// "parsed": the number the judge writes after "SCORE:". "logprobs": the judge reasons up to
  /// "SCORE:", and the score is the expectation of the scale's numbers under its probabilities for
  /// the next token (a finer, steadier reward than one sampled number); NA the most likely: ignored.
  /// Needs a scale of whole numbers, each one token of the judge's tokenizer (not cached). A
  /// thinking judge (Qwen3) answers without its `<think>` block then (enable_thinking false).
  std::string scoring = "parsed";
};

/// Asks a judge model for a score on a stated scale, normalised to [0, 1]. NA, or an answer without a
/// number on the scale after the retries, ignores the sample (as BinaryJudgeGrader).
class RangeJudgeGrader : public Grader {
public:
  /// A grader with `options`.
  /// @throws ConfigError for an empty criteria, max_score not above min_score, or a cache_size below 1
  /// with the cache on.
  explicit RangeJudgeGrader(RangeJudgeOptions options);
};

/// Options of ScoringModelGrader.
struct ScoringModelOptions {
  /// The key the score is logged under.
  std::string grader_key = "reward_model";
  /// The reward model (spawn_scoring; e.g. trained by RewardModelling).
  ScoringModel model;
  /// How its raw score s becomes one in [0, 1]: "sigmoid": 1 / (1 + exp(-(s - center) / temperature))
  /// (a Bradley-Terry model's scores are log-odds); "linear": (s - low) / (high - low), clamped (a
  /// regression model's scale).
  std::string squash = "sigmoid";
  /// "sigmoid": the raw score that maps to 0.5.
  double center = 0.0;
  /// "sigmoid": raw-score units per unit of log-odds (> 0).
  double temperature = 1.0;
  /// "linear": the raw score that maps to 0.
  double low = 0.0;
  /// "linear": the raw score that maps to 1 (> low).
  double high = 1.0;
};

/// A reward model as a grader: scores the prompt and completion with a scoring model and squashes
/// its raw score into [0, 1] as configured; the raw score is in the explanation.
class ScoringModelGrader : public Grader {
public:
  /// A grader with `options`.
  /// @throws ConfigError for no model, an unknown squash, a temperature <= 0 or high <= low.
  explicit ScoringModelGrader(ScoringModelOptions options);
};

/// An OpenAI-compatible chat-completions API: a hosted one, a vLLM server, or chorus-serve.
struct OpenAIEndpoint {
  /// The API's base URL, up to and including the version: "https://api.openai.com/v1",
  /// "http://127.0.0.1:8000/v1".
  std::string base_url;
  /// The model the requests name.
  std::string model;
  /// The environment variable holding the API key, sent as a bearer token and never logged; unset or
  /// empty: no key is sent (a local server that asks for none).
  std::string api_key_env = "OPENAI_API_KEY";
  /// Requests in flight at once, over every grade of the grader.
  int max_concurrency = 8;
  /// How long one attempt may wait: to connect, and for each read of the answer.
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
  /// Further attempts after a 429, a 5xx, a timeout or a lost connection (other errors are final).
  int max_retries = 4;
  /// The wait before the first retry, doubled before each next one (with jitter); a Retry-After
  /// header, when the server sends one, is obeyed instead.
  std::chrono::milliseconds initial_backoff = std::chrono::milliseconds(500);
};

/// Options of OpenAIJudgeGrader.
struct OpenAIJudgeOptions {
  /// The key the score is logged under.
  std::string grader_key = "judge";
  /// What the judge checks, in plain words.
  std::string criteria;
  /// The judge's API and model.
  OpenAIEndpoint endpoint;
  /// As in BinaryJudgeOptions; top_k is not part of the OpenAI API and is not sent.
  SamplingParams sampling{.temperature = 0.0, .max_tokens = 64};
  /// Serve identical judgements from a cache, as in BinaryJudgeOptions.
  bool cache = true;
  /// The most verdicts the cache keeps (at least 1 when `cache` is on).
  int cache_size = 65536;
  /// Worked examples shown to the judge before each case, in order.
  std::vector<JudgeShot> shots;
  /// Times the judge is asked again, shown its answer and the form expected, when its answer has no
  /// verdict it can parse; after them the sample is ignored (Grade::ignored).
  int max_parsing_retries = 1;
};

/// BinaryJudgeGrader's judging (same prompt, same PASS/FAIL parsing) by a model behind an
/// OpenAI-compatible endpoint. An endpoint that cannot be reached after the retries, or that refuses
/// the request (a 4xx other than 429), throws Error naming the URL and the status.
class OpenAIJudgeGrader : public Grader {
public:
  /// A grader with `options`.
  /// @throws ConfigError for an empty criteria or model, an invalid base URL or limit, or a cache_size
  /// below 1 with the cache on.
  explicit OpenAIJudgeGrader(OpenAIJudgeOptions options);
};

/// Options of OpenAIRangeJudgeGrader.
struct OpenAIRangeJudgeOptions {
  /// The key the score is logged under.
  std::string grader_key = "judge_score";
  /// What the judge scores, in plain words.
  std::string criteria;
  /// The judge's API and model.
  OpenAIEndpoint endpoint;
  /// The bottom of the judge's scale; the score is (answer - min_score) / (max_score - min_score).
  double min_score = 1;
  /// The top of the judge's scale.
  double max_score = 10;
  /// As in BinaryJudgeOptions; top_k is not part of the OpenAI API and is not sent.
  SamplingParams sampling{.temperature = 0.0, .max_tokens = 64};
  /// Serve identical judgements from a cache, as in BinaryJudgeOptions.
  bool cache = true;
  /// The most verdicts the cache keeps (at least 1 when `cache` is on).
  int cache_size = 65536;
  /// Worked examples shown to the judge before each case, in order.
  std::vector<JudgeShot> shots;
  /// Times the judge is asked again, shown its answer and the form expected, when its answer has no
  /// verdict it can parse; after them the sample is ignored (Grade::ignored).
  int max_parsing_retries = 1;
};

/// RangeJudgeGrader's judging by a model behind an OpenAI-compatible endpoint; errors as
/// OpenAIJudgeGrader.
class OpenAIRangeJudgeGrader : public Grader {
public:
  /// A grader with `options`.
  /// @throws ConfigError for an empty criteria or model, an invalid base URL or limit, max_score not
  /// above min_score, or a cache_size below 1 with the cache on.
  explicit OpenAIRangeJudgeGrader(OpenAIRangeJudgeOptions options);
};

/// Options of TemplatedJudgeGrader.
struct TemplatedJudgeOptions {
  /// The key the score is logged under.
  std::string grader_key = "templated_judge";
  /// The judge's system message; placeholders as in user_template.
  std::string system_template = "You are a careful, strict grader of an AI assistant's responses.";
  /// The judge's user message. Placeholders: {{conversation}} (the prompt's messages, one
  /// "role: content" line each), {{prompt}} (the last user message), {{completion}}, and
  /// {{metadata.FIELD}} (a metadata field; strings as they are, other values as JSON). The form of the
  /// answer (a JSON object with score_field and reasoning_field) is asked for after it.
  std::string user_template;
  /// The judge: an inference model (spawn_inference), or else...
  InferenceModel model;
  /// ...a model behind an OpenAI-compatible endpoint (when its base_url is set).
  OpenAIEndpoint endpoint;
  /// The answer's field holding the score, a number on [min_score, max_score]; null or "NA": the
  /// criterion does not apply and the sample is ignored.
  std::string score_field = "score";
  /// The answer's field holding the judge's reasoning (the grade's explanation).
  std::string reasoning_field = "reasoning";
  /// The bottom of the score's scale; the grade is (score - min_score) / (max_score - min_score).
  double min_score = 0;
  /// The top of the score's scale.
  double max_score = 1;
  /// The judge's sampling; greedy by default.
  SamplingParams sampling{.temperature = 0.0, .max_tokens = 256};
  /// Times the judge is asked again, shown its answer and what is wrong with it, when the answer is
  /// not such a JSON object; after them the sample is ignored (counted as unparseable).
  int max_parsing_retries = 2;
  /// Guided decoding: the judge's answer is drawn to be that JSON object (reasoning_field first, then
  /// score_field: one of the scale's whole numbers when both ends are whole and 2 to 100 apart (1-5,
  /// 0-10), else any number; or null or "NA"), so it always parses; only an answer cut by max_tokens
  /// (or a number off the scale) is asked again. An endpoint judge gets it as response_format.
  bool guided = false;
};

/// A judge whose prompt the recipe writes: `system_template` and `user_template` with the sample
/// filled in, the judge's answer a JSON object parsed and checked (retried when it does not parse).
/// A sample whose metadata lacks a field the template names is ignored, the field named.
class TemplatedJudgeGrader : public Grader {
public:
  /// A grader with `options`.
  /// @throws ConfigError for an empty user_template, a placeholder it does not know, neither or both
  /// of model and endpoint, max_score not above min_score, or negative retries.
  explicit TemplatedJudgeGrader(TemplatedJudgeOptions options);
};

/// Options of the retrieval graders (FaithfulnessGrader, AnswerRelevancyGrader,
/// ContextRelevancyGrader): templated judges with a fixed prompt on a 1-5 scale.
struct RetrievalJudgeOptions {
  /// The key the score is logged under; empty: the grader's own ("faithfulness", "answer_relevancy",
  /// "context_relevancy").
  std::string grader_key;
  /// The metadata field holding the retrieved context the answer was written from.
  std::string context_key = "context";
  /// The judge: an inference model, or else...
  InferenceModel model;
  /// ...a model behind an OpenAI-compatible endpoint (when its base_url is set).
  OpenAIEndpoint endpoint;
  /// The judge's sampling; greedy by default.
  SamplingParams sampling{.temperature = 0.0, .max_tokens = 256};
  /// As in TemplatedJudgeOptions.
  int max_parsing_retries = 2;
};

/// Whether the answer makes no claim beyond the context in metadata[context_key]: 1 when every claim
/// is supported; an answer without factual claims is ignored.
class FaithfulnessGrader : public Grader {
public:
  /// A grader with `options`. @throws ConfigError as TemplatedJudgeGrader.
  explicit FaithfulnessGrader(RetrievalJudgeOptions options);
};

/// How directly and completely the answer addresses the question (the prompt's last user message).
class AnswerRelevancyGrader : public Grader {
public:
  /// A grader with `options`. @throws ConfigError as TemplatedJudgeGrader.
  explicit AnswerRelevancyGrader(RetrievalJudgeOptions options);
};

/// How relevant the retrieved context in metadata[context_key] is to the question: a check of the
/// retrieval, whatever the answer.
class ContextRelevancyGrader : public Grader {
public:
  /// A grader with `options`. @throws ConfigError as TemplatedJudgeGrader.
  explicit ContextRelevancyGrader(RetrievalJudgeOptions options);
};

/// Options of CombinedGrader.
struct CombinedOptions {
  /// The key the combined score is logged under.
  std::string grader_key = "combined";
  /// The graders to combine (at least one).
  std::vector<Grader> graders;
  /// One per grader; empty: equal weights.
  std::vector<double> weights;
  /// "mean": the weighted mean of the parts' scores; "sum": their weighted sum, clamped to [0, 1].
  std::string aggregation = "mean";
  /// When a part is left out (ignored, or it threw) on more than this share of a step's samples,
  /// the algorithm warns in the log, naming the part; the share is logged every step either way
  /// (`left_out/<part>`).
  double failure_rate_warning = 0.2;
};

/// Several graders, run concurrently, combined by `aggregation`; each part's score is kept under its
/// key. A part that is ignored or throws is left out, the others' weights renormalised ("mean"), and
/// named in Grade::left_out; when every part is left out the sample is ignored.
class CombinedGrader : public Grader {
public:
  /// A grader with `options`.
  /// @throws ConfigError for no graders, a weight count that does not match, a negative weight, an
  /// unknown aggregation or a failure_rate_warning outside [0, 1].
  explicit CombinedGrader(CombinedOptions options);
};

// -- judge prompts and verdicts (exposed for tests) -------------------------------

/// A binary judge's verdict.
enum class Verdict { fail, pass, not_applicable, none };

/// The judge's verdict in `text`. The word after the last "VERDICT:" decides if there is one (PASS,
/// FAIL, NA or N/A); otherwise the last of PASS and FAIL to appear as a whole word
/// (case-insensitive), since a judge reasons before it concludes; Verdict::none without either.
Verdict parse_verdict(const std::string& text);

/// The number after the last "SCORE:" if there is one, else the last number in `text`; NaN when it is
/// missing or outside [min_score, max_score].
double parse_scale_score(const std::string& text, double min_score, double max_score);

/// Whether the word after the last `tag` ("VERDICT:", "SCORE:") in `text` is NA or N/A.
bool says_not_applicable(const std::string& text, const std::string& tag);

} // namespace chorus
