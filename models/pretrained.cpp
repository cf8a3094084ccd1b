// Resolving model references. The built-in tiny model is made, not downloaded: nothing here needs
// a network.
#include "models/pretrained.hpp"

#include <chorus/errors.hpp>

#include "models/bpe_tokenizer.hpp"
#include "models/checkpoint.hpp"

namespace chorus::models {

Pretrained builtin_tiny(std::uint64_t seed, Head head) {
  auto config = ModelConfig::tiny(/*vocab_size=*/264); // 259 byte-tokenizer ids, padded to a multiple of 8
  config.eos_token_ids = {ByteTokenizer::kImEnd, ByteTokenizer::kEndOfText};
  config.num_labels = head == Head::scoring ? 1 : 0;
  return {Transformer(config, seed), std::make_shared<ByteTokenizer>()};
}

Pretrained load_pretrained_model(const std::string& reference, torch::ScalarType dtype, std::uint64_t seed,
                                 torch::Device device, Head head) {
  constexpr std::string_view kBuiltin = "builtin:";
  if (reference.rfind(kBuiltin, 0) == 0) {
    if (reference != "builtin:tiny")
      throw CheckpointError("model '" + reference + "': unknown built-in model (expected builtin:tiny)");
    auto pretrained = builtin_tiny(seed, head);
    pretrained.model->to(device, dtype);
    return pretrained;
  }
  std::filesystem::path folder(reference);
  if (!std::filesystem::is_directory(folder))
    throw CheckpointError("model '" + reference
                          + "': not a folder (expected builtin:tiny or a Hugging Face model folder)");
  if (!std::filesystem::exists(folder / "tokenizer.json"))
    throw CheckpointError(folder.string() + ": no tokenizer.json");
  Pretrained pretrained;
  pretrained.model = load_pretrained(folder, dtype, head, seed);
  if (!device.is_cpu())
    pretrained.model->to(device);
  auto tokenizer = BpeTokenizer::load(folder / "tokenizer.json");
  tokenizer->fit_vocabulary(pretrained.model->config().vocab_size);
  pretrained.tokenizer = std::move(tokenizer);
  return pretrained;
}

void save_pretrained_model(const Pretrained& pretrained, const std::filesystem::path& folder, bool merge_adapter,
                           const std::string& base_model) {
  // Written beside its place and renamed into it: a save that fails (a full disk) leaves no folder
  // that looks like a complete model.
  auto target = folder.filename().empty() ? folder.parent_path() : folder;
  auto partial = target;
  partial += ".partial";
  std::error_code ec;
  std::filesystem::remove_all(partial, ec);
  try {
    auto model = pretrained.model;
    if (model->lora_config() && !merge_adapter)
      save_adapter(model, partial, base_model);
    else
      save_pretrained(model, partial);
    pretrained.tokenizer->save(partial);
  } catch (...) {
    std::filesystem::remove_all(partial, ec);
    throw;
  }
  std::filesystem::remove_all(target, ec);
  std::filesystem::rename(partial, target, ec);
  if (ec)
    throw CheckpointError(target.string() + ": cannot move the saved model into place: " + ec.message());
}

} // namespace chorus::models
