// LoRA adapters on the transformer: the training path (frozen product plus s B A x) equals the
// merged-weight path replicas use, the base is untouched and gets no gradients, switching the
// adapters off gives the base model back, and bad configs are refused naming the field.
#include <chorus/errors.hpp>

#include "models/checkpoint.hpp"
#include "models/generation.hpp"
#include "models/safetensors.hpp"
#include "models/training.hpp"
#include "tests/expect_error.hpp"
#include "tests/models/reference_forward.hpp"
#include "tests/models/test_models.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

using namespace chorus::models;
using chorus::CheckpointError;
using chorus::test::expect_error_containing;
using test::random_model;
using test::sample_tokens;
using test::small_config;

namespace {

// Adapters that change the model: B drawn instead of zero.
void perturb_adapters(Transformer& model) {
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : model->adapter_parameters())
    if (name.find("lora_B") != std::string::npos)
      tensor.normal_(0.0, 0.05);
}

double max_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / ("lora_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

torch::Tensor logits_of(Transformer& model, const torch::Tensor& tokens) {
  torch::NoGradGuard no_grad;
  return model->forward(tokens);
}

LoraConfig rank(std::int64_t r) {
  LoraConfig config;
  config.r = r;
  config.lora_alpha = 2.0 * static_cast<double>(r);
  return config;
}

} // namespace

TEST(Lora, TheTrainingPathEqualsTheMergedWeights) {
  for (const auto* type : {"llama", "qwen2", "qwen3"}) {
    auto model = random_model(small_config(type), 1);
    model->add_adapters(rank(4), /*seed=*/3);
    perturb_adapters(model);
    auto tokens = sample_tokens(97, 2, 9, 5);
    auto trained = model->forward(tokens); // autograd records: s B A x beside the frozen product
    torch::Tensor merged;
    {
      torch::NoGradGuard no_grad; // W + s B A, as a replica computes
      merged = model->forward(tokens);
    }
    EXPECT_TRUE(trained.requires_grad());
    EXPECT_LT(max_difference(trained.detach(), merged), 1e-5) << type;
  }
}

TEST(Lora, FreshAdaptersAndAdaptersOffComputeAsTheBase) {
  auto model = random_model(small_config(), 1);
  auto tokens = sample_tokens(97, 2, 7, 5);
  torch::NoGradGuard no_grad;
  auto base = model->forward(tokens).clone();
  model->add_adapters(rank(8), 3);
  EXPECT_LT(max_difference(model->forward(tokens), base), 1e-6); // B = 0
  perturb_adapters(model);
  auto adapted = model->forward(tokens).clone();
  EXPECT_GT(max_difference(adapted, base), 1e-3);
  model->set_adapters_enabled(false);
  EXPECT_LT(max_difference(model->forward(tokens), base), 1e-6);
  model->set_adapters_enabled(true);
  EXPECT_LT(max_difference(model->forward(tokens), adapted), 1e-6);
}

// A replica's merged weights follow the adapters: an in-place update (a weight sync, an optimizer
// step) is seen by the next forward, the decode path included.
TEST(Lora, MergedWeightsFollowAnUpdateOfTheAdapters) {
  auto model = random_model(small_config(), 2);
  model->add_adapters(rank(4), 3);
  auto tokens = sample_tokens(97, 1, 6, 5);
  torch::NoGradGuard no_grad;
  auto before = model->forward(tokens).clone();
  perturb_adapters(model);
  auto after = model->forward(tokens);
  EXPECT_GT(max_difference(after, before), 1e-3);
  torch::Tensor expected;
  {
    torch::AutoGradMode recording(true);
    expected = model->forward(tokens).detach();
  }
  EXPECT_LT(max_difference(after, expected), 1e-5);

  // Decoding token by token through the KV cache gives the same last logits.
  auto cache = model->make_cache(1, 16);
  auto positions = torch::arange(5, torch::kInt64).unsqueeze(0);
  auto valid = torch::ones({1, 16}, torch::kBool);
  model->forward_cached(tokens.narrow(1, 0, 5), positions, valid, cache, 0);
  auto last = model->decode(tokens.narrow(1, 5, 1).reshape({1}), torch::zeros({1}, torch::kInt64),
                            torch::full({1}, 5, torch::kInt64), cache);
  EXPECT_LT(max_difference(last, expected.select(1, 5)), 1e-4);
}

