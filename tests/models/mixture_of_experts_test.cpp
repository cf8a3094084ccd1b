// Mixtures of experts (Qwen2-MoE, Qwen3-MoE, Mixtral, OLMoE): their config.json keys as the Hub's
// checkpoints spell them, folders that round-trip in each family's layout, routing that trains the
// router, the load-balancing loss as transformers computes it, and LoRA on the experts in PEFT's
// format. (Their logits against the independent PyTorch forward: transformer_test.cpp; their KV
// cache: generation_test.cpp.)
#include <chorus/errors.hpp>

#include "models/checkpoint.hpp"
#include "models/safetensors.hpp"
#include "models/training.hpp"
#include "tests/expect_error.hpp"
#include "tests/models/reference_forward.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

using namespace chorus::models;
using chorus::CheckpointError;
using chorus::test::expect_error_containing;
using test::moe_config;
using test::random_model;
using test::sample_tokens;

namespace {

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / ("moe_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

torch::Tensor logits_of(Transformer& model, const torch::Tensor& tokens) {
  torch::NoGradGuard no_grad;
  return model->forward(tokens);
}

// Next-token cross-entropy over `tokens`.
torch::Tensor language_model_loss(Transformer& model, const torch::Tensor& tokens) {
  auto time = tokens.size(1);
  auto logits = model->forward(tokens.narrow(1, 0, time - 1));
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                              tokens.narrow(1, 1, time - 1).reshape(-1));
}

SparseMoe moe_of(Transformer& model, std::int64_t layer) {
  return model->model->layers[layer]->as<DecoderLayer>()->moe;
}

// The four families' config.json keys, shapes shrunk (Qwen3-30B-A3B, Qwen1.5-MoE-A2.7B,
// Mixtral-8x7B-Instruct-v0.1, OLMoE-1B-7B-0125-Instruct).
const char* kQwen3Moe = R"({
  "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 16, "hidden_act": "silu",
  "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96, "max_position_embeddings": 40960,
  "max_window_layers": 48, "mlp_only_layers": [], "model_type": "qwen3_moe", "moe_intermediate_size": 32,
  "norm_topk_prob": true, "num_attention_heads": 4, "num_experts": 8, "num_experts_per_tok": 2,
  "num_hidden_layers": 3, "num_key_value_heads": 2, "output_router_logits": false, "rms_norm_eps": 1e-06,
  "rope_scaling": null, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": null,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 97})";
const char* kQwen2Moe = R"({
  "architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "decoder_sparse_step": 1, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 64,
  "initializer_range": 0.02, "intermediate_size": 96, "max_position_embeddings": 8192, "max_window_layers": 21,
  "model_type": "qwen2_moe", "moe_intermediate_size": 32, "norm_topk_prob": false, "num_attention_heads": 4,
  "num_experts": 6, "num_experts_per_tok": 4, "num_hidden_layers": 2, "num_key_value_heads": 4,
  "output_router_logits": false, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
  "shared_expert_intermediate_size": 96, "sliding_window": 32768, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false, "vocab_size": 97})";
const char* kMixtral = R"({
  "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96,
  "max_position_embeddings": 32768, "model_type": "mixtral", "num_attention_heads": 4, "num_experts_per_tok": 2,
  "num_hidden_layers": 2, "num_key_value_heads": 2, "num_local_experts": 8, "output_router_logits": false,
  "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02, "sliding_window": null,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.36.0.dev0",
  "use_cache": true, "vocab_size": 97})";
const char* kOlmoe = R"({
  "architectures": ["OlmoeForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "clip_qkv": null,
  "eos_token_id": 100257, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
  "intermediate_size": 32, "max_position_embeddings": 4096, "model_type": "olmoe", "norm_topk_prob": false,
  "num_attention_heads": 4, "num_experts": 8, "num_experts_per_tok": 8, "num_hidden_layers": 2,
  "num_key_value_heads": 4, "output_router_logits": false, "pad_token_id": 100277, "rms_norm_eps": 1e-05,
  "rope_scaling": null, "rope_theta": 10000.0, "router_aux_loss_coef": 0.01, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "vocab_size": 97})";

} // namespace

