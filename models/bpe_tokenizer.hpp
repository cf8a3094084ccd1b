// BpeTokenizer: the BPE of Hugging Face's `tokenizer.json`, byte-level (GPT-2, Qwen2/Qwen3, Llama 3,
// Mistral's Tekken) or SentencePiece's (Llama 2, Mistral 7B, Gemma: characters, "▁" for a space,
// byte fallback): the normaliser and pre-tokenizer the file names (bpe_pipeline.hpp), merges by rank,
// added and special tokens, decoding back to text, and the model's chat template.
#pragma once

#include "models/bpe_pipeline.hpp"
#include "models/byte_trie.hpp"
#include "models/jinja.hpp"
#include "models/tokenizer.hpp"

#include <array>
#include <filesystem>
#include <functional>
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
  std::string token_text(std::int64_t id, bool skip_special = false) const override;
  std::int64_t vocab_size() const override;
  std::vector<std::int64_t> text_prefix() const override {
    return text_prefix_;
  }
  std::optional<std::int64_t> special_token(std::string_view name) const override;

  /// The conversation as tokenizer_config.json's chat_template writes it: the template runs in the
  /// Jinja engine as transformers runs it (JinjaTemplate: the messages in OpenAI's shapes, calls'
  /// arguments as objects, a tool message's tool_call_id and name from the call it answers), but for
  /// Llama 3's first template, written by render_llama3 without its generation-prompt bug. Without a
  /// template, render_chatml when the vocabulary has <|im_start|>, render_llama3 when it has
  /// <|start_header_id|>. Message text is always plain text.
  /// @throws CheckpointError for a vocabulary with neither and no template; std::invalid_argument
  /// for what the template refuses (raise_exception's message, naming the template file) or cannot
  /// render, and for tools or tool messages in Llama 3's first template (render_llama3).
  std::vector<std::int64_t> apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                                const std::vector<Tool>& tools = {},
                                                bool enable_thinking = true) const override;
  /// A ChatML template that handles `reasoning_content` (Qwen3's), or one whose generation prompt
  /// opens a <think> block.
  bool thinks() const override {
    return thinks_;
  }
  bool opens_thinking(bool enable_thinking) const override {
    return opens_thinking_[enable_thinking ? 1 : 0];
  }
  ToolCallFormat tool_call_format() const override {
    return tool_call_format_;
  }
  std::vector<std::int64_t> stop_token_ids() const override;

  /// Fits the tokenizer to a model whose embedding has `model_vocab` rows: added tokens with ids past
  /// it are dropped (Gemma 3 1B's tokenizer keeps the image token of the multimodal models, one id
  /// past its embedding; text spelling it is then plain text), so no id the model lacks is produced.
  /// @throws CheckpointError if a token of the BPE vocabulary itself lies past it (another model's
  /// tokenizer).
  void fit_vocabulary(std::int64_t model_vocab);

  /// Copies the tokenizer.json it was loaded from, and the tokenizer_config.json and
  /// chat_template.jinja beside it if any.
  void save(const std::filesystem::path& folder) const override;

private:
  BpeTokenizer();

  // llama31: Llama 3.1's template (3.2's and 3.3's too), with its dated system turn.
  // jinja: any other template, run by the Jinja engine.
  enum class ChatFormat { by_vocabulary, chatml, llama3, llama31, jinja };

  void read(const nlohmann::json& root); // tokenizer.json's object, then tokenizer_config.json
  void read_config(const std::filesystem::path& file);
  void read_post_processor(const nlohmann::json& processor);
  void index_added_tokens(); // builds added_trie_ and kept_special_ from added_
  // Whether decoding with skip_special leaves out added token `id` (special, not kept).
  bool skipped_special(std::size_t id) const;
  // What the generation prompt adds to a one-question conversation with `enable_thinking`; nullopt
  // for a template that needs more than a question to render (a system turn, say).
  std::optional<std::string> generation_prompt(bool enable_thinking) const;
  // The generation prompt leaves a <think> block open: the completion starts inside the reasoning.
  static bool opens_thinking_in(const std::optional<std::string>& prompt);
  // Thinking off, the generation prompt ends with an empty <think></think> block that thinking on
  // does not write: the template switches a thinking model's reasoning off (Qwen3's, SmolLM3's way).
  static bool switches_thinking_off(const std::optional<std::string>& off, const std::optional<std::string>& on);
  std::vector<ChatPiece> render_jinja(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                      const std::vector<Tool>& tools, bool enable_thinking) const;

  // The symbols of one pre-tokenised piece: a token per byte, or per character (SentencePiece).
  void spell(std::string_view piece, std::vector<std::int64_t>& ids) const;
  // Merges adjacent symbols by rank, as Hugging Face's BPE does.
  void merge(std::vector<std::int64_t>& ids) const;
  // The ids of one pre-tokenised piece.
  void encode_piece(std::string_view piece, std::vector<std::int64_t>& ids) const;
  // The ids of text between added tokens; `at_start`: it begins the whole input.
  void encode_text(std::string_view text, bool at_start, std::vector<std::int64_t>& ids) const;
  // Whether the added token added_[index] may be read at [at, at + length) of a text.
  using AddedFilter = std::function<bool(std::size_t index, std::size_t at, std::size_t length)>;
  // The leftmost added token in `text` from `from` on (the longest at a position) that `allowed`
  // accepts (any without it), or null; `at` is where it starts.
  const std::pair<std::string, std::int64_t>* find_added(std::string_view text, std::size_t from, std::size_t& at,
                                                         const AddedFilter* allowed = nullptr) const;

  std::filesystem::path file_;
  std::filesystem::path template_file_; // where the chat template came from
  std::optional<std::int64_t> eos_id_;
  ChatFormat chat_format_ = ChatFormat::by_vocabulary;
  ToolCallFormat tool_call_format_ = ToolCallFormat::tagged;
  bool thinks_ = false;
  std::array<bool, 2> opens_thinking_{}; // by enable_thinking
  std::shared_ptr<const JinjaTemplate> jinja_;
  std::string bos_text_, eos_text_; // tokenizer_config.json's tokens, as templates see them
  Normalizer normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  TokenDecoder decoder_;
  bool ignore_merges_ = false;
  bool byte_fallback_ = false, fuse_unk_ = false; // SentencePiece: characters the vocabulary lacks
  std::optional<std::int64_t> unk_id_;
  std::vector<std::int64_t> text_prefix_; // the post-processor's tokens before a single text
  std::unordered_map<std::string, std::int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  struct Merge {
    std::int64_t rank;
    std::int64_t merged; // the id of the merged token
  };
  std::unordered_map<std::uint64_t, Merge> merges_;         // (left id << 32 | right id) -> merge
  std::array<std::int64_t, 256> byte_id_{};                 // byte -> id of its symbol or byte token (-1: none)
  std::vector<std::int16_t> token_byte_;                    // SentencePiece, by id: a byte token's byte, or -1
  std::vector<std::pair<std::string, std::int64_t>> added_; // as the file lists them
  ByteTrie<std::optional<std::size_t>> added_trie_; // at each node, the index in added_ of the token ending there
  std::vector<bool> added_id_;                      // by id: an added token
  std::vector<bool> special_;                       // by id: an added token marked special
  // by id: a special token decoding writes even when it skips special tokens: Mistral's call
  // markers, which a completion's calls are read back by
  std::vector<bool> kept_special_;
  std::array<std::string, 256> byte_symbol_; // byte -> its UTF-8 symbol
  std::unordered_map<std::string, unsigned char> symbol_byte_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::int64_t>> cache_;
};

} // namespace chorus::models