// A fused projection's adapters share one product of their A matrices: with some of the group not
// adapted (k between q and v, gate beside up) each adapter's term must still land in its columns.
TEST(Lora, PartlyAdaptedGroupsEqualTheMergedWeights) {
  auto model = random_model(small_config("qwen2"), 1);
  auto config = rank(4);
  config.target_modules = {"q_proj", "v_proj", "up_proj"};
  model->add_adapters(config, /*seed=*/3);
  perturb_adapters(model);
  auto tokens = sample_tokens(97, 2, 9, 5);
  auto trained = model->forward(tokens);
  EXPECT_LT(max_difference(trained.detach(), logits_of(model, tokens)), 1e-5);
}

// With dropout each adapter draws its own mask on the training path: two passes differ, and none
// equals the merged weights; without it they agree (above).
TEST(Lora, DropoutMasksTheAdaptersInputOnTheTrainingPath) {
  auto model = random_model(small_config("llama"), 1);
  auto config = rank(4);
  config.lora_dropout = 0.5;
  model->add_adapters(config, /*seed=*/3);
  perturb_adapters(model);
  auto tokens = sample_tokens(97, 2, 9, 5);
  auto first = model->forward(tokens).detach();
  auto second = model->forward(tokens).detach();
  EXPECT_GT(max_difference(first, second), 1e-4);
  EXPECT_GT(max_difference(first, logits_of(model, tokens)), 1e-4);
}

