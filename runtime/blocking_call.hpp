// run_blocking: awaits a blocking call (an HTTP request, a file read) made on a thread pool, so that
// the recipe executor's one thread keeps running every other coroutine meanwhile.
#pragma once

#include <chorus/task.hpp>

#include <asio/async_result.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

#include <exception>
#include <functional>

namespace chorus {

/// Runs `call` on a thread of `pool` and resumes the awaiting coroutine on its own executor with the
/// result, or the exception `call` threw. The pool's size bounds how many such calls run at once.
template <class T>
Task<T> run_blocking(asio::thread_pool& pool, std::function<T()> call) {
  auto executor = co_await asio::this_coro::executor;
  auto initiation = [&pool, call = std::move(call), executor](auto handler) mutable {
    // Tracked: the recipe executor must not count itself out of work while the call is out. The
    // tracking copy travels with the completion and is released on the executor's thread, by the
    // completion: released on the pool's thread, it could touch an executor already destroyed.
    auto work = asio::prefer(executor, asio::execution::outstanding_work.tracked);
    asio::post(pool,
               [call = std::move(call), executor, work = std::move(work), handler = std::move(handler)]() mutable {
                 std::exception_ptr error;
                 T result{};
                 try {
                   result = call();
                 } catch (...) {
                   error = std::current_exception();
                 }
                 asio::post(executor,
                            [handler = std::move(handler), error, result = std::move(result),
                             work = std::move(work)]() mutable { std::move(handler)(error, std::move(result)); });
               });
  };
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, T)>(
    std::move(initiation), asio::use_awaitable);
}

} // namespace chorus
