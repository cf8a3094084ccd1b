// Bridge: carries actor requests from coroutines to CAF actors and their replies back.
//
// A request goes straight into the target's mailbox with the bridge's companion actor as sender;
// the reply is delivered by the replier's thread into the companion, which looks up the pending
// request and posts its completion to the awaiting coroutine's executor. So a round trip costs the
// same two thread hand-offs as an actor-to-actor request, and never resumes a coroutine on a CAF
// thread.
//
// Every pending request completes exactly once: with the reply, an error reply, its deadline, the
// target's termination (the bridge monitors every actor it sends to), cancellation of the awaiting
// coroutine, or `close()` at shutdown. Whoever removes it from the pending table completes it.
#pragma once

#include <asio/steady_timer.hpp>
#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/message.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>

namespace chorus {

class Bridge;

/// The result of a request: the reply message or the exception to throw in the awaiting coroutine.
using AskOutcome = std::variant<caf::message, std::exception_ptr>;

/// A request that went out and has not been completed yet. Subclassed per completion handler type.
class PendingAsk : public std::enable_shared_from_this<PendingAsk> {
public:
  // -- constructors and destructors -------------------------------------------

  PendingAsk(std::shared_ptr<const std::string> actor, std::string request, const std::string& doing,
             asio::steady_timer timer)
    : actor_(std::move(actor)), request_(std::move(request)), doing_(&doing), deadline_(std::move(timer)) {
    // nop
  }

  virtual ~PendingAsk() = default;

  // -- completion -------------------------------------------------------------

  /// Hands `outcome` to the awaiting coroutine's executor. Called exactly once, on any thread. Takes
  /// the caller's reference, so that the request is always destroyed on the executor: it owns a
  /// timer of that executor and the coroutine's handler.
  static void complete(std::shared_ptr<PendingAsk> ask, AskOutcome outcome) {
    auto* self = ask.get();
    self->post(std::move(ask), std::move(outcome));
  }

  // -- properties -------------------------------------------------------------

  const std::string& actor() const noexcept {
    return *actor_;
  }

  /// The request's type name, for logs.
  const std::string& request() const noexcept {
    return request_;
  }

  /// What the actor does for the request, in words (request_doing), for error messages.
  const std::string& doing() const noexcept {
    return *doing_;
  }

  /// The actor as error messages name it (describe_actor).
  std::string who() const;

protected:
  friend class Bridge;

  /// Posts the completion to the executor; `self` is this request, to be kept alive by the post.
  virtual void post(std::shared_ptr<PendingAsk> self, AskOutcome outcome) = 0;

  std::shared_ptr<const std::string> actor_;
  std::string request_;
  const std::string* doing_;    // static storage: request_doing
  asio::steady_timer deadline_; // touched on the coroutine's executor only
  caf::actor_addr target_;
  std::uint64_t id_ = 0;
};

class Bridge {
public:
  // -- constructors and destructors -------------------------------------------

  explicit Bridge(caf::actor_system& system);

  /// Completes whatever is still pending with ActorDownError and detaches from the actor system.
  ~Bridge();

  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // -- requests ---------------------------------------------------------------

  /// Sends `content` to `target` as a request. Must be called on the executor of `ask`'s completion
  /// handler (it arms the deadline timer there). Returns the request's id, for `cancel`.
  std::uint64_t send(std::shared_ptr<PendingAsk> ask, const caf::strong_actor_ptr& target, caf::message content,
                     std::chrono::nanoseconds timeout);

  /// Completes request `id` with CancelledError if it is still pending.
  void cancel(std::uint64_t id);

  /// Completes every pending request with ActorDownError("... shutting down") and refuses new ones.
  void close();

  /// The number of requests awaiting completion.
  std::size_t pending() const;

  caf::actor_system& system() noexcept {
    return system_;
  }

private:
  // Runs on whichever thread delivers a message to the companion: a reply, an error or a down_msg.
  void on_message(caf::mailbox_element_ptr element);

  void expire(std::uint64_t id, std::chrono::nanoseconds timeout);

  // Removes request `id` from the table; null if it was completed already. Needs mutex_.
  std::shared_ptr<PendingAsk> take_locked(std::uint64_t id);

  std::exception_ptr to_exception(const caf::error& err, const PendingAsk& ask) const;

  caf::actor_system& system_;
  caf::strong_actor_ptr companion_;
  std::atomic<std::uint64_t> next_id_{1};
  // Guards the table, and is held while a request is taken and completed, so that once close()
  // returns no thread posts to an executor any more (the executor may be destroyed next).
  mutable std::mutex mutex_;
  bool closed_ = false;
  std::unordered_map<std::uint64_t, std::shared_ptr<PendingAsk>> pending_;
  std::unordered_set<caf::actor_addr> monitored_;
};

} // namespace chorus
