// Spawning a model's actors (include/chorus/model.hpp: ModelRef::to_builder, ModelBuilder): checks
// the builder options, spawns the trainer, its replicas and inference actors here or on cluster
// nodes (actors/node_client.hpp), and waits until each has loaded its model. The handles that ask
// them are in model_handles.cpp.
#include <chorus/context.hpp>
#include <chorus/model.hpp>

#include "actors/cluster_messages.hpp"
#include "actors/model_actors.hpp"
#include "actors/model_state.hpp"
#include "actors/node_client.hpp"
#include "models/lora_config.hpp"
#include "runtime/runtime.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <caf/send.hpp>

#include <filesystem>
#include <fmt/format.h>

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
  result.device = spec.options.device;
  result.gradient_checkpointing = spec.options.gradient_checkpointing;
  result.seed = spec.options.seed;
  result.max_batch_size = max_batch_size;
  result.kv_cache_len = spec.options.kv_cache_len;
  result.threads = spec.options.threads;
  const auto& lora = spec.options.adapter;
  result.lora_r = lora.r;
  result.lora_alpha = lora.lora_alpha;
  result.lora_dropout = lora.lora_dropout;
  result.lora_target_modules = lora.target_modules;
  result.lora_use_rslora = lora.use_rslora;
  result.lora_modules_to_save = lora.modules_to_save;
  result.adapter = spec.adapter;
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

Task<ModelBuilder> make_builder(RecipeContext& ctx, std::string reference, BuilderOptions options, std::string adapter);

} // namespace

Task<ModelBuilder> ModelRef::to_builder(RecipeContext& ctx, BuilderOptions options) const {
  return make_builder(ctx, reference, std::move(options), adapter);
}

namespace {

Task<ModelBuilder> make_builder(RecipeContext& ctx, std::string reference, BuilderOptions options,
                                std::string adapter) {
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
  if (auto problem = actors::device_problem(options.device); !problem.empty())
    throw ConfigError(where + problem);
  if (options.threads < 0)
    throw ConfigError(where + "threads must be >= 0 (0: a share of the cores)");
  if (!(options.rejoin_wait_s >= 0) || options.rejoin_wait_s > 86400)
    throw ConfigError(where + "rejoin_wait_s must be from 0 (fail at once) to 86400 seconds, got "
                      + fmt::format("{}", options.rejoin_wait_s));
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
  if (options.adapter.r < 0)
    throw ConfigError(where + "adapter.r must be >= 0 (0: full fine-tuning), got " + std::to_string(options.adapter.r));
  if (options.adapter.r > 0) {
    try {
      const auto& lora = options.adapter;
      models::check_lora_config(
        {lora.r, lora.lora_alpha, lora.lora_dropout, lora.target_modules, lora.use_rslora, lora.modules_to_save});
    } catch (const std::invalid_argument& error) {
      throw ConfigError(where + error.what());
    }
  }
  if (!adapter.empty()) {
    if (options.adapter.r > 0)
      throw ConfigError(where + "both an adapter folder (" + adapter
                        + ") and new adapters (adapter.r > 0): the folder's adapters train further; give one");
    if (!std::filesystem::exists(std::filesystem::path(adapter) / "adapter_config.json"))
      throw ConfigError(where + "adapter '" + adapter
                        + "': not a LoRA adapter folder (expected adapter_config.json and adapter_model.safetensors)");
  }
  auto spec = std::make_shared<detail::ModelSpec>(detail::ModelSpec{reference, std::move(options), adapter});
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

Task<ScoringModel> spawn_scoring_model(RecipeContext* ctx, std::shared_ptr<const detail::ModelSpec> spec,
                                       std::string name) {
  auto& runtime = ctx->runtime();
  const auto& node = spec->options.node;
  auto actor = actor_spec(*spec, name + "/scoring", 1);
  actor.scoring = true;
  auto handle = node.empty()
    ? actors::spawn_scoring_actor(runtime.system(), std::move(actor))
    : (co_await spawn_on_node(*ctx, node, {.role = "scoring", .spec = std::move(actor)})).actor;
  auto state = std::make_shared<detail::TrainingState>();
  state->name = name;
  state->checkpoints = ctx->checkpoints();
  state->trainer = runtime.adopt(placed(name + "/scoring", node), handle);
  state->inference = std::make_shared<detail::InferenceState>(); // no replicas: it scores in the one actor
  state->inference->name = name;
  try {
    auto info = co_await wait_loaded(state->trainer);
    ctx->log().info("model '{}': {} ({:.1f} M parameters) loaded as a scoring model", name, spec->reference,
                    static_cast<double>(info.parameters) / 1e6);
  } catch (...) {
    stop_all({handle});
    throw;
  }
  co_return detail::ModelAccess::scoring(std::move(state));
}

} // namespace

Task<ScoringModel> ModelBuilder::spawn_scoring(std::string name) const {
  return spawn_scoring_model(ctx_, spec_, std::move(name));
}

namespace {

// A training model's actors, spawned step by step: the trainer (with the replicas in this process),
// the replicas on nodes, the other data-parallel ranks; then each waited for until it has loaded.
// Every actor spawned is kept in `all`, so that a failure part way stops them all.
struct TrainingSpawn {
  RecipeContext* ctx;
  std::shared_ptr<const detail::ModelSpec> spec;
  std::string name;
  TrainOptions options;
  actors::DataParallelSpec data_parallel;
  std::vector<caf::actor> all;

