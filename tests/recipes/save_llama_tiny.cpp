// Saves a tiny random Llama model with Llama 3.2's real tokenizer and chat template (from the
// tokenizer parity packages) as a Hugging Face folder: Llama 3.1's chat format (its dated system
// turn, JSON tool calls, ipython turns) in a model that runs anywhere. With "gemma3", a tiny Gemma 3
// with Gemma 3's SentencePiece tokenizer and template instead; with "mistral_nemo", a tiny Mistral
// with Mistral Nemo's Tekken tokenizer and template ([TOOL_CALLS]). A program of its own because
// the recipe tests do not see LibTorch. With "qwen3_moe", FOLDER's model (builtin:tiny saved there)
// becomes a tiny random Qwen3-MoE over the same vocabulary, its tokenizer kept.
// Usage: test_save_llama_tiny FOLDER [gemma3|mistral_nemo|qwen3_moe]

#include "models/checkpoint.hpp"
#include "models/transformer.hpp"

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

int main(int argc, char** argv) try {
  using namespace chorus;
  std::string variant = argc == 3 ? argv[2] : "";
  if (argc < 2 || argc > 3
      || (argc == 3 && variant != "gemma3" && variant != "mistral_nemo" && variant != "qwen3_moe")) {
    std::fprintf(stderr, "usage: %s FOLDER [gemma3|mistral_nemo|qwen3_moe]\n", argv[0]);
    return 2;
  }
  std::filesystem::path folder = argv[1];
  if (variant == "qwen3_moe") { // 8 experts, 2 per token, in every layer but the first
    auto tiny = models::ModelConfig::load(folder / "config.json");
    models::ModelConfig moe;
    moe.model_type = "qwen3_moe";
    moe.vocab_size = tiny.vocab_size;
    moe.hidden_size = 128;
    moe.intermediate_size = 256;
    moe.num_hidden_layers = 3;
    moe.num_attention_heads = 4;
    moe.num_key_value_heads = 2;
    moe.head_dim = 32;
    moe.max_position_embeddings = tiny.max_position_embeddings;
    moe.tie_word_embeddings = true;
    moe.bos_token_id = tiny.bos_token_id;
    moe.eos_token_ids = tiny.eos_token_ids;
    moe.num_experts = 8;
    moe.num_experts_per_tok = 2;
    moe.moe_intermediate_size = 96;
    moe.norm_topk_prob = true;
    moe.sparse_layers = {false, true, true};
    moe.router_aux_loss_coef = 0.001;
    models::Transformer model(moe, /*seed=*/1);
    models::save_pretrained(model, folder);
    return 0;
  }
  bool gemma = variant == "gemma3";
  models::ModelConfig config;
  config.model_type = "llama";
  config.vocab_size = 128256;
  config.hidden_size = 64;
  config.intermediate_size = 128;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 16;
  config.max_position_embeddings = 4096;
  config.rope_theta = 500000.0;
  config.rope_scaling = {.type = "llama3", .factor = 32.0, .original_max_position_embeddings = 8192};
  config.tie_word_embeddings = true;
  config.bos_token_id = 128000;
  config.eos_token_ids = {128001, 128008, 128009};
  if (gemma) { // Gemma 3 1B's layout: every sixth layer attends to the whole context
    config.model_type = "gemma3_text";
    config.vocab_size = 262144;
    config.num_hidden_layers = 6;
    config.num_key_value_heads = 1;
    config.hidden_activation = "gelu_pytorch_tanh";
    config.query_pre_attn_scalar = 16;
    config.sliding_window = 16;
    config.sliding_layers = {true, true, true, true, true, false};
    config.rope_theta = 1000000.0;
    config.rope_scaling = {};
    config.rope_local_base_freq = 10000.0;
    config.torch_dtype = "bfloat16";
    config.bos_token_id = 2;
    config.eos_token_ids = {1, 106};
  }
  if (variant == "mistral_nemo") { // Mistral Nemo's vocabulary and ids, its head_dim of its own
    config.model_type = "mistral";
    config.vocab_size = 131072;
    config.rope_theta = 1000000.0;
    config.rope_scaling = {};
    config.bos_token_id = 1;
    config.eos_token_ids = {2};
  }
  models::Transformer model(config, /*seed=*/1);
  std::filesystem::create_directories(folder);
  models::save_pretrained(model, folder);
  auto source = std::filesystem::path(CHORUS_SOURCE_DIR) / "tests/tokenizer_parity/node_modules/@lenml"
    / (gemma               ? "tokenizer-gemma3"
         : variant.empty() ? "tokenizer-llama3_2"
                           : "tokenizer-mistral_nemo")
    / "models";
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
    std::filesystem::copy_file(source / name, folder / name, std::filesystem::copy_options::overwrite_existing);
  return 0;
} catch (const std::exception& error) {
  std::fprintf(stderr, "test_save_llama_tiny: %s\n", error.what());
  return 1;
}
