// The wording of actor requests in error messages (runtime/ask_words.hpp).
#include "runtime/ask_words.hpp"

#include <cctype>

namespace chorus::detail {

std::string describe_actor(std::string_view name) {
  std::string node;
  if (auto at = name.rfind('@'); at != std::string_view::npos && at > 0 && at + 1 < name.size()) {
    node = " on node '" + std::string(name.substr(at + 1)) + "'";
    name = name.substr(0, at);
  }
  auto slash = name.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == name.size())
    return "actor '" + std::string(name) + "'" + node;
  return "model '" + std::string(name.substr(0, slash)) + "' (" + std::string(name.substr(slash + 1)) + node + ")";
}

std::string doing_from_type_name(std::string_view type_name) {
  if (auto colons = type_name.rfind("::"); colons != std::string_view::npos)
    type_name.remove_prefix(colons + 2);
  std::string words;
  for (std::size_t i = 0; i < type_name.size(); ++i) {
    auto c = static_cast<unsigned char>(type_name[i]);
    bool word_starts = std::isupper(c) && i > 0
      && (std::islower(static_cast<unsigned char>(type_name[i - 1]))
          || (i + 1 < type_name.size() && std::islower(static_cast<unsigned char>(type_name[i + 1]))));
    if (word_starts || (c == '_' && !words.empty())) {
      if (words.back() != ' ')
        words += ' ';
      if (c == '_')
        continue;
    }
    words += static_cast<char>(std::tolower(c));
  }
  if (words.empty())
    return "handling a request";
  bool vowel = std::string_view("aeiou").find(words.front()) != std::string_view::npos;
  return std::string("handling ") + (vowel ? "an " : "a ") + words;
}

} // namespace chorus::detail
