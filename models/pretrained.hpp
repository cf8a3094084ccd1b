// Models by reference: `builtin:tiny` or a Hugging Face folder, with their tokenizers.
#pragma once

#include "models/checkpoint.hpp"
#include "models/tokenizer.hpp"
#include "models/transformer.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace chorus::models {

/// A model and the tokenizer it reads and writes text with.
struct Pretrained {
  Transformer model{nullptr};
  std::shared_ptr<const Tokenizer> tokenizer;
};

/// The built-in tiny model: ModelConfig::tiny over the byte tokenizer (vocabulary padded to 264),
/// freshly initialised from `seed`. Runs anywhere; the default of examples and tests.
Pretrained builtin_tiny(std::uint64_t seed = 0, Head head = Head::language_model);

/// `builtin:tiny` (initialised from `seed`), or the path of a Hugging Face model folder: config.json,
/// the safetensors weights and tokenizer.json. Weights are converted to `dtype` and placed on `device`;
/// `head` says whether it is loaded as a language model or a scoring model (models/checkpoint.hpp).
/// @throws CheckpointError naming the reference, file, key or tensor that is wrong.
Pretrained load_pretrained_model(const std::string& reference, torch::ScalarType dtype = torch::kFloat32,
                                 std::uint64_t seed = 0, torch::Device device = torch::kCPU,
                                 Head head = Head::language_model);

/// Writes the model and its tokenizer as a Hugging Face folder that load_pretrained_model (and other
/// tools) open, replacing `folder` only once all of it is written (into `folder`.partial first). A
/// model with LoRA adapters is written as a PEFT adapter folder naming `base_model` (with the
/// tokenizer), or with `merge_adapter` as a full folder with the adapters merged in.
/// @throws CheckpointError naming the file that could not be written.
void save_pretrained_model(const Pretrained& pretrained, const std::filesystem::path& folder,
                           bool merge_adapter = false, const std::string& base_model = "");

} // namespace chorus::models
