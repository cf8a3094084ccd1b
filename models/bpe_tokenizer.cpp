// Byte-level BPE from tokenizer.json. Encoding: split out added tokens, NFC-normalise the rest if
// asked, split it with the pre-tokenizer regex (PCRE2, Unicode classes), spell each piece's bytes as
// byte-level symbols, merge adjacent symbols by rank, look the results up. Every merge created from
// a pair of rank r has a rank above r, so merging all occurrences of the best pair at once is the same
// as Hugging Face's one-at-a-time queue.
#include "models/bpe_tokenizer.hpp"

#include <chorus/errors.hpp>

#include "models/byte_level.hpp"
#include "models/chat_template.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <nlohmann/json.hpp>
#include <pcre2.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <fstream>
#include <iterator>

namespace chorus::models {

namespace {

using nlohmann::json;

// GPT-2's split, for a ByteLevel pre-tokenizer with use_regex.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr std::size_t kCacheLimit = 1 << 16;

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& key, const std::string& what) {
  throw CheckpointError(file.string() + ": key '" + key + "': " + what);
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

// `text` with every ill-formed UTF-8 sequence replaced by U+FFFD, one per maximal ill-formed
// subpart, as the WHATWG decoder (and so a JavaScript or Python caller's decoding) does. The regex
// engine must never see ill-formed UTF-8.
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

} // namespace

// -- the split regex ----------------------------------------------------------

struct BpeTokenizer::Regex {
  pcre2_code* code = nullptr;

  Regex(const std::string& pattern, const std::filesystem::path& file) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &error,
                         &offset, nullptr);
    if (!code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      fail(file, "pre_tokenizer",
           "cannot compile the split regex at offset " + std::to_string(offset) + ": "
             + reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); // falls back to the interpreter if JIT is unavailable
  }

  ~Regex() {
    pcre2_code_free(code);
  }

