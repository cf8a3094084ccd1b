// The data path of weight sync: a TCP connection per fetch that carries a weight version's bytes
// straight from the trainer's snapshot tensors into the replica's staging tensors (gather on one
// side, scatter on the other: no chunk messages, no serialisation, no intermediate copy). CAF keeps
// the control plane: a replica learns the address and a one-time token from the weight manifest,
// which comes over the node's authenticated CAF connection, and presents the token here.
//
// On the wire (both ends little-endian, as safetensors assumes):
//   replica -> server: "CHORUSW1", then the token (32 hex characters)
//   server -> replica: the byte count as a u64, then the tensors' bytes laid end to end
// A connection with a wrong or used token is closed before a byte of weights is sent.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace chorus::actors {

/// Serves granted weight versions on its own thread. Lives in the weight server actor's state.
class WeightDataServer {
public:
  /// Listens on `host` at a free port (on every address if `host` is not this machine's, with a
  /// warning: replicas still connect to `host`). @throws std::runtime_error if it cannot listen.
  explicit WeightDataServer(const std::string& host);
  ~WeightDataServer(); // stops serving; connections under way are closed

  WeightDataServer(const WeightDataServer&) = delete;
  WeightDataServer& operator=(const WeightDataServer&) = delete;

  const std::string& host() const noexcept;
  std::uint16_t port() const noexcept;

  /// A token for one connection that reads `tensors` (contiguous, in host memory), which the caller
  /// keeps: a token does not keep them alive. A token is valid once, for a minute, while the tensors
  /// exist and fewer than 64 newer grants do.
  std::string grant(const std::shared_ptr<const std::vector<torch::Tensor>>& tensors);

  /// Connections that received a whole version (for tests).
  std::int64_t served() const noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One fetch over the data path: connects to `host`:`port`, presents `token` and reads the version's
/// bytes into `into` (contiguous, in host memory, `total_bytes` in all). `run` blocks (call it from a
/// thread of its own); `cancel` may be called from any thread and makes `run` return.
class WeightDataReader {
public:
  WeightDataReader(std::string host, std::uint16_t port, std::string token, std::vector<torch::Tensor> into,
                   std::int64_t total_bytes);
  ~WeightDataReader();

  /// Empty if the bytes arrived whole, else why not (naming the address). Gives up when no byte
  /// arrives for `idle_timeout`.
  std::string run(std::chrono::milliseconds idle_timeout = std::chrono::seconds(30));

  void cancel();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace chorus::actors
