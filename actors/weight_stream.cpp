#include "actors/weight_stream.hpp"

#include "actors/model_host.hpp"
#include "runtime/actor_host.hpp"
#include "runtime/timeline.hpp"

#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <map>

CHORUS_MESSAGE_TYPES(chorus_cluster);

namespace chorus::actors {

namespace {

// Replicas fetch a few chunks at once: the transfer keeps the link busy while each chunk is copied.
constexpr std::int64_t kChunksInFlight = 4;
// Versions a server keeps for fetches under way: a fetch older than this restarts on the newest.
constexpr std::size_t kPinnedVersions = 3;
// Fetches restarted in a row (a version superseded under way) before the feed gives up.
constexpr int kFetchRestarts = 3;
// Data path failures in a row after which a feed fetches by chunks only.
constexpr int kDataPathAttempts = 3;

// Runs a blocking data path read on a thread of its own (a detached actor) and replies with its
// error (empty: the bytes arrived).
using read_atom = caf::atom_constant<caf::atom("read")>;

std::string dtype_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    default: throw std::invalid_argument(std::string("weight stream: unsupported dtype ") + c10::toString(type));
  }
}

std::int64_t byte_size(const torch::Tensor& tensor) {
  return static_cast<std::int64_t>(tensor.numel()) * static_cast<std::int64_t>(tensor.element_size());
}

// Walks the tensors overlapping bytes [begin, begin + size) of their concatenation.
template <class F>
void for_each_span(const std::vector<torch::Tensor>& tensors, std::int64_t begin, std::int64_t size, F f) {
  std::int64_t offset = 0, end = begin + size;
  for (const auto& tensor : tensors) {
    auto bytes = byte_size(tensor);
    auto from = std::max(begin, offset), to = std::min(end, offset + bytes);
    if (from < to)
      f(tensor, from - offset, from - begin, to - from); // tensor, offset in it, offset in the range, length
    offset += bytes;
    if (offset >= end)
      break;
  }
  if (offset < end)
    throw std::out_of_range("weight stream: byte range past the end of the tensors");
}

// A version kept for the fetches under way.
struct Pinned {
  std::shared_ptr<const std::vector<torch::Tensor>> tensors;
  std::int64_t total_bytes = 0;
};

struct ServerState {
  std::shared_ptr<WeightBoard> board;
  std::unique_ptr<WeightDataServer> data; // null: chunks only
  std::vector<caf::actor> subscribers;
  std::map<std::int64_t, Pinned> pinned;
  static inline const char* name = "chorus.weight_server";
};

using ServerActor = StatefulActor<ServerState>;

