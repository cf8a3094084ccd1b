// WaitQueue: coroutines parked until another coroutine wakes them, in FIFO order.
// Each waiter parks on a timer that never expires: a timer's wait is the cheapest Asio operation that
// supports per-operation cancellation, so a parked coroutine can still be cancelled cleanly.
// Single-threaded by design: every user runs on the recipe executor.
#pragma once

#include <chorus/errors.hpp>
#include <chorus/task.hpp>

#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <list>

namespace chorus::detail {

class WaitQueue {
public:
  /// Parks the calling coroutine until `notify_one` or `notify_all` picks it.
  /// @throws CancelledError if the coroutine is cancelled while parked.
  Task<void> wait() {
    auto executor = co_await asio::this_coro::executor;
    Waiter waiter{asio::steady_timer{executor, asio::steady_timer::time_point::max()}};
    Enlisted enlisted{this, &waiter, waiters_.insert(waiters_.end(), &waiter)};
    std::error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    co_await waiter.timer.async_wait(token);
    if (!waiter.notified)
      throw CancelledError("cancelled while waiting");
  }

  /// Wakes the longest-waiting coroutine, if any. Returns whether one was woken.
  bool notify_one() {
    if (waiters_.empty())
      return false;
    wake(waiters_.front());
    waiters_.pop_front();
    return true;
  }

  /// Wakes every parked coroutine.
  void notify_all() {
    while (notify_one()) {
      // nop
    }
  }

  bool empty() const noexcept {
    return waiters_.empty();
  }

private:
  struct Waiter {
    asio::steady_timer timer;
    bool notified = false;
  };

  // Takes a waiter off the list when its coroutine leaves `wait` without being notified: by
  // cancellation, or because the executor destroyed the suspended frame at shutdown.
  struct Enlisted {
    WaitQueue* queue;
    Waiter* waiter;
    std::list<Waiter*>::iterator pos; // erased by notify_one when notified
    ~Enlisted() {
      if (!waiter->notified)
        queue->waiters_.erase(pos);
    }
  };

  static void wake(Waiter* waiter) {
    waiter->notified = true;
    waiter->timer.cancel();
  }

  std::list<Waiter*> waiters_;
};

} // namespace chorus::detail
