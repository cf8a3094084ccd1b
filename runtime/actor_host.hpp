// Writing actors that coroutines ask: request handlers that never take their actor down.
// Include only from runtime/ and actors/: it spells CAF types.
#pragma once

#include "runtime/actor_errors.hpp"
#include "runtime/ordered_actor.hpp"

#include <caf/detail/type_list.hpp>
#include <caf/detail/type_traits.hpp>
#include <caf/result.hpp>

#include <exception>
#include <type_traits>

namespace chorus {

/// Wraps a request handler `Reply f(const Request&)` for a CAF behavior. If `f` throws, the asking
/// coroutine gets an ActorError carrying the exception's message (and the actor's and request's
/// names, added on the asking side), and the actor keeps serving other requests: CAF's default would
/// terminate the actor and fail every request queued behind it.
template <class F>
auto guarded(F f) {
  using trait = caf::detail::get_callable_trait<F>;
  using args = typename trait::arg_types;
  static_assert(caf::detail::tl_size<args>::value == 1, "a request handler takes exactly the request");
  using Request = std::decay_t<caf::detail::tl_head_t<args>>;
  using Reply = typename trait::result_type;
  return [f = std::move(f)](Request& request) mutable -> caf::result<Reply> {
    try {
      if constexpr (std::is_void_v<Reply>) {
        f(request);
        return {};
      } else {
        return f(request);
      }
    } catch (const std::exception& error) {
      return make_handler_error(error.what());
    } catch (...) {
      return make_handler_error("unknown exception");
    }
  };
}

} // namespace chorus
