// The messages that cross between a recipe's process and the chorus-node processes of its cluster:
// joining a node, spawning model actors on it, and streaming weight versions from a trainer to the
// replicas in other processes. Valid C++17 without LibTorch. Tensors travel as {dtype, shape, bytes}:
// a manifest names each tensor's layout once, then the bytes of all tensors laid end to end come in
// chunks (CAF copies a byte vector as one block; a float vector element by element, ~7x slower).
#pragma once

#include "actors/model_actors.hpp"
#include "runtime/message.hpp"

#include <caf/actor.hpp>
#include <caf/type_id.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace chorus::actors {

/// What a node says when joined: its name and the cores it divides between its actors.
struct NodeWelcome {
  std::string name;
  std::int32_t cores = 0;
};

/// Joins a node. Refused unless `secret` is the cluster file's secret.
struct NodeHello {
  using Reply = NodeWelcome;
  static constexpr const char* kDoing = "greeting a node";
  std::string secret;
};

struct SpawnedActor {
  caf::actor actor;
  /// A trainer's weight server (rank 0 of a trainer only).
  caf::actor weights;
};

/// Spawns a model actor on the node and answers once it is spawned (not yet loaded: ask it for
/// ModelInfo to wait for the load). `role` "inference": an inference-only model; "scoring": a
/// scoring model (trained and asked in that one actor); "replica": a
/// replica of a training model streaming each version from `weights`, its trainer's weight server;
/// "trainer": rank data_parallel.rank of a (data-parallel) trainer group; rank 0 comes with its
/// weight server.
struct SpawnModelActor {
  using Reply = SpawnedActor;
  static constexpr const char* kDoing = "starting a model actor";
  std::string secret;
  std::string role;
  ModelActorSpec spec;
  caf::actor weights;
  DataParallelSpec data_parallel;
  bool keep_reference = true;
  /// A trainer's: the address at which replicas on other machines reach this node (its host in the
  /// cluster file), where its weight server listens for their data connections.
  std::string weights_host;
};

/// Spawns the host of registered environment `environment` on the node (the node's program must
/// have registered it: chorus::node_main); its episodes run there.
struct SpawnEnvironmentHost {
  using Reply = SpawnedActor;
  static constexpr const char* kDoing = "starting an environment host";
  std::string secret;
  std::string environment;
};

/// The node's spawner, or why there is none: `other_version` when its wire protocol differs.
struct NodeConnection {
  caf::actor spawner;
  std::string error;
  bool other_version = false;
};

/// Connects this process to a node's published actor (the recipe's side, in its own process): what
/// `middleman().remote_actor` does, as a request with a deadline instead of a call that blocks until
/// the peer answers the handshake (a stopped node never does).
struct ConnectNode {
  using Reply = NodeConnection;
  static constexpr const char* kDoing = "connecting to a node";
  std::string host;
  std::uint16_t port = 0;
};

/// Tells rank 0 of a data-parallel trainer group its other ranks, to which it forwards every
/// request that changes the weights.
struct JoinRanks {
  using Reply = void;
  static constexpr const char* kDoing = "joining the trainer ranks";
  std::vector<caf::actor> ranks;
};

/// A trainer published weight version `version`: sent by the trainer to its weight server, and by
/// the server to every subscribed replica.
struct WeightsPublished {
  std::int64_t version = 0;
};

/// A remote replica asks to be told of each new version; the reply names the newest so far.
struct SubscribeWeights {
  using Reply = WeightsPublished;
};

struct TensorLayout {
  std::string name;
  std::string dtype; // "float32" or "bfloat16"
  std::vector<std::int64_t> shape;
};

/// The newest version's tensors; the server keeps that version for chunk requests for a while.
/// With a data path (data_port > 0) the replica reads the version's bytes from a TCP connection to
/// data_host:data_port that presents data_token (weight_data_path.hpp); chunks are the fallback.
struct WeightManifest {
  std::int64_t version = 0;
  std::vector<TensorLayout> tensors;
  std::int64_t total_bytes = 0;
  std::int64_t chunk_bytes = 0;
  std::string data_host;
  std::int32_t data_port = 0;
  std::string data_token;
};

struct WeightManifestRequest {
  using Reply = WeightManifest;
  static constexpr const char* kDoing = "listing new weights";
  /// Whether the replica will read over the data path (false: it gave up on it; no token is made).
  bool data_path = true;
};

/// Bytes [index * chunk_bytes, (index + 1) * chunk_bytes) of the version's tensors laid end to end.
struct WeightChunk {
  std::int64_t version = 0;
  std::int64_t index = 0;
  std::vector<std::uint8_t> bytes;
};

struct WeightChunkRequest {
  using Reply = WeightChunk;
  static constexpr const char* kDoing = "sending weights";
  std::int64_t version = 0;
  std::int64_t index = 0;
};

CHORUS_INSPECT(ModelActorSpec, name, reference, dtype, device, gradient_checkpointing, seed, max_batch_size,
               kv_cache_len, threads, scoring, lora_r, lora_alpha, lora_dropout, lora_target_modules, lora_use_rslora,
               lora_modules_to_save, adapter)
CHORUS_INSPECT(NodeWelcome, name, cores)
CHORUS_INSPECT(NodeHello, secret)
CHORUS_INSPECT(SpawnedActor, actor, weights)
CHORUS_INSPECT(DataParallelSpec, rank, size, store_host, store_port, bind_host)
CHORUS_INSPECT(SpawnModelActor, secret, role, spec, weights, data_parallel, keep_reference, weights_host)
CHORUS_INSPECT(JoinRanks, ranks)
CHORUS_INSPECT(ConnectNode, host, port)
CHORUS_INSPECT(NodeConnection, spawner, error, other_version)
CHORUS_INSPECT(SpawnEnvironmentHost, secret, environment)
CHORUS_INSPECT(WeightsPublished, version)
CHORUS_INSPECT(SubscribeWeights)
CHORUS_INSPECT(TensorLayout, name, dtype, shape)
CHORUS_INSPECT(WeightManifest, version, tensors, total_bytes, chunk_bytes, data_host, data_port, data_token)
CHORUS_INSPECT(WeightManifestRequest, data_path)
CHORUS_INSPECT(WeightChunk, version, index, bytes)
CHORUS_INSPECT(WeightChunkRequest, version, index)

} // namespace chorus::actors

CAF_BEGIN_TYPE_ID_BLOCK(chorus_cluster, caf::first_custom_type_id + 200)
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::NodeHello))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::NodeWelcome))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::ModelActorSpec))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::SpawnModelActor))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::SpawnedActor))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::WeightsPublished))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::SubscribeWeights))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::TensorLayout))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::WeightManifest))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::WeightManifestRequest))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::WeightChunk))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::WeightChunkRequest))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::DataParallelSpec))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::JoinRanks))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::SpawnEnvironmentHost))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::ConnectNode))
  CAF_ADD_TYPE_ID(chorus_cluster, (chorus::actors::NodeConnection))
CAF_END_TYPE_ID_BLOCK(chorus_cluster)
