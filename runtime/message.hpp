// Declaring the message types that actors exchange. Include only from runtime/ and actors/: it spells
// CAF types. Valid C++17 as well, for actor code that includes LibTorch (built as C++17).
//
//   struct GenerateRequest { using Reply = GenerateReply; std::string prompt; int max_tokens = 64; };
//   CHORUS_INSPECT(GenerateRequest, prompt, max_tokens)
//
// and list the type once in a CAF type-id block (CAF_BEGIN_TYPE_ID_BLOCK ... CAF_ADD_TYPE_ID ...)
// registered with CHORUS_MESSAGE_TYPES, so that it can cross processes.
#pragma once

#include <chorus/detail/pp.hpp>

#include <caf/actor_system_config.hpp>
#include <caf/meta/type_name.hpp>

#include <functional>

namespace chorus {

/// Adds a CAF type-id block's message types to every Runtime created afterwards. Call it from
/// the translation unit that implements the actors using those types (see CHORUS_MESSAGE_TYPES).
void add_message_types(std::function<void(caf::actor_system_config&)> installer);

} // namespace chorus

/// Registers the CAF type-id block `block` (declared with CAF_BEGIN_TYPE_ID_BLOCK) with every Runtime.
/// Put it in a .cpp file that is linked for certain, e.g. the one implementing the actors.
#define CHORUS_MESSAGE_TYPES(block)                                                                \
  [[maybe_unused]] static const bool chorus_message_types_##block = [] {                           \
    ::chorus::add_message_types(                                                                   \
      [](caf::actor_system_config& config) { config.add_message_types<caf::id_block::block>(); }); \
    return true;                                                                                   \
  }()

#define CHORUS_INSPECT_FIELD(field) , x.field

/// Defines CAF's `inspect` for message type `Type` over the listed fields, in order: what CAF needs
/// to serialise the type across processes and to print it. Write it in the type's namespace.
#define CHORUS_INSPECT(Type, ...)                                                                \
  template <class Inspector>                                                                     \
  typename Inspector::result_type inspect(Inspector& f, Type& x) {                               \
    return f(caf::meta::type_name(#Type) CHORUS_PP_FOR_EACH(CHORUS_INSPECT_FIELD, __VA_ARGS__)); \
  }
