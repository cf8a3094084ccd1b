// BpeTokenizer: the byte-level BPE of Hugging Face's `tokenizer.json` (GPT-2, Qwen2/Qwen3, Llama 3):
// NFC normalisation where the file asks for it, the split regex with Unicode classes, byte-level
// symbols, merges by rank, added and special tokens, and decoding back to text.
#pragma once

#include "models/tokenizer.hpp"

#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace chorus::models {

class BpeTokenizer final : public Tokenizer {
public:
  /// Reads `path`: a tokenizer.json file, or a model folder holding one, and the tokenizer_config.json
  /// beside it if there is one (its `eos_token` leads the stop tokens; its `chat_template`, or the
  /// chat_template.jinja file beside it that newer transformers write instead and prefer, picks the
  /// chat format).
  /// @throws CheckpointError naming the file and the key for anything it cannot honour.
  static std::unique_ptr<BpeTokenizer> load(const std::filesystem::path& path);

  ~BpeTokenizer() override;

  std::vector<std::int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special = false) const override;
  std::int64_t vocab_size() const override;
  std::optional<std::int64_t> special_token(std::string_view name) const override;

  /// The format of tokenizer_config.json's chat_template: ChatML (Qwen) or the Llama 3 headers. Without
  /// a template, ChatML when the vocabulary has <|im_start|>, Llama 3 when it has <|start_header_id|>.
  /// Tools and "tool" messages are written as Qwen3's template does; the Llama 3 format has none. A
  /// ChatML template that reads `reasoning_content` (Qwen3's) also writes reasoning as Qwen3 does.
  /// @throws CheckpointError for a template of another family, or a vocabulary with neither;
  /// std::invalid_argument for tools or tool messages in Llama 3's first template (render_llama3).
  std::vector<std::int64_t> apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                                const std::vector<Tool>& tools = {},
                                                bool enable_thinking = true) const override;
  bool thinks() const override {
    return thinks_;
  }
  ToolCallFormat tool_call_format() const override {
    return chat_format_ == ChatFormat::llama31 ? ToolCallFormat::json : ToolCallFormat::tagged;
  }
  std::vector<std::int64_t> stop_token_ids() const override;

  /// Copies the tokenizer.json it was loaded from, and the tokenizer_config.json and
  /// chat_template.jinja beside it if any.
  void save(const std::filesystem::path& folder) const override;

private:
  BpeTokenizer();

  struct Regex;
  // llama31: Llama 3.1's template (3.2's and 3.3's too), with its dated system turn.
  enum class ChatFormat { by_vocabulary, chatml, llama3, llama31, unsupported };

  void read_config(const std::filesystem::path& file);

  // The ids of one pre-tokenised piece (already byte-level symbols).
  void encode_piece(const std::string& piece, std::vector<std::int64_t>& ids) const;
  void encode_text(std::string_view text, std::vector<std::int64_t>& ids) const;
  // The leftmost added token in `text` from `from` on (the longest at a position), or null.
  const std::pair<std::string, std::int64_t>* find_added(std::string_view text, std::size_t from,
                                                         std::size_t& at) const;

  std::filesystem::path file_;
  std::filesystem::path template_file_; // where the chat template came from
  std::optional<std::int64_t> eos_id_;
  ChatFormat chat_format_ = ChatFormat::by_vocabulary;
  bool thinks_ = false;
  std::string template_date_; // the date a Llama 3.1 template writes; empty: today's (strftime_now)
  bool nfc_ = false;
  bool ignore_merges_ = false;
  std::unique_ptr<Regex> split_;
  std::unordered_map<std::string, std::int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  struct Merge {
    std::int64_t rank;
    std::int64_t merged; // the id of the merged token
  };
  std::unordered_map<std::uint64_t, Merge> merges_;         // (left id << 32 | right id) -> merge
  std::array<std::int64_t, 256> byte_id_{};                 // byte -> id of its symbol
  std::vector<std::pair<std::string, std::int64_t>> added_; // longest first
  std::vector<bool> added_id_;                              // by id: an added token
  std::vector<bool> special_;                               // by id: an added token marked special
  std::array<std::string, 256> byte_symbol_;                // byte -> its UTF-8 symbol
  std::unordered_map<std::string, unsigned char> symbol_byte_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::int64_t>> cache_;
};

} // namespace chorus::models
