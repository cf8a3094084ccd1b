// Reading a recipe run's outputs back in tests: its metrics without the figures that depend on the
// clock, and its saved weights.
#pragma once

#include <chorus/config.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace chorus::test {

/// metrics.jsonl's lines without what depends on the clock rather than on the numbers.
inline std::vector<Json> read_metrics(const std::filesystem::path& file) {
  std::vector<Json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    auto row = Json::parse(line);
    for (const char* key : {"time_s", "tokens_per_s", "step_s", "overlap"})
      row.erase(key);
    for (auto it = row.begin(); it != row.end();)
      it = it.key().rfind("busy_s/", 0) == 0 ? row.erase(it) : std::next(it);
    lines.push_back(std::move(row));
  }
  return lines;
}

/// Whether two metrics lines hold the same keys and values, numbers equal within `relative` (the
/// sampler's log-probs, and so losses, vary in their last bits with how requests were batched).
/// Returns "" if so, else the first difference.
inline std::string metrics_difference(const Json& a, const Json& b, double relative = 1e-5) {
  if (a.size() != b.size())
    return "different keys: " + a.dump() + " vs " + b.dump();
  for (const auto& [key, value] : a.items()) {
    if (!b.contains(key))
      return "key " + key + " missing";
    const auto& other = b[key];
    if (value.is_number() && other.is_number()) {
      auto x = value.get<double>(), y = other.get<double>();
      if (std::abs(x - y) > relative * std::max(1.0, std::abs(x)))
        return key + ": " + value.dump() + " vs " + other.dump();
    } else if (value != other) {
      return key + ": " + value.dump() + " vs " + other.dump();
    }
  }
  return "";
}

/// The largest difference between two safetensors files' F32 tensors, relative to max(1, |a|);
/// infinity if they hold other tensors, shapes or dtypes.
inline double max_weight_difference(const std::filesystem::path& a, const std::filesystem::path& b) {
  auto read = [](const std::filesystem::path& file, Json& header) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::uint64_t length = 0;
    std::memcpy(&length, bytes.data(), sizeof(length));
    header = Json::parse(bytes.substr(8, length));
    header.erase("__metadata__");
    return bytes.substr(8 + length);
  };
  Json header_a, header_b;
  auto data_a = read(a, header_a), data_b = read(b, header_b);
  if (header_a != header_b)
    return INFINITY;
  double worst = 0;
  for (const auto& [name, entry] : header_a.items()) {
    if (entry["dtype"] != "F32")
      return INFINITY;
    auto begin = entry["data_offsets"][0].get<std::size_t>(), end = entry["data_offsets"][1].get<std::size_t>();
    for (auto at = begin; at < end; at += 4) {
      float x = 0, y = 0;
      std::memcpy(&x, data_a.data() + at, 4);
      std::memcpy(&y, data_b.data() + at, 4);
      worst = std::max(worst, std::abs(double(x) - double(y)) / std::max(1.0, std::abs(double(x))));
    }
  }
  return worst;
}

} // namespace chorus::test
