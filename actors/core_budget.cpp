// Dividing the cores: pinned actors take their threads first; the rest of the cores go to the others
// in proportion to their weights, at least one thread each (more threads than cores only when there
// are more actors than cores).
//
// BLAS too: OpenBLAS keeps one thread pool for the whole process, so two actors calling it at once
// queue for that pool while its idle threads spin on the cores (measured: an overlapped RL loop ran
// slower than the sequential one, with a third of its time in the kernel). With more than one compute
// actor each BLAS call therefore runs on its caller's own thread; a lone actor lets BLAS use its share.
#include "actors/core_budget.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <dlfcn.h>
#include <thread>

namespace chorus::actors {

namespace {

using SetThreads = void (*)(int);
using GetThreads = int (*)();

GetThreads openblas_get() {
  static const auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get;
}

// Returns the BLAS threads now (0: not OpenBLAS, left alone).
int set_blas_threads(int threads) {
  static const auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (!set || !openblas_get())
    return 0;
  set(threads);
  return openblas_get()();
}

} // namespace

int blas_threads() {
  auto get = openblas_get();
  return get ? get() : 0;
}

int intra_op_threads(int share) {
  return blas_threads() > 1 ? 1 : share;
}

CoreShare::~CoreShare() {
  budget_->leave(id_);
}

bool CoreShare::should_yield_to_trainer() const {
  std::lock_guard<std::mutex> guard{budget_->mutex_};
  for (const auto& member : budget_->members_)
    if (member.id == id_ && member.weight > 1)
      return false;
  return budget_->oversubscribed_locked();
}

CoreBudget& CoreBudget::process() {
  static CoreBudget budget([] {
    if (const char* forced = std::getenv("CHORUS_CORES"); forced && std::atoi(forced) > 0)
      return std::atoi(forced);
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }());
  return budget;
}

CoreBudget::CoreBudget(int cores) : cores_(std::max(1, cores)) {}

std::unique_ptr<CoreShare> CoreBudget::join(std::string name, int weight, int fixed_threads) {
  std::unique_ptr<CoreShare> share(new CoreShare(this, 0));
  std::lock_guard<std::mutex> guard{mutex_};
  share->id_ = next_id_++;
  members_.push_back({share->id_, std::move(name), std::max(1, weight), std::max(0, fixed_threads), share.get()});
  rebalance();
  // Set on joining only: an actor joins before it computes, while shrinking the pool under running
  // BLAS calls of others is what OpenBLAS does not promise to survive.
  auto blas = set_blas_threads(members_.size() > 1 ? 1 : members_.front().share->threads());
  spdlog::info("cores: {} divided between compute actors: {} (OpenBLAS: {})", cores_, describe_locked(),
               blas > 0 ? std::to_string(blas) + " thread(s) per call" : "not loaded");
  return share;
}

void CoreBudget::leave(std::uint64_t id) {
  std::lock_guard<std::mutex> guard{mutex_};
  members_.erase(std::remove_if(members_.begin(), members_.end(), [id](const Member& m) { return m.id == id; }),
                 members_.end());
  rebalance();
}

void CoreBudget::rebalance() {
  int pool = cores_, weights = 0;
  for (const auto& member : members_) {
    if (member.fixed > 0)
      pool -= member.fixed;
    else
      weights += member.weight;
  }
  pool = std::max(pool, 0);
  for (const auto& member : members_) {
    int threads = member.fixed > 0 ? member.fixed : std::max(1, weights > 0 ? pool * member.weight / weights : 1);
    member.share->threads_.store(threads);
  }
}

bool CoreBudget::oversubscribed_with_trainer() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return oversubscribed_locked();
}

bool CoreBudget::oversubscribed_locked() const {
  int threads = 0;
  bool trainer = false;
  for (const auto& member : members_) {
    threads += member.share->threads();
    trainer = trainer || member.weight > 1;
  }
  return trainer && threads > cores_;
}

std::string CoreBudget::describe() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return describe_locked();
}

std::string CoreBudget::describe_locked() const {
  std::string text;
  for (const auto& member : members_) {
    if (!text.empty())
      text += ", ";
    text += member.name + ": " + std::to_string(member.share->threads()) + (member.fixed > 0 ? " (pinned)" : "");
  }
  return text;
}

} // namespace chorus::actors
