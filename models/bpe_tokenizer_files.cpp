// Reading a tokenizer's files (tokenizer.json, the tokenizer_config.json beside it), fitting it to a
// model's embedding, and writing the files back.
#include <chorus/errors.hpp>

#include "models/bpe_tokenizer.hpp"
#include "models/byte_level.hpp"
#include "models/chat_template.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>

namespace chorus::models {

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& key, const std::string& what) {
  tokenizer_file_error(file, key, what);
}

// Token ids index tables sized by the largest one: a corrupt or hostile file must not ask for an
// exabyte. The largest real vocabularies hold a few hundred thousand tokens.
constexpr std::int64_t kMaxTokenId = std::int64_t{1} << 24;

// The token id `id` of `token` under `key`. @throws CheckpointError unless 0 <= id < kMaxTokenId.
std::int64_t token_id(const std::filesystem::path& file, const std::string& key, const std::string& token,
                      const nlohmann::json& id) {
  if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() >= kMaxTokenId)
    fail(file, key,
         "token '" + token + "' has no valid id (an integer from 0 to " + std::to_string(kMaxTokenId - 1) + ")");
  return id.get<std::int64_t>();
}

// SentencePiece's spelling of byte b as a token: "<0x0A>".
std::string byte_token(unsigned b) {
  static const char* hex = "0123456789ABCDEF";
  return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

} // namespace

// -- added tokens -------------------------------------------------------------

void BpeTokenizer::index_added_tokens() {
  added_trie_ = {};
  kept_special_.clear();
  for (const auto& [content, id] : added_)
    if (content == kMistralCalls || content == kMistralArgs || content == kMistralCallId) {
      kept_special_.resize(std::max(kept_special_.size(), static_cast<std::size_t>(id) + 1), false);
      kept_special_[static_cast<std::size_t>(id)] = true;
    }
  for (std::size_t i = 0; i < added_.size(); ++i) {
    if (added_[i].first.empty())
      continue;
    auto& entry = added_trie_[added_trie_.insert(added_[i].first)].value;
    if (!entry) // of two entries with one text, the first wins
      entry = i;
  }
}

// -- loading ------------------------------------------------------------------

BpeTokenizer::BpeTokenizer() = default;
BpeTokenizer::~BpeTokenizer() = default;

std::unique_ptr<BpeTokenizer> BpeTokenizer::load(const std::filesystem::path& path) {
  auto file = std::filesystem::is_directory(path) ? path / "tokenizer.json" : path;
  std::ifstream in(file);
  if (!in) {
    if (std::filesystem::exists(file.parent_path() / "tokenizer.model"))
      throw CheckpointError(file.string()
                            + ": cannot open; the folder has only SentencePiece's tokenizer.model, "
                              "which chorus does not read (transformers writes tokenizer.json with "
                              "AutoTokenizer.from_pretrained(folder).save_pretrained(folder))");
    throw CheckpointError(file.string() + ": cannot open");
  }
  auto root = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object())
    throw CheckpointError(file.string() + ": invalid JSON");
  std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer());
  tokenizer->file_ = file;
  // A value of the wrong JSON type deep in the file is an error naming the file, like the rest.
  try {
    tokenizer->read(root);
  } catch (const json::exception& error) {
    throw CheckpointError(file.string() + ": unexpected JSON: " + error.what());
  }
  return tokenizer;
}

