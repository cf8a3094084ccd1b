// Helpers shared by the runtime tests.
#pragma once

#include <chorus/task.hpp>

#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

namespace chorus::test {

/// Lets every other ready coroutine on the executor run once before this one continues.
inline Task<void> yield() {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

} // namespace chorus::test
