#include "models/bpe_pipeline.hpp"

#include <chorus/errors.hpp>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

namespace chorus::models {

namespace {

using nlohmann::json;

constexpr const char* kMetaspace = "\xE2\x96\x81"; // U+2581, SentencePiece's space

// GPT-2's split, for a ByteLevel pre-tokenizer with use_regex.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string nfc(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const auto* normalizer = icu::Normalizer2::getNFCInstance(status);
  auto input = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (U_FAILURE(status) || normalizer->isNormalized(input, status))
    return std::string(text);
  auto normalized = normalizer->normalize(input, status);
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  if (from.empty())
    return text;
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// A Replace step's {"pattern": {"String": s}, "content": c}; a regex pattern is refused.
std::pair<std::string, std::string> string_replacement(const json& step, const std::filesystem::path& file,
                                                       const std::string& key) {
  if (!step.contains("pattern") || !step["pattern"].is_object() || !step["pattern"].contains("String")
      || !step["pattern"]["String"].is_string() || !step.contains("content") || !step["content"].is_string())
    tokenizer_file_error(file, key,
                         "only a Replace of a String pattern by a string content is supported, got "
                           + step.dump().substr(0, 200));
  return {step["pattern"]["String"].get<std::string>(), step["content"].get<std::string>()};
}

// -- pre-tokenizers -----------------------------------------------------------

// A Split on a regex, each match and each gap between matches a piece (behavior "Isolated").
class RegexSplit final : public PreTokenizer {
public:
  RegexSplit(const std::string& pattern, const std::filesystem::path& file) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &error,
                          &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      tokenizer_file_error(file, "pre_tokenizer",
                           "cannot compile the split regex at offset " + std::to_string(offset) + ": "
                             + reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE); // falls back to the interpreter if JIT is unavailable
  }

  ~RegexSplit() override {
    pcre2_code_free(code_);
  }

  void split(std::string_view text, bool, const std::function<void(std::string_view)>& piece) const override {
    auto* match = pcre2_match_data_create_from_pattern(code_, nullptr);
    std::size_t position = 0, emitted = 0;
    while (position < text.size()) {
      int found = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), position,
                              PCRE2_NO_UTF_CHECK, match, nullptr);
      if (found < 0)
        break;
      auto* ovector = pcre2_get_ovector_pointer(match);
      auto begin = ovector[0], end = ovector[1];
      if (begin > emitted)
        piece(text.substr(emitted, begin - emitted));
      if (end > begin)
        piece(text.substr(begin, end - begin));
      emitted = end;
      // An empty match must still move on, by one whole UTF-8 character.
      position = end > begin ? end : end + 1;
      while (position < text.size() && (static_cast<unsigned char>(text[position]) & 0xC0) == 0x80)
        ++position;
    }
    if (emitted < text.size())
      piece(text.substr(emitted));
    pcre2_match_data_free(match);
  }

private:
  pcre2_code* code_ = nullptr;
};

// Splits applied in turn, each cutting the pieces of the one before (DeepSeek V3's three regexes).
class SplitSequence final : public PreTokenizer {
public:
  explicit SplitSequence(std::vector<std::unique_ptr<PreTokenizer>> splits) : splits_(std::move(splits)) {}

  void split(std::string_view text, bool at_start, const std::function<void(std::string_view)>& piece) const override {
    apply(0, text, at_start, piece);
  }

private:
  void apply(std::size_t level, std::string_view text, bool at_start,
             const std::function<void(std::string_view)>& piece) const {
    if (level == splits_.size()) {
      piece(text);
      return;
    }
    splits_[level]->split(text, at_start, [&](std::string_view part) { apply(level + 1, part, at_start, piece); });
  }

  std::vector<std::unique_ptr<PreTokenizer>> splits_;
};

// Where a delimiter goes when text is split at it (Hugging Face's SplitDelimiterBehavior).
enum class Delimiter { removed, isolated, merged_with_previous, merged_with_next };