TEST(ModelConfigJson, ReadsTheMixturesOfExpertsConfigs) {
  auto qwen3 = ModelConfig::from_json(nlohmann::json::parse(kQwen3Moe), "qwen3_moe/config.json");
  EXPECT_EQ(qwen3.architecture(), "Qwen3MoeForCausalLM");
  EXPECT_TRUE(qwen3.qk_norm());
  EXPECT_EQ(qwen3.num_experts, 8);
  EXPECT_EQ(qwen3.num_experts_per_tok, 2);
  EXPECT_EQ(qwen3.moe_intermediate_size, 32);
  EXPECT_TRUE(qwen3.norm_topk_prob);
  EXPECT_EQ(qwen3.sparse_layers, (std::vector<bool>{true, true, true}));
  EXPECT_EQ(qwen3.shared_expert_intermediate_size, 0);

  auto qwen2 = ModelConfig::from_json(nlohmann::json::parse(kQwen2Moe), "qwen2_moe/config.json");
  EXPECT_TRUE(qwen2.attention_bias); // always, as Qwen2's
  EXPECT_FALSE(qwen2.norm_topk_prob);
  EXPECT_EQ(qwen2.shared_expert_intermediate_size, 96);
  EXPECT_EQ(qwen2.sliding_window, 0); // use_sliding_window is false

  auto mixtral = ModelConfig::from_json(nlohmann::json::parse(kMixtral), "mixtral/config.json");
  EXPECT_EQ(mixtral.architecture(), "MixtralForCausalLM");
  EXPECT_EQ(mixtral.num_experts, 8); // num_local_experts
  EXPECT_EQ(mixtral.moe_intermediate_size, 96);
  EXPECT_TRUE(mixtral.norm_topk_prob); // Mixtral always renormalises its top two
  EXPECT_EQ(mixtral.router_aux_loss_coef, 0.02);
  EXPECT_EQ(mixtral.rms_norm_eps, 1e-5);

  auto olmoe = ModelConfig::from_json(nlohmann::json::parse(kOlmoe), "olmoe/config.json");
  EXPECT_TRUE(olmoe.qk_norm_across_heads());
  EXPECT_FALSE(olmoe.qk_norm());
  EXPECT_EQ(olmoe.moe_intermediate_size, 32);
  EXPECT_FALSE(olmoe.norm_topk_prob);
  EXPECT_EQ(olmoe.num_experts_per_tok, 8);

  for (const auto& config : {qwen3, qwen2, mixtral, olmoe})
    EXPECT_EQ(ModelConfig::from_json(config.to_json(), "again.json").to_json(), config.to_json()) << config.model_type;

  // Keys left out take each config class's defaults (MixtralConfig: rope_theta 1e6, 131072 positions).
  auto sparse_mixtral = nlohmann::json::parse(kMixtral);
  for (const char* key : {"rope_theta", "max_position_embeddings"})
    sparse_mixtral.erase(key);
  auto defaults = ModelConfig::from_json(sparse_mixtral, "mixtral/config.json");
  EXPECT_EQ(defaults.rope_theta, 1000000.0);
  EXPECT_EQ(defaults.max_position_embeddings, 131072);

  // Qwen's dense layers: those off the decoder_sparse_step and those mlp_only_layers lists, kept
  // through a save (written back as mlp_only_layers).
  auto stepped = nlohmann::json::parse(kQwen3Moe);
  stepped["decoder_sparse_step"] = 2;
  stepped["mlp_only_layers"] = {1};
  auto dense = ModelConfig::from_json(stepped, "qwen3_moe/config.json");
  EXPECT_EQ(dense.sparse_layers, (std::vector<bool>{false, false, false}));
  stepped["num_hidden_layers"] = 4;
  dense = ModelConfig::from_json(stepped, "qwen3_moe/config.json");
  EXPECT_EQ(dense.sparse_layers, (std::vector<bool>{false, false, false, true}));
  EXPECT_EQ(dense.to_json()["mlp_only_layers"], nlohmann::json({0, 1, 2}));
  EXPECT_EQ(ModelConfig::from_json(dense.to_json(), "again.json").sparse_layers, dense.sparse_layers);

  auto check = [](const char* text, const char* key, const nlohmann::json& value, const std::string& expected) {
    auto json = nlohmann::json::parse(text);
    json[key] = value;
    expect_error_containing<CheckpointError>([&] { ModelConfig::from_json(json, "moe/config.json"); },
                                             {"moe/config.json", std::string("key '") + key + "'", expected});
  };
  check(kQwen3Moe, "num_experts_per_tok", 9, "expected 1 to 8 (the experts), got 9");
  check(kQwen3Moe, "num_experts", 0, "must be positive");
  check(kQwen3Moe, "mlp_only_layers", {0, 3}, "entry 3 is not a layer index (0 to 2)");
  check(kQwen3Moe, "decoder_sparse_step", 0, "must be positive");
  check(kQwen3Moe, "moe_intermediate_size", -1, "must be positive");
  check(kQwen2Moe, "shared_expert_intermediate_size", 0, "must be positive");
  check(kMixtral, "router_jitter_noise", 0.1, "jitter noise is not supported");
  check(kOlmoe, "clip_qkv", 8.0, "clipping the queries, keys and values is not supported");
}

