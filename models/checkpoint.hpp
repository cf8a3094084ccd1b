// Hugging Face model folders: config.json plus model.safetensors, or shards listed in
// model.safetensors.index.json. What save_pretrained writes, other tools open unchanged.
#pragma once

#include "models/transformer.hpp"

#include <filesystem>

namespace chorus::models {

/// Writes `model` to `folder` (created if needed): config.json and model.safetensors, with the
/// weights in the config's torch_dtype. @throws CheckpointError if a file cannot be written.
void save_pretrained(Transformer& model, const std::filesystem::path& folder);

/// Loads the model in `folder`, its weights converted to `dtype` for computing.
/// @throws CheckpointError naming the file and the tensor for a missing, misshapen or unexpected
/// tensor, and naming the key for a bad config.json.
Transformer load_pretrained(const std::filesystem::path& folder, torch::ScalarType dtype = torch::kFloat32);

} // namespace chorus::models
