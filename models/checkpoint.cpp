// Loading and saving model folders. Loading is strict: every parameter must be found with the shape
// config.json implies, and a tensor that belongs to nothing is an error, since it usually means the
// folder holds a different architecture than config.json says.
#include "models/checkpoint.hpp"

#include <chorus/errors.hpp>

#include "models/safetensors.hpp"

#include <algorithm>
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

// generation_config.json, kept to be written back; its end-of-sequence ids, which transformers'
// generate stops at, are added to config.json's (Phi-3's config.json names <|endoftext|>, its
// generation config <|end|> too).
void read_generation_config(const std::filesystem::path& file, ModelConfig& config) {
  if (!std::filesystem::exists(file))
    return;
  std::ifstream in(file);
  auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    throw CheckpointError(file.string() + ": expected a JSON object");
  config.generation_config = json;
  auto eos = json.find("eos_token_id");
  if (eos == json.end() || eos->is_null())
    return;
  auto ids = eos->is_array() ? *eos : nlohmann::json::array({*eos});
  for (const auto& id : ids) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0)
      throw CheckpointError(file.string() + ": key 'eos_token_id': expected token ids, got " + eos->dump());
    if (std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), id.get<std::int64_t>())
        == config.eos_token_ids.end())
      config.eos_token_ids.push_back(id.get<std::int64_t>());
  }
}

// The module of a parameter name: "model.layers.0.self_attn.q_proj" for
// "model.layers.0.self_attn.q_proj.weight"; empty for a name that is not a weight.
std::string weight_module(const std::string& name) {
  constexpr std::string_view kSuffix = ".weight";
  if (name.size() <= kSuffix.size() || name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0)
    return {};
  return name.substr(0, name.size() - kSuffix.size());
}

// Parameters as the checkpoint stores them: Phi-3's fused projections stacked back into one matrix.
std::vector<std::pair<std::string, torch::Tensor>>
stored_layout(const ModelConfig& config, std::vector<std::pair<std::string, torch::Tensor>> named) {
  std::vector<std::pair<std::string, torch::Tensor>> stored;
  std::map<std::string, std::vector<torch::Tensor>> pending; // fused module -> its parts so far
  for (auto& [name, tensor] : named) {
    auto fused = fused_part(config, weight_module(name));
    if (!fused) {
      stored.emplace_back(name, std::move(tensor));
      continue;
    }
    auto& parts = pending[fused->module];
    parts.resize(fused->parts.size());
    parts[fused->part] = std::move(tensor);
    if (std::all_of(parts.begin(), parts.end(), [](const torch::Tensor& t) { return t.defined(); })) {
      stored.emplace_back(fused->module + ".weight", torch::cat(parts, 0));
      pending.erase(fused->module);
    }
  }
  return stored;
}

// transformers 5's packed experts, in a checkpoint saved with save_original_format=False: a layer's
// experts as two tensors, `<layer>.mlp.experts.gate_up_proj` [experts, 2 * width, hidden] (each
// expert's gate rows, then its up rows) and `<layer>.mlp.experts.down_proj` [experts, hidden,
// width]; Mixtral's `block_sparse_moe` is named `mlp` there too.
struct PackedExpertPart {
  std::string tensor;       // the packed tensor's name
  std::int64_t expert = 0;  // its index along the first dimension
  std::int64_t offset = 0;  // the part's first row in the expert's matrix (up: after the gate's)
  bool gate_and_up = false; // gate_up_proj rather than down_proj
};

std::string transformers5_module(const std::string& module) {
  constexpr std::string_view kMixtral = "block_sparse_moe";
  if (module.size() > kMixtral.size()
      && module.compare(module.size() - kMixtral.size(), kMixtral.size(), kMixtral) == 0)
    return module.substr(0, module.size() - kMixtral.size()) + "mlp";
  return module;
}

