// Tokenizers: text <-> token ids, special tokens, and chat templates that render a conversation into
// the ids a model was trained on.
#pragma once

#include <chorus/generation.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::models {

using ChatMessage = chorus::ChatMessage;
using Tool = chorus::Tool;

class Tokenizer {
public:
  virtual ~Tokenizer() = default;

  /// The ids of `text`. As Hugging Face tokenizers do, a special token spelled out in the text
  /// (e.g. "<|im_end|>") becomes that special token; nothing is added around the text. A BPE
  /// tokenizer reads ill-formed UTF-8 as U+FFFD, as decoding the bytes to a string first would.
  virtual std::vector<std::int64_t> encode(std::string_view text) const = 0;

  /// The text of `ids`; special tokens are written out unless `skip_special`.
  virtual std::string decode(const std::vector<std::int64_t>& ids, bool skip_special = false) const = 0;

  /// The text token `id` adds inside a sequence: its bytes for a grammar, its text in a log-prob
  /// listing. decode() of the one token, but for a SentencePiece decoder, which drops the space
  /// before the first word of a whole text ("▁Hello" alone decodes as "Hello", adds " Hello").
  /// @throws std::out_of_range for an id outside the vocabulary.
  virtual std::string token_text(std::int64_t id, bool skip_special = false) const {
    return decode({id}, skip_special);
  }

  virtual std::int64_t vocab_size() const = 0;

  /// The special tokens Hugging Face's tokenizer puts before a text when it adds special tokens
  /// (tokenizer.json's post-processor: Llama's and Gemma's beginning-of-sequence token; none for
  /// Qwen): what a plain-text prompt starts with, as transformers and vLLM tokenise one. (Tokens it
  /// would put after the text, an end-of-sequence token, are left out: a prompt goes on.)
  virtual std::vector<std::int64_t> text_prefix() const {
    return {};
  }

  /// The id of special token `name` (e.g. "<|im_end|>"), if the vocabulary has it.
  virtual std::optional<std::int64_t> special_token(std::string_view name) const = 0;

  /// The conversation in the model's chat format, as ids, ending with the start of an assistant
  /// turn when `add_generation_prompt`; `tools` are the functions the model may call (rendered as
  /// the format asks); `enable_thinking` false asks a thinking template for a generation prompt
  /// that skips the thinking (thinks()). Message content is always plain text: a special token
  /// spelled inside a message stays text and cannot end its turn (rendering the template to text
  /// and tokenising that, as Hugging Face does, would let it).
  /// @throws std::invalid_argument for a role the format has no place for, or tools it cannot write.
  virtual std::vector<std::int64_t> apply_chat_template(const std::vector<ChatMessage>& messages,
                                                        bool add_generation_prompt, const std::vector<Tool>& tools = {},
                                                        bool enable_thinking = true) const = 0;

  /// Whether the chat template is a thinking one (Qwen3's): assistant turns hold a reasoning in a
  /// <think> block before their content.
  virtual bool thinks() const {
    return false;
  }

  /// Whether the template's generation prompt leaves a <think> block open, with `enable_thinking`
  /// as given (Qwen3's "Thinking-2507" templates, QwQ's, DeepSeek-R1's distillations): a completion
  /// then starts inside the reasoning and closes it with </think>.
  virtual bool opens_thinking(bool enable_thinking) const {
    return false;
  }

  /// How the chat template writes function calls (Qwen's `<tool_call>` blocks, or Llama 3.1's JSON
  /// object), and so how they are read back and guided.
  virtual ToolCallFormat tool_call_format() const {
    return ToolCallFormat::tagged;
  }

  /// The tokens that end an assistant turn: generation stops at them.
  virtual std::vector<std::int64_t> stop_token_ids() const = 0;

  /// Writes tokenizer.json and tokenizer_config.json into `folder`.
  /// @throws CheckpointError if they cannot be written.
  virtual void save(const std::filesystem::path& folder) const = 0;
};

/// The built-in tokenizer: one token per byte (ids 0-255, so any UTF-8 text round-trips), plus the
/// ChatML special tokens <|endoftext|> (256), <|im_start|> (257) and <|im_end|> (258). The chat
/// format is ChatML, as Qwen models use:
///   <|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n
class ByteTokenizer final : public Tokenizer {
public:
  static constexpr std::int64_t kEndOfText = 256;
  static constexpr std::int64_t kImStart = 257;
  static constexpr std::int64_t kImEnd = 258;
  static constexpr std::int64_t kVocabSize = 259;

  std::vector<std::int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special = false) const override;
  std::int64_t vocab_size() const override {
    return kVocabSize;
  }
  std::optional<std::int64_t> special_token(std::string_view name) const override;
  std::vector<std::int64_t> apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                                const std::vector<Tool>& tools = {},
                                                bool enable_thinking = true) const override;
  std::vector<std::int64_t> stop_token_ids() const override {
    return {kImEnd, kEndOfText};
  }

  /// Writes the Hugging Face files of a byte-level BPE with no merges, which Hugging Face
  /// tokenizers (and BpeTokenizer) load as this same tokenizer.
  void save(const std::filesystem::path& folder) const override;
};

} // namespace chorus::models
