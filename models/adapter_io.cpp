// LoRA adapter folders in PEFT's format: adapter_config.json and adapter_model.safetensors, whose
// tensors are named `base_model.model.<the parameter's name>`; and model folders with the adapters
// merged into the base weights.
#include <chorus/errors.hpp>

#include "models/checkpoint.hpp"
#include "models/safetensors.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

namespace chorus::models {

namespace {

constexpr const char* kPeftPrefix = "base_model.model.";

LoraConfig read_adapter_config(const std::filesystem::path& file) {
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
        config.target_modules.push_back(target.get<std::string>());
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
  return config;
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
    {"target_modules", lora.target_modules},
    {"use_rslora", lora.use_rslora},
    {"modules_to_save", lora.modules_to_save.empty() ? nlohmann::json(nullptr) : nlohmann::json(lora.modules_to_save)},
    {"bias", "none"},
    {"fan_in_fan_out", false},
    {"inference_mode", true},
    {"init_lora_weights", true}};
  {
    std::ofstream out(folder / "adapter_config.json");
    out << config.dump(2) << "\n";
    if (!out)
      throw CheckpointError((folder / "adapter_config.json").string() + ": write failed");
  }
  auto dtype = storage_dtype(model->config().torch_dtype);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, tensor] : model->adapter_parameters())
    tensors.emplace_back(kPeftPrefix + name, tensor.detach().to(dtype));
  save_safetensors(folder / "adapter_model.safetensors", tensors);
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
  auto config = read_adapter_config(folder / "adapter_config.json");
  try {
    model->add_adapters(config);
  } catch (const std::invalid_argument& error) {
    throw CheckpointError((folder / "adapter_config.json").string() + ": " + error.what());
  }
  auto file = SafetensorsFile::open(folder / "adapter_model.safetensors");
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& [name, parameter] : model->adapter_parameters()) {
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
