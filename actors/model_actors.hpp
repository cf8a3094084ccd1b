// Spawning the actors that host models. Valid C++17 without LibTorch: the recipe-facing handles
// (C++20) call these; the actors themselves live in C++17 translation units that include LibTorch.
//
// Each actor runs on a thread of its own (CAF detached), loads its model there, and answers
// ModelInfoRequest once loaded: a spawner asks it to wait for the load, whose failure comes back as
// that request's error. Requests are answered by actors::messages.hpp's types.
#pragma once

#include "models/lora_config.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace chorus::actors {

struct ModelActorSpec {
  /// The actor's name in logs, errors and the core split.
  std::string name;
  /// builtin:tiny or a Hugging Face model folder.
  std::string reference = "builtin:tiny";
  /// "float32" or "bfloat16".
  std::string dtype = "float32";
  /// "cpu", "cuda" or "cuda:N": where the weights, caches and activations live.
  std::string device = "cpu";
  /// Recompute each layer in the backward pass instead of keeping its activations (training only).
  bool gradient_checkpointing = false;
  std::uint64_t seed = 0;
  /// Sequences generated at once (continuous batching).
  std::int64_t max_batch_size = 32;
  /// The longest sequence a KV-cache slot holds.
  std::int64_t kv_cache_len = 4096;
  /// Intra-op threads; 0: a share of the cores (CoreBudget).
  int threads = 0;
  /// Load it as a scoring model (a score head instead of the language-model head).
  bool scoring = false;
  /// LoRA adapters added to the model (lora_r > 0), drawn from `seed`: only they train and travel to
  /// replicas (models/lora.hpp).
  std::int64_t lora_r = 0;
  double lora_alpha = 32.0;
  double lora_dropout = 0.0;
  std::vector<std::string> lora_target_modules;
  bool lora_use_rslora = false;
  std::vector<std::string> lora_modules_to_save;
  /// A PEFT adapter folder loaded onto the model (empty: none); its config gives the adapters' shape.
  std::string adapter;

  /// The adapters' shape, when lora_r > 0.
  models::LoraConfig lora_config() const {
    return {lora_r, lora_alpha, lora_dropout, lora_target_modules, lora_use_rslora, lora_modules_to_save};
  }
};

/// Where a trainer rank finds its data-parallel group (actors/data_parallel.hpp): rank 0 hosts the
/// rendezvous store at (store_host, store_port).
struct DataParallelSpec {
  std::int32_t rank = 0;
  std::int32_t size = 1;
  std::string store_host = "127.0.0.1";
  std::int32_t store_port = 0;
  /// The address this rank's Gloo connections bind to.
  std::string bind_host = "127.0.0.1";
};

/// A policy actor: generation with continuous batching, scoring and tokenization.
caf::actor spawn_policy_actor(caf::actor_system& system, ModelActorSpec spec);

struct TrainingActors {
  caf::actor trainer;
  std::vector<caf::actor> replicas;
  /// Streams each weight version to replicas in other processes (spawn_remote_replica there).
  caf::actor weight_server;
};

/// A trainer actor, its weight server, and `replicas` policy actors in this process that adopt each
/// weight version it publishes. `replica_spec` describes the replicas (their names get a suffix).
/// `weights_host`: the address at which replicas in other processes reach this one (the weight
/// server's data path listens there); empty where there are none.
TrainingActors spawn_training_actors(caf::actor_system& system, ModelActorSpec trainer_spec,
                                     ModelActorSpec replica_spec, int replicas, bool keep_reference,
                                     DataParallelSpec data_parallel = {}, std::string weights_host = {});

/// A trainer rank other than 0 of a data-parallel group: it takes the same requests as rank 0 (which
/// forwards them) and publishes nothing.
caf::actor spawn_trainer_rank(caf::actor_system& system, ModelActorSpec spec, bool keep_reference,
                              DataParallelSpec data_parallel);

/// A scoring model's actor (`spec.scoring` set): a trainer with no replicas and no reference that
/// also answers ScoresRequest.
caf::actor spawn_scoring_actor(caf::actor_system& system, ModelActorSpec spec);

/// A replica of a training model in another process than its trainer: it streams each weight
/// version from `weight_server` (TrainingActors::weight_server) and generates only with those.
caf::actor spawn_remote_replica(caf::actor_system& system, ModelActorSpec spec, caf::actor weight_server);

/// Accelerator devices LibTorch can use here (CUDA); 0 on a CPU-only machine.
int available_devices();

/// The version of the LibTorch this process runs ("1.13.0").
std::string libtorch_version();

/// What is wrong with model device `device` here ("" if nothing): not "cpu", "cuda" or "cuda:N", no
/// CUDA in this process's LibTorch, or an index past its devices. The recipe's process checks a
/// builder's device with it, and a model actor's process (a node's may differ) again before loading.
std::string device_problem(const std::string& device);

} // namespace chorus::actors
