// A streamed chat choice told apart into its parts as the text comes: a thinking model's reasoning,
// the content, and tool calls at the end, the same parts parse_assistant_turn reads from the whole
// text (so that a stream and a plain response agree).
#pragma once

#include <chorus/generation.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace chorus::serve {

/// How much of `text`, the start of a completion's content streamed with tools, is content for
/// sure. `tagged`: all of it but a <tool_call> block and what precedes it that could still begin one
/// (white space, or a beginning of "<tool_call>" at the end); `mistral` likewise with
/// "[TOOL_CALLS]". `json`: nothing while it may still be
/// a call (white space, then a JSON object or <|python_tag|>), else all of it.
std::size_t certain_content(std::string_view text, ToolCallFormat format = ToolCallFormat::tagged);

class TurnStream {
public:
  /// `reasoning`: the model thinks (a leading <think> block is reasoning); `opened`: the prompt left
  /// the block open, so the text starts inside it; `tool_calls`: the request offered tools (the
  /// content's calls, written in `format`, are calls).
  TurnStream(bool reasoning = false, bool tool_calls = false, ToolCallFormat format = ToolCallFormat::tagged,
             bool opened = false);

  /// The reasoning and content that became certain.
  struct Parts {
    std::string reasoning;
    std::string content;
  };

  /// Appends `text` to the completion and returns what of it can be sent now: text that may still
  /// turn out to be another part (a beginning of "<think>", newlines that the parse drops, what may
  /// begin a call) is held back.
  Parts append(std::string_view text);

  /// At the end of the completion: what was held back, as reasoning, content, or the calls it makes.
  ChatMessage finish();

  /// The completion's text so far.
  const std::string& text() const {
    return text_;
  }

private:
  enum class Phase { undecided, thinking, answering };

  void answer_from(std::size_t begin, bool after_reasoning);

  bool reasoning_ = false;
  bool opened_ = false;
  bool tool_calls_ = false;
  ToolCallFormat format_ = ToolCallFormat::tagged;
  Phase phase_ = Phase::undecided;
  std::string text_;
  std::size_t reasoning_sent_ = 0; // the reasoning went out up to here
  bool reasoning_started_ = false; // past the newlines that open it
  std::size_t content_begin_ = 0;  // the content starts here (once answering)
  std::size_t content_sent_ = 0;   // and went out up to here
  bool content_started_ = true;    // past the newlines that follow the reasoning
};

} // namespace chorus::serve