caf::behavior weight_server(ServerActor* self, std::shared_ptr<WeightBoard> board, const std::string& data_host) {
  self->state.board = std::move(board);
  if (!data_host.empty()) {
    try {
      self->state.data = std::make_unique<WeightDataServer>(data_host);
    } catch (const std::exception& error) {
      spdlog::warn("{}; weight versions go to remote replicas in chunks over CAF (slower)", error.what());
    }
  }
  self->set_down_handler([self](const caf::down_msg& down) {
    auto& subscribers = self->state.subscribers;
    subscribers.erase(std::remove_if(subscribers.begin(), subscribers.end(),
                                     [&](const caf::actor& actor) { return actor.address() == down.source; }),
                      subscribers.end());
  });
  return {
    [self](const WeightsPublished& published) {
      for (const auto& subscriber : self->state.subscribers)
        self->send(subscriber, published);
    },
    [self](const SubscribeWeights&) {
      auto sender = caf::actor_cast<caf::actor>(self->current_sender());
      if (sender) {
        self->monitor(sender);
        self->state.subscribers.push_back(sender);
      }
      // -1 while the trainer still loads: its first version is announced when published.
      auto newest = self->state.board->newest();
      return WeightsPublished{newest.tensors ? newest.version : -1};
    },
    guarded([self](const WeightManifestRequest& request) {
      auto snapshot = self->state.board->newest();
      if (!snapshot.tensors)
        throw std::runtime_error("the trainer has not published weights yet");
      WeightManifest manifest;
      manifest.version = snapshot.version;
      manifest.chunk_bytes = kWeightChunkBytes;
      for (std::size_t i = 0; i < snapshot.tensors->size(); ++i) {
        const auto& tensor = (*snapshot.tensors)[i];
        manifest.tensors.push_back({(*snapshot.names)[i], dtype_name(tensor.scalar_type()), tensor.sizes().vec()});
        manifest.total_bytes += byte_size(tensor);
      }
      auto& pinned = self->state.pinned;
      auto& kept = pinned[snapshot.version];
      if (!kept.tensors)
        kept = {on_host(snapshot.tensors), manifest.total_bytes};
      if (const auto& data = self->state.data; data && request.data_path) {
        manifest.data_host = data->host();
        manifest.data_port = data->port();
        manifest.data_token = data->grant(kept.tensors);
      }
      while (pinned.size() > kPinnedVersions)
        pinned.erase(pinned.begin());
      return manifest;
    }),
    guarded([self](const WeightChunkRequest& request) {
      auto found = self->state.pinned.find(request.version);
      if (found == self->state.pinned.end())
        throw std::runtime_error("weight version " + std::to_string(request.version)
                                 + " is no longer served (newer versions replaced it): fetch the newest");
      const auto& [tensors, total] = found->second;
      auto begin = request.index * kWeightChunkBytes;
      if (request.index < 0 || begin >= total)
        throw std::out_of_range("weight chunk " + std::to_string(request.index) + " is past the end of version "
                                + std::to_string(request.version));
      WeightChunk chunk{request.version, request.index, {}};
      chunk.bytes.resize(static_cast<std::size_t>(std::min(kWeightChunkBytes, total - begin)));
      read_tensor_bytes(*tensors, begin, static_cast<std::int64_t>(chunk.bytes.size()), chunk.bytes.data());
      return chunk;
    }),
  };
}

} // namespace

caf::actor spawn_weight_server(caf::actor_system& system, std::shared_ptr<WeightBoard> board, std::string data_host) {
  return system.spawn(weight_server, std::move(board), std::move(data_host));
}

void read_tensor_bytes(const std::vector<torch::Tensor>& tensors, std::int64_t begin, std::int64_t size,
                       std::uint8_t* out) {
  for_each_span(
    tensors, begin, size, [&](const torch::Tensor& tensor, std::int64_t at, std::int64_t to, std::int64_t n) {
      std::memcpy(out + to, static_cast<const std::uint8_t*>(tensor.data_ptr()) + at, static_cast<std::size_t>(n));
    });
}

void write_tensor_bytes(std::vector<torch::Tensor>& tensors, std::int64_t begin, std::int64_t size,
                        const std::uint8_t* in) {
  for_each_span(
    tensors, begin, size, [&](const torch::Tensor& tensor, std::int64_t at, std::int64_t from, std::int64_t n) {
      std::memcpy(static_cast<std::uint8_t*>(tensor.data_ptr()) + at, in + from, static_cast<std::size_t>(n));
    });
}

std::shared_ptr<const std::vector<torch::Tensor>> on_host(std::shared_ptr<const std::vector<torch::Tensor>> tensors) {
  bool all_on_host = true;
  for (const auto& tensor : *tensors)
    all_on_host = all_on_host && tensor.device().is_cpu();
  if (all_on_host)
    return tensors;
  // Device weights (a trainer on a GPU) are copied once per served version into page-locked memory,
  // which the device copies into at full speed; the chunks are then read from there.
  torch::NoGradGuard no_grad;
  auto host = std::make_shared<std::vector<torch::Tensor>>();
  for (const auto& tensor : *tensors) {
    auto options = torch::TensorOptions().dtype(tensor.scalar_type()).pinned_memory(!tensor.device().is_cpu());
    host->push_back(torch::empty(tensor.sizes(), options).copy_(tensor));
  }
  return host;
}