  // Calls `piece` for every match and for every gap between matches, in order (behaviour "Isolated").
  template <class F>
  void split(std::string_view text, F&& piece) const {
    auto* match = pcre2_match_data_create_from_pattern(code, nullptr);
    std::size_t position = 0, emitted = 0;
    while (position < text.size()) {
      int found = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), position,
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
};

// -- loading ------------------------------------------------------------------

BpeTokenizer::BpeTokenizer() = default;
BpeTokenizer::~BpeTokenizer() = default;

std::unique_ptr<BpeTokenizer> BpeTokenizer::load(const std::filesystem::path& path) {
  auto file = std::filesystem::is_directory(path) ? path / "tokenizer.json" : path;
  std::ifstream in(file);
  if (!in)
    throw CheckpointError(file.string() + ": cannot open");
  auto root = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object())
    throw CheckpointError(file.string() + ": invalid JSON");
  std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer());
  auto& t = *tokenizer;
  t.file_ = file;

  const auto& normalizer = root.value("normalizer", json());
  auto is_nfc = [](const json& n) { return n.is_object() && n.value("type", "") == "NFC"; };
  if (is_nfc(normalizer)) {
    t.nfc_ = true;
  } else if (normalizer.is_object() && normalizer.value("type", "") == "Sequence" && normalizer.contains("normalizers")
             && normalizer["normalizers"].size() == 1 && is_nfc(normalizer["normalizers"][0])) {
    t.nfc_ = true;
  } else if (!normalizer.is_null()) {
    fail(file, "normalizer", "only NFC is supported, got " + normalizer.dump().substr(0, 200));
  }

  const auto& pre = root.value("pre_tokenizer", json());
  auto byte_level_without_prefix = [&](const json& step) {
    if (step.value("add_prefix_space", false))
      fail(file, "pre_tokenizer", "ByteLevel with add_prefix_space is not supported");
  };
  if (pre.is_object() && pre.value("type", "") == "ByteLevel" && pre.value("use_regex", true)) {
    byte_level_without_prefix(pre);
    t.split_ = std::make_unique<Regex>(kGpt2Pattern, file);
  } else if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers")
             && pre["pretokenizers"].size() == 2) {
    const auto& split = pre["pretokenizers"][0];
    const auto& bytes = pre["pretokenizers"][1];
    if (split.value("type", "") != "Split" || split.value("behavior", "") != "Isolated" || split.value("invert", false)
        || !split.contains("pattern") || !split["pattern"].contains("Regex"))
      fail(file, "pre_tokenizer", "expected a Split with a Regex pattern and behavior Isolated first");
    if (bytes.value("type", "") != "ByteLevel" || bytes.value("use_regex", true))
      fail(file, "pre_tokenizer", "expected ByteLevel without its own regex after the Split");
    byte_level_without_prefix(bytes);
    t.split_ = std::make_unique<Regex>(split["pattern"]["Regex"].get<std::string>(), file);
  } else {
    fail(file, "pre_tokenizer", "only byte-level pre-tokenizers are supported, got " + pre.dump().substr(0, 200));
  }

  const auto& decoder = root.value("decoder", json());
  if (!decoder.is_object() || decoder.value("type", "") != "ByteLevel")
    fail(file, "decoder", "only the ByteLevel decoder is supported");

  if (!root.contains("model") || !root["model"].is_object())
    fail(file, "model", "missing");
  const auto& model = root["model"];
  if (model.value("type", "BPE") != "BPE")
    fail(file, "model.type", "only BPE is supported, got " + model.value("type", ""));
  if (model.value("byte_fallback", false))
    fail(file, "model.byte_fallback", "byte fallback is not supported");
  t.ignore_merges_ = model.value("ignore_merges", false);
  if (!model.contains("vocab") || !model["vocab"].is_object())
    fail(file, "model.vocab", "missing");
  std::int64_t largest = -1;
  for (const auto& [token, value] : model["vocab"].items()) {
    auto id = token_id(file, "model.vocab", token, value);
    t.vocab_[token] = id;
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
        fail(file, "model.merges", "entry " + std::to_string(rank) + " '" + text + "' is not \"a b\"");
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      fail(file, "model.merges", "entry " + std::to_string(rank) + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    auto l = t.vocab_.find(left), r = t.vocab_.find(right), m = t.vocab_.find(left + right);
    if (l == t.vocab_.end() || r == t.vocab_.end() || m == t.vocab_.end())
      fail(file, "model.merges",
           "entry " + std::to_string(rank) + " '" + left + " " + right
             + "' names a token that is not in the vocabulary");
    auto key = (static_cast<std::uint64_t>(l->second) << 32) | static_cast<std::uint64_t>(r->second);
    t.merges_.emplace(key, Merge{rank, m->second}); // the first (best) rank of a pair wins
    ++rank;
  }

  for (const auto& added : root.value("added_tokens", json::array())) {
    if (!added.contains("content") || !added["content"].is_string() || !added.contains("id"))
      fail(file, "added_tokens", "an entry lacks content or id");
    auto id = token_id(file, "added_tokens", added["content"].get<std::string>(), added["id"]);
    t.added_.emplace_back(added["content"].get<std::string>(), id);
    largest = std::max(largest, id);
    if (t.special_.size() <= static_cast<std::size_t>(id))
      t.special_.resize(static_cast<std::size_t>(id) + 1, false);
    t.special_[static_cast<std::size_t>(id)] = added.value("special", false);
  }
  std::sort(t.added_.begin(), t.added_.end(), [](const auto& a, const auto& b) {
    return a.first.size() != b.first.size() ? a.first.size() > b.first.size() : a.second < b.second;
  });
  t.id_to_token_.resize(static_cast<std::size_t>(largest + 1));
  for (const auto& [token, id] : t.vocab_)
    t.id_to_token_[static_cast<std::size_t>(id)] = token;
  for (const auto& [content, id] : t.added_)
    t.id_to_token_[static_cast<std::size_t>(id)] = content;
  t.special_.resize(t.id_to_token_.size(), false);
  t.added_id_.assign(t.id_to_token_.size(), false);
  for (const auto& [content, id] : t.added_)
    t.added_id_[static_cast<std::size_t>(id)] = true;

  t.byte_symbol_ = byte_symbols();
  for (int b = 0; b < 256; ++b) {
    const auto& symbol = t.byte_symbol_[static_cast<std::size_t>(b)];
    t.symbol_byte_[symbol] = static_cast<unsigned char>(b);
    auto id = t.vocab_.find(symbol);
    if (id == t.vocab_.end())
      fail(file, "model.vocab", "has no token for byte " + std::to_string(b) + ": not a byte-level vocabulary");
    t.byte_id_[static_cast<std::size_t>(b)] = id->second;
  }
  t.read_config(file.parent_path() / "tokenizer_config.json");
  return tokenizer;
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
    for (bool enable_thinking : {false, true})
      opens_thinking_[enable_thinking ? 1 : 0] = generation_prompt_opens_thinking(enable_thinking);
    thinks_ = thinks_ || opens_thinking_[1];
  }
}

