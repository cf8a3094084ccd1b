// with_deadline: the task runs as a child coroutine with its own cancellation signal; a timer emits
// that signal at the deadline. The caller waits for the child either way, so the child may keep
// referencing the caller's frame until it has stopped.
#include <chorus/deadline.hpp>
#include <chorus/detail/wait_queue.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <memory>

namespace chorus {

Task<void> sleep_for(std::chrono::steady_clock::duration duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  std::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    throw CancelledError("cancelled while sleeping");
}

namespace detail {

namespace {

struct DeadlineState {
  bool done = false;
  bool expired = false;
  std::exception_ptr error;
  asio::cancellation_signal signal;
  WaitQueue finished;
};

} // namespace

Task<void> run_until(Task<void> task, std::chrono::steady_clock::time_point deadline, std::string what) {
  auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<DeadlineState>();
  asio::co_spawn(executor, std::move(task),
                 asio::bind_cancellation_slot(state->signal.slot(), [state](std::exception_ptr e) {
                   state->done = true;
                   state->error = e;
                   state->finished.notify_all();
                 }));
  asio::steady_timer timer(executor, deadline);
  timer.async_wait([state](std::error_code ec) {
    if (ec || state->done)
      return;
    state->expired = true;
    state->signal.emit(asio::cancellation_type::terminal);
  });
  bool cancelled = false;
  while (!state->done) {
    try {
      co_await state->finished.wait();
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled && !state->done) {
      // Our caller was cancelled: stop the child and keep waiting for it, uncancellable.
      state->signal.emit(asio::cancellation_type::terminal);
      co_await asio::this_coro::reset_cancellation_state();
      co_await asio::this_coro::throw_if_cancelled(false);
    }
  }
  timer.cancel();
  if (cancelled)
    throw CancelledError("cancelled while waiting for " + what);
  if (state->expired && state->error)
    throw DeadlineError(what + " did not finish before its deadline and was cancelled");
  if (state->error)
    std::rethrow_exception(state->error);
}

} // namespace detail

} // namespace chorus
