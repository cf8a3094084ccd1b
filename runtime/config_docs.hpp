// The comments above config fields, read from a recipe's source so that `--schema` can give them as
// the fields' descriptions. A C++ program cannot see its own comments, so the build reads them:
// chorus_add_recipe (cmake/ChorusRecipe.cmake) runs chorus-config-docs over the recipe's sources,
// which writes a source file registering them (detail::ConfigDocs in chorus/config.hpp).
//
//   struct MyConfig {
//     // Adam's learning rate.        <- the description of `lr`
//     double lr = 1e-5;
//     int epochs = 1; // Passes over the data.   <- a comment after the field, when none is above
//   };
//   CHORUS_CONFIG(MyConfig, lr, epochs)
//
// A light C++ scanner, not a parser: it knows comments, string and character literals (raw ones too),
// preprocessor lines and bracket nesting, which is all a config struct needs. Never throws on odd
// input: what it cannot read has no description.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace chorus::config_docs {

/// One field's comment, as one line of text (comment markers and line breaks removed).
struct FieldDoc {
  std::string field;
  std::string text;
};

/// The documented fields of one config struct.
struct ConfigDoc {
  std::string type;
  std::vector<FieldDoc> fields;
};

/// Every struct of `source` named by a CHORUS_CONFIG(Type, ...) in it, with its commented fields.
std::vector<ConfigDoc> extract(std::string_view source);

/// A C++ source file that registers `docs` (detail::ConfigDocs), for the recipe program to link.
/// `origin` names where they came from, in its header comment.
std::string generate_source(const std::vector<ConfigDoc>& docs, std::string_view origin);

} // namespace chorus::config_docs