// Calls `piece` for the pieces of `text` cut at each occurrence of `delimiter`.
void split_at(std::string_view text, const std::string& delimiter, Delimiter behavior,
              const std::function<void(std::string_view)>& piece) {
  auto emit = [&](std::size_t begin, std::size_t end) {
    if (end > begin)
      piece(text.substr(begin, end - begin));
  };
  std::size_t begin = 0; // start of the piece being built
  for (auto at = text.find(delimiter); at != std::string_view::npos; at = text.find(delimiter, at + delimiter.size())) {
    auto after = at + delimiter.size();
    switch (behavior) {
      case Delimiter::removed:
        emit(begin, at);
        begin = after;
        break;
      case Delimiter::isolated:
        emit(begin, at);
        emit(at, after);
        begin = after;
        break;
      case Delimiter::merged_with_previous:
        emit(begin, after);
        begin = after;
        break;
      case Delimiter::merged_with_next:
        emit(begin, at);
        begin = at;
        break;
    }
  }
  emit(begin, text.size());
}

// A Split on a literal string.
class StringSplit final : public PreTokenizer {
public:
  StringSplit(std::string delimiter, Delimiter behavior) : delimiter_(std::move(delimiter)), behavior_(behavior) {}

  void split(std::string_view text, bool, const std::function<void(std::string_view)>& piece) const override {
    split_at(text, delimiter_, behavior_, piece);
  }

private:
  std::string delimiter_;
  Delimiter behavior_;
};

// SentencePiece's spaces: each space written as the replacement, the replacement prepended where
// the scheme asks (unless the text starts with it), and, with `split`, a piece per word, each
// starting with its replacement.
class Metaspace final : public PreTokenizer {
public:
  enum class Prepend { always, first, never };

  Metaspace(std::string replacement, Prepend prepend, bool split)
    : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {}

  void split(std::string_view text, bool at_start, const std::function<void(std::string_view)>& piece) const override {
    auto spelled = replace_all(std::string(text), " ", replacement_);
    bool prepend = prepend_ == Prepend::always || (prepend_ == Prepend::first && at_start);
    if (prepend && spelled.compare(0, replacement_.size(), replacement_) != 0)
      spelled.insert(0, replacement_);
    if (split_)
      split_at(spelled, replacement_, Delimiter::merged_with_next, piece);
    else if (!spelled.empty())
      piece(spelled);
  }

private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

// No pre-tokenizer: the whole text is one piece.
class Whole final : public PreTokenizer {
public:
  void split(std::string_view text, bool, const std::function<void(std::string_view)>& piece) const override {
    if (!text.empty())
      piece(text);
  }
};

} // namespace

std::size_t utf8_length(unsigned char lead) {
  return lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

void tokenizer_file_error(const std::filesystem::path& file, const std::string& key, const std::string& what) {
  throw CheckpointError(file.string() + ": key '" + key + "': " + what);
}

std::string well_formed_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t i = 0, n = text.size();
  while (i < n) {
    unsigned char lead = bytes[i];
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead < 0x80) {
      out += static_cast<char>(lead);
      ++i;
      continue;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0)
        low = 0xA0;
      if (lead == 0xED)
        high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0)
        low = 0x90;
      if (lead == 0xF4)
        high = 0x8F;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    std::size_t valid = 1;
    while (valid < length && i + valid < n) {
      unsigned char next = bytes[i + valid];
      if (next < low || next > high)
        break;
      low = 0x80;
      high = 0xBF;
      ++valid;
    }
    if (valid == length)
      out.append(text.substr(i, length));
    else
      out += "\xEF\xBF\xBD";
    i += valid;
  }
  return out;
}

// -- normalizer ---------------------------------------------------------------

