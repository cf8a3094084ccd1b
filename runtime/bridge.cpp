// The CAF side of the coroutine <-> actor bridge (see bridge.hpp). Never resumes a coroutine here:
// completions are posted to the awaiting coroutine's executor by PendingAsk::complete.
#include "runtime/bridge.hpp"

#include <chorus/errors.hpp>

#include "runtime/actor_errors.hpp"
#include "runtime/ask_words.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_companion.hpp>
#include <caf/default_attachable.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/sec.hpp>
#include <caf/system_messages.hpp>

#include <cstdio>

namespace chorus {

namespace {

std::string describe_duration(std::chrono::nanoseconds d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g s", std::chrono::duration<double>(d).count());
  return text;
}

} // namespace

std::string PendingAsk::who() const {
  return detail::describe_actor(*actor_);
}

// -- constructors and destructors ---------------------------------------------

Bridge::Bridge(caf::actor_system& system) : system_(system) {
  auto companion = system.spawn<caf::actor_companion>();
  companion_ = caf::actor_cast<caf::strong_actor_ptr>(companion);
  auto* self = static_cast<caf::actor_companion*>(caf::actor_cast<caf::abstract_actor*>(companion));
  self->on_enqueue([this](caf::mailbox_element_ptr element) { on_message(std::move(element)); });
}

Bridge::~Bridge() {
  close();
  auto* self = static_cast<caf::actor_companion*>(caf::actor_cast<caf::abstract_actor*>(companion_));
  // What actor_companion::disconnect does; libcaf_core 0.17.6 declares it but does not export it.
  self->on_enqueue({});
  // No on_message starts after that; this orders the last one before the members' destruction in
  // a way ThreadSanitizer sees (CAF's own lock is not instrumented).
  {
    std::lock_guard<std::mutex> guard{mutex_};
  }
  self->cleanup(caf::make_error(caf::exit_reason::user_shutdown), nullptr);
}

// -- requests -----------------------------------------------------------------

std::uint64_t Bridge::send(std::shared_ptr<PendingAsk> ask, const caf::strong_actor_ptr& target, caf::message content,
                           std::chrono::nanoseconds timeout) {
  auto id = next_id_.fetch_add(1, std::memory_order_relaxed);
  ask->id_ = id;
  if (!target) {
    auto error = std::make_exception_ptr(ActorDownError(ask->actor(), ask->request(),
                                                        ask->who() + " could not be reached for " + ask->doing()
                                                          + ": it is gone (never spawned, or stopped)"));
    PendingAsk::complete(std::move(ask), error);
    return id;
  }
  ask->target_ = target->address();
  // Arm the deadline before the request is visible to other threads: only this thread touches it.
  ask->deadline_.expires_after(timeout);
  ask->deadline_.async_wait([this, id, timeout](const std::error_code& ec) {
    if (!ec)
      expire(id, timeout);
  });
  bool monitor = false;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (closed_) {
      auto error = std::make_exception_ptr(
        ActorDownError(ask->actor(), ask->request(),
                       ask->who() + " could not be reached for " + ask->doing() + ": the runtime is shutting down"));
      PendingAsk::complete(std::move(ask), error);
      return id;
    }
    monitor = monitored_.insert(ask->target_).second;
    pending_.emplace(id, std::move(ask));
  }
  // Monitor before sending, so a target that dies with our request in its mailbox always reports.
  if (monitor) {
    auto* actor = caf::actor_cast<caf::abstract_actor*>(target);
    actor->attach(caf::default_attachable::make_monitor(target->address(), companion_->get()->address()));
  }
  auto mid = caf::make_message_id(id);
  target->enqueue(caf::make_mailbox_element(companion_, mid, {}, std::move(content)), nullptr);
  return id;
}

