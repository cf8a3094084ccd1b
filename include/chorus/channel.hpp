// Channel<T>: a bounded queue between coroutines on the recipe executor.
#pragma once

#include <chorus/detail/wait_queue.hpp>
#include <chorus/errors.hpp>
#include <chorus/task.hpp>

#include <cstddef>
#include <deque>
#include <optional>
#include <stdexcept>

namespace chorus {

/// A bounded first-in first-out queue that connects producer and consumer coroutines, e.g. a rollout
/// coroutine feeding graded samples to the training loop. `send` waits while the channel is full, so a
/// fast producer cannot run ahead by more than `capacity` items.
///
/// Closing never loses data: after `close()`, `receive` still returns every buffered item, then
/// `std::nullopt`. (Asio's own channel drops buffered items on close, hence this type.)
///
/// A Channel is used by coroutines on the recipe executor only; it is neither copyable nor movable,
/// so coroutines share it by reference while the owning coroutine awaits them.
template <class T>
class Channel {
public:
  // -- constructors -----------------------------------------------------------

  /// @throws std::invalid_argument if `capacity` is zero.
  explicit Channel(std::size_t capacity) : capacity_(capacity) {
    if (capacity == 0)
      throw std::invalid_argument("Channel capacity must be at least 1");
  }

  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // -- sending and receiving --------------------------------------------------

  /// Appends `item`, waiting while the channel holds `capacity()` items.
  /// @throws ChannelClosedError if the channel is closed before the item could be buffered.
  /// @throws CancelledError if the sending coroutine is cancelled while waiting.
  Task<void> send(T item) {
    while (!closed_ && items_.size() >= capacity_)
      co_await senders_.wait();
    if (closed_)
      throw ChannelClosedError("send on a closed channel");
    items_.push_back(std::move(item));
    receivers_.notify_one();
  }

  /// Removes and returns the oldest item, waiting while the channel is empty and open.
  /// Returns `std::nullopt` once the channel is closed and drained.
  /// @throws CancelledError if the receiving coroutine is cancelled while waiting.
  Task<std::optional<T>> receive() {
    while (!closed_ && items_.empty())
      co_await receivers_.wait();
    if (items_.empty())
      co_return std::nullopt;
    std::optional<T> item{std::move(items_.front())};
    items_.pop_front();
    senders_.notify_one();
    co_return item;
  }

  /// Ends the stream: waiting senders fail with ChannelClosedError, receivers drain the buffer and
  /// then get `std::nullopt`. Closing twice is harmless.
  void close() {
    closed_ = true;
    senders_.notify_all();
    receivers_.notify_all();
  }

  // -- properties -------------------------------------------------------------

  /// Whether close() was called.
  bool closed() const noexcept {
    return closed_;
  }

  /// Items buffered now.
  std::size_t size() const noexcept {
    return items_.size();
  }

  /// The most items the channel buffers.
  std::size_t capacity() const noexcept {
    return capacity_;
  }

private:
  std::size_t capacity_;
  bool closed_ = false;
  std::deque<T> items_;
  detail::WaitQueue senders_;
  detail::WaitQueue receivers_;
};

} // namespace chorus