TEST(MixtureOfExperts, FoldersRoundTripInTheirFamiliesLayout) {
  for (const auto* type : {"qwen3_moe", "qwen2_moe", "mixtral", "olmoe"}) {
    auto config = moe_config(type);
    auto model = random_model(config, 4);
    auto dir = fresh_dir(std::string("roundtrip_") + type);
    save_pretrained(model, dir);
    auto loaded = load_pretrained(dir);
    EXPECT_EQ(loaded->config().to_json(), config.to_json());
    auto file = SafetensorsFile::open(dir / "model.safetensors");
    std::string mixtral = config.model_type == "mixtral" ? "block_sparse_moe." : "mlp.";
    auto expert = "model.layers.1." + mixtral + "experts.3.";
    EXPECT_EQ(file.entry("model.layers.1." + mixtral + "gate.weight").shape, (std::vector<std::int64_t>{4, 64}));
    EXPECT_EQ(file.entry(expert + (config.model_type == "mixtral" ? "w2" : "down_proj") + ".weight").shape,
              (std::vector<std::int64_t>{64, config.moe_intermediate_size}));
    // Qwen3-MoE's first layer is dense here; Qwen2-MoE has its shared expert and the expert's gate.
    EXPECT_EQ(file.contains("model.layers.0.mlp.gate_proj.weight"), config.model_type == "qwen3_moe");
    EXPECT_EQ(file.contains("model.layers.1.mlp.shared_expert_gate.weight"), config.model_type == "qwen2_moe");
    auto tokens = sample_tokens(config.vocab_size, 2, 20, 3);
    EXPECT_TRUE(torch::equal(logits_of(model, tokens), logits_of(loaded, tokens))) << type;
  }
  // A folder of another expert count is refused naming the tensor.
  auto dir = fresh_dir("other_count");
  auto model = random_model(moe_config("qwen3_moe"), 4);
  save_pretrained(model, dir);
  auto json = moe_config("qwen3_moe").to_json();
  json["num_experts"] = 3;
  std::ofstream(dir / "config.json") << json.dump();
  expect_error_containing<CheckpointError>([&] { load_pretrained(dir); },
                                           {"model.layers.1.mlp.gate.weight", "has shape [4, 64]"});
}