void Bridge::cancel(std::uint64_t id) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (auto ask = take_locked(id)) {
    auto error =
      std::make_exception_ptr(CancelledError("cancelled before " + ask->who() + " finished " + ask->doing()));
    PendingAsk::complete(std::move(ask), error);
  }
}

void Bridge::expire(std::uint64_t id, std::chrono::nanoseconds timeout) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (auto ask = take_locked(id)) {
    auto error = std::make_exception_ptr(
      TimeoutError(ask->actor(), ask->request(),
                   ask->who() + " did not finish " + ask->doing() + " within " + describe_duration(timeout)));
    PendingAsk::complete(std::move(ask), error);
  }
}

void Bridge::close() {
  std::lock_guard<std::mutex> guard{mutex_};
  closed_ = true;
  for (auto& [id, ask] : pending_) {
    auto error = std::make_exception_ptr(
      ActorDownError(ask->actor(), ask->request(),
                     ask->who() + " had not finished " + ask->doing() + ": the runtime is shutting down"));
    PendingAsk::complete(std::move(ask), error);
  }
  pending_.clear();
}

std::size_t Bridge::pending() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return pending_.size();
}

std::shared_ptr<PendingAsk> Bridge::take_locked(std::uint64_t id) {
  auto i = pending_.find(id);
  if (i == pending_.end())
    return nullptr;
  auto ask = std::move(i->second);
  pending_.erase(i);
  return ask;
}

// -- the companion's mailbox --------------------------------------------------

void Bridge::on_message(caf::mailbox_element_ptr element) {
  if (!element)
    return;
  std::lock_guard<std::mutex> guard{mutex_};
  if (element->mid.is_response()) {
    auto ask = take_locked(element->mid.request_id().integer_value());
    if (!ask)
      return; // completed already: timed out, cancelled, failed by the target's death or shutdown
    auto reply = element->move_content_to_message();
    if (reply.match_elements<caf::error>()) {
      auto error = to_exception(reply.get_as<caf::error>(0), *ask);
      PendingAsk::complete(std::move(ask), error);
    } else {
      PendingAsk::complete(std::move(ask), std::move(reply));
    }
    return;
  }
  auto content = element->move_content_to_message();
  if (!content.match_elements<caf::down_msg>())
    return;
  const auto& down = content.get_as<caf::down_msg>(0);
  monitored_.erase(down.source);
  for (auto i = pending_.begin(); i != pending_.end();) {
    if (i->second->target_ != down.source) {
      ++i;
      continue;
    }
    auto ask = std::move(i->second);
    i = pending_.erase(i);
    auto error = std::make_exception_ptr(
      ActorDownError(ask->actor(), ask->request(),
                     ask->who() + " went down (" + system_.render(down.reason) + ") while " + ask->doing()));
    PendingAsk::complete(std::move(ask), error);
  }
}

std::exception_ptr Bridge::to_exception(const caf::error& err, const PendingAsk& ask) const {
  const auto& actor = ask.actor();
  const auto& request = ask.request();
  const auto who = ask.who();
  if (err.category() == kChorusErrorCategory) {
    auto what = handler_error_message(err);
    if (what.empty())
      what = system_.render(err);
    return std::make_exception_ptr(ActorError(actor, request, who + " failed while " + ask.doing() + ": " + what));
  }
  if (err == caf::sec::request_receiver_down)
    return std::make_exception_ptr(
      ActorDownError(actor, request, who + " could not be reached for " + ask.doing() + ": it is down"));
  if (err == caf::sec::request_timeout)
    return std::make_exception_ptr(TimeoutError(actor, request, who + " timed out while " + ask.doing()));
  if (err == caf::sec::unexpected_message)
    return std::make_exception_ptr(RemoteError(
      actor, request, who + " does not understand the request it got (" + ask.doing() + ", " + request + ")"));
  return std::make_exception_ptr(
    RemoteError(actor, request, who + " answered with an error while " + ask.doing() + ": " + system_.render(err)));
}

} // namespace chorus
