// ModelConfig: the architecture of a decoder-only transformer of the Llama / Qwen2 family, read from
// and written to a Hugging Face `config.json` with the same keys, so that folders round-trip.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace chorus::models {

struct ModelConfig {
  /// "llama" or "qwen2" (the latter always has biases on the q, k and v projections).
  std::string model_type = "llama";
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  /// Grouped-query attention: heads of keys and values, dividing num_attention_heads.
  std::int64_t num_key_value_heads = 0;
  /// Per-head width; hidden_size / num_attention_heads unless config.json says otherwise.
  std::int64_t head_dim = 0;
  std::int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  /// Biases on the q, k and v projections (Qwen2; `attention_bias` for Llama).
  bool attention_bias = false;
  /// The output projection shares the embedding matrix.
  bool tie_word_embeddings = false;
  /// The dtype the weights are stored in: "float32", "bfloat16" or "float16".
  std::string torch_dtype = "float32";
  std::optional<std::int64_t> bos_token_id;
  std::vector<std::int64_t> eos_token_ids;
  /// 0: a causal language model (`...ForCausalLM`, logits over the vocabulary). 1: a scoring model
  /// (`...ForSequenceClassification` with one label): a `score` head maps the last token's hidden
  /// state to one number, and there is no language-model head.
  std::int64_t num_labels = 0;

  /// Reads config.json's object. @throws CheckpointError naming `file` and the key.
  static ModelConfig from_json(const nlohmann::json& json, const std::filesystem::path& file);

  /// Reads a config.json file. @throws CheckpointError naming the file and the key.
  static ModelConfig load(const std::filesystem::path& file);

  /// The config.json object, with the keys Hugging Face tools expect.
  nlohmann::json to_json() const;

  /// The architecture's name as Hugging Face writes it ("Qwen2ForCausalLM",
  /// "LlamaForSequenceClassification", ...).
  std::string architecture() const;

  /// The built-in tiny model: a few million parameters over a byte-level vocabulary, for examples
  /// and tests on a laptop CPU.
  static ModelConfig tiny(std::int64_t vocab_size);

  /// Qwen2-0.5B's shape (its config.json): 24 layers, hidden 896, 14 query heads over 2 key/value
  /// heads, tied embeddings over a 151936-token vocabulary, bf16 storage. For benchmarks at a real
  /// model's size (weights drawn, not loaded).
  static ModelConfig qwen2_half_billion();

  /// @throws CheckpointError naming `file` if the numbers do not describe a valid model.
  void validate(const std::filesystem::path& file) const;
};

} // namespace chorus::models