// transformers 5, saving with save_original_format=False, packs each layer's experts into two
// tensors, gate_up_proj [experts, 2 * width, hidden] and down_proj [experts, hidden, width], and
// names Mixtral's block_sparse_moe `mlp`: such a folder loads to the same model.
TEST(MixtureOfExperts, TransformersFivesPackedExpertsLoad) {
  for (const auto* type : {"qwen3_moe", "mixtral"}) {
    auto config = moe_config(type);
    bool mixtral = config.model_type == "mixtral";
    auto model = random_model(config, 12);
    auto dir = fresh_dir(std::string("packed_") + type);
    save_pretrained(model, dir);
    std::vector<std::pair<std::string, torch::Tensor>> packed;
    {
      auto file = SafetensorsFile::open(dir / "model.safetensors");
      for (const auto& entry : file.entries()) {
        auto name = entry.name;
        if (name.find(".experts.") != std::string::npos)
          continue;
        if (auto at = name.find("block_sparse_moe"); at != std::string::npos)
          name.replace(at, std::string("block_sparse_moe").size(), "mlp");
        packed.emplace_back(name, file.load(entry.name));
      }
      for (std::int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
        if (!config.sparse(layer))
          continue;
        auto stored = "model.layers." + std::to_string(layer) + (mixtral ? ".block_sparse_moe" : ".mlp");
        std::vector<torch::Tensor> gate_up, down;
        for (std::int64_t e = 0; e < config.num_experts; ++e) {
          auto expert = stored + ".experts." + std::to_string(e) + ".";
          gate_up.push_back(torch::cat({file.load(expert + (mixtral ? "w1" : "gate_proj") + ".weight"),
                                        file.load(expert + (mixtral ? "w3" : "up_proj") + ".weight")}));
          down.push_back(file.load(expert + (mixtral ? "w2" : "down_proj") + ".weight"));
        }
        auto module = "model.layers." + std::to_string(layer) + ".mlp.experts.";
        packed.emplace_back(module + "gate_up_proj", torch::stack(gate_up));
        packed.emplace_back(module + "down_proj", torch::stack(down));
      }
    }
    save_safetensors(dir / "model.safetensors", packed);
    auto loaded = load_pretrained(dir);
    auto tokens = sample_tokens(config.vocab_size, 2, 12, 3);
    EXPECT_TRUE(torch::equal(logits_of(model, tokens), logits_of(loaded, tokens))) << type;

    // Transposed experts (another tool's layout) are refused naming the tensor and both shapes.
    for (auto& [name, tensor] : packed)
      if (name == "model.layers.1.mlp.experts.down_proj")
        tensor = tensor.transpose(1, 2).contiguous();
    save_safetensors(dir / "model.safetensors", packed);
    expect_error_containing<CheckpointError>(
      [&] { load_pretrained(dir); },
      {"'model.layers.1.mlp.experts.down_proj' has shape [4, " + std::to_string(config.moe_intermediate_size) + ", 64]",
       "config.json implies [4, 64, " + std::to_string(config.moe_intermediate_size) + "]"});

    // A layer with neither layout of an expert tensor is refused naming both names tried.
    packed.erase(
      std::remove_if(packed.begin(), packed.end(),
                     [](const auto& entry) { return entry.first == "model.layers.1.mlp.experts.down_proj"; }),
      packed.end());
    save_safetensors(dir / "model.safetensors", packed);
    expect_error_containing<CheckpointError>(
      [&] { load_pretrained(dir); },
      {"tensor 'model.layers.1." + std::string(mixtral ? "block_sparse_moe.experts.0.w2" : "mlp.experts.0.down_proj")
       + ".weight', nor 'model.layers.1.mlp.experts.down_proj' (transformers 5's packed experts) is missing"});
  }
}

// Training reaches the router through the routing weights, and each expert through the tokens
// routed to it only.
TEST(MixtureOfExperts, GradientsReachTheRouterAndTheChosenExpertsOnly) {
  auto config = moe_config("mixtral");
  config.num_experts = 8;
  auto model = random_model(config, 6);
  auto tokens = torch::tensor({{5, 9, 13}}, torch::kInt64); // 2 tokens, 2 choices each: at most 4 experts
  language_model_loss(model, tokens).backward();
  for (std::int64_t layer = 0; layer < 2; ++layer) {
    auto moe = moe_of(model, layer);
    ASSERT_TRUE(moe->gate->weight.grad().defined());
    EXPECT_GT(moe->gate->weight.grad().abs().max().item<double>(), 0);
    int reached = 0;
    for (const auto& expert : *moe->experts) {
      const auto& grad = expert->as<Mlp>()->down_proj->weight.grad();
      reached += grad.defined() && grad.abs().max().item<double>() > 0;
    }
    EXPECT_GE(reached, 2);
    EXPECT_LE(reached, 4);
  }
}