// Where the packed layout keeps parameter `name` ("model.layers.1.mlp.experts.5.up_proj.weight").
std::optional<PackedExpertPart> packed_expert_part(const ModelConfig& config, const std::string& name) {
  constexpr std::string_view kExperts = ".experts.";
  auto at = name.find(kExperts);
  if (!config.moe() || at == std::string::npos)
    return std::nullopt;
  auto rest = name.substr(at + kExperts.size()); // "5.up_proj.weight"
  auto dot = rest.find('.');
  if (dot == 0 || dot == std::string::npos
      || !std::all_of(rest.begin(), rest.begin() + static_cast<long>(dot), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  auto projection = rest.substr(dot + 1);
  auto is = [&](const char* MlpNames::* role) {
    return projection == std::string(MlpNames{}.*role) + ".weight"
      || projection == std::string(kMixtralExpertNames.*role) + ".weight";
  };
  if (!is(&MlpNames::gate) && !is(&MlpNames::up) && !is(&MlpNames::down))
    return std::nullopt;
  PackedExpertPart part;
  part.expert = std::stoll(rest.substr(0, dot));
  part.gate_and_up = !is(&MlpNames::down);
  if (is(&MlpNames::up))
    part.offset = config.moe_intermediate_size;
  part.tensor =
    transformers5_module(name.substr(0, at)) + ".experts." + (part.gate_and_up ? "gate_up_proj" : "down_proj");
  return part;
}

} // namespace

const std::vector<FusedProjection>& fused_projections(const ModelConfig& config) {
  static const std::vector<FusedProjection> phi3 = {{"qkv_proj", {"q_proj", "k_proj", "v_proj"}},
                                                    {"gate_up_proj", {"gate_proj", "up_proj"}}};
  static const std::vector<FusedProjection> none;
  return config.model_type == "phi3" ? phi3 : none;
}

std::optional<FusedPart> fused_part(const ModelConfig& config, const std::string& module) {
  auto dot = module.rfind('.');
  if (dot == std::string::npos)
    return std::nullopt;
  auto parent = module.substr(0, dot + 1), own = module.substr(dot + 1);
  // A part's rows: its output width.
  auto rows_of = [&](const std::string& part) {
    return part == "q_proj"                  ? config.num_attention_heads * config.head_dim
      : part == "k_proj" || part == "v_proj" ? config.num_key_value_heads * config.head_dim
                                             : config.intermediate_size;
  };
  for (const auto& projection : fused_projections(config)) {
    auto found = std::find(projection.parts.begin(), projection.parts.end(), own);
    if (found == projection.parts.end())
      continue;
    FusedPart fused;
    fused.name = projection.name;
    fused.module = parent + projection.name;
    fused.part = static_cast<std::size_t>(found - projection.parts.begin());
    for (const auto& part : projection.parts) {
      if (fused.parts.size() < fused.part)
        fused.offset += rows_of(part);
      fused.parts.push_back(parent + part);
      fused.total_rows += rows_of(part);
    }
    fused.rows = rows_of(own);
    return fused;
  }
  return std::nullopt;
}

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
  // A language model's generation defaults: the folder's own, or what transformers writes for a
  // model that had none (its token ids, marked as taken from config.json).
  if (config.num_labels == 0) {
    auto generation = config.generation_config;
    if (!generation.is_object()) {
      generation = {{"_from_model_config", true}};
      auto config_json = config.to_json();
      for (const char* key : {"bos_token_id", "eos_token_id"})
        if (config_json.contains(key))
          generation[key] = config_json[key];
    }
    std::ofstream out(folder / "generation_config.json");
    out << generation.dump(2) << "\n";
    if (!out)
      throw CheckpointError((folder / "generation_config.json").string() + ": write failed");
  }
  auto dtype = storage_dtype(config.torch_dtype);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, tensor] : merged_parameters(model))
    tensors.emplace_back(name, tensor.to(dtype));
  save_safetensors(folder / "model.safetensors", stored_layout(config, std::move(tensors)));
}

Transformer load_pretrained(const std::filesystem::path& folder, torch::ScalarType dtype, Head head,
                            std::uint64_t seed) {
  auto config = ModelConfig::load(folder / "config.json");
  read_generation_config(folder / "generation_config.json", config);
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
  std::pair<std::string, torch::Tensor> last_fused;    // read once for its two or three parts
  std::map<std::string, torch::Tensor> packed_tensors; // a layer's packed experts, read once
  for (auto& parameter : model->named_parameters()) {
    auto name = parameter.key();
    auto fused = fused_part(config, weight_module(name));
    if (fused)
      name = fused->module + ".weight";
    auto found = shards.file_of.find(name);
    if (new_head && name == "score.weight")
      continue;
    std::optional<PackedExpertPart> packed;
    if (found == shards.file_of.end() && config.moe()) {
      // transformers 5's names: packed experts, Mixtral's router under `mlp`.
      packed = packed_expert_part(config, name);
      auto module = weight_module(name);
      auto dot = module.rfind('.');
      auto renamed = packed        ? packed->tensor
        : dot == std::string::npos ? name
                                   : transformers5_module(module.substr(0, dot)) + module.substr(dot) + ".weight";
      if (auto alternative = shards.file_of.find(renamed); alternative != shards.file_of.end()) {
        found = alternative;
        name = renamed;
      } else {
        packed.reset();
      }
    }
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
      if (auto part = packed_expert_part(config, name))
        tried += ", nor '" + part->tensor + "' (transformers 5's packed experts)";
      throw CheckpointError(folder.string() + ": tensor '" + name + "'" + tried
                            + " is missing (config.json describes a " + config.model_type + " model that has it)");
    }
    const auto& file = shards.files.at(found->second);
    torch::Tensor tensor;
    if (packed) {
      if (!packed_tensors.count(name)) {
        // A layer's two, read once: its experts' parameters come in order (each expert's gate, up,
        // down), and the next layer's only after them.
        if (packed_tensors.size() == 2)
          packed_tensors.clear();
        packed_tensors[name] = file.load(name);
      }
      const auto& whole = packed_tensors.at(name);
      auto width = config.moe_intermediate_size, hidden = config.hidden_size;
      auto expected = packed->gate_and_up ? std::vector<std::int64_t>{config.num_experts, 2 * width, hidden}
                                          : std::vector<std::int64_t>{config.num_experts, hidden, width};
      if (whole.sizes() != torch::IntArrayRef(expected))
        throw CheckpointError(file.path().string() + ": tensor '" + name + "' has shape " + shape_text(whole.sizes())
                              + " but config.json implies " + shape_text(expected));
      tensor = whole[packed->expert].narrow(0, packed->offset, parameter.value().size(0));
    } else if (fused) {
      if (last_fused.first != name)
        last_fused = {name, file.load(name)};
      const auto& whole = last_fused.second;
      auto columns = parameter.value().size(1);
      if (whole.dim() != 2 || whole.size(0) != fused->total_rows || whole.size(1) != columns)
        throw CheckpointError(file.path().string() + ": tensor '" + name + "' has shape " + shape_text(whole.sizes())
                              + " but config.json implies " + shape_text({fused->total_rows, columns}));
      tensor = whole.narrow(0, fused->offset, fused->rows);
    } else {
      tensor = file.load(name);
    }
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
