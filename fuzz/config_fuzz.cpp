// Fuzzes the config loader: a JSON config file, then (after a NUL byte) one `--set` override per
// line, into a struct with every kind of field. Any input either loads or fails with a ConfigError;
// a loaded config, written back as JSON, loads again to the same config.
#include <chorus/config.hpp>
#include <chorus/dataset.hpp>
#include <chorus/errors.hpp>
#include <chorus/model.hpp>

#include "fuzz/input_file.hpp"

#include <cstring>
#include <stdexcept>

namespace fuzz_config {

struct Sampling {
  double temperature = 1.0;
  std::int64_t max_tokens = 256;
  std::vector<std::string> stop;
};
CHORUS_CONFIG(Sampling, temperature, max_tokens, stop)

struct Recipe {
  chorus::Required<std::string> name;
  chorus::ModelRef model;
  chorus::Dataset<chorus::Prompt> prompts;
  int steps = 10;
  double lr = 1e-5;
  bool shuffle = true;
  std::optional<std::uint64_t> seed;
  std::vector<double> weights{0.2, 0.8};
  Sampling sampling;
};
CHORUS_CONFIG(Recipe, name, model, prompts, steps, lr, shuffle, seed, weights, sampling)

} // namespace fuzz_config

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* nul = static_cast<const std::uint8_t*>(std::memchr(data, 0, size));
  auto json_size = nul ? static_cast<std::size_t>(nul - data) : size;
  std::vector<std::string> overrides;
  if (nul) {
    std::string rest(reinterpret_cast<const char*>(nul + 1), size - json_size - 1);
    for (std::size_t start = 0; start <= rest.size();) {
      auto end = std::min(rest.find('\n', start), rest.size());
      overrides.push_back(rest.substr(start, end - start));
      start = end + 1;
    }
  }
  auto file = chorus::fuzz::input_file("config.json", data, json_size);
  fuzz_config::Recipe config;
  try {
    config = chorus::load_config<fuzz_config::Recipe>(file, overrides);
  } catch (const chorus::ConfigError&) {
    return 0;
  }
  auto written = chorus::config_to_json(config).dump();
  auto again_file =
    chorus::fuzz::input_file("again.json", reinterpret_cast<const std::uint8_t*>(written.data()), written.size());
  auto again = chorus::load_config<fuzz_config::Recipe>(again_file, {}); // must not throw
  if (chorus::config_to_json(again) != chorus::config_to_json(config))
    throw std::logic_error("a loaded config written back as JSON loads differently: " + written);
  return 0;
}