// -- WeightFeed -------------------------------------------------------------------

WeightFeed::WeightFeed(caf::actor server, std::string replica_name, bool pinned_staging)
  : server_(std::move(server)), name_(std::move(replica_name)), pinned_staging_(pinned_staging) {}

WeightFeed::~WeightFeed() {
  if (reader_)
    reader_->cancel();
}

void WeightFeed::start(caf::event_based_actor* self, std::function<void()> on_change) {
  on_change_ = std::move(on_change);
  self->request(server_, caf::infinite, SubscribeWeights{})
    .then([this, self](const WeightsPublished& newest) { want(self, newest.version); },
          [this](const caf::error& error) { fail("cannot subscribe to the trainer's weights: " + to_string(error)); });
}

void WeightFeed::want(caf::event_based_actor* self, std::int64_t version) {
  wanted_ = std::max(wanted_, version);
  if (fetching_ < 0 && wanted_ > std::max(ready_version_, adopted_))
    fetch(self);
}

void WeightFeed::fetch(caf::event_based_actor* self) {
  if (reader_) {
    reader_->cancel();
    reader_.reset();
  }
  fetching_ = wanted_;
  ++generation_; // replies to an earlier fetch are ignored from now on
  self->request(server_, caf::infinite, WeightManifestRequest{data_path_failures_ < kDataPathAttempts})
    .then(
      [this, self, generation = generation_](WeightManifest& manifest) {
        if (generation == generation_)
          on_manifest(self, std::move(manifest));
      },
      [this](const caf::error& error) { fail("cannot fetch the weight manifest: " + to_string(error)); });
}

void WeightFeed::on_manifest(caf::event_based_actor* self, WeightManifest manifest) {
  try {
    fetching_ = manifest.version;
    wanted_ = std::max(wanted_, manifest.version);
    if (manifest.chunk_bytes <= 0)
      throw std::invalid_argument("the weight manifest has chunk_bytes " + std::to_string(manifest.chunk_bytes));
    staging_.clear();
    std::int64_t total = 0;
    for (const auto& layout : manifest.tensors) {
      auto options = torch::TensorOptions().dtype(parse_dtype(layout.dtype)).pinned_memory(pinned_staging_);
      staging_.push_back(torch::empty(layout.shape, options));
      total += byte_size(staging_.back());
    }
    if (total != manifest.total_bytes)
      throw std::invalid_argument("the weight manifest's tensors hold " + std::to_string(total) + " bytes, it says "
                                  + std::to_string(manifest.total_bytes));
    chunk_bytes_ = manifest.chunk_bytes;
    total_bytes_ = total;
    chunks_ = (total + chunk_bytes_ - 1) / chunk_bytes_;
    next_chunk_ = received_ = 0;
    if (chunks_ == 0)
      throw std::invalid_argument("the weight manifest lists no tensors");
  } catch (const std::exception& error) {
    fail(error.what());
    return;
  }
  if (manifest.data_port > 0 && data_path_failures_ < kDataPathAttempts)
    read_data_path(self, manifest);
  else
    request_chunks(self);
}

