// LoRA adapter folders in PEFT's format: adapter_config.json and adapter_model.safetensors, whose
// tensors are named `base_model.model.<the parameter's name>`; and model folders with the adapters
// merged into the base weights.
#include <chorus/errors.hpp>

#include "models/checkpoint.hpp"
#include "models/safetensors.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

namespace chorus::models {

namespace {

constexpr const char* kPeftPrefix = "base_model.model.";

// adapter_config.json: the LoRA config, and PEFT's per-module ranks and alphas, which chorus reads
// for Phi-3's fused projections only (adapters stored on qkv_proj / gate_up_proj).
struct AdapterConfig {
  LoraConfig lora;
  std::map<std::string, std::int64_t> rank_pattern;
  std::map<std::string, double> alpha_pattern;
};

// The fused projection (fused_projections) named `name`, or null.
const FusedProjection* fused_projection(const ModelConfig& model, const std::string& name) {
  for (const auto& projection : fused_projections(model))
    if (projection.name == name)
      return &projection;
  return nullptr;
}

// Mixtral's experts name their gate, up and down projections w1, w3 and w2; LoRA targets them by the
// names every other MLP's have, and PEFT's adapter_config.json by Mixtral's.
std::array<std::pair<std::string, std::string>, 3> mixtral_expert_names() {
  MlpNames ours;
  return {
    {{ours.gate, kMixtralExpertNames.gate}, {ours.up, kMixtralExpertNames.up}, {ours.down, kMixtralExpertNames.down}}};
}

std::string peft_target_of(const ModelConfig& model, const std::string& target) {
  if (model.model_type == "mixtral")
    for (const auto& [ours, theirs] : mixtral_expert_names())
      if (target == ours)
        return theirs;
  return target;
}

std::string target_of_peft(const ModelConfig& model, const std::string& target) {
  if (model.model_type == "mixtral")
    for (const auto& [ours, theirs] : mixtral_expert_names())
      if (target == theirs)
        return ours;
  return target;
}

// `model`: the base, whose fused projections PEFT names where this engine adapts their parts.
AdapterConfig read_adapter_config(const std::filesystem::path& file, const ModelConfig& model) {
  std::ifstream in(file);
  if (!in)
    throw CheckpointError(file.string() + ": missing (an adapter folder holds adapter_config.json)");
  auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    throw CheckpointError(file.string() + ": not a JSON object");
  auto where = [&](const std::string& key) { return file.string() + ": key '" + key + "' "; };
  if (json.value("peft_type", "LORA") != "LORA")
    throw CheckpointError(where("peft_type") + "is '" + json["peft_type"].dump() + "', only LORA adapters load");
  LoraConfig config;
  if (!json.contains("r") || !json["r"].is_number_integer())
    throw CheckpointError(where("r") + "must be an integer");
  config.r = json["r"].get<std::int64_t>();
  if (json.contains("lora_alpha")) {
    if (!json["lora_alpha"].is_number())
      throw CheckpointError(where("lora_alpha") + "must be a number");
    config.lora_alpha = json["lora_alpha"].get<double>();
  }
  if (json.contains("lora_dropout") && json["lora_dropout"].is_number())
    config.lora_dropout = json["lora_dropout"].get<double>();
  if (json.contains("use_rslora") && json["use_rslora"].is_boolean())
    config.use_rslora = json["use_rslora"].get<bool>();
  if (json.contains("target_modules")) {
    const auto& targets = json["target_modules"];
    if (targets.is_string() && targets.get<std::string>() == "all-linear") {
      config.target_modules = lora_target_names();
    } else if (targets.is_array()) {
      config.target_modules.clear();
      for (const auto& target : targets) {
        if (!target.is_string())
          throw CheckpointError(where("target_modules") + "must list module names");
        auto name = target_of_peft(model, target.get<std::string>());
        if (const auto* fused = fused_projection(model, name))
          config.target_modules.insert(config.target_modules.end(), fused->parts.begin(), fused->parts.end());
        else
          config.target_modules.push_back(name);
      }
    } else {
      throw CheckpointError(where("target_modules") + "must be a list of module names or \"all-linear\"");
    }
  }
  if (json.contains("modules_to_save") && !json["modules_to_save"].is_null()) {
    if (!json["modules_to_save"].is_array())
      throw CheckpointError(where("modules_to_save") + "must be a list of module names or null");
    for (const auto& module : json["modules_to_save"]) {
      if (!module.is_string())
        throw CheckpointError(where("modules_to_save") + "must list module names");
      config.modules_to_save.push_back(module.get<std::string>());
    }
  }
  if (json.value("bias", "none") != "none")
    throw CheckpointError(where("bias") + "is '" + json["bias"].get<std::string>()
                          + "': only adapters without trained biases (\"none\") load");
  try {
    check_lora_config(config);
  } catch (const std::invalid_argument& error) {
    throw CheckpointError(file.string() + ": " + error.what());
  }
  AdapterConfig result{config, {}, {}};
  // Per-module ranks and alphas: read for the fused projections (whose adapters are split below),
  // refused elsewhere rather than loaded at the wrong scale.
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (!json.contains(key) || json[key].is_null())
      continue;
    if (!json[key].is_object())
      throw CheckpointError(where(key) + "must be an object of module names and numbers");
    for (const auto& [module, value] : json[key].items()) {
      if (!fused_projection(model, module) || !value.is_number() || !(value.get<double>() > 0))
        throw CheckpointError(where(std::string(key) + "." + module)
                              + "per-module ranks and alphas are read for Phi-3's fused qkv_proj and gate_up_proj "
                                "only, as positive numbers");
      if (std::string(key) == "rank_pattern")
        result.rank_pattern[module] = value.get<std::int64_t>();
      else
        result.alpha_pattern[module] = value.get<double>();
    }
  }
  return result;
}

// The module a LoRA tensor adapts ("...q_proj" for "...q_proj.lora_A.weight"); empty for another.
std::string adapted_module(const std::string& name) {
  for (const char* side : {".lora_A.", ".lora_B."})
    if (auto at = name.find(side); at != std::string::npos)
      return name.substr(0, at);
  return {};
}

// Phi-3's adapters as PEFT stores them, on the fused module: the parts' A matrices stacked, [parts *
// r, in], and their B matrices block-diagonal, [rows of all parts, parts * r], so that B A is each
// part's B A in its rows. Its rank is parts * r, and its alpha parts * lora_alpha (rsLoRA:
// sqrt(parts) * lora_alpha), so that its scale is the parts' own.
std::vector<std::pair<std::string, torch::Tensor>>
fuse_adapters(const ModelConfig& config, const LoraConfig& lora,
              std::vector<std::pair<std::string, torch::Tensor>> named, nlohmann::json& adapter_config) {
  std::vector<std::pair<std::string, torch::Tensor>> stored;
  std::map<std::string, torch::Tensor> by_name;
  for (auto& [name, tensor] : named)
    by_name[name] = tensor;
  std::set<std::string> done;
  for (auto& [name, tensor] : named) {
    auto fused = fused_part(config, adapted_module(name));
    if (!fused) {
      stored.emplace_back(name, tensor);
      continue;
    }
    if (!done.insert(fused->module).second)
      continue;
    auto parts = static_cast<std::int64_t>(fused->parts.size());
    std::vector<torch::Tensor> a;
    auto b = torch::zeros({fused->total_rows, parts * lora.r}, tensor.options());
    for (std::int64_t j = 0; j < parts; ++j) {
      const auto& part = fused->parts[static_cast<std::size_t>(j)];
      auto part_fused = *fused_part(config, part);
      a.push_back(by_name.at(part + ".lora_A.weight"));
      b.narrow(0, part_fused.offset, part_fused.rows)
        .narrow(1, j * lora.r, lora.r)
        .copy_(by_name.at(part + ".lora_B.weight"));
    }
    stored.emplace_back(fused->module + ".lora_A.weight", torch::cat(a, 0));
    stored.emplace_back(fused->module + ".lora_B.weight", b);
    adapter_config["rank_pattern"][fused->name] = parts * lora.r;
    adapter_config["alpha_pattern"][fused->name] =
      lora.lora_alpha * (lora.use_rslora ? std::sqrt(static_cast<double>(parts)) : static_cast<double>(parts));
  }
  return stored;
}

// A part's adapter from a fused one of rank `rank` (A [rank, in], B [all rows, rank]): with rank r,
// the shared A and the part's rows of B (as PEFT trains Phi-3); with rank parts * r, the part's
// block of a block-diagonal B (as fuse_adapters writes). B is rescaled from the fused module's scale
// to the model's. Empty where neither fits.
std::pair<torch::Tensor, torch::Tensor> split_adapter(const FusedPart& part, const torch::Tensor& a,
                                                      const torch::Tensor& b, std::int64_t r, double rescale) {
  auto rank = a.size(0), parts = static_cast<std::int64_t>(part.parts.size());
  auto rows = b.narrow(0, part.offset, part.rows);
  if (rank == r)
    return {a, rows * rescale};
  if (rank != parts * r)
    return {};
  auto block = static_cast<std::int64_t>(part.part) * r;
  // Off its block, the part's rows must be zero, or the adapter is not a stack of per-part ones.
  auto all = rows.abs().sum().item<double>();
  if (all - rows.narrow(1, block, r).abs().sum().item<double>() > 1e-6 * (1 + all))
    return {};
  return {a.narrow(0, block, r), rows.narrow(1, block, r) * rescale};
}

// The fused modules' stored A and B, each read once for its parts' adapters.
using FusedAdapters = std::map<std::string, std::pair<torch::Tensor, torch::Tensor>>;

// The adapter of `fused`'s part from the fused module's stored pair (read into `loaded` the first
// time): its A (`a_side`) or its B, in fp32. @throws CheckpointError naming both tensors and their
// shapes when they do not split.
torch::Tensor load_fused_part(const SafetensorsFile& file, const AdapterConfig& adapter, const FusedPart& fused,
                              bool a_side, std::int64_t hidden_size, FusedAdapters& loaded,
                              std::set<std::string>& used) {
  const auto& config = adapter.lora;
  auto stored_a = kPeftPrefix + fused.module + ".lora_A.weight",
       stored_b = kPeftPrefix + fused.module + ".lora_B.weight";
  auto found = loaded.find(fused.module);
  if (found == loaded.end()) {
    for (const auto& stored : {stored_a, stored_b})
      if (!file.contains(stored))
        throw CheckpointError(file.path().string() + ": tensor '" + stored
                              + "' is missing (adapter_config.json targets " + fused.module + ")");
    found = loaded.emplace(fused.module, std::pair{file.load(stored_a), file.load(stored_b)}).first;
    used.insert(stored_a);
    used.insert(stored_b);
  }
  const auto& [a, b] = found->second;
  auto rank = adapter.rank_pattern.count(fused.name) ? adapter.rank_pattern.at(fused.name) : config.r;
  auto alpha = adapter.alpha_pattern.count(fused.name) ? adapter.alpha_pattern.at(fused.name) : config.lora_alpha;
  std::pair<torch::Tensor, torch::Tensor> part;
  if (a.dim() == 2 && b.dim() == 2 && a.size(0) == rank && b.size(1) == rank && b.size(0) == fused.total_rows
      && a.size(1) == hidden_size)
    part = split_adapter(fused, a.to(torch::kFloat32), b.to(torch::kFloat32), config.r,
                         lora_scale(alpha, rank, config.use_rslora) / config.scale());
  if (!part.first.defined())
    throw CheckpointError(file.path().string() + ": tensors '" + stored_a + "' " + shape_text(a.sizes()) + " and '"
                          + stored_b + "' " + shape_text(b.sizes()) + " do not split into adapters of rank "
                          + std::to_string(config.r) + " for " + fused.parts[fused.part]
                          + ": the adapter was trained on another base model");
  return a_side ? part.first : part.second;
}

// The target modules as PEFT names them for this model: Phi-3's parts by their fused module.
std::vector<std::string> peft_targets(const ModelConfig& config, const std::vector<std::string>& targets) {
  std::vector<std::string> names;
  for (const auto& target : targets) {
    auto fused = fused_part(config, "model." + target);
    auto name = fused ? fused->name : peft_target_of(config, target);
    if (std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(name);
  }
  return names;
}

} // namespace

std::vector<std::pair<std::string, torch::Tensor>> merged_parameters(Transformer& model) {
  torch::NoGradGuard no_grad;
  const auto all = model->named_parameters();
  const auto suffix = std::string(".weight");
  std::vector<std::pair<std::string, torch::Tensor>> result;
  for (const auto& parameter : all) {
    const auto& name = parameter.key();
    if (TransformerImpl::is_lora_parameter(name))
      continue;
    auto weight = parameter.value().detach();
    // `....q_proj.weight` with its adapter merged in, W + s B A, when the model adapts it.
    if (model->lora_config() && name.size() > suffix.size()
        && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      auto module = name.substr(0, name.size() - suffix.size());
      const auto* a = all.find(module + ".lora_A.weight");
      const auto* b = all.find(module + ".lora_B.weight");
      if (a && b)
        weight = torch::addmm(weight.to(torch::kFloat32), b->to(torch::kFloat32), a->to(torch::kFloat32), 1.0,
                              model->lora_config()->scale());
    }
    result.emplace_back(name, weight);
  }
  return result;
}

void save_adapter(Transformer& model, const std::filesystem::path& folder, const std::string& base_model) {
  if (!model->lora_config())
    throw std::invalid_argument("the model has no adapters to save");
  const auto& lora = *model->lora_config();
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec)
    throw CheckpointError(folder.string() + ": cannot create the folder: " + ec.message());
  nlohmann::json config = {
    {"peft_type", "LORA"},
    {"task_type", model->is_scoring() ? "SEQ_CLS" : "CAUSAL_LM"},
    {"base_model_name_or_path", base_model},
    {"r", lora.r},
    {"lora_alpha", lora.lora_alpha},
    {"lora_dropout", lora.lora_dropout},
    {"target_modules", peft_targets(model->config(), lora.target_modules)},
    {"use_rslora", lora.use_rslora},
    {"modules_to_save", lora.modules_to_save.empty() ? nlohmann::json(nullptr) : nlohmann::json(lora.modules_to_save)},
    {"bias", "none"},
    {"fan_in_fan_out", false},
    {"inference_mode", true},
    {"init_lora_weights", true}};
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& [name, tensor] : model->adapter_parameters())
    named.emplace_back(name, tensor.detach());
  named = fuse_adapters(model->config(), lora, std::move(named), config);
  auto dtype = storage_dtype(model->config().torch_dtype);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, tensor] : named)
    tensors.emplace_back(kPeftPrefix + name, tensor.to(dtype));
  save_safetensors(folder / "adapter_model.safetensors", tensors);
  std::ofstream out(folder / "adapter_config.json");
  out << config.dump(2) << "\n";
  if (!out)
    throw CheckpointError((folder / "adapter_config.json").string() + ": write failed");
}

