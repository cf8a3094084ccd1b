// Structured concurrency for recipe code: run several tasks at once and wait for all of them.
//
// Every helper here waits for all the tasks it started before it returns or throws, so a task never
// outlives the coroutine that awaited it. When one task fails, its siblings are cancelled (their
// pending awaits throw CancelledError), and the first failure is rethrown once all have stopped.
#pragma once

#include <chorus/task.hpp>

#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace chorus {

namespace detail {

/// Runs `tasks` concurrently on the calling coroutine's executor and waits for all of them. On the
/// first failure cancels the rest, waits for them, and rethrows that failure. If the awaiting
/// coroutine is cancelled, cancels every task, waits for them, and throws CancelledError.
Task<void> join_all(std::vector<Task<void>> tasks);

template <class T>
using stored_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T, class Slot>
Task<void> run_into(Task<T> task, std::shared_ptr<Slot> slots, std::size_t index) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
  } else {
    (*slots)[index].emplace(co_await std::move(task));
  }
}

template <std::size_t I, class T, class Tuple>
Task<void> run_into_tuple(Task<T> task, std::shared_ptr<Tuple> slots) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    std::get<I>(*slots).emplace();
  } else {
    std::get<I>(*slots).emplace(co_await std::move(task));
  }
}

template <class Range, class Fn>
Task<void> for_each_concurrent_impl(Range range, std::size_t limit, Fn fn) {
  using iterator = std::ranges::iterator_t<Range>;
  struct Cursor {
    iterator next;
    std::ranges::sentinel_t<Range> end;
  };
  Cursor cursor{std::ranges::begin(range), std::ranges::end(range)};
  // Each worker takes the next item when it is free, so at most `limit` calls run at once.
  auto worker = [](Cursor& cursor, Fn& fn) -> Task<void> {
    while (cursor.next != cursor.end) {
      auto&& item = *cursor.next;
      ++cursor.next;
      co_await fn(item);
    }
  };
  std::vector<Task<void>> workers;
  for (std::size_t i = 0; i < limit; ++i)
    workers.push_back(worker(cursor, fn));
  co_await join_all(std::move(workers));
}

} // namespace detail

/// Runs every task in `tasks` at once and returns their results in the order of `tasks`.
/// @throws the first exception any task threw, after cancelling and awaiting the others.
template <class T>
Task<std::vector<T>> when_all(std::vector<Task<T>> tasks) {
  auto slots = std::make_shared<std::vector<std::optional<T>>>(tasks.size());
  std::vector<Task<void>> runs;
  runs.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i)
    runs.push_back(detail::run_into(std::move(tasks[i]), slots, i));
  co_await detail::join_all(std::move(runs));
  std::vector<T> results;
  results.reserve(slots->size());
  for (auto& slot : *slots)
    results.push_back(std::move(*slot));
  co_return results;
}

/// Runs every task in `tasks` at once and waits for all of them.
/// @throws the first exception any task threw, after cancelling and awaiting the others.
inline Task<void> when_all(std::vector<Task<void>> tasks) {
  return detail::join_all(std::move(tasks));
}

/// Runs tasks of different result types at once, like Python's `asyncio.gather`:
/// `auto [a, b] = co_await gather(generate(), grade());`. A `Task<void>` yields `std::monostate`.
/// @throws the first exception any task threw, after cancelling and awaiting the others.
template <class... Ts>
Task<std::tuple<detail::stored_t<Ts>...>> gather(Task<Ts>... tasks) {
  using Slots = std::tuple<std::optional<detail::stored_t<Ts>>...>;
  auto slots = std::make_shared<Slots>();
  std::vector<Task<void>> runs;
  runs.reserve(sizeof...(Ts));
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (runs.push_back(detail::run_into_tuple<I>(std::move(tasks), slots)), ...);
  }(std::index_sequence_for<Ts...>{});
  co_await detail::join_all(std::move(runs));
  co_return std::apply([](auto&... slot) { return std::tuple{std::move(*slot)...}; }, *slots);
}

/// Calls `fn(item)` (which returns a Task<void>) for every item of `range`, with at most `limit` calls
/// in flight at once, and waits for all of them. An lvalue range is referenced, not copied: it must
/// outlive the await (it does when awaited where it is called). `limit` 0 is taken as 1.
/// @throws the first exception any call threw, after cancelling and awaiting the others.
template <class Range, class Fn>
Task<void> for_each_concurrent(Range&& range, std::size_t limit, Fn fn) {
  return detail::for_each_concurrent_impl(std::views::all(std::forward<Range>(range)), limit == 0 ? 1 : limit,
                                          std::move(fn));
}

} // namespace chorus