bool BpeTokenizer::generation_prompt_opens_thinking(bool enable_thinking) const {
  // What the generation prompt adds to a one-question conversation: a <think> left open?
  const std::vector<ChatMessage> asked{{"user", "?", {}}};
  std::string without, with;
  try {
    for (const auto& piece : render_jinja(asked, false, {}, enable_thinking))
      without += piece.value;
    for (const auto& piece : render_jinja(asked, true, {}, enable_thinking))
      with += piece.value;
  } catch (const std::invalid_argument&) {
    return false; // a template that needs more than a question (a system turn, say)
  }
  if (with.compare(0, without.size(), without) != 0)
    return false;
  auto prompt = std::string_view(with).substr(without.size());
  auto open = prompt.rfind(kThinkOpen);
  return open != std::string_view::npos && prompt.find(kThinkClose, open) == std::string_view::npos;
}

// -- encoding -----------------------------------------------------------------

void BpeTokenizer::encode_piece(const std::string& piece, std::vector<std::int64_t>& ids) const {
  {
    std::lock_guard<std::mutex> guard{cache_mutex_};
    if (auto found = cache_.find(piece); found != cache_.end()) {
      ids.insert(ids.end(), found->second.begin(), found->second.end());
      return;
    }
  }
  // Work on ids: each byte's token, then repeatedly the best-ranked adjacent pair, merged everywhere.
  std::vector<std::int64_t> result;
  if (ignore_merges_) {
    std::string spelled;
    for (unsigned char byte : piece)
      spelled += byte_symbol_[byte];
    if (auto whole = vocab_.find(spelled); whole != vocab_.end())
      result.push_back(whole->second);
  }
  if (result.empty()) {
    for (unsigned char byte : piece)
      result.push_back(byte_id_[byte]);
    while (result.size() > 1) {
      const Merge* best = nullptr;
      std::uint64_t best_key = 0;
      for (std::size_t i = 0; i + 1 < result.size(); ++i) {
        auto key = (static_cast<std::uint64_t>(result[i]) << 32) | static_cast<std::uint64_t>(result[i + 1]);
        auto found = merges_.find(key);
        if (found != merges_.end() && (!best || found->second.rank < best->rank)) {
          best = &found->second;
          best_key = key;
        }
      }
      if (!best)
        break;
      std::size_t out = 0;
      for (std::size_t i = 0; i < result.size(); ++i) {
        if (i + 1 < result.size()
            && ((static_cast<std::uint64_t>(result[i]) << 32) | static_cast<std::uint64_t>(result[i + 1]))
              == best_key) {
          result[out++] = best->merged;
          ++i;
        } else {
          result[out++] = result[i];
        }
      }
      result.resize(out);
    }
  }
  ids.insert(ids.end(), result.begin(), result.end());
  std::lock_guard<std::mutex> guard{cache_mutex_};
  if (cache_.size() >= kCacheLimit)
    cache_.clear();
  cache_.emplace(piece, std::move(result));
}

void BpeTokenizer::encode_text(std::string_view text, std::vector<std::int64_t>& ids) const {
  if (text.empty())
    return;
  auto well_formed = well_formed_utf8(text);
  auto normalized = nfc_ ? nfc(well_formed) : std::move(well_formed);
  split_->split(normalized, [&](std::string_view piece) { encode_piece(std::string(piece), ids); });
}

const std::pair<std::string, std::int64_t>* BpeTokenizer::find_added(std::string_view text, std::size_t from,
                                                                     std::size_t& at) const {
  const std::pair<std::string, std::int64_t>* best = nullptr;
  at = std::string_view::npos;
  for (const auto& added : added_) {
    auto found = text.find(added.first, from);
    if (found != std::string_view::npos && (found < at || (found == at && added.first.size() > best->first.size()))) {
      at = found;
      best = &added;
    }
  }
  return best;
}

std::vector<std::int64_t> BpeTokenizer::encode(std::string_view text) const {
  // Added tokens are cut out of the raw text first, leftmost first and the longest at a position.
  std::vector<std::int64_t> ids;
  std::size_t plain = 0, at = 0;
  while (const auto* added = find_added(text, plain, at)) {
    encode_text(text.substr(plain, at - plain), ids);
    ids.push_back(added->second);
    plain = at + added->first.size();
  }
  encode_text(text.substr(plain), ids);
  return ids;
}

// -- decoding and the rest ----------------------------------------------------

