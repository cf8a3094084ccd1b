// Scripted stand-ins for the RL tests: a grader whose every call runs a function of the test's (to
// sleep, hang, fail or score), counting how many calls grade at once; and a Gate that holds
// coroutines until the test opens it, to force an order instead of sleeping on the wall clock.
#pragma once

#include <chorus/detail/wait_queue.hpp>
#include <chorus/grader.hpp>
#include <chorus/task.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>

namespace chorus::test {

/// How a scripted grader's calls went: calls so far, and calls grading at once, now and at most.
struct GradingCounts {
  int calls = 0;
  int in_flight = 0;
  int most_in_flight = 0;
};

/// The score of call `call` (0, 1, ... in the order the calls arrive) on `sample`.
using GradingScript = std::function<Task<double>(int call, const Sample& sample)>;

/// A grader (key "scripted") whose calls run `script`; `counts`, if given, follows them.
inline Grader scripted(GradingScript script, std::shared_ptr<GradingCounts> counts = nullptr) {
  struct Impl : Grader::Impl {
    GradingScript script;
    std::shared_ptr<GradingCounts> counts;
    Task<Grade> grade(Sample sample) const override {
      auto& count = *counts;
      auto call = count.calls++;
      ++count.in_flight;
      count.most_in_flight = std::max(count.most_in_flight, count.in_flight);
      struct Leave {
        int& in_flight;
        ~Leave() {
          --in_flight;
        }
      } leave{count.in_flight};
      Grade result;
      result.score = co_await script(call, sample);
      result.scores[key] = result.score;
      co_return result;
    }
  };
  auto impl = std::make_shared<Impl>();
  impl->key = "scripted";
  impl->script = std::move(script);
  impl->counts = counts ? std::move(counts) : std::make_shared<GradingCounts>();
  return Grader(std::shared_ptr<const Grader::Impl>(impl));
}

/// Holds the coroutines that pass it until open() is called; once open, it stays open. Runs on the
/// recipe executor, as everything it holds.
class Gate {
public:
  Task<void> pass() {
    if (!open_)
      co_await waiting_.wait();
  }

  void open() {
    open_ = true;
    waiting_.notify_all();
  }

  bool is_open() const noexcept {
    return open_;
  }

private:
  bool open_ = false;
  chorus::detail::WaitQueue waiting_;
};

} // namespace chorus::test
