// The recipe-facing model handles (include/chorus/model.hpp): spawning through actors/model_actors.hpp
// and asking the actors through the bridge. Runs on the recipe executor only, so the routing state
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
using actors::ModelActorSpec;
using actors::ModelInfoRequest;
using actors::rejoin;
using actors::spawn_on_node;
using actors::TokenizeRequest;
using actors::wait_loaded;

// An actor's name in logs and errors: `name`, or `name@node` for one on another node.
std::string placed(const std::string& name, const std::string& node) {
  return node.empty() ? name : name + "@" + node;
}

ModelActorSpec actor_spec(const detail::ModelSpec& spec, const std::string& name, std::int64_t max_batch_size) {
  ModelActorSpec result;
  result.name = name;
  result.reference = spec.reference;
  result.dtype = spec.options.dtype;
  result.seed = spec.options.seed;
  result.max_batch_size = max_batch_size;
  result.kv_cache_len = spec.options.kv_cache_len;
  result.threads = spec.options.threads;
  return result;
}

// Stops actors whose model failed to load: nothing will ask them anything.
void stop_all(const std::vector<caf::actor>& handles) {
  for (const auto& handle : handles)
    caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
}

} // namespace

// -- ModelRef -------------------------------------------------------------------

namespace {

Task<ModelBuilder> make_builder(RecipeContext& ctx, std::string reference, BuilderOptions options);

} // namespace

Task<ModelBuilder> ModelRef::to_builder(RecipeContext& ctx, BuilderOptions options) const {
  return make_builder(ctx, reference, std::move(options));
}

namespace {

Task<ModelBuilder> make_builder(RecipeContext& ctx, std::string reference, BuilderOptions options) {
  auto where = "model '" + reference + "': ";
  if (options.tp < 1)
    throw ConfigError(where + "tp must be at least 1, got " + std::to_string(options.tp));
  if (options.tp > 1) {
    auto devices = actors::available_devices();
    if (devices < options.tp)
      throw ConfigError(where + "tp = " + std::to_string(options.tp) + " needs " + std::to_string(options.tp)
                        + " devices, but LibTorch sees " + std::to_string(devices) + " here (CPU only): use tp = 1");
    throw ConfigError(where + "tensor parallelism (tp > 1) is not supported yet: use tp = 1");
  }
  if (options.replicas < 1)
    throw ConfigError(where + "replicas must be at least 1, got " + std::to_string(options.replicas));
  if (options.kv_cache_len < 2)
    throw ConfigError(where + "kv_cache_len must be at least 2, got " + std::to_string(options.kv_cache_len));
  if (options.dtype != "float32" && options.dtype != "bfloat16")
    throw ConfigError(where + "dtype '" + options.dtype + "' is not supported (expected float32 or bfloat16)");
  if (options.threads < 0)
    throw ConfigError(where + "threads must be >= 0 (0: a share of the cores)");
  if (!options.replica_nodes.empty() && static_cast<int>(options.replica_nodes.size()) != options.replicas)
    throw ConfigError(where + "replica_nodes names " + std::to_string(options.replica_nodes.size()) + " node(s) for "
                      + std::to_string(options.replicas) + " replica(s): give one per replica");
  auto placed = options.replica_nodes;
  placed.push_back(options.node);
  placed.push_back(options.trainer_node);
  for (const auto& node : options.trainer_nodes) {
    if (node.empty())
      throw ConfigError(where
                        + "trainer_nodes names a node with an empty name (rank 0 is the trainer itself: "
                          "see trainer_node)");
    placed.push_back(node);
  }
  for (const auto& node : placed) {
    if (node.empty())
      continue;
    const auto* cluster = ctx.runtime().cluster();
    if (!cluster)
      throw ConfigError(where + "node '" + node
                        + "': this recipe runs without a cluster; start it with "
                          "--cluster FILE (a file naming the nodes) or leave node empty");
    cluster->node(node); // throws for a node the file does not name
  }
  if (reference.rfind("builtin:", 0) != 0 && !std::filesystem::is_directory(reference))
    throw ConfigError(where + "not a folder (expected builtin:tiny or a Hugging Face model folder)");
  auto spec = std::make_shared<detail::ModelSpec>(detail::ModelSpec{reference, std::move(options)});
  co_return detail::ModelAccess::builder(ctx, std::move(spec));
}

} // namespace

// -- ModelBuilder ---------------------------------------------------------------

ModelBuilder::ModelBuilder(RecipeContext& ctx, std::shared_ptr<const detail::ModelSpec> spec)
  : ctx_(&ctx), spec_(std::move(spec)) {}

const std::string& ModelBuilder::reference() const noexcept {
  return spec_->reference;
}

