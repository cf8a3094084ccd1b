#include "serve/generation_call.hpp"

#include "runtime/actor_errors.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <atomic>

// The message types are registered by actors/policy_actor.cpp, which every program that serves links.

namespace chorus::serve {

namespace {

// GenerateRequest ids name requests for CancelGeneration: unique within this process.
std::uint64_t next_request_id() {
  static std::atomic<std::uint64_t> counter{1};
  return counter.fetch_add(1);
}

} // namespace

void GenerationCall::Shared::push(Event event) {
  {
    std::lock_guard lock(mutex);
    events.push_back(std::move(event));
  }
  ready.notify_one();
}

GenerationCall::GenerationCall(caf::actor_system& system, caf::actor policy,
                               std::vector<actors::GenerateRequest> requests, bool stream,
                               std::chrono::milliseconds timeout)
  : policy_(std::move(policy)), done_(requests.size(), false), remaining_(requests.size()),
    shared_(std::make_shared<Shared>()) {
  for (std::size_t choice = 0; choice < requests.size(); ++choice) {
    auto& request = requests[choice];
    request.id = next_request_id();
    ids_.push_back(request.id);
    system.spawn([shared = shared_, policy = policy_, request = std::move(request), choice, stream,
                  timeout](caf::event_based_actor* self) mutable -> caf::behavior {
      if (stream)
        request.stream_to = caf::actor_cast<caf::actor>(self);
      // The pieces and the reply come from the same actor, so they arrive in the order it sent them.
      self->request(policy, timeout, std::move(request))
        .then(
          [self, shared, choice](Generation& generation) {
            shared->push({Event::Kind::finished, choice, {}, {}, std::move(generation)});
            self->quit();
          },
          [self, shared, choice](caf::error& error) {
            auto message = handler_error_message(error);
            bool bad_request = error.category() == kChorusErrorCategory
              && error.code() == static_cast<std::uint8_t>(ActorFault::bad_request);
            if (message.empty())
              message = self->system().render(error);
            shared->push({Event::Kind::failed, choice, std::move(message), {}, {}, bad_request});
            self->quit();
          });
      return {[shared, choice](actors::GenerationDelta& delta) {
        shared->push({Event::Kind::piece, choice, std::move(delta.text), std::move(delta.logprobs), {}});
      }};
    });
  }
}

GenerationCall::~GenerationCall() {
  if (remaining_ > 0)
    cancel();
}

void GenerationCall::cancel() {
  for (std::size_t choice = 0; choice < ids_.size(); ++choice)
    if (!done_[choice])
      caf::anon_send(policy_, actors::CancelGeneration{ids_[choice]});
}

std::optional<GenerationCall::Event> GenerationCall::next() {
  if (remaining_ == 0)
    return std::nullopt;
  std::unique_lock lock(shared_->mutex);
  shared_->ready.wait(lock, [this] { return !shared_->events.empty(); });
  auto event = std::move(shared_->events.front());
  shared_->events.pop_front();
  if (event.kind != Event::Kind::piece) {
    done_[event.choice] = true;
    --remaining_;
  }
  return event;
}

} // namespace chorus::serve