std::string BpeTokenizer::decode(const std::vector<std::int64_t>& ids, bool skip_special) const {
  std::string text;
  for (auto id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()
        || id_to_token_[static_cast<std::size_t>(id)].empty())
      throw std::out_of_range("token id " + std::to_string(id) + " is not in the vocabulary of " + file_.string());
    const auto& token = id_to_token_[static_cast<std::size_t>(id)];
    if (added_id_[static_cast<std::size_t>(id)]) {
      if (!(skip_special && special_[static_cast<std::size_t>(id)]))
        text += token;
      continue;
    }
    for (std::size_t i = 0; i < token.size();) {
      std::size_t length = (static_cast<unsigned char>(token[i]) & 0x80) == 0 ? 1 : 2; // symbols are U+0000-U+0143
      auto byte = symbol_byte_.find(token.substr(i, length));
      text += byte != symbol_byte_.end() ? static_cast<char>(byte->second) : '?';
      i += length;
    }
  }
  return text;
}

std::int64_t BpeTokenizer::vocab_size() const {
  return static_cast<std::int64_t>(id_to_token_.size());
}

std::optional<std::int64_t> BpeTokenizer::special_token(std::string_view name) const {
  for (const auto& [content, id] : added_)
    if (content == name)
      return id;
  return std::nullopt;
}

std::vector<std::int64_t> BpeTokenizer::apply_chat_template(const std::vector<ChatMessage>& messages,
                                                            bool add_generation_prompt, const std::vector<Tool>& tools,
                                                            bool enable_thinking) const {
  // The same ids as rendering the template to text and tokenising it, except that message content
  // is always plain text: a special token spelled inside a message cannot end its turn. Text runs
  // between tokens are encoded whole, as the pre-tokenizer would see them in the rendered text.
  std::vector<std::int64_t> ids;
  std::string run;
  auto flush = [&] {
    encode_text(run, ids);
    run.clear();
  };
  auto special = [&](const char* name) {
    flush();
    ids.push_back(*special_token(name));
  };
  auto format = chat_format_;
  if (format == ChatFormat::by_vocabulary) {
    if (special_token("<|im_start|>") && special_token("<|im_end|>"))
      format = ChatFormat::chatml;
    else if (special_token("<|start_header_id|>") && special_token("<|end_header_id|>") && special_token("<|eot_id|>")
             && special_token("<|begin_of_text|>"))
      format = ChatFormat::llama3;
  }
  std::vector<ChatPiece> pieces;
  if (jinja_)
    pieces = render_jinja(messages, add_generation_prompt, tools, enable_thinking);
  else if (format == ChatFormat::chatml)
    pieces = render_chatml(messages, add_generation_prompt, tools);
  else if (format == ChatFormat::llama3)
    pieces = render_llama3(messages, add_generation_prompt, tools);
  else
    throw CheckpointError(file_.string()
                          + ": no chat template, and no chat format known for this vocabulary (expected "
                            "<|im_start|> or <|start_header_id|>)");
  for (const auto& piece : pieces) {
    if (piece.kind == ChatPiece::Kind::special) {
      special(piece.value.c_str());
    } else if (piece.kind == ChatPiece::Kind::text) {
      run += piece.value;
    } else { // the template's text: an added token spelled in it is that token
      std::size_t plain = 0, at = 0;
      while (const auto* added = find_added(piece.value, plain, at)) {
        run.append(piece.value, plain, at - plain);
        flush();
        ids.push_back(added->second);
        plain = at + added->first.size();
      }
      run.append(piece.value, plain);
    }
  }
  flush();
  return ids;
}

std::vector<ChatPiece> BpeTokenizer::render_jinja(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                                  const std::vector<Tool>& tools, bool enable_thinking) const {
  auto conversation = openai_conversation(messages, tools);
  nlohmann::ordered_json settings{{"add_generation_prompt", add_generation_prompt},
                                  {"enable_thinking", enable_thinking},
                                  {"bos_token", bos_text_},
                                  {"eos_token", eos_text_}};
  try {
    return jinja_->render(conversation, settings);
  } catch (const JinjaError& error) {
    throw std::invalid_argument(template_file_.string() + ": chat template: " + error.what());
  }
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

std::vector<std::int64_t> BpeTokenizer::stop_token_ids() const {
  std::vector<std::int64_t> stops;
  if (eos_id_)
    stops.push_back(*eos_id_);
  // <|eom_id|>: Llama 3.1 ends a turn with it when it expects a tool's result.
  for (const char* name : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"})
    if (auto id = special_token(name); id && std::find(stops.begin(), stops.end(), *id) == stops.end())
      stops.push_back(*id);
  return stops;
}

} // namespace chorus::models
