// Time in recipe code: wait without blocking the recipe executor, and bound how long a task may run.
//
//   auto graded = co_await with_deadline(grader.grade(sample), std::chrono::seconds(30), "grade");
//
// A task that misses its deadline is cancelled (its pending actor requests are withdrawn, and a
// generation is stopped in the policy actor), awaited until it has stopped, and reported as a
// DeadlineError: nothing it started outlives the call.
#pragma once

#include <chorus/errors.hpp>
#include <chorus/task.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <utility>

namespace chorus {

/// A task that did not finish before its deadline.
class DeadlineError : public Error {
public:
  using Error::Error;
};

/// Suspends the calling coroutine for `duration` (the recipe executor runs other coroutines meanwhile).
/// @throws CancelledError if the coroutine is cancelled first.
Task<void> sleep_for(std::chrono::steady_clock::duration duration);

namespace detail {

/// `seconds` (a config's `..._s` field) as a steady-clock duration.
inline std::chrono::steady_clock::duration from_seconds(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

/// Runs `task` until it finishes or `deadline` passes; then cancels it and waits for it to stop.
/// @throws DeadlineError naming `what` in the second case, whatever `task` threw in the first.
Task<void> run_until(Task<void> task, std::chrono::steady_clock::time_point deadline, std::string what);

} // namespace detail

/// `task`'s result, if it finishes before `deadline`.
/// @throws DeadlineError (naming `what`) after cancelling `task` and waiting for it to stop.
template <class T>
Task<T> with_deadline(Task<T> task, std::chrono::steady_clock::time_point deadline, std::string what = "task") {
  if constexpr (std::is_void_v<T>) {
    co_await detail::run_until(std::move(task), deadline, std::move(what));
  } else {
    std::optional<T> result;
    co_await detail::run_until(
      [](Task<T> inner, std::optional<T>& out) -> Task<void> {
        out.emplace(co_await std::move(inner));
      }(std::move(task), result),
      deadline, std::move(what));
    co_return std::move(*result);
  }
}

/// `with_deadline` `timeout` from now.
template <class T>
Task<T> with_deadline(Task<T> task, std::chrono::steady_clock::duration timeout, std::string what = "task") {
  return with_deadline(std::move(task), std::chrono::steady_clock::now() + timeout, std::move(what));
}

} // namespace chorus
