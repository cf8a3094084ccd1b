// Dividing the cores: pinned actors take their threads first; the rest of the cores go to the others
// in proportion to their weights, at least one thread each (more threads than cores only when there
// are more actors than cores).
#include "actors/core_budget.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace chorus::actors {

CoreShare::~CoreShare() {
  budget_->leave(id_);
}

CoreBudget& CoreBudget::process() {
  static CoreBudget budget([] {
    if (const char* forced = std::getenv("CHORUS_CORES"); forced && std::atoi(forced) > 0)
      return std::atoi(forced);
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }());
  return budget;
}

CoreBudget::CoreBudget(int cores) : cores_(std::max(1, cores)) {
}

std::unique_ptr<CoreShare> CoreBudget::join(std::string name, int weight, int fixed_threads) {
  std::unique_ptr<CoreShare> share(new CoreShare(this, 0));
  std::lock_guard<std::mutex> guard{mutex_};
  share->id_ = next_id_++;
  members_.push_back({share->id_, std::move(name), std::max(1, weight), std::max(0, fixed_threads), share.get()});
  rebalance();
  spdlog::info("cores: {} divided between compute actors: {}", cores_, describe_locked());
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
