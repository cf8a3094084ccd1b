// The steps tokenizer.json puts around its BPE model, run as Hugging Face tokenizers runs them: the
// normalizer (NFC, Replace, Prepend), the pre-tokenizer (GPT-2's byte-level split, a Split on a
// string, SentencePiece's Metaspace) and the decoder (byte-level, or SentencePiece's Replace /
// ByteFallback / Fuse / Strip chain or its Metaspace decoder).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::models {

/// How a vocabulary spells text. GPT-2's byte-level symbols: every byte is one printable character
/// (Qwen, Llama 3, Mistral's Tekken). SentencePiece's characters: a space is "▁", and a character the
/// vocabulary lacks is spelled by the tokens of its bytes, "<0xE4>" (Llama 2, Mistral 7B, Gemma).
enum class Spelling { byte_level, characters };

/// The normalizer: steps applied in order to each run of text between added tokens.
class Normalizer {
public:
  /// Reads tokenizer.json's `normalizer` (null, NFC, Replace of a string, Prepend, or a Sequence of
  /// them). @throws CheckpointError naming `file` and the key for anything else.
  static Normalizer from_json(const nlohmann::json& json, const std::filesystem::path& file);

  /// `text` (well-formed UTF-8) normalised. Prepend adds to non-empty text only.
  std::string apply(std::string text) const;

private:
  struct Step {
    enum class Kind { nfc, replace, prepend } kind;
    std::string from, to; // replace: every `from` by `to`; prepend: `to` before the text
  };
  std::vector<Step> steps_;
};

/// The pre-tokenizer: cuts normalised text into the pieces that BPE merges within.
class PreTokenizer {
public:
  /// Reads tokenizer.json's `pre_tokenizer` for a vocabulary spelled `spelling`: for byte-level
  /// spelling, ByteLevel (GPT-2's split regex) or a Split on a regex followed by ByteLevel; for
  /// characters, none, a Split on a string, or Metaspace.
  /// @throws CheckpointError naming `file` and the key for anything else.
  static std::unique_ptr<PreTokenizer> from_json(const nlohmann::json& json, Spelling spelling,
                                                 const std::filesystem::path& file);

  virtual ~PreTokenizer() = default;

  /// Calls `piece` for each piece of `text`, in order (never an empty one). `at_start`: the text
  /// begins the whole input (Metaspace's prepend scheme "first" marks only that).
  virtual void split(std::string_view text, bool at_start,
                     const std::function<void(std::string_view)>& piece) const = 0;
};

/// The decoder: how a token's vocabulary string becomes text.
struct TokenDecoder {
  Spelling spelling = Spelling::byte_level;
  /// Characters: each `from` in a token is written as `to` ("▁" as a space).
  std::string from = "\xE2\x96\x81", to = " ";
  /// Characters: the byte tokens "<0x41>" are their bytes.
  bool byte_fallback = false;
  /// Characters: spaces removed from the start of the whole text (Strip).
  std::size_t strip_start = 0;
  /// Characters: the first token's `from`s are dropped, not written as `to` (Metaspace with a
  /// prepend scheme, as Hugging Face's tokenizers library decodes it).
  bool drop_first_replacements = false;

  /// Characters: the text of a token's vocabulary string, each `from` written as `to`, or dropped
  /// if it is the first token written and drop_first_replacements.
  std::string text(std::string token, bool first) const;

  /// Reads tokenizer.json's `decoder`: ByteLevel, or a Sequence of Replace (of a string), ByteFallback,
  /// Fuse and Strip (of spaces, from the start), or Metaspace.
  /// @throws CheckpointError naming `file` and the key for anything else.
  static TokenDecoder from_json(const nlohmann::json& json, const std::filesystem::path& file);
};

/// Throws CheckpointError("FILE: key 'KEY': WHAT"): how a tokenizer file's problems are reported.
[[noreturn]] void tokenizer_file_error(const std::filesystem::path& file, const std::string& key,
                                       const std::string& what);

/// The length of the UTF-8 character that starts with byte `lead` (1 for a stray continuation byte).
std::size_t utf8_length(unsigned char lead);

/// `text` with every ill-formed UTF-8 sequence replaced by U+FFFD, one per maximal ill-formed
/// subpart, as the WHATWG decoder (and so a JavaScript or Python caller's decoding) does.
std::string well_formed_utf8(std::string_view text);

} // namespace chorus::models
