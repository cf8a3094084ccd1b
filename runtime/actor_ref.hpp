// ActorRef: a named handle on an actor that coroutines can `co_await ref.ask(request)` on.
// Include only from runtime/ and actors/: it spells CAF types.
#pragma once

#include <chorus/errors.hpp>
#include <chorus/task.hpp>

#include "runtime/ask_words.hpp"
#include "runtime/bridge.hpp"

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/make_message.hpp>
#include <caf/message_id.hpp>
#include <caf/type_id.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <type_traits>

namespace chorus {

/// The reply type of a request: every request struct names it as `using Reply = ...;` (`void` for a
/// request answered by an empty message).
template <class Request>
using reply_t = typename Request::Reply;

/// How long `ask` waits for a reply unless told otherwise.
inline constexpr std::chrono::milliseconds kDefaultAskTimeout = std::chrono::minutes(10);

namespace detail {

template <class Reply>
struct ask_signature_of {
  using type = void(std::exception_ptr, Reply);
};

template <>
struct ask_signature_of<void> {
  using type = void(std::exception_ptr);
};

template <class Reply>
using ask_signature = typename ask_signature_of<Reply>::type;

// The pending request of one `ask`, holding the awaiting coroutine's completion handler.
template <class Reply, class Handler>
class AskOp final : public PendingAsk {
public:
  AskOp(Handler handler, std::shared_ptr<const std::string> actor, std::string request, const std::string& doing)
    : PendingAsk(std::move(actor), std::move(request), doing,
                 asio::steady_timer{asio::get_associated_executor(handler)}),
      handler_(std::move(handler)), work_(asio::get_associated_executor(handler_)) {
    // nop
  }

  void start(Bridge& bridge, const caf::strong_actor_ptr& target, caf::message content,
             std::chrono::nanoseconds timeout) {
    auto self = std::static_pointer_cast<AskOp>(shared_from_this());
    slot_ = asio::get_associated_cancellation_slot(handler_);
    auto id = bridge.send(self, target, std::move(content), timeout);
    // The slot handler only names the request: if it fires after completion, cancel finds nothing.
    if (slot_.is_connected())
      slot_.assign([bridge = &bridge, id](asio::cancellation_type) { bridge->cancel(id); });
  }

private:
  void post(std::shared_ptr<PendingAsk> self, AskOutcome outcome) override {
    auto executor = work_.get_executor();
    asio::post(executor,
               [self = std::static_pointer_cast<AskOp>(std::move(self)), outcome = std::move(outcome)]() mutable {
                 self->resume(std::move(outcome));
               });
  }

  // Runs on the coroutine's executor: disarms the deadline and hands the outcome to the coroutine.
  void resume(AskOutcome outcome) {
    deadline_.cancel();
    if (slot_.is_connected())
      slot_.clear();
    auto handler = std::move(handler_);
    auto work = std::move(work_);
    if (auto* error = std::get_if<std::exception_ptr>(&outcome)) {
      if constexpr (std::is_void_v<Reply>)
        std::move(handler)(*error);
      else
        std::move(handler)(*error, Reply{});
      return;
    }
    auto& reply = std::get<caf::message>(outcome);
    if constexpr (std::is_void_v<Reply>) {
      if (reply.empty())
        return std::move(handler)(nullptr);
    } else {
      if (reply.match_elements<Reply>())
        return std::move(handler)(nullptr, std::move(reply.get_mutable_as<Reply>(0)));
    }
    auto wrong = std::make_exception_ptr(
      RemoteError(actor(), request(),
                  who() + " answered with an unexpected reply while " + doing() + ": " + caf::to_string(reply)));
    if constexpr (std::is_void_v<Reply>)
      std::move(handler)(wrong);
    else
      std::move(handler)(wrong, Reply{});
  }

  Handler handler_;
  asio::executor_work_guard<asio::associated_executor_t<Handler>> work_;
  asio::cancellation_slot slot_;
};

template <class Reply>
struct AskInitiation {
  Bridge* bridge;
  caf::strong_actor_ptr target;
  caf::message content;
  std::shared_ptr<const std::string> actor;
  const char* request;
  const std::string& doing;
  std::chrono::nanoseconds timeout;

