// The non-template half of config loading: reading JSON files with line numbers, describing values,
// and the wording of every ConfigError.
#include <chorus/config.hpp>

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>

namespace chorus {

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string where(const ConfigLocation& at) {
  return at.key.empty() ? at.source + ": " : at.source + ": key '" + at.key + "': ";
}

} // namespace

namespace detail {

namespace {

// Field -> the comment above it, of one config struct.
using FieldDocs = std::map<std::string, std::string, std::less<>>;

// Config struct -> its FieldDocs (detail::ConfigDocs). Filled before main runs.
std::map<std::string, FieldDocs, std::less<>>& registered_docs() {
  static std::map<std::string, FieldDocs, std::less<>> docs;
  return docs;
}

} // namespace

ConfigDocs::ConfigDocs(std::string_view type,
                       std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  auto& docs = registered_docs()[std::string(type)];
  for (const auto& [field, text] : fields)
    docs.emplace(std::string(field), std::string(text));
}

std::string config_field_doc(std::string_view type, std::string_view field) {
  const auto& docs = registered_docs();
  auto section = docs.find(type);
  if (section == docs.end())
    return {};
  auto found = section->second.find(field);
  return found == section->second.end() ? std::string() : found->second;
}

} // namespace detail

ConfigLocation ConfigLocation::child(std::string_view name) const {
  if (key.empty())
    return {source, std::string(name)};
  if (!name.empty() && name.front() == '[')
    return {source, key + std::string(name)};
  return {source, key + "." + std::string(name)};
}

void ConfigLocation::fail(std::string_view expected, const Json& got) const {
  throw ConfigError(where(*this) + "expected " + std::string(expected) + ", got " + detail::describe_json(got));
}

void ConfigLocation::fail(std::string_view message) const {
  throw ConfigError(where(*this) + std::string(message));
}

void ConfigLocation::fail_unknown(const std::vector<std::string>& known) const {
  auto leaf = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
  std::string message = where(*this) + "unknown key";
  const std::string* closest = nullptr;
  std::size_t best = 3; // suggest only near misses
  for (const auto& name : known) {
    auto distance = edit_distance(leaf, name);
    if (distance < best) {
      best = distance;
      closest = &name;
    }
  }
  if (closest)
    message += " (did you mean '" + *closest + "'?)";
  message += "; known keys here:";
  for (const auto& name : known)
    message += " " + name;
  throw ConfigError(message);
}

namespace detail {

std::string describe_json(const Json& value) {
  auto text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 60)
    text = text.substr(0, 57) + "...";
  switch (value.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "bool " + text;
    case Json::value_t::string: return "string " + text;
    case Json::value_t::number_float: return "float " + text;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "int " + text;
    case Json::value_t::array: return "list " + text;
    case Json::value_t::object: return "section " + text;
    default: return text;
  }
}

Json parse_json_text(std::string_view text, const ConfigLocation& at, std::string_view expected) {
  auto value = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded())
    at.fail(expected, Json(std::string(text)));
  return value;
}

Json read_json_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw ConfigError(file.string() + ": cannot open the config file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto text = buffer.str();
  // nlohmann reports a byte offset: the error names line:column, as editors show it.
  auto invalid = [&](std::size_t offset, const std::string& detail) {
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return ConfigError(file.string() + ":" + std::to_string(line) + ":" + std::to_string(column)
                       + ": invalid JSON: " + detail);
  };
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    auto detail = what.find("syntax error");
    throw invalid(e.byte == 0 ? 0 : e.byte - 1, detail == std::string::npos ? what : what.substr(detail));
  } catch (const Json::out_of_range& e) {
    // A number too large for a double ("1e999"): nlohmann names the number but not where it is.
    std::string what = e.what();
    auto quote = what.find('\'');
    auto number = quote == std::string::npos ? std::string() : what.substr(quote + 1, what.rfind('\'') - quote - 1);
    auto at = number.empty() ? std::string::npos : text.find(number);
    throw invalid(at == std::string::npos ? 0 : at, what.substr(what.find(']') + 2));
  } catch (const Json::exception& e) {
    throw invalid(0, e.what());
  }
}

namespace {

// Whether `text` is well-formed UTF-8 (what JSON, and so config.json, can hold).
bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    auto byte = static_cast<unsigned char>(text[i]);
    std::size_t length = byte < 0x80 ? 1
      : (byte >> 5) == 0x6           ? 2
      : (byte >> 4) == 0xe           ? 3
      : (byte >> 3) == 0x1e          ? 4
                                     : 0;
    if (length == 0 || i + length > text.size())
      return false;
    std::uint32_t code = length == 1 ? byte : byte & (0x7f >> length);
    for (std::size_t k = 1; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80)
        return false;
      code = (code << 6) | (next & 0x3f);
    }
    static constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < smallest[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
      return false; // overlong, beyond Unicode, or a surrogate
    i += length;
  }
  return true;
}

} // namespace

std::pair<std::vector<std::string>, std::string> split_override(std::string_view assignment) {
  if (!is_utf8(assignment))
    throw ConfigError("--set: the assignment is not valid UTF-8 (a config holds text as JSON does)");
  auto equals = assignment.find('=');
  if (equals == std::string_view::npos || equals == 0)
    throw ConfigError("--set " + std::string(assignment) + ": expected key=value, e.g. --set lr=1e-5");
  std::vector<std::string> path;
  auto key = assignment.substr(0, equals);
  while (true) {
    auto dot = key.find('.');
    auto segment = key.substr(0, dot);
    if (segment.empty())
      throw ConfigError("--set " + std::string(assignment) + ": empty segment in key '" + std::string(key) + "'");
    path.emplace_back(segment);
    if (dot == std::string_view::npos)
      break;
    key = key.substr(dot + 1);
  }
  return {std::move(path), std::string(assignment.substr(equals + 1))};
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i)
        widths.push_back(0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line = " ";
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += " " + row[i];
      if (i + 1 < row.size())
        line += std::string(widths[i] - row[i].size() + 1, ' ');
    }
    out += line + "\n";
  }
  return out;
}

} // namespace detail

} // namespace chorus
