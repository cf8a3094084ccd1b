// Reading config.json's keys: typed readers that name the file and key in their errors, the rotary
// settings every family shares, and the readers of each family's own keys (config_families.cpp).
// Internal to ModelConfig::from_json and to_json.
#pragma once

#include "models/model_config.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace chorus::models::config_reading {

using nlohmann::json;

/// @throws CheckpointError "<file>: key '<key>': <what>".
[[noreturn]] void fail(const std::filesystem::path& file, const std::string& key, const std::string& what);

/// The integer at `key`; `fallback` when it is absent or null (an error without one).
std::int64_t read_int(const json& object, const std::string& key, const std::filesystem::path& file,
                      std::optional<std::int64_t> fallback = std::nullopt);
double read_number(const json& object, const std::string& key, const std::filesystem::path& file, double fallback);
bool read_bool(const json& object, const std::string& key, const std::filesystem::path& file, bool fallback);

/// The rotary settings: transformers 5 writes them as one `rope_parameters` object (rope_theta with
/// the scaling keys), earlier versions as `rope_theta` beside a `rope_scaling` object. `parameters_key`:
/// where transformers 5 writes them (Gemma 3's nest them by layer type).
void read_rope(const json& object, const std::filesystem::path& file, ModelConfig& config,
               double default_theta = 10000.0, const std::string& parameters_key = "rope_parameters");

/// config.json's `rope_scaling` object for `rope` (not "default").
json rope_scaling_json(const ModelConfig& config);

// Each family's own keys, read after the shared ones.
void read_gemma(const json& object, const std::filesystem::path& file, ModelConfig& config);
void read_olmo3(const json& object, const std::filesystem::path& file, ModelConfig& config);
void read_smollm3(const json& object, const std::filesystem::path& file, ModelConfig& config);
void read_granite(const json& object, const std::filesystem::path& file, ModelConfig& config);

/// Whether `model_type` is a mixture of experts (qwen2_moe, qwen3_moe, mixtral, olmoe).
bool is_mixture_of_experts(const std::string& model_type);
/// A mixture of experts' keys, with its transformers config class's defaults.
void read_moe(const json& object, const std::filesystem::path& file, ModelConfig& config);
/// ... and written back, in its family's spelling.
void write_moe(const ModelConfig& config, json& object);

/// A window shorter than the context in every layer (Mistral 7B v0.1's, Phi-3 mini's); null, or one
/// no shorter than the context, changes nothing.
void read_window_in_every_layer(const json& object, const std::filesystem::path& file, ModelConfig& config);

} // namespace chorus::models::config_reading
