// Trainer data parallelism: N trainer processes form a c10d Gloo process group (LibTorch's own
// collectives, not a hand-made all-reduce). Every rank receives the whole batch and computes the
// micro-batches of its own (micro-batch i on rank i % N); summing the gradients across ranks gives
// every rank the gradient of the whole batch, so clipping and AdamW leave identical weights on all.
#pragma once

#include "actors/model_actors.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace chorus::actors {

class GradientGroup {
public:
  /// Rank 0: starts the rendezvous store on a free port (see store_port) without waiting for anyone.
  /// Other ranks: nothing yet. The group itself forms in connect().
  explicit GradientGroup(DataParallelSpec spec);
  ~GradientGroup();

  /// The port of rank 0's rendezvous store (0 on other ranks).
  std::int32_t store_port() const noexcept;

  /// Forms the group (blocks until every rank has called it, at most `timeout`) and makes every
  /// rank's `parameters` equal to rank 0's. Idempotent.
  void connect(const std::vector<torch::Tensor>& parameters);

  bool connected() const noexcept;

  int rank() const noexcept {
    return spec_.rank;
  }

  int size() const noexcept {
    return spec_.size;
  }

  /// Sums `tensor` across the ranks, in place (every rank calls it, in the same order).
  void all_reduce_sum(torch::Tensor& tensor);

private:
  struct Collectives; // the c10d store and process group: c10d headers stay in data_parallel.cpp

  DataParallelSpec spec_;
  std::unique_ptr<Collectives> collectives_;
};

} // namespace chorus::actors