TEST(MixtureOfExperts, LoadBalancingLossIsTransformersFormula) {
  // Uniform routing (equal logits): every expert gets probability 1/E, and the loss is top_k.
  EXPECT_NEAR(router_load_balancing_loss(torch::zeros({5, 4}), 2).item<double>(), 2.0, 1e-6);
  // A worked case, term by term: f[r][e] the share of tokens whose r-th choice is e, P[e] the mean
  // probability.
  auto logits = torch::tensor({{2.0, 1.0, 0.0, -1.0}, {0.0, 3.0, 1.0, 0.5}, {1.0, 0.0, 2.5, 0.0}});
  auto probs = torch::softmax(logits, -1);
  auto acc = probs.accessor<float, 2>();
  double expected = 0;
  for (int e = 0; e < 4; ++e) {
    double mean_probability = (acc[0][e] + acc[1][e] + acc[2][e]) / 3.0;
    // first choices: experts 0, 1, 2; second choices: 1, 2, 0.
    double first = (e == 0 || e == 1 || e == 2) ? 1.0 / 3 : 0, second = first;
    expected += (first + second) * mean_probability;
  }
  EXPECT_NEAR(router_load_balancing_loss(logits, 2).item<double>(), expected * 4, 1e-6);
  // Rows weighted 0 (padding) are left out of both means.
  auto padded = torch::cat({logits, torch::tensor({{9.0, 0.0, 0.0, 0.0}, {0.0, 0.0, 0.0, 9.0}})});
  EXPECT_NEAR(router_load_balancing_loss(padded, 2, torch::tensor({1, 1, 1, 0, 0})).item<double>(), expected * 4, 1e-6);
  EXPECT_GT(std::abs(router_load_balancing_loss(padded, 2).item<double>() - expected * 4), 1e-3);

  // The model keeps its routers' logits only when config.json asks for the loss, and only from a
  // pass that records gradients; the loss's gradient reaches the routers.
  auto config = moe_config("qwen3_moe");
  auto tokens = sample_tokens(config.vocab_size, 2, 8, 3);
  auto off = random_model(config, 2);
  language_model_loss(off, tokens);
  EXPECT_FALSE(off->router_loss().defined());
  config.output_router_logits = true;
  auto on = random_model(config, 2);
  logits_of(on, tokens);
  EXPECT_FALSE(on->router_loss().defined());
  language_model_loss(on, tokens);
  auto balance = on->router_loss();
  ASSERT_TRUE(balance.defined());
  EXPECT_GE(balance.item<double>(), 0.001 * 2 - 1e-6); // coef * top_k at best
  EXPECT_FALSE(on->router_loss().defined());           // taken
  balance.backward();
  EXPECT_GT(moe_of(on, 1)->gate->weight.grad().abs().max().item<double>(), 0);
}

// The model's loss leaves padding out: a left-padded row, or a row of placed tokens with padding
// at its end (attending to itself alone), gives the loss of its real tokens alone.
TEST(MixtureOfExperts, TheLoadBalancingLossLeavesPaddingOut) {
  auto config = moe_config("mixtral");
  config.output_router_logits = true;
  config.router_aux_loss_coef = 1.0;
  auto model = random_model(config, 10);
  auto tokens = sample_tokens(config.vocab_size, 1, 6, 3);
  model->hidden_states(tokens);
  auto alone = model->router_loss().item<double>();

  auto left_padded = torch::cat({torch::zeros({1, 3}, torch::kInt64), tokens}, 1);
  auto mask = torch::cat({torch::zeros({1, 3}, torch::kInt64), torch::ones({1, 6}, torch::kInt64)}, 1);
  model->hidden_states(left_padded, mask);
  EXPECT_NEAR(model->router_loss().item<double>(), alone, 1e-4);
  model->hidden_states(left_padded);
  EXPECT_GT(std::abs(model->router_loss().item<double>() - alone), 1e-3); // the padding counted

  auto right_padded = torch::cat({tokens, torch::zeros({1, 3}, torch::kInt64)}, 1);
  auto positions = torch::tensor({{0, 1, 2, 3, 4, 5, 0, 0, 0}});
  auto allowed = torch::eye(9, torch::kBool).logical_or(torch::ones({9, 9}, torch::kBool).tril());
  allowed.narrow(0, 6, 3).zero_();
  allowed.narrow(0, 6, 3).logical_or_(torch::eye(9, torch::kBool).narrow(0, 6, 3));
  model->hidden_states(right_padded, positions, allowed.unsqueeze(0));
  EXPECT_NEAR(model->router_loss().item<double>(), alone, 1e-4);
}

// optimizer_step adds the routers' term to the loss it minimises and reports.
TEST(MixtureOfExperts, AnOptimizerStepAddsTheLoadBalancingLoss) {
  auto config = moe_config("olmoe");
  config.output_router_logits = true;
  config.router_aux_loss_coef = 0.5;
  auto tokens = sample_tokens(config.vocab_size, 2, 8, 3);
  auto model = random_model(config, 9);
  auto task = language_model_loss(model, tokens).item<double>();
  auto balance = model->router_loss().item<double>();
  EXPECT_GE(balance, 0.5 * 2 - 1e-6);
  auto optimizer = make_adamw(*model, 0.0, 0.0);
  auto result =
    optimizer_step(*model, *optimizer, {1.0}, [&](std::size_t) { return language_model_loss(model, tokens); }, 0);
  EXPECT_NEAR(result.loss, task + balance, 1e-5);
}

