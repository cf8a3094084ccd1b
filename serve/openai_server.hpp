// OpenAIServer: the OpenAI-compatible HTTP API in front of a policy actor (chorus-serve). Each HTTP
// request is handled on a thread of cpp-httplib's pool, which sends its choices to the policy actor
// and waits; the actor batches every request in flight together (continuous batching).
//
//   POST /v1/chat/completions   chat, streamed as server-sent events with "stream": true
//   POST /v1/completions        plain-text continuation, streamed likewise
//   GET  /v1/models             the one model served
//   GET  /health                {"status": "ok", "generating": N}: the requests the model is generating
#pragma once

#include "serve/openai_protocol.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace chorus::serve {

class HttpServer; // cpp-httplib's server

struct ServerOptions {
  std::string host = "127.0.0.1";
  /// 0: any free port (bind() says which).
  int port = 8000;
  RequestLimits limits;
  /// When not empty, every request must carry "Authorization: Bearer <api_key>".
  std::string api_key;
  /// HTTP handler threads: the most connections served at once (a kept-alive connection holds one).
  int http_threads = 64;
  /// A choice not generated within this fails with a server error.
  std::chrono::milliseconds request_timeout = std::chrono::minutes(10);
  /// Larger request bodies are refused with 413.
  std::size_t max_body_bytes = 8 << 20;
  /// The model thinks (ModelInfo::thinks): chat responses carry its reasoning as reasoning_content.
  bool reasoning = false;
  /// Its generation prompt leaves the <think> block open, by enable_thinking (ModelInfo).
  std::array<bool, 2> reasoning_opened{};
  /// How the model's chat template writes function calls (ModelInfo::tool_call_format).
  ToolCallFormat tool_call_format = ToolCallFormat::tagged;
};

class OpenAIServer {
public:
  OpenAIServer(caf::actor_system& system, caf::actor policy, ServerOptions options);

  /// Stops serving and waits for the serving thread.
  ~OpenAIServer();

  OpenAIServer(const OpenAIServer&) = delete;
  OpenAIServer& operator=(const OpenAIServer&) = delete;

  /// Listens on options.host:options.port and serves on a thread of its own; returns the port.
  /// @throws std::runtime_error if it cannot listen there.
  int start();

  /// Stops accepting and serving. Idempotent.
  void stop();

private:
  void route();

  caf::actor_system& system_;
  caf::actor policy_;
  ServerOptions options_;
  std::unique_ptr<HttpServer> http_;
  std::thread serving_;
};

} // namespace chorus::serve
