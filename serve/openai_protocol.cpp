// The responses of the OpenAI API: whole bodies, stream events, errors; request parsing is in
// serve/openai_requests.cpp.
#include "serve/openai_protocol.hpp"

#include "serve/openai_logprobs.hpp"
#include "serve/openai_tools.hpp"

#include <chrono>
#include <random>

namespace chorus::serve {

using nlohmann::json;

namespace {

// Completions may hold any bytes a tokenizer decodes to: ill-formed UTF-8 becomes U+FFFD, as a
// client decoding the bytes itself would show it.
std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json usage(const std::vector<Generation>& choices) {
  std::int64_t prompt = choices.empty() ? 0 : static_cast<std::int64_t>(choices.front().prompt_tokens.size());
  std::int64_t completion = 0;
  for (const auto& choice : choices)
    completion += static_cast<std::int64_t>(choice.tokens.size());
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

json envelope(const ResponseHeader& header, bool chunk) {
  const char* object = header.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return {{"id", header.id}, {"object", object}, {"created", header.created}, {"model", header.model}};
}

std::string event(const json& data) {
  return "data: " + dump(data) + "\n\n";
}

} // namespace

std::string error_body(const ApiError& error) {
  json body = {{"message", error.what()}, {"type", error.type}, {"param", nullptr}, {"code", nullptr}};
  if (!error.param.empty())
    body["param"] = error.param;
  if (!error.code.empty())
    body["code"] = error.code;
  return dump(json{{"error", body}});
}

std::string random_id(std::string prefix) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (int i = 0; i < 24; ++i)
    prefix += kDigits[random() % (sizeof(kDigits) - 1)];
  return prefix;
}

ResponseHeader make_header(const CompletionRequest& request) {
  ResponseHeader header;
  header.id = random_id(request.chat ? "chatcmpl-" : "cmpl-");
  header.created =
    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  header.model = request.model;
  header.chat = request.chat;
  header.logprobs = request.sampling.logprobs;
  header.echo = request.echo;
  header.prompt = request.prompt;
  header.tool_calls = !request.tools.empty();
  return header;
}

std::string response_body(const ResponseHeader& header, const std::vector<Generation>& choices) {
  auto body = envelope(header, false);
  body["choices"] = json::array();
  for (std::size_t i = 0; i < choices.size(); ++i) {
    std::size_t offset = 0;
    const auto* positions = &choices[i].token_logprobs;
    auto text = choices[i].text;
    std::vector<PositionLogprobs> echoed;
    if (header.echo) {
      echoed = choices[i].prompt_logprobs;
      std::string prompt = header.prompt;
      if (prompt.empty())
        for (const auto& position : echoed)
          prompt += position.chosen.text;
      text = prompt + text;
      echoed.insert(echoed.end(), positions->begin(), positions->end());
      positions = &echoed;
    }
    json choice = {{"index", i},
                   {"logprobs", logprobs_value(header, *positions, offset)},
                   {"finish_reason", choices[i].finish_reason}};
    auto turn = parse_assistant_turn(text, header.chat && header.reasoning, header.tool_calls, header.tool_call_format,
                                     header.reasoning_opened);
    if (header.chat) {
      choice["message"] = {{"role", "assistant"}, {"content", turn.content}};
      if (header.reasoning)
        choice["message"]["reasoning_content"] = turn.reasoning.empty() ? json(nullptr) : json(turn.reasoning);
    }
    if (header.chat && !turn.tool_calls.empty()) {
      for (auto& call : turn.tool_calls) // Mistral's keep the ids the model wrote, which its template checks
        if (call.id.empty())
          call.id = random_id("call_");
      if (turn.content.empty())
        choice["message"]["content"] = nullptr;
      choice["message"]["tool_calls"] = tool_calls_value(turn.tool_calls, false);
      if (choices[i].finish_reason == "stop")
        choice["finish_reason"] = "tool_calls";
    }
    if (!header.chat)
      choice["text"] = text;
    body["choices"].push_back(std::move(choice));
  }
  body["usage"] = usage(choices);
  return dump(body);
}

std::string chunk_event(const ResponseHeader& header, std::int64_t index, const std::string& text,
                        const std::vector<PositionLogprobs>& positions, StreamedChoice& sent) {
  if (!sent.started) // the completions API's text is all content
    sent.turn = TurnStream(header.chat && header.reasoning, header.chat && header.tool_calls, header.tool_call_format,
                           header.reasoning_opened);
  auto parts = sent.turn.append(text);
  auto data = envelope(header, true);
  json choice = {{"index", index}, {"finish_reason", nullptr}};
  if (header.chat) {
    if (!text.empty() && parts.reasoning.empty() && parts.content.empty() && positions.empty() && sent.started)
      return {}; // all held back
    json delta = json::object();
    if (!sent.started)
      delta["role"] = "assistant";
    if (!parts.reasoning.empty())
      delta["reasoning_content"] = parts.reasoning;
    if (!parts.content.empty() || parts.reasoning.empty())
      delta["content"] = parts.content;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = parts.content;
  }
  choice["logprobs"] = logprobs_value(header, positions, sent.characters);
  sent.started = true;
  sent.positions += positions.size();
  data["choices"] = json::array({std::move(choice)});
  return event(data);
}

std::string finish_event(const ResponseHeader& header, std::int64_t index, const std::string& finish_reason,
                         StreamedChoice& sent) {
  std::string before; // the text held back, as reasoning, content or the calls it makes
  auto reason = finish_reason;
  if (header.chat) {
    auto rest = sent.turn.finish();
    json delta = json::object();
    if (!rest.reasoning.empty())
      delta["reasoning_content"] = rest.reasoning;
    if (!rest.content.empty())
      delta["content"] = rest.content;
    if (!rest.tool_calls.empty()) {
      for (auto& call : rest.tool_calls)
        if (call.id.empty())
          call.id = random_id("call_");
      delta["tool_calls"] = tool_calls_value(rest.tool_calls, true);
      if (reason == "stop")
        reason = "tool_calls";
    }
    if (!delta.empty()) {
      auto data = envelope(header, true);
      data["choices"] = json::array(
        {{{"index", index}, {"logprobs", nullptr}, {"finish_reason", nullptr}, {"delta", std::move(delta)}}});
      before = event(data);
    }
  }
  auto data = envelope(header, true);
  json choice = {{"index", index}, {"logprobs", nullptr}, {"finish_reason", reason}};
  if (header.chat)
    choice["delta"] = json::object();
  else
    choice["text"] = "";
  data["choices"] = json::array({std::move(choice)});
  return before + event(data);
}

std::string usage_event(const ResponseHeader& header, const std::vector<Generation>& choices) {
  auto data = envelope(header, true);
  data["choices"] = json::array();
  data["usage"] = usage(choices);
  return event(data);
}

std::string error_event(const ApiError& error) {
  return "data: " + error_body(error) + "\n\n";
}

std::string models_body(const std::string& model, std::int64_t created) {
  json entry = {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "chorus"}};
  return dump(json{{"object", "list"}, {"data", json::array({entry})}});
}

} // namespace chorus::serve
