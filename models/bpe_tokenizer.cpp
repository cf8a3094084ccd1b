// Hugging Face's BPE from tokenizer.json, byte-level (GPT-2's symbols) or SentencePiece's (characters
// with byte fallback). Encoding: split out added tokens, run the normaliser and the pre-tokenizer on
// the rest (bpe_pipeline.hpp), spell each piece as symbols, merge adjacent symbols by rank, look the
// results up.
#include "models/bpe_tokenizer.hpp"

#include <chorus/errors.hpp>

#include "models/byte_level.hpp"
#include "models/chat_template.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <queue>

namespace chorus::models {

namespace {

using nlohmann::json;

constexpr std::size_t kCacheLimit = 1 << 16;
constexpr std::size_t kLongestCachedPiece = 256; // SentencePiece's pieces can be whole texts: not kept

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

// A byte trie of the added tokens' texts: the leftmost, longest one in a text is found in one pass
// (Gemma has 6 400 added tokens; searching for each in turn was quadratic).
struct BpeTokenizer::AddedTokens {
  struct Node {
    std::vector<std::pair<unsigned char, std::uint32_t>> children;
    std::int64_t added = -1; // index into BpeTokenizer::added_ of the token ending here
  };
  std::vector<Node> nodes{1};

  void insert(const std::string& text, std::int64_t index) {
    std::uint32_t node = 0;
    for (unsigned char byte : text) {
      auto& children = nodes[node].children;
      auto found = std::find_if(children.begin(), children.end(), [byte](const auto& c) { return c.first == byte; });
      if (found != children.end()) {
        node = found->second;
        continue;
      }
      auto added = static_cast<std::uint32_t>(nodes.size());
      nodes[node].children.emplace_back(byte, added);
      nodes.emplace_back();
      node = added;
    }
    if (nodes[node].added < 0) // of two entries with one text, the first wins
      nodes[node].added = index;
  }

