// Declaring the message types that actors exchange. Include only from runtime/ and actors/: it spells
// CAF types.
//
//   struct GenerateRequest { using Reply = GenerateReply; std::string prompt; int max_tokens = 64; };
//   CHORUS_INSPECT(GenerateRequest, prompt, max_tokens)
//
// and list the type once in a CAF type-id block (CAF_BEGIN_TYPE_ID_BLOCK ... CAF_ADD_TYPE_ID ...)
// registered with CHORUS_MESSAGE_TYPES, so that it can cross processes.
#pragma once

#include <chorus/detail/pp.hpp>

#include <caf/meta/type_name.hpp>

#define CHORUS_INSPECT_FIELD(field) , x.field

/// Defines CAF's `inspect` for message type `Type` over the listed fields, in order: what CAF needs
/// to serialise the type across processes and to print it. Write it in the type's namespace.
#define CHORUS_INSPECT(Type, ...)                                                                  \
  template <class Inspector>                                                                       \
  typename Inspector::result_type inspect(Inspector& f, Type& x) {                                 \
    return f(caf::meta::type_name(#Type) CHORUS_PP_FOR_EACH(CHORUS_INSPECT_FIELD, __VA_ARGS__));   \
  }
