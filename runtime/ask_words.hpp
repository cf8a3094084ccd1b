// How the errors of actor requests are worded for people: the actor as the model it serves
// ("model 'sft' (trainer)" for the actor named "sft/trainer") and the request as what the actor was
// doing ("loading its model"), never as a C++ type name. The type name stays available to logs
// (ActorError::request()).
//
//   struct SaveRequest { static constexpr const char* kDoing = "saving the model"; ... };
//   request_doing<SaveRequest>()      // "saving the model"
//   request_doing<FailRequest>()      // no kDoing: "handling a fail request", from the type name
#pragma once

#include <caf/type_id.hpp>

#include <string>
#include <string_view>

namespace chorus::detail {

/// "model 'NAME' (ROLE)" for an actor named "NAME/ROLE" (a model's actors), else "actor 'NAME'"; a
/// name ending in "@NODE" (an actor on a cluster node) adds "on node 'NODE'".
std::string describe_actor(std::string_view name);

/// "handling a fail request" for the type name "chorus::test::FailRequest": the words of the type's
/// own name, without its namespaces.
std::string doing_from_type_name(std::string_view type_name);

/// What an actor does for a `Request`, as a gerund phrase: `Request::kDoing` where the type declares
/// it, else words made of its type name.
template <class Request>
const std::string& request_doing() {
  if constexpr (requires { Request::kDoing; }) {
    static const std::string doing(Request::kDoing);
    return doing;
  } else {
    static const std::string doing = doing_from_type_name(caf::type_name<Request>::value);
    return doing;
  }
}

} // namespace chorus::detail