bool is_adapter_folder(const std::filesystem::path& folder) {
  return std::filesystem::exists(folder / "adapter_config.json");
}

std::string adapter_base_model(const std::filesystem::path& folder) {
  auto file = folder / "adapter_config.json";
  std::ifstream in(file);
  auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("base_model_name_or_path")
      || !json["base_model_name_or_path"].is_string())
    throw CheckpointError(file.string() + ": no \"base_model_name_or_path\" string naming the base model");
  return json["base_model_name_or_path"].get<std::string>();
}

void load_adapter(Transformer& model, const std::filesystem::path& folder) {
  auto adapter = read_adapter_config(folder / "adapter_config.json", model->config());
  const auto& config = adapter.lora;
  try {
    model->add_adapters(config);
  } catch (const std::invalid_argument& error) {
    throw CheckpointError((folder / "adapter_config.json").string() + ": " + error.what());
  }
  auto file = SafetensorsFile::open(folder / "adapter_model.safetensors");
  std::set<std::string> used;
  FusedAdapters fused_adapters;
  torch::NoGradGuard no_grad;
  for (auto& [name, parameter] : model->adapter_parameters()) {
    if (auto fused = fused_part(model->config(), adapted_module(name))) {
      bool a_side = name.find(".lora_A.") != std::string::npos;
      auto part = load_fused_part(file, adapter, *fused, a_side, model->config().hidden_size, fused_adapters, used);
      parameter.copy_(part.to(parameter.scalar_type()));
      continue;
    }
    auto stored = kPeftPrefix + name;
    if (!file.contains(stored))
      throw CheckpointError(file.path().string() + ": tensor '" + stored + "' is missing (adapter_config.json "
                            + (TransformerImpl::is_lora_parameter(name) ? "targets " : "saves ")
                            + name.substr(0, name.rfind('.')) + ")");
    auto tensor = file.load(stored);
    if (tensor.sizes() != parameter.sizes())
      throw CheckpointError(file.path().string() + ": tensor '" + stored + "' has shape " + shape_text(tensor.sizes())
                            + " but this base model's needs " + shape_text(parameter.sizes())
                            + ": the adapter was trained on another base model");
    parameter.copy_(tensor.to(parameter.scalar_type()));
    used.insert(stored);
  }
  for (const auto& entry : file.entries())
    if (!used.count(entry.name))
      throw CheckpointError(file.path().string() + ": tensor '" + entry.name
                            + "' belongs to no adapter of this base model (another base, or modules this loader "
                              "does not adapt)");
}

} // namespace chorus::models
