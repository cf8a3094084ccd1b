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

// Rank 0 serves the rendezvous store (on a free port when `spec.store_port` is 0); the others join it.
c10::intrusive_ptr<c10d::TCPStore> open_store(const DataParallelSpec& spec) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(spec.rank == 0 ? 0 : spec.store_port);
  options.isServer = spec.rank == 0;
  options.numWorkers = static_cast<std::size_t>(spec.size);
  options.waitWorkers = false;
  options.timeout = kGroupTimeout;
  return c10::make_intrusive<c10d::TCPStore>(spec.store_host, options);
}

} // namespace

struct GradientGroup::Collectives {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group; // null until connect()
};

GradientGroup::GradientGroup(DataParallelSpec spec) : spec_(std::move(spec)), collectives_(new Collectives) {
  if (spec_.size < 1 || spec_.rank < 0 || spec_.rank >= spec_.size)
    throw std::invalid_argument("data parallelism: rank " + std::to_string(spec_.rank) + " of "
                                + std::to_string(spec_.size) + " ranks");
  if (spec_.rank == 0) {
    collectives_->store = open_store(spec_);
    spec_.store_port = collectives_->store->getPort();
  }
}

GradientGroup::~GradientGroup() = default;

std::int32_t GradientGroup::store_port() const noexcept {
  return spec_.rank == 0 ? spec_.store_port : 0;
}

bool GradientGroup::connected() const noexcept {
  return collectives_->group.defined();
}

void GradientGroup::connect(const std::vector<torch::Tensor>& parameters) {
  if (connected())
    return;
  if (!collectives_->store.defined())
    collectives_->store = open_store(spec_);
  auto options = c10d::ProcessGroupGloo::Options::create(kGroupTimeout);
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(spec_.bind_host));
  auto store = c10::intrusive_ptr<c10d::Store>(collectives_->store);
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, spec_.rank, spec_.size, options);
  // Every rank starts from rank 0's weights, whatever each loaded.
  torch::NoGradGuard no_grad;
  for (const auto& parameter : parameters) {
    std::vector<at::Tensor> tensors{parameter.data()};
    group->broadcast(tensors, c10d::BroadcastOptions{})->wait();
  }
  collectives_->group = std::move(group);
}

void GradientGroup::all_reduce_sum(torch::Tensor& tensor) {
  if (!connected())
    throw std::logic_error("data parallelism: all_reduce before the group formed");
  std::vector<at::Tensor> tensors{tensor};
  collectives_->group->allreduce(tensors, c10d::AllreduceOptions{})->wait();
}

} // namespace chorus::actors
