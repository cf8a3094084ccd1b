// Loading and saving model folders. Loading is strict: every parameter must be found with the shape
// config.json implies, and a tensor that belongs to nothing is an error, since it usually means the
// folder holds a different architecture than config.json says.
#include "models/checkpoint.hpp"

#include <chorus/errors.hpp>

#include "models/safetensors.hpp"

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace chorus::models {

torch::ScalarType storage_dtype(const std::string& torch_dtype) {
  if (torch_dtype == "bfloat16")
    return torch::kBFloat16;
  if (torch_dtype == "float16")
    return torch::kFloat16;
  return torch::kFloat32;
}

std::string shape_text(torch::IntArrayRef shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

namespace {

// The safetensors files of a folder, and which file holds which tensor.
struct Shards {
  std::map<std::string, SafetensorsFile> files; // by file name
  std::map<std::string, std::string> file_of;   // tensor name -> file name

  static Shards open(const std::filesystem::path& folder) {
    Shards shards;
    auto single = folder / "model.safetensors";
    auto index_path = folder / "model.safetensors.index.json";
    if (std::filesystem::exists(index_path)) {
      std::ifstream in(index_path);
      auto index = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (index.is_discarded() || !index.is_object() || !index.contains("weight_map")
          || !index["weight_map"].is_object())
        throw CheckpointError(index_path.string() + ": expected a JSON object with a \"weight_map\" object");
      for (const auto& [tensor, file] : index["weight_map"].items()) {
        if (!file.is_string())
          throw CheckpointError(index_path.string() + ": weight_map entry '" + tensor + "' is not a file name");
        auto name = file.get<std::string>();
        if (!shards.files.count(name))
          shards.files.emplace(name, SafetensorsFile::open(folder / name));
        if (!shards.files.at(name).contains(tensor))
          throw CheckpointError((folder / name).string() + ": tensor '" + tensor + "' is listed in "
                                + index_path.filename().string() + " but not in the file");
        shards.file_of[tensor] = name;
      }
    } else if (std::filesystem::exists(single)) {
      shards.files.emplace("model.safetensors", SafetensorsFile::open(single));
      for (const auto& entry : shards.files.at("model.safetensors").entries())
        shards.file_of[entry.name] = "model.safetensors";
    } else {
      throw CheckpointError(folder.string() + ": no model.safetensors or model.safetensors.index.json");
    }
    return shards;
  }
};

// Where a multimodal checkpoint keeps parameter `name` of its language model: transformers 4.50's
// layout ("language_model.model.layers...") and 4.52's ("model.language_model.layers...").
std::vector<std::string> multimodal_names(const std::string& name) {
  if (name.rfind("model.", 0) == 0)
    return {"language_model." + name, "model.language_model." + name.substr(6)};
  if (name.rfind("lm_head.", 0) == 0)
    return {"language_model." + name};
  return {};
}

bool is_vision_weight(const std::string& name) {
  for (const char* prefix :
       {"vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector."})
    if (name.rfind(prefix, 0) == 0)
      return true;
  return false;
}

} // namespace

void save_pretrained(Transformer& model, const std::filesystem::path& folder) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec)
    throw CheckpointError(folder.string() + ": cannot create the folder: " + ec.message());
  const auto& config = model->config();
  {
    std::ofstream out(folder / "config.json");
    out << config.to_json().dump(2) << "\n";
    if (!out)
      throw CheckpointError((folder / "config.json").string() + ": write failed");
  }
  auto dtype = storage_dtype(config.torch_dtype);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, tensor] : merged_parameters(model))
    tensors.emplace_back(name, tensor.to(dtype));
  save_safetensors(folder / "model.safetensors", tensors);
}

Transformer load_pretrained(const std::filesystem::path& folder, torch::ScalarType dtype, Head head,
                            std::uint64_t seed) {
  auto config = ModelConfig::load(folder / "config.json");
  if (head == Head::language_model && config.num_labels > 0)
    throw CheckpointError((folder / "config.json").string() + ": a scoring model (" + config.architecture()
                          + "), not a language model: load it as a scoring model (spawn_scoring)");
  // A language model becomes a scoring model with a new score head over its body.
  bool new_head = head == Head::scoring && config.num_labels == 0;
  if (new_head)
    config.num_labels = 1;
  auto shards = Shards::open(folder);
  Transformer model(config, seed);
  model->to(dtype);
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& parameter : model->named_parameters()) {
    auto name = parameter.key();
    auto found = shards.file_of.find(name);
    if (new_head && name == "score.weight")
      continue;
    if (found == shards.file_of.end() && config.from_multimodal)
      for (const auto& stored : multimodal_names(name))
        if (auto alternative = shards.file_of.find(stored); alternative != shards.file_of.end()) {
          found = alternative;
          name = stored;
        }
    if (found == shards.file_of.end()) {
      std::string tried;
      if (config.from_multimodal)
        for (const auto& stored : multimodal_names(name))
          tried += ", nor '" + stored + "'";
      throw CheckpointError(folder.string() + ": tensor '" + name + "'" + tried
                            + " is missing (config.json describes a " + config.model_type + " model that has it)");
    }
    const auto& file = shards.files.at(found->second);
    auto tensor = file.load(name);
    if (tensor.sizes() != parameter.value().sizes())
      throw CheckpointError(file.path().string() + ": tensor '" + name + "' has shape " + shape_text(tensor.sizes())
                            + " but config.json implies " + shape_text(parameter.value().sizes()));
    parameter.value().copy_(tensor.to(dtype));
    used.insert(name);
  }
  for (const auto& [name, file] : shards.file_of) {
    if (used.count(name))
      continue;
    // Old checkpoints store the rotary frequencies; a tied model may still carry its output head; a
    // multimodal one has its vision tower.
    bool head = name == "lm_head.weight" || (config.from_multimodal && name == "language_model.lm_head.weight");
    bool harmless = name.find("rotary_emb.inv_freq") != std::string::npos
      || ((config.tie_word_embeddings || new_head) && head) || (config.from_multimodal && is_vision_weight(name));
    if (!harmless)
      throw CheckpointError((folder / file).string() + ": tensor '" + name
                            + "' belongs to no parameter of the model config.json describes");
  }
  return model;
}

} // namespace chorus::models