TEST(Lora, OnlyTheAdaptersTrain) {
  auto model = random_model(small_config("llama", /*tied=*/false), 1);
  std::vector<torch::Tensor> base;
  for (const auto& parameter : model->parameters())
    base.push_back(parameter.detach().clone());
  auto config = rank(4);
  config.target_modules = {"q_proj", "v_proj"};
  model->add_adapters(config, 3);
  auto adapters = model->adapter_parameters();
  ASSERT_EQ(adapters.size(), 2u * 2u * 2u); // 2 layers x (q, v) x (A, B)
  EXPECT_EQ(adapters.front().first, "model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(adapters[1].first, "model.layers.0.self_attn.q_proj.lora_B.weight");
  EXPECT_EQ(adapters.front().second.sizes(), (std::vector<std::int64_t>{4, 64}));

  auto optimizer = make_adamw(*model, 1e-2, 0.01);
  std::size_t trained = 0;
  for (const auto& group : optimizer->param_groups())
    trained += group.params().size();
  EXPECT_EQ(trained, adapters.size());

  auto tokens = sample_tokens(97, 2, 8, 5);
  for (int step = 0; step < 3; ++step) {
    optimizer_step(
      *model, *optimizer, {1.0},
      [&](std::size_t) {
        return masked_cross_entropy(model->forward(tokens).narrow(1, 0, 7), tokens.narrow(1, 1, 7),
                                    torch::ones({2, 7}, torch::kInt64));
      },
      1.0);
  }
  std::size_t index = 0;
  for (const auto& item : model->named_parameters()) {
    if (item.key().find(".lora_") != std::string::npos)
      continue;
    EXPECT_FALSE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(torch::equal(item.value(), base[index])) << item.key() << " changed";
    ++index;
  }
  EXPECT_EQ(index, base.size());
  // The adapters moved: B is no longer zero.
  EXPECT_GT(adapters[1].second.abs().max().item<double>(), 0.0);
}

TEST(Lora, TheScaleIsAlphaOverRankOrOverItsRootWithRsLora) {
  auto config = rank(16);
  config.lora_alpha = 32;
  EXPECT_DOUBLE_EQ(config.scale(), 2.0);
  config.use_rslora = true;
  EXPECT_DOUBLE_EQ(config.scale(), 8.0);
}

TEST(Lora, BadConfigsAreRefusedNamingTheField) {
  auto refused = [](LoraConfig config, const std::string& expected) {
    auto model = random_model(small_config(), 1);
    try {
      model->add_adapters(config);
      ADD_FAILURE() << "accepted; expected: " << expected;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  refused(rank(0), "lora.r must be > 0");
  refused(rank(-2), "lora.r must be > 0");
  auto config = rank(4);
  config.target_modules = {"q_proj", "qkv_proj"};
  refused(config, "unknown module 'qkv_proj'");
  config.target_modules = {"q_proj", "q_proj"};
  refused(config, "names 'q_proj' twice");
  config.target_modules = {};
  refused(config, "target_modules is empty");
  config = rank(4);
  config.lora_dropout = 1.0;
  refused(config, "lora_dropout");
  config = rank(4);
  config.lora_alpha = 0;
  refused(config, "lora_alpha");
  auto model = random_model(small_config(), 1);
  model->add_adapters(rank(2));
  EXPECT_THROW(model->add_adapters(rank(2)), std::invalid_argument);
}

// -- adapter folders --------------------------------------------------------------

TEST(LoraFolders, TheSavedAdapterIsPeftsFormatAndAnIndependentForwardAgrees) {
  auto dir = fresh_dir("peft");
  for (const auto* type : {"llama", "qwen2", "qwen3"}) {
    auto base = random_model(small_config(type), 1);
    auto adapted = random_model(small_config(type), 1);
    auto config = rank(4);
    config.use_rslora = std::string(type) == "qwen2";
    adapted->add_adapters(config, 3);
    perturb_adapters(adapted);
    save_adapter(adapted, dir / type, "base-model-folder");

    std::ifstream in(dir / type / "adapter_config.json");
    auto json = nlohmann::json::parse(in);
    EXPECT_EQ(json["peft_type"], "LORA");
    EXPECT_EQ(json["r"], 4);
    EXPECT_EQ(json["lora_alpha"], 8.0);
    EXPECT_EQ(json["base_model_name_or_path"], "base-model-folder");
    EXPECT_EQ(json["target_modules"].size(), 7u);
    auto file = SafetensorsFile::open(dir / type / "adapter_model.safetensors");
    EXPECT_TRUE(file.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
    EXPECT_EQ(file.entries().size(), 2u * 7u * 2u);

    // The base as it is, the adapter merged by the script itself.
    auto tokens = sample_tokens(97, 2, 6, 5);
    auto reference =
      test::reference_output(base, dir / (std::string(type) + "_reference"), tokens, "logits", dir / type);
    EXPECT_LT(max_difference(logits_of(adapted, tokens), reference), 1e-4) << type;
  }
}

TEST(LoraFolders, AnAdapterLoadsOntoItsBaseAndAMergedFolderComputesTheSame) {
  auto dir = fresh_dir("round_trip");
  auto adapted = random_model(small_config(), 1);
  adapted->add_adapters(rank(4), 3);
  perturb_adapters(adapted);
  auto tokens = sample_tokens(97, 2, 6, 5);
  auto expected = logits_of(adapted, tokens);
  save_adapter(adapted, dir / "adapter", "base");
  save_pretrained(adapted, dir / "merged");

  auto base = random_model(small_config(), 1);
  EXPECT_TRUE(is_adapter_folder(dir / "adapter"));
  EXPECT_FALSE(is_adapter_folder(dir / "merged"));
  EXPECT_EQ(adapter_base_model(dir / "adapter"), "base");
  load_adapter(base, dir / "adapter");
  EXPECT_LT(max_difference(logits_of(base, tokens), expected), 1e-6);

  auto merged = load_pretrained(dir / "merged"); // a plain folder: no adapter tensors in it
  EXPECT_FALSE(merged->lora_config());
  EXPECT_LT(max_difference(logits_of(merged, tokens), expected), 1e-5);
}

TEST(LoraFolders, AnAdapterForAnotherBaseOrABrokenFolderIsAClearError) {
  auto dir = fresh_dir("errors");
  auto adapted = random_model(small_config(), 1);
  adapted->add_adapters(rank(4), 3);
  save_adapter(adapted, dir / "adapter", "base");

  auto other_config = small_config();
  other_config.hidden_size = 32;
  other_config.head_dim = 8;
  auto other = random_model(other_config, 1);
  expect_error_containing<CheckpointError>(
    [&] { load_adapter(other, dir / "adapter"); },
    {"adapter_model.safetensors", "lora_A.weight", "[4, 64]", "[4, 32]", "another base model"});

  auto base = random_model(small_config("qwen2", true), 1);
  auto config = small_config();
  config.num_hidden_layers = 1;
  auto one_layer = random_model(config, 1);
  expect_error_containing<CheckpointError>([&] { load_adapter(one_layer, dir / "adapter"); },
                                           {"model.layers.1.", "belongs to no adapter"});

  expect_error_containing<CheckpointError>([&] { load_adapter(base, dir / "missing"); },
                                           {"adapter_config.json", "missing"});
  std::filesystem::create_directories(dir / "bad");
  std::ofstream(dir / "bad" / "adapter_config.json")
    << R"({"peft_type": "LORA", "r": 0, "target_modules": ["q_proj"]})";
  expect_error_containing<CheckpointError>([&] { load_adapter(base, dir / "bad"); },
                                           {"adapter_config.json", "lora.r must be > 0"});
  std::ofstream(dir / "bad" / "adapter_config.json") << R"({"peft_type": "IA3", "r": 4})";
  expect_error_containing<CheckpointError>([&] { load_adapter(base, dir / "bad"); }, {"peft_type", "only LORA"});
}

// Phi-3 stores q, k, v as one projection and gate, up as another, and PEFT adapts each as one: a
// saved adapter stacks the parts' A matrices and sets their B matrices block-diagonally (rank and
// alpha times the parts in rank_pattern / alpha_pattern, the same scale), which PEFT's merge (here
// the reference script's) computes exactly; it loads back into the per-part adapters.
TEST(LoraFolders, Phi3sAdaptersAreStoredOnItsFusedProjections) {
  auto dir = fresh_dir("phi3");
  auto config = test::phi3_config();
  auto base = random_model(config, 1);
  auto adapted = random_model(config, 1);
  adapted->add_adapters(rank(4), 3);
  perturb_adapters(adapted);
  save_adapter(adapted, dir / "adapter", "phi3-base");
  auto json = nlohmann::json::parse(std::ifstream(dir / "adapter" / "adapter_config.json"));
  EXPECT_EQ(json["target_modules"], nlohmann::json({"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}));
  EXPECT_EQ(json["rank_pattern"], nlohmann::json({{"qkv_proj", 12}, {"gate_up_proj", 8}}));
  EXPECT_EQ(json["alpha_pattern"], nlohmann::json({{"qkv_proj", 24.0}, {"gate_up_proj", 16.0}}));
  auto file = SafetensorsFile::open(dir / "adapter" / "adapter_model.safetensors");
  EXPECT_EQ(file.entry("base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight").shape,
            (std::vector<std::int64_t>{128, 12}));
  EXPECT_FALSE(file.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  auto tokens = sample_tokens(97, 2, 6, 5);
  auto expected = logits_of(adapted, tokens);
  auto reference = test::reference_output(base, dir / "reference", tokens, "logits", dir / "adapter");
  EXPECT_LT(max_difference(expected, reference), 1e-4);
  auto reloaded = random_model(config, 1);
  load_adapter(reloaded, dir / "adapter");
  EXPECT_LT(max_difference(logits_of(reloaded, tokens), expected), 1e-6);

  // As PEFT trains Phi-3 (one A shared by q, k and v, rank r): each part takes the shared A and its
  // rows of B.
  auto shared = dir / "shared";
  std::filesystem::create_directories(shared);
  std::ofstream(shared / "adapter_config.json")
    << R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["qkv_proj"]})";
  torch::manual_seed(8);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (int layer = 0; layer < 2; ++layer) {
    auto module = "base_model.model.model.layers." + std::to_string(layer) + ".self_attn.qkv_proj.";
    tensors.emplace_back(module + "lora_A.weight", torch::randn({2, 64}) * 0.1);
    tensors.emplace_back(module + "lora_B.weight", torch::randn({128, 2}) * 0.1);
  }
  save_safetensors(shared / "adapter_model.safetensors", tensors);
  auto community = random_model(config, 1);
  load_adapter(community, shared);
  reference = test::reference_output(base, dir / "shared_reference", tokens, "logits", shared);
  EXPECT_LT(max_difference(logits_of(community, tokens), reference), 1e-4);

  // An adapter on part of a fused projection has no PEFT form.
  auto partial = rank(4);
  partial.target_modules = {"q_proj", "v_proj"};
  auto refused = random_model(config, 1);
  expect_error_containing<std::invalid_argument>([&] { refused->add_adapters(partial, 3); },
                                                 {"lora.target_modules", "qkv_proj", "all of them or none"});
  // A rank that is neither r nor a stack of per-part ones is named with its shapes.
  std::ofstream(shared / "adapter_config.json")
    << R"({"peft_type": "LORA", "r": 3, "lora_alpha": 4, "target_modules": ["qkv_proj"]})";
  auto mismatched = random_model(config, 1);
  expect_error_containing<CheckpointError>([&] { load_adapter(mismatched, shared); },
                                           {"qkv_proj.lora_A.weight' [2, 64]", "do not split into adapters of rank 3"});
}

// The gradients that reach A and B are the loss's derivatives (central differences, in float64),
// with the adapters computed as in training and as merged weights.
TEST(Lora, AdapterGradientsMatchFiniteDifferences) {
  auto model = random_model(small_config("qwen2"), 4);
  model->add_adapters(rank(2), 3);
  perturb_adapters(model);
  model->to(torch::kFloat64);
  auto tokens = sample_tokens(97, 1, 5, 5);
  auto loss_of = [&] { // in float64 throughout (the training losses compute in fp32)
    auto logprobs = torch::log_softmax(model->forward(tokens).narrow(1, 0, 4), -1);
    return -logprobs.gather(-1, tokens.narrow(1, 1, 4).unsqueeze(-1)).mean();
  };
  loss_of().backward();
  for (auto& [name, tensor] : model->adapter_parameters()) {
    if (name.find("layers.0.self_attn.v_proj") == std::string::npos
        && name.find("layers.1.mlp.down_proj") == std::string::npos)
      continue;
    auto flat = tensor.view(-1);
    auto grad = tensor.grad().view(-1);
    for (std::int64_t i : {std::int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
      // Norms and softmax compute in fp32 whatever the dtype: a step of 1e-3 keeps their rounding
      // (1e-7 of the loss) well below the differences measured.
      const double h = 1e-3;
      double original = flat[i].item<double>();
      auto set = [&](double value) {
        torch::NoGradGuard no_grad;
        flat[i] = value;
      };
      auto evaluate = [&](bool recorded) {
        torch::AutoGradMode mode(recorded);
        return loss_of().item<double>();
      };
      for (bool recorded : {true, false}) { // the training path and the merged weights
        set(original + h);
        double up = evaluate(recorded);
        set(original - h);
        double down = evaluate(recorded);
        set(original);
        auto expected = (up - down) / (2 * h);
        EXPECT_NEAR(grad[i].item<double>(), expected, 1e-4 + 0.01 * std::abs(expected))
          << name << "[" << i << "] " << (recorded ? "training path" : "merged weights");
      }
    }
  }
}

// Modules trained in full beside the adapters (PEFT's modules_to_save): "norm" names every RMSNorm;
// they train, are saved in the adapter folder under PEFT's names and load back with it.
TEST(LoraFolders, ModulesToSaveTrainBesideTheAdaptersAndTravelWithThem) {
  auto dir = fresh_dir("modules_to_save");
  auto model = random_model(small_config("llama", /*tied=*/false), 1);
  auto config = rank(2);
  config.modules_to_save = {"norm"};
  model->add_adapters(config, 3);
  auto trained = model->adapter_parameters();
  std::vector<std::string> modules;
  for (const auto& [name, tensor] : trained)
    if (!TransformerImpl::is_lora_parameter(name)) {
      modules.push_back(name);
      EXPECT_TRUE(tensor.requires_grad()) << name;
    }
  EXPECT_EQ(
    modules,
    (std::vector<std::string>{"model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
                              "model.layers.1.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight",
                              "model.norm.weight"}));
  EXPECT_EQ(model->saved_module_bases().size(), modules.size());
  EXPECT_FALSE(model->lm_head->weight.requires_grad());
  {
    torch::NoGradGuard no_grad;
    model->model->norm->weight.mul_(1.5); // as a training step would move it
  }
  perturb_adapters(model);
  auto tokens = sample_tokens(97, 2, 6, 5);
  auto expected = logits_of(model, tokens);
  save_adapter(model, dir / "adapter", "base");
  auto file = SafetensorsFile::open(dir / "adapter" / "adapter_model.safetensors");
  EXPECT_TRUE(file.contains("base_model.model.model.norm.weight"));
  std::ifstream in(dir / "adapter" / "adapter_config.json");
  EXPECT_EQ(nlohmann::json::parse(in)["modules_to_save"], nlohmann::json::array({"norm"}));

  auto base = random_model(small_config("llama", false), 1);
  load_adapter(base, dir / "adapter");
  EXPECT_LT(max_difference(logits_of(base, tokens), expected), 1e-6);

  auto unknown = random_model(small_config(), 1);
  config.modules_to_save = {"nrm"};
  try {
    unknown->add_adapters(config);
    ADD_FAILURE() << "accepted an unknown module";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no module of this model is named 'nrm'"), std::string::npos) << e.what();
  }
}

// A scoring model's new score head trains beside its adapters and is saved with them (PEFT's
// modules_to_save for sequence classification): an adapter folder restores the same scores.
TEST(LoraFolders, AScoringModelsHeadTravelsWithItsAdapters) {
  auto dir = fresh_dir("scoring");
  auto config = small_config();
  config.num_labels = 1;
  auto model = random_model(config, 1);
  model->add_adapters(rank(2), 3);
  EXPECT_TRUE(model->score->weight.requires_grad());
  perturb_adapters(model);
  {
    torch::NoGradGuard no_grad;
    model->score->weight.normal_(0.0, 0.5); // as training would have moved it
  }
  auto tokens = sample_tokens(97, 2, 5, 5);
  torch::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    expected = model->scores(model->hidden_states(tokens));
  }
  save_adapter(model, dir / "adapter", "base");
  EXPECT_TRUE(
    SafetensorsFile::open(dir / "adapter" / "adapter_model.safetensors").contains("base_model.model.score.weight"));
  auto base = random_model(config, 1);
  load_adapter(base, dir / "adapter");
  torch::NoGradGuard no_grad;
  EXPECT_LT(max_difference(base->scores(base->hidden_states(tokens)), expected), 1e-6);
}
