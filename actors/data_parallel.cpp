#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO // ProcessGroupGloo.hpp declares nothing without it
#endif
#include "actors/data_parallel.hpp"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <stdexcept>

namespace chorus::actors {

namespace {

// How long forming the group, and any one collective, may wait for the slowest rank.
constexpr auto kGroupTimeout = std::chrono::minutes(5);

c10::intrusive_ptr<c10d::Store>& store_of(const std::shared_ptr<void>& holder) {
  return *static_cast<c10::intrusive_ptr<c10d::Store>*>(holder.get());
}

c10::intrusive_ptr<c10d::ProcessGroupGloo>& group_of(const std::shared_ptr<void>& holder) {
  return *static_cast<c10::intrusive_ptr<c10d::ProcessGroupGloo>*>(holder.get());
}

} // namespace

GradientGroup::GradientGroup(DataParallelSpec spec) : spec_(std::move(spec)) {
  if (spec_.size < 1 || spec_.rank < 0 || spec_.rank >= spec_.size)
    throw std::invalid_argument("data parallelism: rank " + std::to_string(spec_.rank) + " of " +
                                std::to_string(spec_.size) + " ranks");
  if (spec_.rank == 0) {
    c10d::TCPStoreOptions options;
    options.port = 0; // a free port, reported by store_port()
    options.isServer = true;
    options.numWorkers = static_cast<std::size_t>(spec_.size);
    options.waitWorkers = false;
    options.timeout = kGroupTimeout;
    store_ = std::make_shared<c10::intrusive_ptr<c10d::Store>>(
      c10::make_intrusive<c10d::TCPStore>(spec_.store_host, options));
    spec_.store_port = static_cast<c10d::TCPStore*>(store_of(store_).get())->getPort();
  }
}

GradientGroup::~GradientGroup() = default;

std::int32_t GradientGroup::store_port() const noexcept {
  return spec_.rank == 0 ? spec_.store_port : 0;
}

void GradientGroup::connect(const std::vector<torch::Tensor>& parameters) {
  if (group_)
    return;
  if (!store_) {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(spec_.store_port);
    options.isServer = false;
    options.numWorkers = static_cast<std::size_t>(spec_.size);
    options.waitWorkers = false;
    options.timeout = kGroupTimeout;
    store_ = std::make_shared<c10::intrusive_ptr<c10d::Store>>(
      c10::make_intrusive<c10d::TCPStore>(spec_.store_host, options));
  }
  auto options = c10d::ProcessGroupGloo::Options::create(kGroupTimeout);
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(spec_.bind_host));
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store_of(store_), spec_.rank, spec_.size, options);
  // Every rank starts from rank 0's weights, whatever each loaded.
  torch::NoGradGuard no_grad;
  for (const auto& parameter : parameters) {
    std::vector<at::Tensor> tensors{parameter.data()};
    group->broadcast(tensors, c10d::BroadcastOptions{})->wait();
  }
  group_ = std::make_shared<c10::intrusive_ptr<c10d::ProcessGroupGloo>>(std::move(group));
}

void GradientGroup::all_reduce_sum(torch::Tensor& tensor) {
  if (!group_)
    throw std::logic_error("data parallelism: all_reduce before the group formed");
  std::vector<at::Tensor> tensors{tensor};
  group_of(group_)->allreduce(tensors, c10d::AllreduceOptions{})->wait();
}

} // namespace chorus::actors
