// The byte tokenizer and its Hugging Face files. Hugging Face's byte-level BPE names each byte by a
// printable character (GPT-2's bytes_to_unicode); with no merges, every byte is its own token.
#include "models/tokenizer.hpp"

#include <chorus/errors.hpp>

#include "models/byte_level.hpp"
#include "models/chat_template.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <fstream>
#include <stdexcept>

namespace chorus::models {

namespace {

constexpr std::array<std::string_view, 3> kSpecialNames{"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

void append_text(std::vector<std::int64_t>& ids, std::string_view text) {
  for (unsigned char byte : text)
    ids.push_back(byte);
}

} // namespace

std::vector<std::int64_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<std::int64_t> ids;
  ids.reserve(text.size());
  std::size_t plain = 0; // start of the text not yet emitted
  for (auto at = text.find("<|"); at != std::string_view::npos; at = text.find("<|", at + 1)) {
    for (std::size_t i = 0; i < kSpecialNames.size(); ++i) {
      if (text.substr(at, kSpecialNames[i].size()) == kSpecialNames[i]) {
        append_text(ids, text.substr(plain, at - plain));
        ids.push_back(kEndOfText + static_cast<std::int64_t>(i));
        plain = at + kSpecialNames[i].size();
        at = plain - 1;
        break;
      }
    }
  }
  append_text(ids, text.substr(plain));
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<std::int64_t>& ids, bool skip_special) const {
  std::string text;
  for (auto id : ids) {
    if (id >= 0 && id < 256) {
      text += static_cast<char>(id);
    } else if (id >= kEndOfText && id < kVocabSize) {
      if (!skip_special)
        text += kSpecialNames[static_cast<std::size_t>(id - kEndOfText)];
    } else {
      throw std::out_of_range("token id " + std::to_string(id) + " is outside the byte tokenizer's vocabulary of "
                              + std::to_string(kVocabSize));
    }
  }
  return text;
}

std::optional<std::int64_t> ByteTokenizer::special_token(std::string_view name) const {
  for (std::size_t i = 0; i < kSpecialNames.size(); ++i)
    if (kSpecialNames[i] == name)
      return kEndOfText + static_cast<std::int64_t>(i);
  return std::nullopt;
}

std::vector<std::int64_t> ByteTokenizer::apply_chat_template(const std::vector<ChatMessage>& messages,
                                                             bool add_generation_prompt, const std::vector<Tool>& tools,
                                                             bool) const {
  std::vector<std::int64_t> ids;
  for (const auto& piece : render_chatml(messages, add_generation_prompt, tools)) {
    if (piece.kind == ChatPiece::Kind::special)
      ids.push_back(*special_token(piece.value));
    else
      append_text(ids, piece.value);
  }
  return ids;
}

void ByteTokenizer::save(const std::filesystem::path& folder) const {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  auto symbols = byte_symbols();
  for (int b = 0; b < 256; ++b)
    vocab[symbols[static_cast<std::size_t>(b)]] = b;
  auto added = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < kSpecialNames.size(); ++i)
    added.push_back({{"id", kEndOfText + static_cast<std::int64_t>(i)},
                     {"content", std::string(kSpecialNames[i])},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  nlohmann::ordered_json tokenizer{
    {"version", "1.0"},
    {"truncation", nullptr},
    {"padding", nullptr},
    {"added_tokens", added},
    {"normalizer", nullptr},
    {"pre_tokenizer",
     {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", true}}},
    {"post_processor", nullptr},
    {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", true}}},
    {"model",
     {{"type", "BPE"},
      {"dropout", nullptr},
      {"unk_token", nullptr},
      {"continuing_subword_prefix", nullptr},
      {"end_of_word_suffix", nullptr},
      {"fuse_unk", false},
      {"byte_fallback", false},
      {"vocab", vocab},
      {"merges", nlohmann::ordered_json::array()}}},
  };
  nlohmann::ordered_json config{
    {"tokenizer_class", "PreTrainedTokenizerFast"},
    {"bos_token", nullptr},
    {"eos_token", "<|im_end|>"},
    {"pad_token", "<|endoftext|>"},
    {"model_max_length", 1024},
    {"chat_template",
     "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
     "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"},
  };
  for (const auto& [name, json] :
       {std::pair{"tokenizer.json", tokenizer}, std::pair{"tokenizer_config.json", config}}) {
    std::ofstream out(folder / name);
    out << json.dump(2) << "\n";
    if (!out)
      throw CheckpointError((folder / name).string() + ": write failed");
  }
}

} // namespace chorus::models
