// OpenAIChatClient: chat completions from an OpenAI-compatible endpoint, awaited by recipe
// coroutines. Each request runs on a thread of the client's own pool (cpp-httplib is blocking), whose
// size is the endpoint's concurrency limit; retries with backoff on 429, 5xx and lost connections.
#pragma once

#include <chorus/generation.hpp>
#include <chorus/grader.hpp>
#include <chorus/task.hpp>

#include <asio/thread_pool.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace httplib {
class Client;
}

namespace chorus::detail {

class OpenAIChatClient {
public:
  /// `who` names the user in errors (a grader's key). Reads the API key from the environment now.
  /// @throws ConfigError for an endpoint that cannot be used (empty URL or model, bad limits).
  OpenAIChatClient(OpenAIEndpoint endpoint, std::string who);

  /// Waits for the requests in flight.
  ~OpenAIChatClient();

  /// The content of the assistant's reply to `messages`.
  /// @throws Error naming the URL and what went wrong, once the retries are spent.
  Task<std::string> chat(std::vector<ChatMessage> messages, SamplingParams sampling);

  /// The request body for `messages` (exposed for tests).
  std::string request_body(const std::vector<ChatMessage>& messages, const SamplingParams& sampling) const;

private:
  // One request with its retries, on a pool thread.
  std::string post(const std::string& body);
  std::unique_ptr<httplib::Client> take_connection();
  void give_back(std::unique_ptr<httplib::Client> connection);

  OpenAIEndpoint endpoint_;
  std::string who_, origin_, path_, api_key_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<httplib::Client>> idle_; // kept-alive connections
  asio::thread_pool pool_;
};

} // namespace chorus::detail
