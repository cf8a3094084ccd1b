#include "serve/turn_stream.hpp"

#include "models/chat_template.hpp"

#include <algorithm>

namespace chorus::serve {

using models::kCallOpen;
using models::kPythonTag;
using models::kThinkClose;
using models::kThinkOpen;

namespace {

// The length of the longest end of `text` that begins `tag` (it may be the tag, cut by the stream).
std::size_t tag_start_at_end(std::string_view text, std::string_view tag) {
  for (std::size_t keep = std::min(text.size(), tag.size() - 1); keep > 0; --keep)
    if (text.substr(text.size() - keep) == tag.substr(0, keep))
      return keep;
  return 0;
}

} // namespace

std::size_t certain_content(std::string_view text, ToolCallFormat format) {
  if (format == ToolCallFormat::json) { // the call is the whole turn: decided by its first character
    auto start = text.find_first_not_of(" \n\t\r");
    if (start == std::string_view::npos)
      return 0;
    auto rest = text.substr(start);
    bool may_call = rest.front() == '{' || rest.substr(0, kPythonTag.size()) == kPythonTag.substr(0, rest.size());
    return may_call ? 0 : text.size();
  }
  // Qwen's calls start at <tool_call>, Mistral's at [TOOL_CALLS].
  auto tag = format == ToolCallFormat::mistral ? models::kMistralCalls : kCallOpen;
  auto end = text.find(tag);
  if (end == std::string_view::npos) // hold a tail that may begin the tag
    end = text.size() - tag_start_at_end(text, tag);
  while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == '\n' || text[end - 1] == '\t' || text[end - 1] == '\r'))
    --end; // parse_tool_calls drops the white space before a call
  return end;
}

TurnStream::TurnStream(bool reasoning, bool tool_calls, ToolCallFormat format, bool opened)
  : reasoning_(reasoning), opened_(reasoning && opened), tool_calls_(tool_calls), format_(format) {}

void TurnStream::answer_from(std::size_t begin, bool after_reasoning) {
  phase_ = Phase::answering;
  content_begin_ = content_sent_ = begin;
  content_started_ = !after_reasoning; // the parse drops the newlines after </think>
}

TurnStream::Parts TurnStream::append(std::string_view text) {
  text_ += text;
  Parts parts;
  if (phase_ == Phase::undecided) {
    if (!reasoning_) {
      answer_from(0, false);
    } else if (opened_) { // the prompt opened the block: the text starts inside it
      phase_ = Phase::thinking;
      reasoning_sent_ = 0;
    } else if (text_.compare(0, kThinkOpen.size(), kThinkOpen) == 0) {
      phase_ = Phase::thinking;
      reasoning_sent_ = kThinkOpen.size();
    } else if (text_.size() < kThinkOpen.size() && kThinkOpen.substr(0, text_.size()) == text_) {
      return parts; // may still be <think>
    } else {
      answer_from(0, false);
    }
  }
  if (phase_ == Phase::thinking) {
    if (!reasoning_started_) { // the parse drops the newlines that open the reasoning
      while (reasoning_sent_ < text_.size() && text_[reasoning_sent_] == '\n')
        ++reasoning_sent_;
      reasoning_started_ = reasoning_sent_ < text_.size();
    }
    // Everything before reasoning_sent_ is certain, so the closing tag cannot begin before it.
    auto close = text_.find(kThinkClose, reasoning_sent_);
    auto end = close == std::string::npos
      ? text_.size() - tag_start_at_end(std::string_view(text_).substr(reasoning_sent_), kThinkClose)
      : close;
    auto certain = end;
    while (certain > reasoning_sent_ && text_[certain - 1] == '\n')
      --certain; // dropped before </think>, or inside the reasoning if more follows
    if (certain > reasoning_sent_) {
      parts.reasoning = text_.substr(reasoning_sent_, certain - reasoning_sent_);
      reasoning_sent_ = certain;
    }
    if (close == std::string::npos)
      return parts;
    answer_from(close + kThinkClose.size(), true);
  }
  if (!content_started_) {
    while (content_sent_ < text_.size() && text_[content_sent_] == '\n')
      ++content_sent_;
    content_begin_ = content_sent_;
    content_started_ = content_sent_ < text_.size();
  }
  auto certain = text_.size();
  if (tool_calls_)
    certain = std::max(content_begin_ + certain_content(std::string_view(text_).substr(content_begin_), format_),
                       content_sent_);
  parts.content = text_.substr(content_sent_, certain - content_sent_);
  content_sent_ = certain;
  return parts;
}

ChatMessage TurnStream::finish() {
  ChatMessage rest{"assistant", "", {}};
  if (phase_ == Phase::undecided) // a beginning of <think> and no more: content
    answer_from(0, false);
  if (phase_ == Phase::thinking) { // cut before </think>: all reasoning
    auto end = text_.size();
    while (end > reasoning_sent_ && text_[end - 1] == '\n')
      --end;
    rest.reasoning = text_.substr(reasoning_sent_, end - reasoning_sent_);
    reasoning_sent_ = text_.size();
    return rest;
  }
  if (!content_started_) // only newlines after </think>
    return rest;
  auto turn = tool_calls_ ? parse_tool_calls(text_.substr(content_begin_), format_)
                          : ChatMessage{"assistant", text_.substr(content_begin_), {}};
  auto sent = content_sent_ - content_begin_;
  rest.content = turn.content.size() > sent ? turn.content.substr(sent) : std::string();
  rest.tool_calls = std::move(turn.tool_calls);
  content_sent_ = text_.size();
  return rest;
}

} // namespace chorus::serve