Normalizer Normalizer::from_json(const json& normalizer, const std::filesystem::path& file) {
  Normalizer result;
  if (normalizer.is_null())
    return result;
  auto steps = normalizer.is_object() && normalizer.value("type", "") == "Sequence"
    ? normalizer.value("normalizers", json::array())
    : json::array({normalizer});
  for (const auto& step : steps) {
    auto type = step.is_object() ? step.value("type", "") : "";
    if (type == "NFC") {
      result.steps_.push_back({Step::Kind::nfc, "", ""});
    } else if (type == "Replace") {
      auto [from, to] = string_replacement(step, file, "normalizer");
      result.steps_.push_back({Step::Kind::replace, from, to});
    } else if (type == "Prepend" && step.contains("prepend") && step["prepend"].is_string()) {
      result.steps_.push_back({Step::Kind::prepend, "", step["prepend"].get<std::string>()});
    } else {
      tokenizer_file_error(file, "normalizer",
                           "only NFC, Replace of a string and Prepend are supported, got "
                             + step.dump().substr(0, 200));
    }
  }
  return result;
}

std::string Normalizer::apply(std::string text) const {
  for (const auto& step : steps_) {
    if (text.empty())
      break;
    if (step.kind == Step::Kind::nfc)
      text = nfc(text);
    else if (step.kind == Step::Kind::replace)
      text = replace_all(std::move(text), step.from, step.to);
    else
      text.insert(0, step.to);
  }
  return text;
}

// -- pre-tokenizer ------------------------------------------------------------

std::unique_ptr<PreTokenizer> PreTokenizer::from_json(const json& pre, Spelling spelling,
                                                      const std::filesystem::path& file) {
  auto type = pre.is_object() ? pre.value("type", "") : "";
  if (spelling == Spelling::byte_level) {
    auto byte_level_without_prefix = [&](const json& step) {
      if (step.value("add_prefix_space", false))
        tokenizer_file_error(file, "pre_tokenizer", "ByteLevel with add_prefix_space is not supported");
    };
    if (type == "ByteLevel" && pre.value("use_regex", true)) {
      byte_level_without_prefix(pre);
      return std::make_unique<RegexSplit>(kGpt2Pattern, file);
    }
    // Splits on regexes (Qwen's and Llama 3's one, DeepSeek V3's three), then the bytes.
    if (type == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array()
        && pre["pretokenizers"].size() >= 2) {
      const auto& steps = pre["pretokenizers"];
      std::vector<std::unique_ptr<PreTokenizer>> splits;
      for (std::size_t i = 0; i + 1 < steps.size(); ++i) {
        const auto& split = steps[i];
        if (!split.is_object() || split.value("type", "") != "Split" || split.value("behavior", "") != "Isolated"
            || split.value("invert", false) || !split.contains("pattern") || !split["pattern"].is_object()
            || !split["pattern"].contains("Regex") || !split["pattern"]["Regex"].is_string())
          tokenizer_file_error(file, "pre_tokenizer",
                               "expected Splits with a Regex pattern and behavior Isolated before the ByteLevel");
        splits.push_back(std::make_unique<RegexSplit>(split["pattern"]["Regex"].get<std::string>(), file));
      }
      const auto& bytes = steps.back();
      if (!bytes.is_object() || bytes.value("type", "") != "ByteLevel" || bytes.value("use_regex", true))
        tokenizer_file_error(file, "pre_tokenizer", "expected ByteLevel without its own regex after the Splits");
      byte_level_without_prefix(bytes);
      if (splits.size() == 1)
        return std::move(splits.front());
      return std::make_unique<SplitSequence>(std::move(splits));
    }
    tokenizer_file_error(file, "pre_tokenizer",
                         "a byte-level vocabulary needs a byte-level pre-tokenizer, got " + pre.dump().substr(0, 200));
  }
  if (pre.is_null())
    return std::make_unique<Whole>();
  if (type == "Split" && pre.contains("pattern") && pre["pattern"].is_object() && pre["pattern"].contains("String")
      && pre["pattern"]["String"].is_string() && !pre.value("invert", false)) {
    static const std::vector<std::pair<std::string, Delimiter>> behaviors{
      {"Removed", Delimiter::removed},
      {"Isolated", Delimiter::isolated},
      {"MergedWithPrevious", Delimiter::merged_with_previous},
      {"MergedWithNext", Delimiter::merged_with_next}};
    auto behavior = pre.value("behavior", "");
    auto delimiter = pre["pattern"]["String"].get<std::string>();
    if (delimiter.empty())
      tokenizer_file_error(file, "pre_tokenizer.pattern", "a Split on the empty string");
    for (const auto& [name, value] : behaviors)
      if (name == behavior)
        return std::make_unique<StringSplit>(delimiter, value);
    tokenizer_file_error(file, "pre_tokenizer.behavior",
                         "expected Removed, Isolated, MergedWithPrevious or MergedWithNext, got '" + behavior + "'");
  }
  if (type == "Metaspace") {
    auto replacement = pre.value("replacement", std::string(kMetaspace));
    if (replacement.empty() || replacement.size() != utf8_length(static_cast<unsigned char>(replacement[0])))
      tokenizer_file_error(file, "pre_tokenizer.replacement", "expected one character, got '" + replacement + "'");
    auto scheme = pre.value("prepend_scheme", pre.value("add_prefix_space", true) ? "always" : "never");
    Metaspace::Prepend prepend;
    if (scheme == "always")
      prepend = Metaspace::Prepend::always;
    else if (scheme == "first")
      prepend = Metaspace::Prepend::first;
    else if (scheme == "never")
      prepend = Metaspace::Prepend::never;
    else
      tokenizer_file_error(file, "pre_tokenizer.prepend_scheme",
                           "expected always, first or never, got '" + scheme + "'");
    return std::make_unique<Metaspace>(replacement, prepend, pre.value("split", true));
  }
  tokenizer_file_error(file, "pre_tokenizer",
                       "a SentencePiece vocabulary needs no pre-tokenizer, a Split on a string or Metaspace, got "
                         + pre.dump().substr(0, 200));
}

