// The recipe-facing model handles (include/chorus/model.hpp): asking the actors through the bridge
// (spawning them is model_spawn.cpp). Runs on the recipe executor only, so the routing state
// needs no lock.
#include <chorus/context.hpp>
#include <chorus/model.hpp>

#include "actors/cluster_messages.hpp"
#include "actors/messages.hpp"
#include "actors/model_actors.hpp"
#include "actors/model_state.hpp"
#include "actors/node_client.hpp"
#include "runtime/runtime.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

namespace chorus {

namespace {

using actors::GenerateRequest;
using actors::LogprobsRequest;
using actors::TokenizeRequest;

// A handle's state; a default-constructed handle holds none, and using it is an error, not a crash.
template <class State>
const std::shared_ptr<State>& held(const std::shared_ptr<State>& state) {
  if (!state)
    throw Error("a model handle that holds no model (default-constructed or moved from): spawn one with a "
                "ModelBuilder first");
  return state;
}

} // namespace

// -- InferenceModel -------------------------------------------------------------
//
// The public methods are plain functions that hand everything the request needs, by value, to a
// coroutine: a handle may be a temporary that is gone by the time the returned Task runs.

namespace {

// A generation the asker stops waiting for is cancelled in the actor too, so it stops taking a slot.
Task<Generation> ask_generate(std::shared_ptr<detail::InferenceState> state, GenerateRequest request,
                              std::chrono::milliseconds timeout) {
  static std::atomic<std::uint64_t> next_id{1};
  auto id = request.id = next_id++;
  request.min_weight_version = state->min_weight_version;
  co_return co_await state->ask(std::move(request), timeout,
                                [id](const ActorRef<>& replica) { replica.tell(actors::CancelGeneration{id}); });
}

Task<std::vector<float>> ask_logprobs(std::shared_ptr<detail::InferenceState> state, LogprobsRequest request,
                                      std::chrono::milliseconds timeout) {
  auto reply = co_await state->ask(std::move(request), timeout);
  co_return std::move(reply.logprobs);
}

Task<std::vector<std::int64_t>> ask_tokens(std::shared_ptr<detail::InferenceState> state, TokenizeRequest request,
                                           std::chrono::milliseconds timeout) {
  auto reply = co_await state->ask(std::move(request), timeout);
  co_return std::move(reply.tokens);
}

Task<TrainReport> ask_train(std::shared_ptr<detail::TrainingState> state, actors::TrainRequest request) {
  auto report = co_await state->trainer.ask(std::move(request), state->timeout);
  state->weight_version = std::max(state->weight_version, report.weight_version);
  state->inference->min_weight_version = state->weight_version;
  co_return report;
}

Task<std::vector<std::vector<float>>> ask_values(std::shared_ptr<detail::TrainingState> state,
                                                 actors::ValuesRequest request) {
  auto reply = co_await state->trainer.ask(std::move(request), state->timeout);
  co_return std::move(reply.values);
}

Task<std::vector<float>> ask_scores(std::shared_ptr<detail::TrainingState> state, actors::ScoresRequest request) {
  auto reply = co_await state->trainer.ask(std::move(request), state->timeout);
  co_return std::move(reply.scores);
}

Task<std::vector<std::int64_t>> ask_trainer_tokens(std::shared_ptr<detail::TrainingState> state,
                                                   TokenizeRequest request) {
  auto reply = co_await state->trainer.ask(std::move(request), state->timeout);
  co_return std::move(reply.tokens);
}

// The conversation's tokens with and without the assistant turn, as training renders them: the
// score is read at the last token of the whole.
Task<float> ask_score(std::shared_ptr<detail::TrainingState> state, std::vector<ChatMessage> prompt,
                      std::string completion) {
  auto conversation = prompt;
  conversation.push_back({"assistant", std::move(completion)});
  auto prompt_ids = co_await ask_trainer_tokens(state, TokenizeRequest{std::move(prompt), {}, true});
  auto full = co_await ask_trainer_tokens(state, TokenizeRequest{std::move(conversation), {}, false});
  TrainSample sample;
  // A template whose generation prompt is not a prefix of the turn still scores the whole text.
  auto prefix = full.size() > prompt_ids.size() && std::equal(prompt_ids.begin(), prompt_ids.end(), full.begin())
    ? prompt_ids.size()
    : std::size_t{1};
  sample.prompt_tokens.assign(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(prefix));
  sample.completion_tokens.assign(full.begin() + static_cast<std::ptrdiff_t>(prefix), full.end());
  auto scores = co_await ask_scores(state, actors::ScoresRequest{{std::move(sample)}});
  co_return scores.front();
}

Task<void> ask_reset_reference(std::shared_ptr<detail::TrainingState> state) {
  co_await state->trainer.ask(actors::ResetReferenceRequest{}, state->timeout);
}

Task<std::string> ask_save(std::shared_ptr<detail::TrainingState> state, std::string folder, RecipeContext& ctx,
                           bool merge_adapter = false) {
  actors::SaveRequest request{folder, merge_adapter};
  co_await state->trainer.ask(std::move(request), state->timeout);
  ctx.log().info("model '{}': saved to {}", state->name, folder);
  co_return folder;
}

} // namespace

InferenceModel::InferenceModel(std::shared_ptr<detail::InferenceState> state, std::chrono::milliseconds timeout)
  : state_(std::move(state)), timeout_(timeout) {}

Task<Generation> InferenceModel::generate(std::vector<ChatMessage> messages, SamplingParams params,
                                          std::vector<Tool> tools) const {
  return ask_generate(held(state_), GenerateRequest{std::move(messages), {}, std::move(params), {}, std::move(tools)},
                      timeout_);
}

Task<Generation> InferenceModel::complete(std::string text, SamplingParams params) const {
  return ask_generate(held(state_), GenerateRequest{{}, std::move(text), std::move(params)}, timeout_);
}

Task<Generation> InferenceModel::generate_tokens(std::vector<std::int64_t> prompt_tokens, SamplingParams params,
                                                 std::vector<Tool> tools) const {
  if (prompt_tokens.empty())
    throw Error("model '" + held(state_)->name + "': generate_tokens needs at least one prompt token");
  return ask_generate(held(state_),
                      GenerateRequest{{}, {}, std::move(params), std::move(prompt_tokens), std::move(tools)}, timeout_);
}

Task<std::vector<float>> InferenceModel::logprobs(std::vector<std::int64_t> prompt_tokens,
                                                  std::vector<std::int64_t> completion_tokens) const {
  return ask_logprobs(held(state_), LogprobsRequest{std::move(prompt_tokens), std::move(completion_tokens)}, timeout_);
}

Task<std::vector<std::int64_t>> InferenceModel::tokenize(std::string text) const {
  return ask_tokens(held(state_), TokenizeRequest{{}, std::move(text), false}, timeout_);
}

Task<std::vector<std::int64_t>> InferenceModel::tokenize_chat(std::vector<ChatMessage> messages,
                                                              bool add_generation_prompt, std::vector<Tool> tools,
                                                              bool enable_thinking) const {
  return ask_tokens(held(state_),
                    TokenizeRequest{std::move(messages), {}, add_generation_prompt, std::move(tools), enable_thinking},
                    timeout_);
}

bool InferenceModel::thinks() const {
  return held(state_)->thinks;
}

bool InferenceModel::opens_thinking(bool enable_thinking) const {
  return held(state_)->opens_thinking[enable_thinking ? 1 : 0];
}

ToolCallFormat InferenceModel::tool_call_format() const {
  return held(state_)->tool_call_format;
}

const std::string& InferenceModel::name() const {
  return held(state_)->name;
}

InferenceModel InferenceModel::with_timeout(std::chrono::milliseconds timeout) const {
  return InferenceModel(held(state_), timeout);
}

ReplicaLosses InferenceModel::losses() const {
  return held(state_)->current_losses();
}

// -- TrainingModel --------------------------------------------------------------

TrainingModel::TrainingModel(std::shared_ptr<detail::TrainingState> state) : state_(std::move(state)) {}

Task<Generation> TrainingModel::generate(std::vector<ChatMessage> messages, SamplingParams params,
                                         std::vector<Tool> tools) const {
  return InferenceModel(held(state_)->inference, held(state_)->timeout)
    .generate(std::move(messages), std::move(params), std::move(tools));
}

Task<Generation> TrainingModel::complete(std::string text, SamplingParams params) const {
  return InferenceModel(held(state_)->inference, held(state_)->timeout).complete(std::move(text), std::move(params));
}

Task<Generation> TrainingModel::generate_tokens(std::vector<std::int64_t> prompt_tokens, SamplingParams params,
                                                std::vector<Tool> tools) const {
  return InferenceModel(held(state_)->inference, held(state_)->timeout)
    .generate_tokens(std::move(prompt_tokens), std::move(params), std::move(tools));
}

Task<std::vector<float>> TrainingModel::logprobs(std::vector<std::int64_t> prompt_tokens,
                                                 std::vector<std::int64_t> completion_tokens) const {
  return InferenceModel(held(state_)->inference, held(state_)->timeout)
    .logprobs(std::move(prompt_tokens), std::move(completion_tokens));
}

Task<std::vector<std::int64_t>> TrainingModel::tokenize(std::string text) const {
  return InferenceModel(held(state_)->inference, held(state_)->timeout).tokenize(std::move(text));
}

Task<std::vector<std::int64_t>> TrainingModel::tokenize_chat(std::vector<ChatMessage> messages,
                                                             bool add_generation_prompt, std::vector<Tool> tools,
                                                             bool enable_thinking) const {
  return InferenceModel(held(state_)->inference, held(state_)->timeout)
    .tokenize_chat(std::move(messages), add_generation_prompt, std::move(tools), enable_thinking);
}

bool TrainingModel::thinks() const {
  return held(state_)->inference->thinks;
}

bool TrainingModel::opens_thinking(bool enable_thinking) const {
  return held(state_)->inference->opens_thinking[enable_thinking ? 1 : 0];
}

ToolCallFormat TrainingModel::tool_call_format() const {
  return held(state_)->inference->tool_call_format;
}

Task<TrainReport> TrainingModel::train_sft(std::vector<TrainSample> samples, TrainParams params) const {
  return ask_train(held(state_), actors::TrainRequest{"sft", std::move(samples), std::move(params)});
}

Task<TrainReport> TrainingModel::train_policy(std::vector<TrainSample> samples, TrainParams params) const {
  return ask_train(held(state_), actors::TrainRequest{"policy", std::move(samples), std::move(params)});
}

Task<std::vector<std::vector<float>>> TrainingModel::values(std::vector<TrainSample> samples) const {
  return ask_values(held(state_), actors::ValuesRequest{std::move(samples)});
}

Task<void> TrainingModel::reset_reference() const {
  return ask_reset_reference(held(state_));
}

Task<TrainReport> TrainingModel::train_ppo(std::vector<TrainSample> samples, TrainParams params) const {
  return ask_train(held(state_), actors::TrainRequest{"ppo", std::move(samples), std::move(params)});
}

Task<TrainReport> TrainingModel::train_dpo(std::vector<PreferencePair> pairs, TrainParams params) const {
  return ask_train(held(state_), actors::TrainRequest{"dpo", {}, std::move(params), std::move(pairs)});
}

Task<std::string> TrainingModel::save(std::string model_name, RecipeContext& ctx, SaveOptions options) const {
  return ask_save(held(state_), (ctx.output_dir() / model_name).string(), ctx, options.merge_adapter);
}

std::int64_t TrainingModel::weight_version() const {
  return held(state_)->weight_version;
}

const std::string& TrainingModel::name() const {
  return held(state_)->name;
}

InferenceModel TrainingModel::as_inference() const {
  return InferenceModel(held(state_)->inference, held(state_)->timeout);
}

std::size_t TrainingModel::replicas() const {
  return held(state_)->inference->replicas.size();
}

ReplicaLosses TrainingModel::losses() const {
  return held(state_)->inference->current_losses();
}

// -- ScoringModel ---------------------------------------------------------------

ScoringModel::ScoringModel(std::shared_ptr<detail::TrainingState> state) : state_(std::move(state)) {}

Task<float> ScoringModel::score(std::vector<ChatMessage> prompt, std::string completion) const {
  return ask_score(held(state_), std::move(prompt), std::move(completion));
}

Task<std::vector<float>> ScoringModel::score_tokens(std::vector<TrainSample> samples) const {
  return ask_scores(held(state_), actors::ScoresRequest{std::move(samples)});
}

Task<TrainReport> ScoringModel::train_pairs(std::vector<PreferencePair> pairs, TrainParams params) const {
  return ask_train(held(state_), actors::TrainRequest{"reward", {}, std::move(params), std::move(pairs)});
}

Task<TrainReport> ScoringModel::train_regression(std::vector<TrainSample> samples, TrainParams params) const {
  return ask_train(held(state_), actors::TrainRequest{"regression", std::move(samples), std::move(params)});
}

Task<std::vector<std::vector<float>>> ScoringModel::values(std::vector<TrainSample> samples) const {
  return ask_values(held(state_), actors::ValuesRequest{std::move(samples)});
}

Task<TrainReport> ScoringModel::train_values(std::vector<TrainSample> samples, TrainParams params) const {
  return ask_train(held(state_), actors::TrainRequest{"value", std::move(samples), std::move(params)});
}

Task<std::vector<std::int64_t>> ScoringModel::tokenize(std::string text) const {
  return ask_trainer_tokens(held(state_), TokenizeRequest{{}, std::move(text), false});
}

Task<std::vector<std::int64_t>> ScoringModel::tokenize_chat(std::vector<ChatMessage> messages,
                                                            bool add_generation_prompt, std::vector<Tool> tools,
                                                            bool enable_thinking) const {
  return ask_trainer_tokens(
    held(state_), TokenizeRequest{std::move(messages), {}, add_generation_prompt, std::move(tools), enable_thinking});
}

Task<std::string> ScoringModel::save(std::string model_name, RecipeContext& ctx) const {
  return ask_save(held(state_), (ctx.output_dir() / model_name).string(), ctx);
}

std::int64_t ScoringModel::weight_version() const {
  return held(state_)->weight_version;
}

const std::string& ScoringModel::name() const {
  return held(state_)->name;
}

} // namespace chorus
