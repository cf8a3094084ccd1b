// Hugging Face model folders: config.json plus model.safetensors, or shards listed in
// model.safetensors.index.json. What save_pretrained writes, other tools open unchanged.
#pragma once

#include "models/transformer.hpp"

#include <filesystem>

namespace chorus::models {

/// Writes `model` to `folder` (created if needed): config.json and model.safetensors, with the
/// weights in the config's torch_dtype. @throws CheckpointError if a file cannot be written.
void save_pretrained(Transformer& model, const std::filesystem::path& folder);

/// What load_pretrained makes of a folder.
enum class Head {
  language_model, ///< a causal LM folder as it is; a scoring folder is an error
  scoring,        ///< a scoring model: a scoring folder as it is, or a causal LM's body with a new
                  ///< score head (normal(0, 0.02) from the seed) in place of its language-model head
};

/// Loads the model in `folder`, its weights converted to `dtype` for computing, with `head`.
/// @throws CheckpointError naming the file and the tensor for a missing, misshapen or unexpected
/// tensor, and naming the key for a bad config.json.
Transformer load_pretrained(const std::filesystem::path& folder, torch::ScalarType dtype = torch::kFloat32,
                            Head head = Head::language_model, std::uint64_t seed = 0);

} // namespace chorus::models