void WeightFeed::read_data_path(caf::event_based_actor* self, const WeightManifest& manifest) {
  reader_ = std::make_shared<WeightDataReader>(manifest.data_host, static_cast<std::uint16_t>(manifest.data_port),
                                               manifest.data_token, staging_, total_bytes_);
  auto reader = self->spawn<caf::detached>([reader = reader_](caf::event_based_actor* me) -> caf::behavior {
    return {[reader, me](read_atom) {
      auto promise = me->make_response_promise<std::string>();
      promise.deliver(reader->run());
      me->quit();
    }};
  });
  auto done = [this, self, generation = generation_,
               where = manifest.data_host + ":" + std::to_string(manifest.data_port)](const std::string& error) {
    if (generation != generation_)
      return; // a read of a fetch abandoned
    reader_.reset();
    if (error.empty()) {
      if (by_data_path_ == 0)
        spdlog::info("{}: weight versions arrive over the data path from {}", name_, where);
      data_path_failures_ = 0;
      ++by_data_path_;
      complete();
      return;
    }
    ++data_path_failures_;
    spdlog::warn("{}: the weight data path failed ({}); fetching version {} in chunks over CAF{} (can this machine "
                 "reach {}? For a trainer in the recipe's process that is the cluster file's recipe_host)",
                 name_, error, fetching_,
                 data_path_failures_ < kDataPathAttempts ? "" : ", as every version from now on (slower)", where);
    request_chunks(self);
  };
  self->request(reader, caf::infinite, read_atom::value)
    .then([done](const std::string& error) { done(error); },
          [done](const caf::error& error) { done("its reader stopped: " + to_string(error)); });
}

void WeightFeed::request_chunks(caf::event_based_actor* self) {
  while (next_chunk_ < std::min(chunks_, kChunksInFlight))
    request_chunk(self, next_chunk_++);
}

void WeightFeed::request_chunk(caf::event_based_actor* self, std::int64_t index) {
  self->request(server_, caf::infinite, WeightChunkRequest{fetching_, index})
    .then(
      [this, self, generation = generation_](WeightChunk& chunk) {
        if (generation == generation_)
          on_chunk(self, std::move(chunk));
      },
      [this, self, generation = generation_](const caf::error& error) {
        if (generation != generation_)
          return;                           // a chunk of a fetch already restarted
        if (restarts_++ < kFetchRestarts) { // e.g. the server dropped this version for newer ones
          fetching_ = -1;
          fetch(self);
          return;
        }
        fail("cannot fetch a weight chunk: " + to_string(error));
      });
}

void WeightFeed::on_chunk(caf::event_based_actor* self, WeightChunk chunk) {
  if (chunk.version != fetching_)
    return; // a chunk of an abandoned fetch
  try {
    auto begin = chunk.index * chunk_bytes_;
    auto expected = std::min(chunk_bytes_, total_bytes_ - begin);
    if (chunk.index < 0 || chunk.index >= chunks_ || static_cast<std::int64_t>(chunk.bytes.size()) != expected)
      throw std::invalid_argument("weight chunk " + std::to_string(chunk.index) + " of version "
                                  + std::to_string(chunk.version) + " has " + std::to_string(chunk.bytes.size())
                                  + " bytes, expected " + std::to_string(expected));
    write_tensor_bytes(staging_, begin, expected, chunk.bytes.data());
  } catch (const std::exception& error) {
    fail(error.what());
    return;
  }
  if (next_chunk_ < chunks_)
    request_chunk(self, next_chunk_++);
  if (++received_ < chunks_)
    return;
  ++by_chunks_;
  complete();
}

void WeightFeed::complete() {
  ready_version_ = fetching_;
  ready_ = std::move(staging_);
  staging_.clear();
  fetching_ = -1;
  restarts_ = 0;
  error_.clear();
  if (on_change_)
    on_change_();
}

void WeightFeed::fail(const std::string& why) {
  error_ = why;
  fetching_ = -1;
  staging_.clear();
  spdlog::warn("{}: weight sync failed: {}", name_, why);
  if (on_change_)
    on_change_();
}

std::int64_t WeightFeed::adopt(caf::event_based_actor* self, torch::nn::Module& model) {
  if (ready_version_ < 0)
    return adopted_;
  TimelineSpan span(name_, "weight sync", "version " + std::to_string(ready_version_));
  copy_into_parameters(model, ready_);
  adopted_ = ready_version_;
  ready_version_ = -1;
  ready_.clear();
  want(self, wanted_);
  return adopted_;
}

} // namespace chorus::actors
