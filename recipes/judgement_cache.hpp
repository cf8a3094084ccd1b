// JudgementCache: the verdicts a judge grader already has. RL asks the same question often (a group's
// identical completions, a prompt seen again in the next epoch); a cached verdict saves a judge call,
// and identical requests in flight at once share one call. Recipe executor only (no locks).
#pragma once

#include <chorus/detail/wait_queue.hpp>
#include <chorus/grader.hpp>

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace chorus::detail {

class JudgementCache {
public:
  /// Keeps the `capacity` most recently used verdicts.
  explicit JudgementCache(std::size_t capacity) : capacity_(capacity) {}

  /// The verdict stored under `key` (its Grade::cached set to 1), or `judge()`'s, stored under it.
  /// While one call for `key` runs, others for it wait for its verdict; if it fails, they ask again.
  Task<Grade> get_or_judge(std::string key, std::function<Task<Grade>()> judge);

  std::size_t size() const noexcept {
    return order_.size();
  }

private:
  struct Entry {
    std::optional<Grade> grade; // empty while the judge call runs
    WaitQueue ready;
    std::list<std::string>::iterator position;
  };

  Grade hit(Entry& entry);

  std::size_t capacity_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;
  std::list<std::string> order_; // finished verdicts, most recently used first
};

} // namespace chorus::detail
