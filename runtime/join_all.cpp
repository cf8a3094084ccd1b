// join_all: the one primitive behind gather, when_all and for_each_concurrent.
// Children run as separate coroutines on the caller's executor, each with its own cancellation
// signal, so a failure in one can cancel the others without touching the caller's own state.
// Never returns before every child has finished: children may reference the caller's frame.
#include <chorus/detail/wait_queue.hpp>
#include <chorus/errors.hpp>
#include <chorus/gather.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/this_coro.hpp>

namespace chorus::detail {

namespace {

// Shared by the joining coroutine and the children's completion handlers; lives until the last of
// them is gone.
struct JoinState {
  explicit JoinState(std::size_t n) : remaining(n), signals(new asio::cancellation_signal[n]), size(n) {}

  void finished(std::size_t index, std::exception_ptr error) {
    --remaining;
    if (error && !first_error) {
      first_error = error;
      cancel_all();
    }
    if (remaining == 0)
      done.notify_all();
  }

  void cancel_all() {
    for (std::size_t i = 0; i < size; ++i)
      signals[i].emit(asio::cancellation_type::terminal);
  }

  std::size_t remaining;
  std::exception_ptr first_error;
  std::unique_ptr<asio::cancellation_signal[]> signals; // not movable: hence no vector
  std::size_t size;
  WaitQueue done;
};

} // namespace

Task<void> join_all(std::vector<Task<void>> tasks) {
  if (tasks.empty())
    co_return;
  auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<JoinState>(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    auto on_done = [state, i](std::exception_ptr error) { state->finished(i, error); };
    auto token = asio::bind_cancellation_slot(state->signals[i].slot(), std::move(on_done));
    asio::co_spawn(executor, std::move(tasks[i]), std::move(token));
  }
  bool cancelled = false;
  while (state->remaining > 0) {
    bool interrupted = false;
    try {
      co_await state->done.wait();
    } catch (const CancelledError&) {
      interrupted = true;
    }
    if (interrupted && !cancelled) {
      // Our awaiter was cancelled: stop the children, then keep waiting for them, uncancellable,
      // since they may still reference our caller's frame.
      cancelled = true;
      state->cancel_all();
      co_await asio::this_coro::reset_cancellation_state();
      co_await asio::this_coro::throw_if_cancelled(false);
    }
  }
  if (cancelled)
    throw CancelledError("cancelled while waiting for concurrent tasks");
  if (state->first_error)
    std::rethrow_exception(state->first_error);
}

} // namespace chorus::detail
