// Hugging Face's BPE from tokenizer.json, byte-level (GPT-2's symbols) or SentencePiece's (characters
// with byte fallback). Encoding: split out added tokens, run the normaliser and the pre-tokenizer on
// the rest (bpe_pipeline.hpp), spell each piece as symbols, merge adjacent symbols by rank, look the
// results up.
#include "models/bpe_tokenizer.hpp"

#include <chorus/errors.hpp>

#include "models/chat_template.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <queue>

namespace chorus::models {

namespace {

using nlohmann::json;

constexpr std::size_t kCacheLimit = 1 << 16;
constexpr std::size_t kLongestCachedPiece = 256; // SentencePiece's pieces can be whole texts: not kept

} // namespace

// -- what the chat template says ----------------------------------------------

std::optional<std::string> BpeTokenizer::generation_prompt(bool enable_thinking) const {
  const std::vector<ChatMessage> asked{{"user", "?", {}}};
  std::string without, with;
  try {
    for (const auto& piece : render_jinja(asked, false, {}, enable_thinking))
      without += piece.value;
    for (const auto& piece : render_jinja(asked, true, {}, enable_thinking))
      with += piece.value;
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
  if (with.compare(0, without.size(), without) != 0)
    return std::nullopt;
  return with.substr(without.size());
}

bool BpeTokenizer::opens_thinking_in(const std::optional<std::string>& prompt) {
  if (!prompt)
    return false;
  auto open = prompt->rfind(kThinkOpen);
  return open != std::string::npos && prompt->find(kThinkClose, open) == std::string::npos;
}

bool BpeTokenizer::switches_thinking_off(const std::optional<std::string>& off, const std::optional<std::string>& on) {
  if (!off || !on || on->find(kThinkClose) != std::string::npos)
    return false;
  auto close = off->rfind(kThinkClose);
  auto open = off->rfind(kThinkOpen, close);
  auto blank = [](std::string_view text) { return text.find_first_not_of(" \t\r\n") == std::string_view::npos; };
  return close != std::string::npos && open != std::string::npos
    && blank(std::string_view(*off).substr(open + kThinkOpen.size(), close - open - kThinkOpen.size()))
    && blank(std::string_view(*off).substr(close + kThinkClose.size()));
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
  // At each position in turn, the longest added token the trie leads to (and `allowed` accepts).
  for (at = from; at < text.size(); ++at) {
    const std::pair<std::string, std::int64_t>* longest = nullptr;
    auto node = added_trie_.child(decltype(added_trie_)::kRoot, static_cast<unsigned char>(text[at]));
    for (auto end = at + 1; node != decltype(added_trie_)::kNone; ++end) {
      if (auto index = added_trie_[node].value; index && (!allowed || (*allowed)(*index, at, end - at)))
        longest = &added_[*index];
      if (end == text.size())
        break;
      node = added_trie_.child(node, static_cast<unsigned char>(text[end]));
    }
    if (longest)
      return longest;
  }
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

bool BpeTokenizer::skipped_special(std::size_t id) const {
  return special_[id] && !(id < kept_special_.size() && kept_special_[id]);
}

std::string BpeTokenizer::token_text(std::int64_t id, bool skip_special) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()
      || id_to_token_[static_cast<std::size_t>(id)].empty())
    throw std::out_of_range("token id " + std::to_string(id) + " is not in the vocabulary of " + file_.string());
  const auto& token = id_to_token_[static_cast<std::size_t>(id)];
  bool added = added_id_[static_cast<std::size_t>(id)];
  if (added && skip_special && skipped_special(static_cast<std::size_t>(id)))
    return {};
  if (decoder_.spelling == Spelling::characters) { // the decoder's chain runs over added tokens too
    if (auto byte = token_byte_[static_cast<std::size_t>(id)]; byte >= 0 && !added)
      return std::string(1, static_cast<char>(byte));
    return decoder_.text(token, /*first=*/false);
  }
  if (added)
    return token;
  std::string text;
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
    if (skip_special && added_id_[index] && skipped_special(index))
      continue;
    if (first && decoder_.drop_first_replacements) // Metaspace: the space encoding put before the text
      piece = decoder_.text(id_to_token_[index], /*first=*/true);
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
  AddedFilter outside_messages = [&](std::size_t index, std::size_t at, std::size_t length) {
    auto id = added_[index].second;
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

std::vector<std::int64_t> BpeTokenizer::stop_token_ids() const {
  std::vector<std::int64_t> stops;
  if (eos_id_)
    stops.push_back(*eos_id_);
  // <|eom_id|>: Llama 3.1 ends a turn with it when it expects a tool's result; <end_of_turn>: Gemma's;
  // <|end|>: Phi-3's and Phi-4 mini's.
  for (const char* name :
       {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<end_of_turn>", "<|end|>"})
    if (auto id = special_token(name); id && std::find(stops.begin(), stops.end(), *id) == stops.end())
      stops.push_back(*id);
  return stops;
}

} // namespace chorus::models
