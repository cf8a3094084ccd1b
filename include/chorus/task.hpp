// Task<T>: the coroutine type that recipes and everything they await return.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

namespace chorus {

/// The coroutine type of recipe code: `Task<int> f() { co_return 1; }`, awaited with `co_await f()`.
/// A Task runs on the recipe executor, one thread shared by every recipe coroutine, so recipe code
/// needs no locks. A Task starts only when awaited (or spawned by the runtime).
template <class T = void>
using Task = asio::awaitable<T, asio::any_io_executor>;

} // namespace chorus