  const BuilderOptions& placement() const {
    return spec->options;
  }

  Runtime& runtime() const {
    return ctx->runtime();
  }

  // The node of replica `replica` ("": this process).
  std::string node_of(int replica) const {
    const auto& nodes = placement().replica_nodes;
    return nodes.empty() ? placement().node : nodes[static_cast<std::size_t>(replica)];
  }

  int local_replicas() const {
    int local = 0;
    for (int i = 0; i < placement().replicas; ++i)
      local += node_of(i).empty() ? 1 : 0;
    return local;
  }

  // Data parallelism: rank 0 is the trainer, rank i runs on trainer_nodes[i - 1]; they meet at rank
  // 0's rendezvous store.
  void plan_data_parallel() {
    const auto& trainer_node = placement().trainer_node;
    if (placement().trainer_nodes.empty() && trainer_node.empty())
      return;
    data_parallel.size = 1 + static_cast<std::int32_t>(placement().trainer_nodes.size());
    data_parallel.store_host = data_parallel.bind_host =
      trainer_node.empty() ? runtime().cluster()->recipe_host : runtime().cluster()->node(trainer_node).host;
  }

  // The trainer, its weight server and the replicas in this process.
  Task<actors::TrainingActors> spawn_trainer() {
    const auto& trainer_node = placement().trainer_node;
    actors::TrainingActors spawned;
    if (trainer_node.empty()) {
      // Replicas on nodes read weight versions from this process's data path, at the recipe's host.
      auto remote_replicas = local_replicas() < placement().replicas;
      spawned = actors::spawn_training_actors(runtime().system(), actor_spec(*spec, name + "/trainer", 1),
                                              actor_spec(*spec, name, options.max_batch_size), local_replicas(),
                                              options.keep_reference, data_parallel,
                                              remote_replicas ? runtime().cluster()->recipe_host : std::string());
    } else {
      auto remote = co_await spawn_on_node(*ctx, trainer_node,
                                           {.role = "trainer",
                                            .spec = actor_spec(*spec, name + "/trainer", 1),
                                            .data_parallel = data_parallel,
                                            .keep_reference = options.keep_reference,
                                            .weights_host = runtime().cluster()->node(trainer_node).host});
      spawned.trainer = remote.actor;
      spawned.weight_server = remote.weights;
      // Replicas in this process stream from the trainer on the node, as any remote replica does.
      for (int i = 0; i < placement().replicas; ++i)
        if (node_of(i).empty())
          spawned.replicas.push_back(actors::spawn_remote_replica(
            runtime().system(), actor_spec(*spec, name + "/replica" + std::to_string(i), options.max_batch_size),
            spawned.weight_server));
    }
    all = spawned.replicas;
    all.push_back(spawned.trainer);
    all.push_back(spawned.weight_server);
    co_return spawned;
  }

  // Every replica, in order: those of this process as spawned, the others on their nodes.
  Task<void> add_replicas(detail::InferenceState& inference, const actors::TrainingActors& spawned) {
    for (int i = 0, next_local = 0; i < placement().replicas; ++i) {
      auto replica_name = name + "/replica" + std::to_string(i);
      caf::actor handle;
      if (node_of(i).empty()) {
        handle = spawned.replicas[static_cast<std::size_t>(next_local++)];
      } else {
        auto remote = co_await spawn_on_node(*ctx, node_of(i),
                                             {.role = "replica",
                                              .spec = actor_spec(*spec, replica_name, options.max_batch_size),
                                              .weights = spawned.weight_server});
        handle = remote.actor;
        all.push_back(handle);
      }
      auto replica = std::make_shared<detail::Replica>();
      replica->ref = runtime().adopt(placed(replica_name, node_of(i)), handle);
      replica->node = node_of(i);
      inference.replicas.push_back(std::move(replica));
    }
  }

