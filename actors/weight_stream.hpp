// Weight versions across processes. In the trainer's process a weight server streams what the
// WeightBoard holds; a replica in another process keeps a WeightFeed that fetches each new version in
// chunks between its decode steps, so neither training nor generation waits for the network: the
// replica serves its old version until the new one is complete, then swaps between batches.
#pragma once

#include "actors/cluster_messages.hpp"
#include "actors/weight_board.hpp"
#include "actors/weight_data_path.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace chorus::actors {

/// Bytes per WeightChunk: large enough that per-message costs vanish, small enough that a replica's
/// decode steps interleave with a transfer.
inline constexpr std::int64_t kWeightChunkBytes = std::int64_t{2} << 20;

/// Serves `board`'s versions to remote replicas: SubscribeWeights, WeightManifestRequest and
/// WeightChunkRequest; forwards the trainer's WeightsPublished to the subscribers. With a
/// `data_host` (the address replicas reach this process at) the versions' bytes go over the data
/// path (weight_data_path.hpp) and chunks serve only replicas that cannot connect to it.
caf::actor spawn_weight_server(caf::actor_system& system, std::shared_ptr<WeightBoard> board,
                               std::string data_host = {});

/// Copies bytes [begin, begin + size) of `tensors` laid end to end (each contiguous) into `out`.
void read_tensor_bytes(const std::vector<torch::Tensor>& tensors, std::int64_t begin, std::int64_t size,
                       std::uint8_t* out);

/// Copies `size` bytes from `in` into `tensors` laid end to end, from byte `begin` on.
void write_tensor_bytes(std::vector<torch::Tensor>& tensors, std::int64_t begin, std::int64_t size,
                        const std::uint8_t* in);

/// A replica's side of the stream. Lives in the replica actor's state; `fetch` drives requests from
/// that actor, so every callback runs on the actor's own thread.
/// `tensors` if they are all in host memory, else host copies of them (page-locked where they come
/// from a device): what the weight server reads chunks from.
std::shared_ptr<const std::vector<torch::Tensor>> on_host(std::shared_ptr<const std::vector<torch::Tensor>> tensors);

class WeightFeed {
public:
  /// With `pinned_staging` (a replica on a GPU) chunks land in page-locked host memory, from which the
  /// version is copied to the device at full speed.
  WeightFeed(caf::actor server, std::string replica_name, bool pinned_staging = false);
  ~WeightFeed(); // cancels a read on the data path

  WeightFeed(const WeightFeed&) = delete;
  WeightFeed& operator=(const WeightFeed&) = delete;

  /// Subscribes to new versions and fetches the newest. `on_change` runs when a version is complete
  /// or a fetch fails (then `error()` says why).
  void start(caf::event_based_actor* self, std::function<void()> on_change);

  /// Notes that version `version` exists (announced, or asked for by a request) and fetches it unless
  /// a fetch is running.
  void want(caf::event_based_actor* self, std::int64_t version);

  /// The newest complete version not yet adopted (-1: none).
  std::int64_t ready() const noexcept {
    return ready_version_;
  }

  /// Copies the ready version into `model`'s parameters and returns it; fetches a newer one if known.
  std::int64_t adopt(caf::event_based_actor* self, torch::nn::Module& model);

  /// Why the last fetch failed (empty if it did not).
  const std::string& error() const noexcept {
    return error_;
  }

  /// Versions fetched whole over the data path, and in chunks over CAF (the fallback).
  std::int64_t versions_by_data_path() const noexcept {
    return by_data_path_;
  }
  std::int64_t versions_by_chunks() const noexcept {
    return by_chunks_;
  }

private:
  void fetch(caf::event_based_actor* self);
  void read_data_path(caf::event_based_actor* self, const WeightManifest& manifest);
  void request_chunks(caf::event_based_actor* self);
  void request_chunk(caf::event_based_actor* self, std::int64_t index);
  void complete();
  void on_manifest(caf::event_based_actor* self, WeightManifest manifest);
  void on_chunk(caf::event_based_actor* self, WeightChunk chunk);
  void fail(const std::string& why);

  caf::actor server_;
  std::string name_;
  bool pinned_staging_ = false;
  std::function<void()> on_change_;
  std::int64_t wanted_ = -1;   // the newest version known to exist
  std::int64_t fetching_ = -1; // the version being fetched (-1: none)
  std::int64_t chunks_ = 0, next_chunk_ = 0, received_ = 0, chunk_bytes_ = 0, total_bytes_ = 0;
  std::vector<torch::Tensor> staging_;
  std::int64_t ready_version_ = -1;
  std::vector<torch::Tensor> ready_;
  std::int64_t adopted_ = -1;
  int restarts_ = 0;
  std::shared_ptr<WeightDataReader> reader_; // the data path read under way
  int data_path_failures_ = 0;               // in a row; at kDataPathAttempts the feed stops trying
  std::int64_t by_data_path_ = 0, by_chunks_ = 0;
  std::uint64_t generation_ = 0; // of the fetch under way
  std::string error_;
};

} // namespace chorus::actors
