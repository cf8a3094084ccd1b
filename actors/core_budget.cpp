// Dividing the cores: pinned actors take their threads first and keep them; the rest of the cores go
// to the actors working now in proportion to their weights, at least one thread each (more threads
// than cores only when more actors work than there are cores). An actor that asks what it would get
// counts itself as working: it asks right before it works.
//
// The split follows the work within a step: in an overlapped RL step the policy's replica and the
// trainer each get one of two cores while both work, and the trainer all of them once the replica's
// batch is done (it reads its share again at each micro-batch); SFT and evaluation get every core.
#include "actors/core_budget.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <dlfcn.h>
#include <stdexcept>
#include <thread>

namespace chorus::actors {

namespace {

// OpenBLAS says how it was built: 0 sequential, 1 pthreads, 2 OpenMP.
constexpr int kOpenBlasPthreads = 1;

// The OpenMP build (or another BLAS) runs a product on the caller's OpenMP threads and needs nothing.
// The pthread build keeps one pool for the whole process: two actors calling into it at once queued
// for it while its idle threads spun on the cores, so it is held at one thread, with a warning.
void hold_a_shared_blas_pool_at_one_thread() {
  using GetParallel = int (*)();
  using SetThreads = void (*)(int);
  auto get_parallel = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  auto set_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (!get_parallel || !set_threads || get_parallel() != kOpenBlasPthreads)
    return;
  set_threads(1);
  spdlog::warn("cores: this program loaded the pthread build of OpenBLAS, which keeps one thread pool for the "
               "whole process: matrix products run on one thread each. Install libopenblas0-openmp and rebuild "
               "chorus so that an actor's products use the cores it is given");
}

} // namespace

CoreShare::~CoreShare() {
  budget_->leave(id_);
}

int CoreShare::threads() const {
  std::lock_guard<std::mutex> guard{budget_->mutex_};
  return budget_->threads_locked(budget_->member_locked(id_));
}

void CoreShare::set_busy(bool busy) {
  budget_->set_busy(id_, busy);
}

bool CoreShare::should_yield_to_trainer() const {
  std::lock_guard<std::mutex> guard{budget_->mutex_};
  return budget_->should_yield_locked(budget_->member_locked(id_));
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
  static std::once_flag blas_checked;
  std::call_once(blas_checked, hold_a_shared_blas_pool_at_one_thread);
  std::unique_ptr<CoreShare> share(new CoreShare(this, 0));
  std::lock_guard<std::mutex> guard{mutex_};
  share->id_ = next_id_++;
  members_.push_back({share->id_, std::move(name), std::max(1, weight), std::max(0, fixed_threads)});
  std::string text;
  for (const auto& member : members_)
    text += (text.empty() ? "" : ", ") + member.name + (member.fixed > 0 ? " (pinned)" : "");
  spdlog::info("cores: {} shared by the compute actors that work at the same time: {}", cores_, text);
  return share;
}

void CoreBudget::leave(std::uint64_t id) {
  std::lock_guard<std::mutex> guard{mutex_};
  members_.erase(std::remove_if(members_.begin(), members_.end(), [id](const Member& m) { return m.id == id; }),
                 members_.end());
}

void CoreBudget::set_busy(std::uint64_t id, bool busy) {
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto& member : members_) {
    if (member.id != id || member.busy == busy)
      continue;
    member.busy = busy;
    auto working = working_locked();
    if (logged_.insert(working).second)
      spdlog::info("cores: working now: {}", working);
    else
      spdlog::debug("cores: working now: {}", working);
  }
}

const CoreBudget::Member& CoreBudget::member_locked(std::uint64_t id) const {
  for (const auto& member : members_)
    if (member.id == id)
      return member;
  throw std::logic_error("CoreShare of an actor that left the budget");
}

int CoreBudget::threads_locked(const Member& member) const {
  if (member.fixed > 0)
    return member.fixed;
  int pool = cores_, weights = 0;
  for (const auto& other : members_) {
    if (other.fixed > 0)
      pool -= other.fixed;
    else if (other.busy || other.id == member.id)
      weights += other.weight;
  }
  return std::max(1, std::max(pool, 0) * member.weight / weights);
}

bool CoreBudget::should_yield_locked(const Member& member) const {
  if (member.weight > 1)
    return false;
  int threads = 0;
  bool trainer = false;
  for (const auto& other : members_) {
    trainer = trainer || other.weight > 1;
    if (other.fixed > 0 || other.busy || other.id == member.id)
      threads += threads_locked(other);
  }
  return trainer && threads > cores_;
}

std::string CoreBudget::working_locked() const {
  std::string text;
  for (const auto& member : members_)
    if (member.busy)
      text += (text.empty() ? "" : ", ") + member.name + ": " + std::to_string(threads_locked(member));
  return text.empty() ? "none" : text;
}

std::string CoreBudget::describe() const {
  std::lock_guard<std::mutex> guard{mutex_};
  std::string text;
  for (const auto& member : members_)
    text += (text.empty() ? "" : ", ") + member.name + ": "
      + (member.fixed > 0 ? std::to_string(member.fixed) + " (pinned)"
           : member.busy  ? std::to_string(threads_locked(member))
                          : std::string("waiting"));
  return text;
}

} // namespace chorus::actors