  // A replica on a node that is lost is respawned there once the node is back.
  void rejoin_lost_replicas(const std::shared_ptr<detail::InferenceState>& inference, caf::actor weight_server) const {
    if (local_replicas() == placement().replicas)
      return;
    // The spec's name is the lost replica's, set by rejoin.
    actors::rejoin_lost(
      ctx, inference,
      {.role = "replica", .spec = actor_spec(*spec, name, options.max_batch_size), .weights = std::move(weight_server)},
      spec->options.rejoin_wait_s);
  }

  // Data-parallel ranks 1.. on their nodes, loaded and joined to the trainer (rank 0).
  Task<void> join_ranks(ActorRef<>& trainer, std::int32_t store_port) {
    std::vector<caf::actor> ranks;
    for (std::size_t i = 0; i < placement().trainer_nodes.size(); ++i) {
      const auto& node = placement().trainer_nodes[i];
      auto rank = data_parallel;
      rank.rank = static_cast<std::int32_t>(i + 1);
      rank.store_port = store_port;
      rank.bind_host = runtime().cluster()->node(node).host;
      auto rank_name = name + "/trainer" + std::to_string(rank.rank);
      auto remote = co_await spawn_on_node(*ctx, node,
                                           {.role = "trainer",
                                            .spec = actor_spec(*spec, rank_name, 1),
                                            .data_parallel = rank,
                                            .keep_reference = options.keep_reference});
      all.push_back(remote.actor);
      co_await wait_loaded(runtime().adopt(placed(rank_name, node), remote.actor));
      ranks.push_back(remote.actor);
    }
    if (ranks.empty())
      co_return;
    co_await trainer.ask(actors::JoinRanks{ranks}, std::chrono::seconds(30));
    ctx->log().info("model '{}': {} data-parallel trainer ranks (Gloo)", name, ranks.size() + 1);
  }

  Task<TrainingModel> run() {
    plan_data_parallel();
    auto spawned = co_await spawn_trainer();
    auto state = std::make_shared<detail::TrainingState>();
    state->name = name;
    state->checkpoints = ctx->checkpoints();
    state->trainer = runtime().adopt(placed(name + "/trainer", placement().trainer_node), spawned.trainer);
    runtime().adopt(name + "/weights", spawned.weight_server);
    state->inference = std::make_shared<detail::InferenceState>();
    state->inference->name = name;
    try {
      co_await add_replicas(*state->inference, spawned);
      rejoin_lost_replicas(state->inference, spawned.weight_server);
      // The trainer first: it publishes the weights that the replicas adopt when asked.
      auto trainer_info = co_await wait_loaded(state->trainer);
      state->inference->thinks = trainer_info.thinks;
      state->inference->opens_thinking = trainer_info.opens_thinking();
      state->inference->tool_call_format = trainer_info.tool_call_format();
      co_await join_ranks(state->trainer, trainer_info.data_parallel_port);
      for (const auto& replica : state->inference->replicas)
        co_await wait_loaded(replica->ref);
      std::string adapters;
      if (spec->options.adapter.r > 0 || !spec->adapter.empty())
        adapters = fmt::format(", LoRA adapters: {:.2f} M of them train", trainer_info.trained_parameters / 1e6);
      ctx->log().info("model '{}': {} ({:.1f} M parameters{}) loaded by a trainer and {} replica(s)", name,
                      spec->reference, static_cast<double>(trainer_info.parameters) / 1e6, adapters,
                      state->inference->replicas.size());
    } catch (...) {
      stop_all(all);
      throw;
    }
    co_return detail::ModelAccess::training(std::move(state));
  }
};

Task<TrainingModel> spawn_training_model(RecipeContext* ctx, std::shared_ptr<const detail::ModelSpec> spec,
                                         std::string name, TrainOptions options) {
  if (options.max_batch_size < 1)
    throw ConfigError("model '" + name + "': max_batch_size must be at least 1");
  TrainingSpawn spawn{ctx, std::move(spec), std::move(name), options, {}, {}};
  co_return co_await spawn.run();
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
  replica->node = node;
  state->replicas.push_back(replica);
  if (!node.empty()) // lost with its node: respawned there once the node is back
    actors::rejoin_lost(ctx_, state, {.role = "inference", .spec = actor_spec(*spec_, name, options.max_batch_size)},
                        spec_->options.rejoin_wait_s);
  try {
    auto info = co_await wait_loaded(replica->ref);
    state->thinks = info.thinks;
    state->opens_thinking = info.opens_thinking();
    state->tool_call_format = info.tool_call_format();
    ctx_->log().info("model '{}': {} ({:.1f} M parameters) loaded for inference", name, spec_->reference,
                     static_cast<double>(info.parameters) / 1e6);
  } catch (...) {
    stop_all({handle});
    throw;
  }
  co_return detail::ModelAccess::inference(std::move(state), std::chrono::minutes(10));
}

} // namespace

} // namespace chorus