  template <class Handler>
  void operator()(Handler&& handler) {
    using Op = AskOp<Reply, std::decay_t<Handler>>;
    auto op = std::make_shared<Op>(std::forward<Handler>(handler), actor, request, doing);
    if (!bridge) {
      auto gone = std::make_exception_ptr(
        ActorDownError(*actor, request,
                       op->who() + " could not be reached for " + doing + ": it is gone (never spawned, or stopped)"));
      PendingAsk::complete(std::move(op), std::move(gone));
      return;
    }
    op->start(*bridge, target, std::move(content), timeout);
  }
};

} // namespace detail

/// A cheap, copyable handle on an actor, carrying the actor's name for error messages.
/// `Interface` is the CAF handle type: `caf::actor` or a `caf::typed_actor<...>`.
///
/// An ActorRef does not keep its actor alive: the Runtime that spawned (or adopted) the actor owns
/// it until shutdown. So a handle that outlives the runtime cannot stall CAF 0.17's shutdown, which
/// waits for every detached actor to be destroyed; asking through it fails with ActorDownError.
template <class Interface = caf::actor>
class ActorRef {
public:
  // -- constructors -----------------------------------------------------------

  ActorRef() = default;

  ActorRef(Bridge& bridge, Interface handle, std::string name, std::chrono::nanoseconds timeout = kDefaultAskTimeout)
    : bridge_(&bridge), actor_(caf::actor_cast<caf::weak_actor_ptr>(handle)),
      name_(std::make_shared<const std::string>(std::move(name))), timeout_(timeout) {
    // nop
  }

  // -- requests ---------------------------------------------------------------

  /// Sends `request` and suspends the calling coroutine until the reply arrives; resumes it on the
  /// coroutine's own executor. The request type must be registered in a CAF type-id block and
  /// declare `using Reply = ...;`.
  /// @throws TimeoutError if no reply arrives within `timeout`.
  /// @throws ActorDownError if the actor is dead or dies before replying.
  /// @throws ActorError if the actor's handler threw (the actor keeps serving).
  /// @throws RemoteError if the actor or the network answered with an error instead.
  /// @throws CancelledError if the awaiting coroutine is cancelled first.
  template <class Request>
  Task<reply_t<Request>> ask(Request request, std::chrono::nanoseconds timeout) const {
    using Reply = reply_t<Request>;
    // What crosses processes must be in a type-id block: refused here, not as a lost message later.
    static_assert(caf::has_type_id<Request>::value,
                  "a request type must be listed in a CAF type-id block (CAF_ADD_TYPE_ID) to be sent");
    static_assert(std::is_void_v<Reply> || caf::has_type_id<Reply>::value,
                  "a reply type must be listed in a CAF type-id block (CAF_ADD_TYPE_ID) to be sent");
    detail::AskInitiation<Reply> initiation{bridge_,
                                            actor_.lock(),
                                            caf::make_message(std::move(request)),
                                            name_,
                                            caf::type_name<Request>::value,
                                            detail::request_doing<Request>(),
                                            timeout};
    return asio::async_initiate<const asio::use_awaitable_t<>&, detail::ask_signature<Reply>>(std::move(initiation),
                                                                                              asio::use_awaitable);
  }

  /// `ask` with this handle's default timeout.
  template <class Request>
  Task<reply_t<Request>> ask(Request request) const {
    return ask(std::move(request), timeout_);
  }

  /// Sends `message` without waiting for (or expecting) a reply; nothing happens if the actor is gone.
  template <class Message>
  void tell(Message message) const {
    static_assert(caf::has_type_id<Message>::value,
                  "a message type must be listed in a CAF type-id block (CAF_ADD_TYPE_ID) to be sent");
    if (auto target = actor_.lock())
      target->enqueue(nullptr, caf::make_message_id(), caf::make_message(std::move(message)), nullptr);
  }

  // -- properties -------------------------------------------------------------

  const std::string& name() const noexcept {
    return *name_;
  }

  /// The actor's handle, or an invalid one once the actor is gone.
  Interface handle() const {
    return caf::actor_cast<Interface>(actor_.lock());
  }

  std::chrono::nanoseconds timeout() const noexcept {
    return timeout_;
  }

  /// A copy of this handle whose asks wait at most `timeout` by default.
  ActorRef with_timeout(std::chrono::nanoseconds timeout) const {
    auto copy = *this;
    copy.timeout_ = timeout;
    return copy;
  }

private:
  Bridge* bridge_ = nullptr;
  caf::weak_actor_ptr actor_;
  std::shared_ptr<const std::string> name_ = std::make_shared<const std::string>("<unnamed>");
  std::chrono::nanoseconds timeout_ = kDefaultAskTimeout;
};

} // namespace chorus