// -- decoder ------------------------------------------------------------------

std::string TokenDecoder::text(std::string token, bool first) const {
  return replace_all(std::move(token), from, first && drop_first_replacements ? std::string() : to);
}

TokenDecoder TokenDecoder::from_json(const json& decoder, const std::filesystem::path& file) {
  TokenDecoder result;
  auto type = decoder.is_object() ? decoder.value("type", "") : "";
  if (type == "ByteLevel")
    return result;
  result.spelling = Spelling::characters;
  if (type == "Metaspace") {
    result.from = decoder.value("replacement", std::string(kMetaspace));
    if (result.from.empty())
      tokenizer_file_error(file, "decoder.replacement", "expected one character");
    auto scheme = decoder.value("prepend_scheme", decoder.value("add_prefix_space", true) ? "always" : "never");
    result.drop_first_replacements = scheme != "never";
    return result;
  }
  if (type != "Sequence" || !decoder.contains("decoders") || !decoder["decoders"].is_array())
    tokenizer_file_error(file, "decoder",
                         "expected ByteLevel, Metaspace or a Sequence of Replace, ByteFallback, Fuse and Strip, got "
                           + decoder.dump().substr(0, 200));
  bool replaced = false, fused = false;
  for (const auto& step : decoder["decoders"]) {
    auto kind = step.is_object() ? step.value("type", "") : "";
    if (kind == "Replace" && !replaced) {
      std::tie(result.from, result.to) = string_replacement(step, file, "decoder");
      replaced = true;
    } else if (kind == "ByteFallback") {
      result.byte_fallback = true;
    } else if (kind == "Fuse") {
      fused = true;
    } else if (kind == "Strip" && fused && step.value("content", "") == " " && step.value("stop", 0) == 0
               && step.contains("start") && step["start"].is_number_unsigned()) {
      result.strip_start = step["start"].get<std::size_t>();
    } else {
      tokenizer_file_error(file, "decoder",
                           "only one Replace of a string, ByteFallback, Fuse and after it a Strip of leading "
                           "spaces are supported, got "
                             + step.dump().substr(0, 200));
    }
  }
  if (!replaced)
    result.from.clear();
  return result;
}

} // namespace chorus::models