TEST(MixtureOfExperts, TrainingLowersTheLoss) {
  auto model = random_model(moe_config("qwen2_moe"), 8);
  auto tokens = sample_tokens(97, 4, 12, 3);
  auto optimizer = make_adamw(*model, 1e-2, 0.0);
  auto router_before = moe_of(model, 1)->gate->weight.clone();
  double first = 0, last = 0;
  for (int step = 0; step < 8; ++step) {
    auto result =
      optimizer_step(*model, *optimizer, {1.0}, [&](std::size_t) { return language_model_loss(model, tokens); }, 1.0);
    (step == 0 ? first : last) = result.loss;
  }
  EXPECT_LT(last, first * 0.8);
  EXPECT_GT((moe_of(model, 1)->gate->weight - router_before).abs().max().item<double>(), 1e-4);
}

// PEFT adapts every expert's projections that target_modules names (Mixtral's as w1, w3, w2); the
// saved adapter merges to the same logits in the independent forward, and loads back.
TEST(LoraFolders, ExpertsAreAdaptedAsPeftAdaptsThem) {
  for (const auto* type : {"qwen3_moe", "mixtral"}) {
    auto config = moe_config(type);
    auto base = random_model(config, 1);
    auto adapted = random_model(config, 1);
    LoraConfig lora;
    lora.r = 4;
    lora.lora_alpha = 8;
    adapted->add_adapters(lora, 3);
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, tensor] : adapted->adapter_parameters())
        if (name.find("lora_B") != std::string::npos)
          tensor.normal_(0.0, 0.05);
    }
    auto dir = fresh_dir(std::string("lora_") + type);
    save_adapter(adapted, dir / "adapter", "base");
    std::ifstream in(dir / "adapter" / "adapter_config.json");
    auto targets = nlohmann::json::parse(in)["target_modules"];
    bool mixtral = config.model_type == "mixtral";
    EXPECT_EQ(std::count(targets.begin(), targets.end(), mixtral ? "w1" : "gate_proj"), 1) << targets.dump();
    EXPECT_EQ(std::count(targets.begin(), targets.end(), "gate_proj"), mixtral ? 0 : 1);
    auto file = SafetensorsFile::open(dir / "adapter" / "adapter_model.safetensors");
    EXPECT_TRUE(file.contains(std::string("base_model.model.model.layers.1.")
                              + (mixtral ? "block_sparse_moe.experts.3.w2" : "mlp.experts.3.down_proj")
                              + ".lora_B.weight"));
    EXPECT_FALSE(file.contains(std::string("base_model.model.model.layers.1.") + (mixtral ? "block_sparse_moe" : "mlp")
                               + ".gate.lora_A.weight")); // the router trains in full or not at all

    auto tokens = sample_tokens(97, 2, 8, 3);
    auto expected = logits_of(adapted, tokens);
    auto reference = test::reference_output(base, dir / "reference", tokens, "logits", dir / "adapter");
    EXPECT_LT((expected - reference).abs().max().item<double>(), 1e-4) << type;
    auto reloaded = random_model(config, 1);
    load_adapter(reloaded, dir / "adapter");
    EXPECT_LT((logits_of(reloaded, tokens) - expected).abs().max().item<double>(), 1e-6) << type;
  }
}

// The routers trained in full beside the experts' adapters (PEFT's modules_to_save = ["gate"]):
// they train, travel with the adapter, and load back.
TEST(LoraFolders, RoutersTrainInFullBesideTheExpertsAdapters) {
  auto config = moe_config("qwen3_moe");
  auto adapted = random_model(config, 1);
  LoraConfig lora;
  lora.r = 2;
  lora.modules_to_save = {"gate"};
  adapted->add_adapters(lora, 3);
  auto router = moe_of(adapted, 1)->gate->weight;
  EXPECT_TRUE(router.requires_grad());
  EXPECT_FALSE(moe_of(adapted, 1)->experts[0]->as<Mlp>()->gate_proj->weight.requires_grad());
  {
    torch::NoGradGuard no_grad;
    router.add_(torch::randn_like(router) * 0.5);
  }
  auto dir = fresh_dir("lora_routers");
  save_adapter(adapted, dir, "base");
  EXPECT_TRUE(SafetensorsFile::open(dir / "adapter_model.safetensors")
                .contains("base_model.model.model.layers.1.mlp.gate.weight"));
  auto reloaded = random_model(config, 1);
  load_adapter(reloaded, dir);
  auto tokens = sample_tokens(97, 2, 8, 3);
  EXPECT_TRUE(torch::allclose(logits_of(reloaded, tokens), logits_of(adapted, tokens), 0, 1e-6));
  auto base = random_model(config, 1);
  EXPECT_GT((logits_of(reloaded, tokens) - logits_of(base, tokens)).abs().max().item<double>(), 1e-4);
}
