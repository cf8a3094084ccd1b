// OrderedActor: the actor class chorus's actors are, and StatefulActor<State> its stateful form.
//
// CAF's mailbox guarantees that what a sender wrote before enqueueing a message happens before the
// receiver handles it, but CAF is not built with ThreadSanitizer, so under it every message would
// look like a data race. Built with ThreadSanitizer, OrderedActor tells it about that ordering
// (release when it is launched, on each enqueue and after each message and run, acquire when it runs
// and before each message is handled); otherwise it is caf::event_based_actor itself. What CAF
// orders by its reference counts (an actor's destruction) is left to scripts/tsan.supp.
// Include only from runtime/ and actors/: it spells CAF types.
#pragma once

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHORUS_THREAD_SANITIZER 1
#endif
#endif

#ifdef CHORUS_THREAD_SANITIZER
extern "C" void __tsan_acquire(void* address);
extern "C" void __tsan_release(void* address);
#endif

namespace chorus {

#ifdef CHORUS_THREAD_SANITIZER

class OrderedActor : public caf::event_based_actor {
public:
  using caf::event_based_actor::consume;
  using caf::event_based_actor::enqueue;
  using caf::event_based_actor::event_based_actor;

  void launch(caf::execution_unit* unit, bool lazy, bool hide) override {
    __tsan_release(this); // what the spawning thread wrote (the state, the captured arguments)
    caf::event_based_actor::launch(unit, lazy, hide);
  }

  void enqueue(caf::mailbox_element_ptr message, caf::execution_unit* unit) override {
    __tsan_release(this);
    caf::event_based_actor::enqueue(std::move(message), unit);
  }

  caf::invoke_message_result consume(caf::mailbox_element& message) override {
    __tsan_acquire(this); // a run handles the messages that arrive while it lasts, too
    auto result = caf::event_based_actor::consume(message);
    // Released here as well as at the end of resume(): once CAF has handled the last message it
    // may unblock the mailbox, and a sender can then schedule the next run on another thread
    // before this run's resume() has returned.
    __tsan_release(this);
    return result;
  }

  resume_result resume(caf::execution_unit* unit, size_t max_throughput) override {
    __tsan_acquire(this);
    auto result = caf::event_based_actor::resume(unit, max_throughput);
    __tsan_release(this); // the next run, maybe on another thread, follows this one
    return result;
  }
};

#else

using OrderedActor = caf::event_based_actor;

#endif

template <class State>
using StatefulActor = caf::stateful_actor<State, OrderedActor>;

} // namespace chorus
