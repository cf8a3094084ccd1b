// Multi-turn episodes in token space. The model continues the exact tokens of the conversation so far
// (re-tokenizing its text could change them, and with them the log-probs the loss needs); the
// environment's turns are rendered by the chat template and spliced in between, masked out.
#include <chorus/environment.hpp>
#include <chorus/errors.hpp>

#include "recipes/policy_optimization.hpp"
#include "recipes/stage_clock.hpp"

#include <algorithm>
#include <optional>

namespace chorus {

namespace {

void append(detail::Rollout& rollout, const std::vector<std::int64_t>& tokens, const std::vector<float>& logprobs,
            std::uint8_t trained) {
  rollout.tokens.insert(rollout.tokens.end(), tokens.begin(), tokens.end());
  if (trained)
    rollout.logprobs.insert(rollout.logprobs.end(), logprobs.begin(), logprobs.end());
  else
    rollout.logprobs.insert(rollout.logprobs.end(), tokens.size(), 0.0f);
  rollout.mask.insert(rollout.mask.end(), tokens.size(), trained);
}

// The environment's turn as messages: the tool results, one "tool" message each, or a user message.
std::vector<ChatMessage> reply_messages(const EnvReply& reply) {
  if (reply.tool_results.empty())
    return {{"user", reply.message, {}}};
  std::vector<ChatMessage> messages;
  for (const auto& result : reply.tool_results)
    messages.push_back({"tool", result, {}});
  return messages;
}

// The tokens between the model's turn (ending in its stop token) and the next generation: the rest
// of the closed assistant turn, the environment's messages and the generation prompt. They are
// rendered around stand-in turns, not the conversation so far: they do not depend on it, and
// rendering it would cost more every turn. The stand-ins are a question and an answer holding the
// model's calls (Mistral's results name their ids), so that the reply follows an assistant turn as
// templates that insist on alternating roles (Gemma's) require; the glue is what follows the
// answer's stop token. (A thinking template, Qwen3's, writes the answer
// differently once a user message follows it, so the rendering without the reply is no prefix of
// the one with it: the stop token is found by counting, not by comparing.) Nothing if the model
// ended its turn with a stop token the chat template does not close turns with (e.g. end-of-text
// instead of end-of-turn): the conversation cannot go on.
Task<std::optional<std::vector<std::int64_t>>> environment_turn(TrainingModel model, const ChatMessage& answer,
                                                                const std::vector<ChatMessage>& reply,
                                                                std::int64_t stop_token, const std::vector<Tool>& tools,
                                                                bool enable_thinking) {
  const std::vector<ChatMessage> asked{{"user", "?", {}}};
  auto replied = asked;
  replied.push_back({"assistant", "?", answer.tool_calls}); // its calls: results name their ids (Mistral's)
  replied.insert(replied.end(), reply.begin(), reply.end());
  auto question = co_await model.tokenize_chat(asked, /*add_generation_prompt=*/false, tools, enable_thinking);
  auto rendered = co_await model.tokenize_chat(replied, /*add_generation_prompt=*/true, tools, enable_thinking);
  // The question's turn must be written the same when more follows, up to its last stop token.
  auto question_end = std::find(question.rbegin(), question.rend(), stop_token).base();
  if (rendered.size() < static_cast<std::size_t>(question_end - question.begin())
      || !std::equal(question.begin(), question_end, rendered.begin()))
    throw Error("model '" + model.name()
                + "': its chat template does not write a conversation's turns the same when more turns follow; "
                  "multi-turn episodes need that");
  // The answer's stop token: the first one after those the question's rendering holds.
  auto before = std::count(question.begin(), question.end(), stop_token);
  std::ptrdiff_t seen = 0;
  for (auto token = rendered.begin(); token != rendered.end(); ++token)
    if (*token == stop_token && seen++ == before)
      co_return std::vector<std::int64_t>(token + 1, rendered.end());
  co_return std::nullopt;
}

} // namespace

Task<detail::Rollout> detail::episode(TrainingModel model, EnvironmentOptions options, Prompt prompt,
                                      SamplingParams sampling, StageClock& clock) {
  auto environment = options.environment();
  if (!environment)
    throw Error("the environment factory returned no environment");
  auto conversation = co_await environment->reset(prompt);
  detail::Rollout rollout;
  rollout.prompt_tokens =
    co_await model.tokenize_chat(conversation, /*add_generation_prompt=*/true, options.tools, sampling.enable_thinking);
  auto context = rollout.prompt_tokens;
  rollout.weight_version = -1;
  for (int turn = 0;; ++turn) {
    auto turn_sampling = sampling;
    if (turn_sampling.seed >= 0)
      turn_sampling.seed += turn * 7919; // each turn its own draws, still reproducible
    Generation generation;
    {
      StageClock::Busy busy(clock, StageClock::generate);
      generation = co_await model.generate_tokens(context, turn_sampling, options.tools);
    }
    append(rollout, generation.tokens, generation.logprobs, 1);
    context.insert(context.end(), generation.tokens.begin(), generation.tokens.end());
    rollout.generated += static_cast<std::int64_t>(generation.tokens.size());
    rollout.weight_version = rollout.weight_version < 0 ? generation.weight_version
                                                        : std::min(rollout.weight_version, generation.weight_version);
    conversation.push_back(parse_assistant_turn(generation.text, model.thinks(), !options.tools.empty(),
                                                model.tool_call_format(),
                                                model.opens_thinking(sampling.enable_thinking)));
    if (generation.finish_reason != "stop" || generation.tokens.empty()) {
      rollout.grade = {0.0, "turn " + std::to_string(turn + 1) + " was cut at max_tokens", {}, 0};
      break;
    }
    EnvReply reply;
    {
      StageClock::Busy busy(clock, StageClock::grade); // the environment's reaction grades the turn
      reply = co_await environment->step(conversation);
    }
    if (reply.done) {
      rollout.grade = {std::clamp(reply.reward, 0.0, 1.0), reply.explanation, {}, 0};
      break;
    }
    if (turn + 1 >= options.max_turns) {
      rollout.grade = {0.0, "no final reward within " + std::to_string(options.max_turns) + " turns", {}, 0};
      break;
    }
    auto messages = reply_messages(reply);
    auto glue = co_await environment_turn(model, conversation.back(), messages, generation.tokens.back(), options.tools,
                                          sampling.enable_thinking);
    if (!glue) {
      rollout.grade = {
        0.0, "turn " + std::to_string(turn + 1) + " ended with a token that does not end a chat turn", {}, 0};
      break;
    }
    conversation.insert(conversation.end(), messages.begin(), messages.end());
    append(rollout, *glue, {}, 0);
    context.insert(context.end(), glue->begin(), glue->end());
  }
  rollout.grade.scores["environment"] = rollout.grade.score;
  co_return rollout;
}

namespace {

detail::PolicyOptimization with_environment(detail::PolicyOptimization c, const EnvironmentOptions& environment) {
  if (!environment.environment)
    throw ConfigError(c.algorithm + ": no environment given");
  if (environment.max_turns < 1)
    throw ConfigError(c.algorithm + ": max_turns must be at least 1");
  c.algorithm = "ENV" + c.algorithm;
  if (c.stage == "grpo" || c.stage == "gspo")
    c.stage = "env_" + c.stage;
  c.grader = {};
  c.rollout = [model = c.model, environment](Prompt prompt, SamplingParams sampling, detail::StageClock& clock) {
    return detail::episode(model, environment, std::move(prompt), std::move(sampling), clock);
  };
  detail::check(c);
  return c;
}

} // namespace

ENVGRPO::ENVGRPO(GrpoOptions options, EnvironmentOptions environment)
  : options_(std::move(options)), environment_(std::move(environment)) {
  with_environment(detail::from(options_), environment_);
}

Task<GrpoResult> ENVGRPO::run() const {
  return detail::run_policy_optimization_as<GrpoResult>(with_environment(detail::from(options_), environment_));
}

ENVGSPO::ENVGSPO(GspoOptions options, EnvironmentOptions environment)
  : options_(std::move(options)), environment_(std::move(environment)) {
  with_environment(detail::from(options_), environment_);
}

Task<GspoResult> ENVGSPO::run() const {
  return detail::run_policy_optimization_as<GspoResult>(with_environment(detail::from(options_), environment_));
}

} // namespace chorus
