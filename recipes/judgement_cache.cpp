#include "recipes/judgement_cache.hpp"

namespace chorus::detail {

Grade JudgementCache::hit(Entry& entry) {
  order_.splice(order_.begin(), order_, entry.position);
  auto grade = *entry.grade;
  grade.cached = 1;
  return grade;
}

Task<Grade> JudgementCache::get_or_judge(std::string key, std::function<Task<Grade>()> judge) {
  for (;;) {
    auto found = entries_.find(key);
    if (found == entries_.end())
      break;
    auto entry = found->second;
    if (entry->grade)
      co_return hit(*entry);
    co_await entry->ready.wait(); // another coroutine is asking the judge this very question
    if (entry->grade)
      co_return hit(*entry);
    // That call failed: ask ourselves (or wait for whoever asks first).
  }
  auto entry = std::make_shared<Entry>();
  entries_[key] = entry;
  Grade grade;
  try {
    grade = co_await judge();
  } catch (...) {
    entries_.erase(key);
    entry->ready.notify_all();
    throw;
  }
  entry->grade = grade;
  order_.push_front(key);
  entry->position = order_.begin();
  while (order_.size() > capacity_) {
    entries_.erase(order_.back());
    order_.pop_back();
  }
  entry->ready.notify_all();
  co_return grade;
}

} // namespace chorus::detail