  // The index of the longest added token that starts at `at` in `text` and that `allowed` (if given)
  // accepts, and its length; {-1, 0} if none.
  std::pair<std::int64_t, std::size_t> longest_at(std::string_view text, std::size_t at,
                                                  const AddedFilter* allowed) const {
    std::pair<std::int64_t, std::size_t> best{-1, 0};
    std::uint32_t node = 0;
    for (auto i = at; i < text.size(); ++i) {
      auto byte = static_cast<unsigned char>(text[i]);
      const auto& children = nodes[node].children;
      auto found = std::find_if(children.begin(), children.end(), [byte](const auto& c) { return c.first == byte; });
      if (found == children.end())
        break;
      node = found->second;
      if (nodes[node].added >= 0 && (!allowed || (*allowed)(nodes[node].added, at, i + 1 - at)))
        best = {nodes[node].added, i + 1 - at};
    }
    return best;
  }
};

void BpeTokenizer::index_added_tokens() {
  added_tokens_ = std::make_unique<AddedTokens>();
  for (std::size_t i = 0; i < added_.size(); ++i)
    if (!added_[i].first.empty())
      added_tokens_->insert(added_[i].first, static_cast<std::int64_t>(i));
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
  // A value of the wrong JSON type deep in the file is an error naming the file, like the rest.
  try {
    std::unique_ptr<BpeTokenizer> tokenizer(new BpeTokenizer());
    auto& t = *tokenizer;
    t.file_ = file;
    t.decoder_ = TokenDecoder::from_json(root.value("decoder", json()), file);
    t.normalizer_ = Normalizer::from_json(root.value("normalizer", json()), file);
    t.pre_tokenizer_ = PreTokenizer::from_json(root.value("pre_tokenizer", json()), t.decoder_.spelling, file);

    if (!root.contains("model") || !root["model"].is_object())
      fail(file, "model", "missing");
    const auto& model = root["model"];
    if (model.value("type", "BPE") != "BPE")
      fail(file, "model.type", "only BPE is supported, got " + model.value("type", ""));
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
      t.merges_.insert_or_assign(key, Merge{rank, m->second}); // a pair listed twice: the last rank, as Hugging Face
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
    t.index_added_tokens();
    t.id_to_token_.resize(static_cast<std::size_t>(largest + 1));
    for (const auto& [token, id] : t.vocab_)
      t.id_to_token_[static_cast<std::size_t>(id)] = token;
    for (const auto& [content, id] : t.added_)
      t.id_to_token_[static_cast<std::size_t>(id)] = content;
    t.special_.resize(t.id_to_token_.size(), false);
    t.added_id_.assign(t.id_to_token_.size(), false);
    for (const auto& [content, id] : t.added_)
      t.added_id_[static_cast<std::size_t>(id)] = true;

    if (t.decoder_.spelling == Spelling::byte_level) {
      if (model.value("byte_fallback", false))
        fail(file, "model.byte_fallback", "byte fallback is not supported with a ByteLevel decoder");
      t.byte_symbol_ = byte_symbols();
      for (int b = 0; b < 256; ++b) {
        const auto& symbol = t.byte_symbol_[static_cast<std::size_t>(b)];
        t.symbol_byte_[symbol] = static_cast<unsigned char>(b);
        auto id = t.vocab_.find(symbol);
        if (id == t.vocab_.end())
          fail(file, "model.vocab", "has no token for byte " + std::to_string(b) + ": not a byte-level vocabulary");
        t.byte_id_[static_cast<std::size_t>(b)] = id->second;
      }
    } else {
      // A character the vocabulary lacks is spelled by its bytes' tokens, or is the unknown token:
      // one of them must exist, or such text could not be encoded at all.
      t.byte_fallback_ = model.value("byte_fallback", false);
      t.fuse_unk_ = model.value("fuse_unk", false);
      t.token_byte_.assign(t.id_to_token_.size(), -1);
      t.byte_id_.fill(-1);
      bool every_byte = true;
      for (unsigned b = 0; b < 256; ++b) {
        auto id = t.vocab_.find(byte_token(b));
        if (id == t.vocab_.end()) {
          every_byte = false;
          continue;
        }
        t.byte_id_[b] = id->second;
        if (t.decoder_.byte_fallback)
          t.token_byte_[static_cast<std::size_t>(id->second)] = static_cast<std::int16_t>(b);
      }
      if (model.contains("unk_token") && model["unk_token"].is_string()) {
        auto unk = t.vocab_.find(model["unk_token"].get<std::string>());
        if (unk == t.vocab_.end())
          fail(file, "model.unk_token", "'" + model["unk_token"].get<std::string>() + "' is not in the vocabulary");
        t.unk_id_ = unk->second;
      }
      if (!t.unk_id_ && !(t.byte_fallback_ && every_byte))
        fail(
          file, "model.unk_token",
          "a SentencePiece vocabulary needs an unknown token, or byte_fallback with the 256 tokens <0x00> to <0xFF>");
    }
    t.read_post_processor(root.value("post_processor", json()));
    t.read_config(file.parent_path() / "tokenizer_config.json");
    return tokenizer;
  } catch (const json::exception& error) {
    throw CheckpointError(file.string() + ": unexpected JSON: " + error.what());
  }
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

void BpeTokenizer::spell(std::string_view piece, std::vector<std::int64_t>& ids) const {
  if (decoder_.spelling == Spelling::byte_level) {
    for (unsigned char byte : piece)
      ids.push_back(byte_id_[byte]);
    return;
  }
  // SentencePiece: a token per character, its bytes' tokens for a character the vocabulary lacks
  // (byte fallback), else the unknown token (once for a run of them, with fuse_unk).
  bool after_unknown = false;
  for (std::size_t i = 0; i < piece.size();) {
    auto length = std::min(utf8_length(static_cast<unsigned char>(piece[i])), piece.size() - i);
    auto character = piece.substr(i, length);
    i += length;
    if (auto known = vocab_.find(std::string(character)); known != vocab_.end()) {
      ids.push_back(known->second);
      after_unknown = false;
      continue;
    }
    bool spelled = byte_fallback_ && std::all_of(character.begin(), character.end(), [&](char byte) {
                     return byte_id_[static_cast<unsigned char>(byte)] >= 0;
                   });
    if (spelled) {
      for (unsigned char byte : character)
        ids.push_back(byte_id_[byte]);
      after_unknown = false;
    } else if (!(fuse_unk_ && after_unknown)) {
      ids.push_back(*unk_id_);
      after_unknown = true;
    }
  }
}

void BpeTokenizer::merge(std::vector<std::int64_t>& ids) const {
  // Hugging Face's order: the pair of lowest rank first, of equal pairs the leftmost; a merge pairs
  // the new symbol with its neighbours again. A queue of candidates, each checked when it comes up
  // (a neighbour may have changed since): O(n log n), so that a SentencePiece text, which no
  // pre-tokenizer cuts into words, costs no more than its length.
  auto n = ids.size();
  if (n < 2)
    return;
  struct Symbol {
    std::int64_t id;
    std::int64_t prev, next; // neighbours' indices; -1 at the ends
    bool gone;
  };
  std::vector<Symbol> symbols(n);
  for (std::size_t i = 0; i < n; ++i)
    symbols[i] = {ids[i], static_cast<std::int64_t>(i) - 1, i + 1 < n ? static_cast<std::int64_t>(i) + 1 : -1, false};
  struct Candidate {
    std::int64_t rank, left, left_id, right_id;
  };
  auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(later)> queue(later);
  auto consider = [&](std::int64_t left) {
    auto right = symbols[static_cast<std::size_t>(left)].next;
    if (left < 0 || right < 0)
      return;
    auto left_id = symbols[static_cast<std::size_t>(left)].id, right_id = symbols[static_cast<std::size_t>(right)].id;
    auto found = merges_.find((static_cast<std::uint64_t>(left_id) << 32) | static_cast<std::uint64_t>(right_id));
    if (found != merges_.end())
      queue.push({found->second.rank, left, left_id, right_id});
  };
  for (std::size_t i = 0; i + 1 < n; ++i)
    consider(static_cast<std::int64_t>(i));
  while (!queue.empty()) {
    auto candidate = queue.top();
    queue.pop();
    auto& left = symbols[static_cast<std::size_t>(candidate.left)];
    if (left.gone || left.next < 0 || left.id != candidate.left_id)
      continue;
    auto& right = symbols[static_cast<std::size_t>(left.next)];
    if (right.id != candidate.right_id)
      continue;
    left.id = merges_.at((static_cast<std::uint64_t>(left.id) << 32) | static_cast<std::uint64_t>(right.id)).merged;
    right.gone = true;
    left.next = right.next;
    if (right.next >= 0)
      symbols[static_cast<std::size_t>(right.next)].prev = candidate.left;
    if (left.prev >= 0)
      consider(left.prev);
    consider(candidate.left);
  }
  ids.clear();
  for (const auto& symbol : symbols)
    if (!symbol.gone)
      ids.push_back(symbol.id);
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<std::int64_t>& ids) const {
  bool cached = piece.size() <= kLongestCachedPiece;
  if (cached) {
    std::lock_guard<std::mutex> guard{cache_mutex_};
    if (auto found = cache_.find(std::string(piece)); found != cache_.end()) {
      ids.insert(ids.end(), found->second.begin(), found->second.end());
      return;
    }
  }
  std::vector<std::int64_t> result;
  if (ignore_merges_) { // a piece that is a token is that token
    std::string spelled;
    if (decoder_.spelling == Spelling::byte_level)
      for (unsigned char byte : piece)
        spelled += byte_symbol_[byte];
    else
      spelled = piece;
    if (auto whole = vocab_.find(spelled); whole != vocab_.end())
      result.push_back(whole->second);
  }
  if (result.empty()) {
    spell(piece, result);
    merge(result);
  }
  ids.insert(ids.end(), result.begin(), result.end());
  if (!cached)
    return;
  std::lock_guard<std::mutex> guard{cache_mutex_};
  if (cache_.size() >= kCacheLimit)
    cache_.clear();
  cache_.emplace(std::string(piece), std::move(result));
}

void BpeTokenizer::encode_text(std::string_view text, bool at_start, std::vector<std::int64_t>& ids) const {
  if (text.empty())
    return;
  auto normalized = normalizer_.apply(well_formed_utf8(text));
  pre_tokenizer_->split(normalized, at_start, [&](std::string_view piece) { encode_piece(piece, ids); });
}

const std::pair<std::string, std::int64_t>*
BpeTokenizer::find_added(std::string_view text, std::size_t from, std::size_t& at, const AddedFilter* allowed) const {
  for (at = from; at < text.size(); ++at)
    if (auto [index, length] = added_tokens_->longest_at(text, at, allowed); index >= 0)
      return &added_[static_cast<std::size_t>(index)];
  at = std::string_view::npos;
  return nullptr;
}

std::vector<std::int64_t> BpeTokenizer::encode(std::string_view text) const {
  // Added tokens are cut out of the raw text first, leftmost first and the longest at a position.
  std::vector<std::int64_t> ids;
  std::size_t plain = 0, at = 0;
  while (const auto* added = find_added(text, plain, at)) {
    encode_text(text.substr(plain, at - plain), plain == 0, ids);
    ids.push_back(added->second);
    plain = at + added->first.size();
  }
  encode_text(text.substr(plain), plain == 0, ids);
  return ids;
}

// -- decoding and the rest ----------------------------------------------------

std::string BpeTokenizer::token_text(std::int64_t id, bool skip_special) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()
      || id_to_token_[static_cast<std::size_t>(id)].empty())
    throw std::out_of_range("token id " + std::to_string(id) + " is not in the vocabulary of " + file_.string());
  const auto& token = id_to_token_[static_cast<std::size_t>(id)];
  bool added = added_id_[static_cast<std::size_t>(id)];
  if (added && skip_special && special_[static_cast<std::size_t>(id)])
    return {};
  std::string text;
  if (decoder_.spelling == Spelling::characters) { // the decoder's chain runs over added tokens too
    if (auto byte = token_byte_[static_cast<std::size_t>(id)]; byte >= 0 && !added)
      return std::string(1, static_cast<char>(byte));
    text = token;
    if (!decoder_.from.empty())
      for (auto at = text.find(decoder_.from); at != std::string::npos;
           at = text.find(decoder_.from, at + decoder_.to.size()))
        text.replace(at, decoder_.from.size(), decoder_.to);
    return text;
  }
  if (added)
    return token;
  for (std::size_t i = 0; i < token.size();) {
    std::size_t length = (static_cast<unsigned char>(token[i]) & 0x80) == 0 ? 1 : 2; // symbols are U+0000-U+0143
    auto byte = symbol_byte_.find(token.substr(i, length));
    text += byte != symbol_byte_.end() ? static_cast<char>(byte->second) : '?';
    i += length;
  }
  return text;
}

std::string BpeTokenizer::decode(const std::vector<std::int64_t>& ids, bool skip_special) const {
  std::string text;
  bool first = true; // the first token written: skipped special tokens do not count
  for (auto id : ids) {
    auto piece = token_text(id, skip_special); // checks the id
    auto index = static_cast<std::size_t>(id);
    if (skip_special && added_id_[index] && special_[index])
      continue;
    if (first && decoder_.drop_first_replacements) {
      // Metaspace: the first token's markers are the space encoding put before the text: dropped.
      piece = id_to_token_[index];
      for (auto at = piece.find(decoder_.from); at != std::string::npos; at = piece.find(decoder_.from, at))
        piece.erase(at, decoder_.from.size());
    }
    first = false;
    text += piece;
  }
  // SentencePiece's decoders drop the space that encoding put before the first word.
  std::size_t stripped = 0;
  while (stripped < decoder_.strip_start && stripped < text.size() && text[stripped] == ' ')
    ++stripped;
  return text.erase(0, stripped);
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
  // The same ids as rendering the template to text and tokenising it, except that a special token
  // spelled inside a message is plain text: it cannot end its turn. Other added tokens (Gemma's runs
  // of newlines, Qwen's <tool_call>) are text in any case, and found wherever they are, as when the
  // rendered text is tokenised. Text runs between tokens are encoded whole, as the pre-tokenizer
  // would see them in the rendered text.
  std::vector<std::int64_t> ids;
  std::string run;
  std::vector<bool> from_message; // by byte of `run`
  AddedFilter outside_messages = [&](std::int64_t index, std::size_t at, std::size_t length) {
    auto id = added_[static_cast<std::size_t>(index)].second;
    return !special_[static_cast<std::size_t>(id)]
      || std::none_of(from_message.begin() + static_cast<std::ptrdiff_t>(at),
                      from_message.begin() + static_cast<std::ptrdiff_t>(at + length), [](bool b) { return b; });
  };
  auto flush = [&] {
    std::size_t plain = 0, at = 0;
    while (const auto* added = find_added(run, plain, at, &outside_messages)) {
      encode_text(std::string_view(run).substr(plain, at - plain), /*at_start=*/ids.empty(), ids);
      ids.push_back(added->second);
      plain = at + added->first.size();
    }
    encode_text(std::string_view(run).substr(plain), /*at_start=*/ids.empty(), ids);
    run.clear();
    from_message.clear();
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
      flush();
      ids.push_back(*special_token(piece.value));
    } else {
      run += piece.value;
      from_message.insert(from_message.end(), piece.value.size(), piece.kind == ChatPiece::Kind::text);
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

std::vector<std::int64_t> BpeTokenizer::stop_token_ids() const {
  std::vector<std::int64_t> stops;
  if (eos_id_)
    stops.push_back(*eos_id_);
  // <|eom_id|>: Llama 3.1 ends a turn with it when it expects a tool's result; <end_of_turn>: Gemma's.
  for (const char* name :
       {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<end_of_turn>"})
    if (auto id = special_token(name); id && std::find(stops.begin(), stops.end(), *id) == stops.end())
      stops.push_back(*id);
  return stops;
}

} // namespace chorus::models