void BpeTokenizer::read(const json& root) {
  decoder_ = TokenDecoder::from_json(root.value("decoder", json()), file_);
  normalizer_ = Normalizer::from_json(root.value("normalizer", json()), file_);
  pre_tokenizer_ = PreTokenizer::from_json(root.value("pre_tokenizer", json()), decoder_.spelling, file_);

  if (!root.contains("model") || !root["model"].is_object())
    fail(file_, "model", "missing");
  const auto& model = root["model"];
  if (model.value("type", "BPE") != "BPE")
    fail(file_, "model.type", "only BPE is supported, got " + model.value("type", ""));
  ignore_merges_ = model.value("ignore_merges", false);
  if (!model.contains("vocab") || !model["vocab"].is_object())
    fail(file_, "model.vocab", "missing");
  std::int64_t largest = -1;
  for (const auto& [token, value] : model["vocab"].items()) {
    auto id = token_id(file_, "model.vocab", token, value);
    vocab_[token] = id;
    largest = std::max(largest, id);
  }
  const auto& merges = model.value("merges", json::array());
  std::int64_t rank = 0;
  for (const auto& merge : merges) {
    std::string left, right;
    if (merge.is_string()) {
      auto text = merge.get<std::string>();
      auto space = text.find(' ', 1); // a symbol is never empty, so the separator is not at 0
      if (space == std::string::npos)
        fail(file_, "model.merges", "entry " + std::to_string(rank) + " '" + text + "' is not \"a b\"");
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      fail(file_, "model.merges", "entry " + std::to_string(rank) + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    auto l = vocab_.find(left), r = vocab_.find(right), m = vocab_.find(left + right);
    if (l == vocab_.end() || r == vocab_.end() || m == vocab_.end())
      fail(file_, "model.merges",
           "entry " + std::to_string(rank) + " '" + left + " " + right
             + "' names a token that is not in the vocabulary");
    auto key = (static_cast<std::uint64_t>(l->second) << 32) | static_cast<std::uint64_t>(r->second);
    merges_.insert_or_assign(key, Merge{rank, m->second}); // a pair listed twice: the last rank, as Hugging Face
    ++rank;
  }

  for (const auto& added : root.value("added_tokens", json::array())) {
    if (!added.contains("content") || !added["content"].is_string() || !added.contains("id"))
      fail(file_, "added_tokens", "an entry lacks content or id");
    auto id = token_id(file_, "added_tokens", added["content"].get<std::string>(), added["id"]);
    added_.emplace_back(added["content"].get<std::string>(), id);
    largest = std::max(largest, id);
    if (special_.size() <= static_cast<std::size_t>(id))
      special_.resize(static_cast<std::size_t>(id) + 1, false);
    special_[static_cast<std::size_t>(id)] = added.value("special", false);
  }
  index_added_tokens();
  id_to_token_.resize(static_cast<std::size_t>(largest + 1));
  for (const auto& [token, id] : vocab_)
    id_to_token_[static_cast<std::size_t>(id)] = token;
  for (const auto& [content, id] : added_)
    id_to_token_[static_cast<std::size_t>(id)] = content;
  special_.resize(id_to_token_.size(), false);
  added_id_.assign(id_to_token_.size(), false);
  for (const auto& [content, id] : added_)
    added_id_[static_cast<std::size_t>(id)] = true;

  if (decoder_.spelling == Spelling::byte_level) {
    if (model.value("byte_fallback", false))
      fail(file_, "model.byte_fallback", "byte fallback is not supported with a ByteLevel decoder");
    byte_symbol_ = byte_symbols();
    for (int b = 0; b < 256; ++b) {
      const auto& symbol = byte_symbol_[static_cast<std::size_t>(b)];
      symbol_byte_[symbol] = static_cast<unsigned char>(b);
      auto id = vocab_.find(symbol);
      if (id == vocab_.end())
        fail(file_, "model.vocab", "has no token for byte " + std::to_string(b) + ": not a byte-level vocabulary");
      byte_id_[static_cast<std::size_t>(b)] = id->second;
    }
  } else {
    // A character the vocabulary lacks is spelled by its bytes' tokens, or is the unknown token:
    // one of them must exist, or such text could not be encoded at all.
    byte_fallback_ = model.value("byte_fallback", false);
    fuse_unk_ = model.value("fuse_unk", false);
    token_byte_.assign(id_to_token_.size(), -1);
    byte_id_.fill(-1);
    bool every_byte = true;
    for (unsigned b = 0; b < 256; ++b) {
      auto id = vocab_.find(byte_token(b));
      if (id == vocab_.end()) {
        every_byte = false;
        continue;
      }
      byte_id_[b] = id->second;
      if (decoder_.byte_fallback)
        token_byte_[static_cast<std::size_t>(id->second)] = static_cast<std::int16_t>(b);
    }
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      auto unk = vocab_.find(model["unk_token"].get<std::string>());
      if (unk == vocab_.end())
        fail(file_, "model.unk_token", "'" + model["unk_token"].get<std::string>() + "' is not in the vocabulary");
      unk_id_ = unk->second;
    }
    if (!unk_id_ && !(byte_fallback_ && every_byte))
      fail(file_, "model.unk_token",
           "a SentencePiece vocabulary needs an unknown token, or byte_fallback with the 256 tokens <0x00> to <0xFF>");
  }
  read_post_processor(root.value("post_processor", json()));
  read_config(file_.parent_path() / "tokenizer_config.json");
}

void BpeTokenizer::read_post_processor(const json& processor) {
  // TemplateProcessing's "single": the special tokens before the text's place ("Sequence" A), each
  // spelled by the processor's special_tokens map, or the vocabulary. Other processors add nothing
  // before a text (ByteLevel's, in a Sequence beside it, only adjusts offsets).
  if (!processor.is_object())
    return;
  if (processor.value("type", "") == "Sequence") {
    for (const auto& step : processor.value("processors", json::array()))
      read_post_processor(step);
    return;
  }
  if (processor.value("type", "") != "TemplateProcessing" || !processor.contains("single"))
    return;
  for (const auto& item : processor["single"]) {
    if (item.contains("Sequence"))
      break;
    if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id"))
      continue;
    if (!item["SpecialToken"]["id"].is_string())
      fail(file_, "post_processor.single", "a SpecialToken's id is not a string");
    auto name = item["SpecialToken"]["id"].get<std::string>();
    const auto& listed = processor.value("special_tokens", json::object());
    if (listed.contains(name) && listed[name].contains("ids") && listed[name]["ids"].is_array()) {
      for (const auto& id : listed[name]["ids"])
        text_prefix_.push_back(token_id(file_, "post_processor.special_tokens", name, id));
    } else if (auto id = special_token(name)) {
      text_prefix_.push_back(*id);
    } else if (auto plain = vocab_.find(name); plain != vocab_.end()) {
      text_prefix_.push_back(plain->second);
    } else {
      fail(file_, "post_processor.single", "token '" + name + "' is not a token of this tokenizer");
    }
  }
}

void BpeTokenizer::read_config(const std::filesystem::path& file) {
  // Optional: the end-of-sequence token and which chat template the model was trained with.
  std::ifstream in(file);
  auto root = in ? json::parse(in, nullptr, /*allow_exceptions=*/false) : json::object();
  if (root.is_discarded() || !root.is_object())
    throw CheckpointError(file.string() + ": invalid JSON");
  // A special token's text: a string or {"content": string, ...}.
  auto token_text = [&](const char* key) -> std::optional<std::string> {
    if (!root.contains(key) || root[key].is_null())
      return std::nullopt;
    const auto& value = root[key];
    if (value.is_string())
      return value.get<std::string>();
    if (value.is_object() && value.contains("content") && value["content"].is_string())
      return value["content"].get<std::string>();
    fail(file, key, "expected a string or {\"content\": string}");
  };
  if (auto bos = token_text("bos_token"))
    bos_text_ = *bos;
  if (auto eos = token_text("eos_token")) {
    const auto& name = *eos;
    eos_text_ = name;
    eos_id_ = special_token(name);
    if (!eos_id_) {
      auto plain = vocab_.find(name);
      if (plain == vocab_.end())
        fail(file, "eos_token", "'" + name + "' is not a token of " + file_.string());
      eos_id_ = plain->second;
    }
  }
  // As transformers reads them: a chat_template.jinja file wins over the config's template.
  std::optional<std::string> chat_template;
  if (std::ifstream jinja(file.parent_path() / "chat_template.jinja"); jinja) {
    chat_template = std::string(std::istreambuf_iterator<char>(jinja), {});
    template_file_ = file.parent_path() / "chat_template.jinja";
  } else if (root.contains("chat_template") && !root["chat_template"].is_null()) {
    const auto& value = root["chat_template"];
    chat_template.emplace();
    if (value.is_string()) {
      chat_template = value.get<std::string>();
    } else if (value.is_array()) { // [{"name": "default", "template": "..."}, ...]
      for (const auto& entry : value)
        if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template"))
          chat_template = entry["template"].get<std::string>();
    } else {
      fail(file, "chat_template", "expected a string or a list of named templates");
    }
  }
  if (chat_template) {
    if (chat_template->find("<|im_start|>") != std::string::npos)
      chat_format_ = ChatFormat::chatml;
    else if (chat_template->find("<|start_header_id|>") != std::string::npos)
      chat_format_ =
        chat_template->find("Cutting Knowledge Date") != std::string::npos ? ChatFormat::llama31 : ChatFormat::llama3;
    else
      chat_format_ = ChatFormat::jinja;
    thinks_ = chat_format_ == ChatFormat::chatml && chat_template->find("reasoning_content") != std::string::npos;
    tool_call_format_ = chat_format_ == ChatFormat::llama31     ? ToolCallFormat::json
      : chat_template->find(kMistralCalls) != std::string::npos ? ToolCallFormat::mistral
                                                                : ToolCallFormat::tagged;
  }
  if (template_file_.empty())
    template_file_ = file;
  // The model's own template, run as transformers runs it; but for Llama 3's first template, which
  // writes the generation prompt even when not asked (Meta fixed it in a later revision; chorus
  // writes it as the fix does, so that a rendered assistant turn ends where the turn does).
  if (chat_template && chat_format_ != ChatFormat::llama3) {
    try {
      jinja_ = std::make_shared<const JinjaTemplate>(*chat_template);
    } catch (const JinjaError& error) {
      throw CheckpointError(template_file_.string() + ": chat_template: " + error.what());
    }
    const std::array<std::optional<std::string>, 2> prompts{generation_prompt(false), generation_prompt(true)};
    for (std::size_t enable_thinking = 0; enable_thinking < 2; ++enable_thinking)
      opens_thinking_[enable_thinking] = opens_thinking_in(prompts[enable_thinking]);
    thinks_ = thinks_ || opens_thinking_[1] || switches_thinking_off(prompts[0], prompts[1]);
  }
}

void BpeTokenizer::fit_vocabulary(std::int64_t model_vocab) {
  if (vocab_size() <= model_vocab)
    return;
  for (const auto& [token, id] : vocab_)
    if (id >= model_vocab)
      throw CheckpointError(file_.string() + " has " + std::to_string(vocab_size())
                            + " tokens but config.json's vocab_size is " + std::to_string(model_vocab) + " (token '"
                            + token + "' has id " + std::to_string(id) + ")");
  added_.erase(
    std::remove_if(added_.begin(), added_.end(), [&](const auto& added) { return added.second >= model_vocab; }),
    added_.end());
  index_added_tokens();
  auto size = static_cast<std::size_t>(model_vocab);
  id_to_token_.resize(std::min(id_to_token_.size(), size));
  special_.resize(id_to_token_.size());
  added_id_.resize(id_to_token_.size());
  if (!token_byte_.empty())
    token_byte_.resize(id_to_token_.size());
  if (eos_id_ && *eos_id_ >= model_vocab)
    eos_id_.reset();
  text_prefix_.erase(
    std::remove_if(text_prefix_.begin(), text_prefix_.end(), [&](auto id) { return id >= model_vocab; }),
    text_prefix_.end());
  std::lock_guard<std::mutex> guard{cache_mutex_};
  cache_.clear();
}

void BpeTokenizer::save(const std::filesystem::path& folder) const {
  std::error_code ec;
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}) {
    auto source = file_.parent_path() / name;
    if (std::string(name) == "tokenizer.json")
      source = file_;
    if (!std::filesystem::exists(source))
      continue;
    if (std::filesystem::equivalent(source.parent_path(), folder, ec))
      continue; // saving into the folder it came from
    std::filesystem::copy_file(source, folder / name, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec)
      throw CheckpointError((folder / name).string() + ": cannot write: " + ec.message());
  }
}

} // namespace chorus::models