namespace {

Task<TrainingModel> spawn_training_model(RecipeContext* ctx, std::shared_ptr<const detail::ModelSpec> spec,
                                         std::string name, TrainOptions options);
Task<InferenceModel> spawn_inference_model(RecipeContext* ctx, std::shared_ptr<const detail::ModelSpec> spec,
                                           std::string name, InferenceOptions options);

} // namespace

Task<TrainingModel> ModelBuilder::spawn_train(std::string name, TrainOptions options) const {
  return spawn_training_model(ctx_, spec_, std::move(name), options);
}

Task<InferenceModel> ModelBuilder::spawn_inference(std::string name, InferenceOptions options) const {
  return spawn_inference_model(ctx_, spec_, std::move(name), options);
}

namespace {

Task<TrainingModel> spawn_training_model(RecipeContext* ctx_, std::shared_ptr<const detail::ModelSpec> spec_,
                                         std::string name, TrainOptions options) {
  if (options.max_batch_size < 1)
    throw ConfigError("model '" + name + "': max_batch_size must be at least 1");
  auto& runtime = ctx_->runtime();
  const auto& placement = spec_->options;
  auto node_of = [&](int replica) {
    return placement.replica_nodes.empty() ? placement.node
                                           : placement.replica_nodes[static_cast<std::size_t>(replica)];
  };
  int local = 0;
  for (int i = 0; i < placement.replicas; ++i)
    local += node_of(i).empty() ? 1 : 0;
  // Data parallelism: rank 0 is the trainer, rank i runs on trainer_nodes[i - 1]; they meet at rank
  // 0's rendezvous store.
  const auto& trainer_node = placement.trainer_node;
  actors::DataParallelSpec data_parallel;
  if (!placement.trainer_nodes.empty() || !trainer_node.empty()) {
    data_parallel.size = 1 + static_cast<std::int32_t>(placement.trainer_nodes.size());
    data_parallel.store_host = data_parallel.bind_host =
      trainer_node.empty() ? runtime.cluster()->recipe_host : runtime.cluster()->node(trainer_node).host;
  }
  actors::TrainingActors spawned;
  if (trainer_node.empty()) {
    spawned = actors::spawn_training_actors(runtime.system(), actor_spec(*spec_, name + "/trainer", 1),
                                            actor_spec(*spec_, name, options.max_batch_size), local,
                                            options.keep_reference, data_parallel);
  } else {
    auto remote = co_await spawn_on_node(*ctx_, trainer_node,
                                         {.role = "trainer",
                                          .spec = actor_spec(*spec_, name + "/trainer", 1),
                                          .data_parallel = data_parallel,
                                          .keep_reference = options.keep_reference});
    spawned.trainer = remote.actor;
    spawned.weight_server = remote.weights;
    // Replicas in this process stream from the trainer on the node, as any remote replica does.
    for (int i = 0; i < placement.replicas; ++i)
      if (node_of(i).empty())
        spawned.replicas.push_back(actors::spawn_remote_replica(
          runtime.system(), actor_spec(*spec_, name + "/replica" + std::to_string(i), options.max_batch_size),
          spawned.weight_server));
  }
  auto state = std::make_shared<detail::TrainingState>();
  state->name = name;
  state->checkpoints = ctx_->checkpoints();
  state->trainer = runtime.adopt(placed(name + "/trainer", trainer_node), spawned.trainer);
  runtime.adopt(name + "/weights", spawned.weight_server);
  state->inference = std::make_shared<detail::InferenceState>();
  state->inference->name = name;
  std::vector<caf::actor> all = spawned.replicas;
  all.push_back(spawned.trainer);
  all.push_back(spawned.weight_server);
  try {
    for (int i = 0, next_local = 0; i < placement.replicas; ++i) {
      auto replica_name = name + "/replica" + std::to_string(i);
      caf::actor handle;
      if (node_of(i).empty()) {
        handle = spawned.replicas[static_cast<std::size_t>(next_local++)];
      } else {
        auto remote = co_await spawn_on_node(*ctx_, node_of(i),
                                             {.role = "replica",
                                              .spec = actor_spec(*spec_, replica_name, options.max_batch_size),
                                              .weights = spawned.weight_server});
        handle = remote.actor;
        all.push_back(handle);
      }
      auto replica = std::make_shared<detail::Replica>();
      replica->ref = runtime.adopt(placed(replica_name, node_of(i)), handle);
      replica->node = node_of(i);
      state->inference->replicas.push_back(std::move(replica));
    }
    if (local < placement.replicas) {
      std::weak_ptr<detail::InferenceState> weak = state->inference;
      state->inference->on_lost = [ctx_, weak, spec_, options,
                                   weights = spawned.weight_server](const std::shared_ptr<detail::Replica>& lost) {
        if (lost->node.empty())
          return;
        asio::co_spawn(ctx_->executor(),
                       rejoin(ctx_, weak, lost->node, lost->ref.name(),
                              actor_spec(*spec_, lost->ref.name(), options.max_batch_size), weights),
                       asio::detached);
      };
    }
    // The trainer first: it publishes the weights that the replicas adopt when asked.
    auto trainer_info = co_await wait_loaded(state->trainer);
    std::vector<caf::actor> ranks;
    for (std::size_t i = 0; i < placement.trainer_nodes.size(); ++i) {
      const auto& node = placement.trainer_nodes[i];
      auto rank = data_parallel;
      rank.rank = static_cast<std::int32_t>(i + 1);
      rank.store_port = trainer_info.data_parallel_port;
      rank.bind_host = runtime.cluster()->node(node).host;
      auto rank_name = name + "/trainer" + std::to_string(rank.rank);
      auto remote = co_await spawn_on_node(*ctx_, node,
                                           {.role = "trainer",
                                            .spec = actor_spec(*spec_, rank_name, 1),
                                            .data_parallel = rank,
                                            .keep_reference = options.keep_reference});
      auto handle = remote.actor;
      all.push_back(handle);
      co_await wait_loaded(runtime.adopt(placed(rank_name, node), handle));
      ranks.push_back(handle);
    }
    if (!ranks.empty()) {
      co_await state->trainer.ask(actors::JoinRanks{ranks}, std::chrono::seconds(30));
      ctx_->log().info("model '{}': {} data-parallel trainer ranks (Gloo)", name, ranks.size() + 1);
    }
    for (const auto& replica : state->inference->replicas)
      co_await wait_loaded(replica->ref);
    ctx_->log().info("model '{}': {} ({:.1f} M parameters) loaded by a trainer and {} replica(s)", name,
                     spec_->reference, static_cast<double>(trainer_info.parameters) / 1e6,
                     state->inference->replicas.size());
  } catch (...) {
    stop_all(all);
    throw;
  }
  co_return detail::ModelAccess::training(std::move(state));
}

Task<InferenceModel> spawn_inference_model(RecipeContext* ctx_, std::shared_ptr<const detail::ModelSpec> spec_,
                                           std::string name, InferenceOptions options) {
  if (options.max_batch_size < 1)
    throw ConfigError("model '" + name + "': max_batch_size must be at least 1");
  auto& runtime = ctx_->runtime();
  const auto& node = spec_->options.node;
  auto spec = actor_spec(*spec_, name, options.max_batch_size);
  auto handle = node.empty()
    ? actors::spawn_policy_actor(runtime.system(), std::move(spec))
    : (co_await spawn_on_node(*ctx_, node, {.role = "inference", .spec = std::move(spec)})).actor;
  auto state = std::make_shared<detail::InferenceState>();
  state->name = name;
  auto replica = std::make_shared<detail::Replica>();
  // "NAME/inference": errors name it as model 'NAME' (inference) (runtime/ask_words.hpp).
  replica->ref = runtime.adopt(placed(name + "/inference", node), handle);
  state->replicas.push_back(replica);
  try {
    auto info = co_await wait_loaded(replica->ref);
    ctx_->log().info("model '{}': {} ({:.1f} M parameters) loaded for inference", name, spec_->reference,
                     static_cast<double>(info.parameters) / 1e6);
  } catch (...) {
    stop_all({handle});
    throw;
  }
  co_return detail::ModelAccess::inference(std::move(state), std::chrono::minutes(10));
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

Task<void> ask_reset_reference(std::shared_ptr<detail::TrainingState> state) {
  co_await state->trainer.ask(actors::ResetReferenceRequest{}, state->timeout);
}

Task<std::string> ask_save(std::shared_ptr<detail::TrainingState> state, std::string folder, RecipeContext& ctx) {
  actors::SaveRequest request{folder};
  co_await state->trainer.ask(std::move(request), state->timeout);
  ctx.log().info("model '{}': saved to {}", state->name, folder);
  co_return folder;
}

} // namespace

InferenceModel::InferenceModel(std::shared_ptr<detail::InferenceState> state, std::chrono::milliseconds timeout)
  : state_(std::move(state)), timeout_(timeout) {}

Task<Generation> InferenceModel::generate(std::vector<ChatMessage> messages, SamplingParams params) const {
  return ask_generate(state_, GenerateRequest{std::move(messages), {}, std::move(params)}, timeout_);
}

Task<Generation> InferenceModel::complete(std::string text, SamplingParams params) const {
  return ask_generate(state_, GenerateRequest{{}, std::move(text), std::move(params)}, timeout_);
}

Task<Generation> InferenceModel::generate_tokens(std::vector<std::int64_t> prompt_tokens, SamplingParams params) const {
  if (prompt_tokens.empty())
    throw Error("model '" + state_->name + "': generate_tokens needs at least one prompt token");
  return ask_generate(state_, GenerateRequest{{}, {}, std::move(params), std::move(prompt_tokens)}, timeout_);
}

Task<std::vector<float>> InferenceModel::logprobs(std::vector<std::int64_t> prompt_tokens,
                                                  std::vector<std::int64_t> completion_tokens) const {
  return ask_logprobs(state_, LogprobsRequest{std::move(prompt_tokens), std::move(completion_tokens)}, timeout_);
}

Task<std::vector<std::int64_t>> InferenceModel::tokenize(std::string text) const {
  return ask_tokens(state_, TokenizeRequest{{}, std::move(text), false}, timeout_);
}

Task<std::vector<std::int64_t>> InferenceModel::tokenize_chat(std::vector<ChatMessage> messages,
                                                              bool add_generation_prompt) const {
  return ask_tokens(state_, TokenizeRequest{std::move(messages), {}, add_generation_prompt}, timeout_);
}

const std::string& InferenceModel::name() const {
  return state_->name;
}

InferenceModel InferenceModel::with_timeout(std::chrono::milliseconds timeout) const {
  return InferenceModel(state_, timeout);
}

// -- TrainingModel --------------------------------------------------------------

TrainingModel::TrainingModel(std::shared_ptr<detail::TrainingState> state) : state_(std::move(state)) {}

Task<Generation> TrainingModel::generate(std::vector<ChatMessage> messages, SamplingParams params) const {
  return InferenceModel(state_->inference, state_->timeout).generate(std::move(messages), std::move(params));
}

Task<Generation> TrainingModel::complete(std::string text, SamplingParams params) const {
  return InferenceModel(state_->inference, state_->timeout).complete(std::move(text), std::move(params));
}

Task<Generation> TrainingModel::generate_tokens(std::vector<std::int64_t> prompt_tokens, SamplingParams params) const {
  return InferenceModel(state_->inference, state_->timeout)
    .generate_tokens(std::move(prompt_tokens), std::move(params));
}

Task<std::vector<float>> TrainingModel::logprobs(std::vector<std::int64_t> prompt_tokens,
                                                 std::vector<std::int64_t> completion_tokens) const {
  return InferenceModel(state_->inference, state_->timeout)
    .logprobs(std::move(prompt_tokens), std::move(completion_tokens));
}

Task<std::vector<std::int64_t>> TrainingModel::tokenize(std::string text) const {
  return InferenceModel(state_->inference, state_->timeout).tokenize(std::move(text));
}

Task<std::vector<std::int64_t>> TrainingModel::tokenize_chat(std::vector<ChatMessage> messages,
                                                             bool add_generation_prompt) const {
  return InferenceModel(state_->inference, state_->timeout).tokenize_chat(std::move(messages), add_generation_prompt);
}

Task<TrainReport> TrainingModel::train_sft(std::vector<TrainSample> samples, TrainParams params) const {
  return ask_train(state_, actors::TrainRequest{"sft", std::move(samples), std::move(params)});
}

Task<TrainReport> TrainingModel::train_policy(std::vector<TrainSample> samples, TrainParams params) const {
  return ask_train(state_, actors::TrainRequest{"policy", std::move(samples), std::move(params)});
}

Task<std::vector<std::vector<float>>> TrainingModel::values(std::vector<TrainSample> samples) const {
  return ask_values(state_, actors::ValuesRequest{std::move(samples)});
}

Task<void> TrainingModel::reset_reference() const {
  return ask_reset_reference(state_);
}

Task<TrainReport> TrainingModel::train_ppo(std::vector<TrainSample> samples, TrainParams params) const {
  return ask_train(state_, actors::TrainRequest{"ppo", std::move(samples), std::move(params)});
}

Task<TrainReport> TrainingModel::train_dpo(std::vector<PreferencePair> pairs, TrainParams params) const {
  return ask_train(state_, actors::TrainRequest{"dpo", {}, std::move(params), std::move(pairs)});
}

Task<std::string> TrainingModel::save(std::string model_name, RecipeContext& ctx) const {
  return ask_save(state_, (ctx.output_dir() / model_name).string(), ctx);
}

std::int64_t TrainingModel::weight_version() const {
  return state_->weight_version;
}

const std::string& TrainingModel::name() const {
  return state_->name;
}

std::size_t TrainingModel::replicas() const {
  return state_->inference->replicas.size();
}

} // namespace chorus
