// Hugging Face model folders: config.json plus model.safetensors, or shards listed in
// model.safetensors.index.json. What save_pretrained writes, other tools open unchanged.
#pragma once

#include "models/transformer.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace chorus::models {

/// Writes `model` to `folder` (created if needed): config.json, model.safetensors with the weights
/// in the config's torch_dtype, and for a language model generation_config.json (the one it was
/// loaded with, unchanged, or its bos and eos ids as transformers writes them for a model without
/// one). A model with LoRA adapters is written with them merged into its weights (a plain Hugging
/// Face folder). @throws CheckpointError if a file cannot be written.
void save_pretrained(Transformer& model, const std::filesystem::path& folder);

/// The dtype weights are stored in for config.json's torch_dtype ("bfloat16", "float16", else fp32).
torch::ScalarType storage_dtype(const std::string& torch_dtype);

/// A shape as error messages show it: "[896, 4864]".
std::string shape_text(torch::IntArrayRef shape);

/// The model's parameters by name, LoRA adapters merged into the weights they adapt (W + s B A,
/// computed in fp32) and left out themselves: what a merged folder holds.
std::vector<std::pair<std::string, torch::Tensor>> merged_parameters(Transformer& model);

/// A projection Phi-3's checkpoints store as one matrix, and the projections of this engine stacked
/// in it, in the order this engine concatenates them.
struct FusedProjection {
  std::string name;               ///< "qkv_proj", "gate_up_proj"
  std::vector<std::string> parts; ///< "q_proj", "k_proj", "v_proj"; "gate_proj", "up_proj"
};

/// Phi-3's fused projections (none in the other families): q, k and v as `qkv_proj`, gate and up
/// as `gate_up_proj`.
const std::vector<FusedProjection>& fused_projections(const ModelConfig& config);

/// Where a projection of this engine lies in a checkpoint that fuses it with others
/// (fused_projections).
struct FusedPart {
  std::string name;               ///< the stored module's own name: "qkv_proj"
  std::string module;             ///< the stored module: "model.layers.0.self_attn.qkv_proj"
  std::size_t part = 0;           ///< which of its parts this one is (0: q, 1: k, 2: v; 0: gate, 1: up)
  std::vector<std::string> parts; ///< every part's own module name, in order
  std::int64_t offset = 0;        ///< the first of this part's rows in the stored matrix
  std::int64_t rows = 0;          ///< this part's rows (its output width)
  std::int64_t total_rows = 0;    ///< the stored matrix's rows
};

/// `module` ("model.layers.0.self_attn.k_proj") in the config's checkpoint layout; nullopt where it
/// is stored under its own name.
std::optional<FusedPart> fused_part(const ModelConfig& config, const std::string& module);

// -- LoRA adapter folders (PEFT's format) ----------------------------------------

/// Writes the model's adapters to `folder` as PEFT does: adapter_config.json (r, lora_alpha,
/// target_modules, ..., base_model_name_or_path = `base_model`) and adapter_model.safetensors with
/// tensors named `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`, ...
/// @throws std::invalid_argument for a model without adapters; CheckpointError for a write failure.
void save_adapter(Transformer& model, const std::filesystem::path& folder, const std::string& base_model);

/// Whether `folder` is an adapter folder (holds adapter_config.json).
bool is_adapter_folder(const std::filesystem::path& folder);

/// The base model an adapter folder was trained on (its base_model_name_or_path).
/// @throws CheckpointError when adapter_config.json does not name one.
std::string adapter_base_model(const std::filesystem::path& folder);

/// Adds the adapters of the PEFT folder `folder` to `model` (its base) and loads their weights.
/// @throws CheckpointError naming the file and key or tensor: a config that is not a LoRA one, a
/// tensor missing, or shaped for another base model (both shapes named), or one that adapts nothing.
void load_adapter(Transformer& model, const std::filesystem::path& folder);

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
