// A scripted OpenAI-compatible chat-completions endpoint on loopback: a test double of a judge API
// whose answers a test writes, recording the requests it gets.
#pragma once

#include <chorus/grader.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace chorus::test {

// A scripted chat-completions endpoint: `reply` answers each request (status and body), given the
// request's number (from 0); it records the requests and the most handled at once.
class ScriptedEndpoint {
public:
  using Reply = std::function<void(int number, const httplib::Request&, httplib::Response&)>;

  explicit ScriptedEndpoint(Reply reply) : reply_(std::move(reply)) {
    server_.new_task_queue = [] { return new httplib::ThreadPool(16); };
    server_.Post("/v1/chat/completions", [this](const httplib::Request& request, httplib::Response& response) {
      auto now = ++in_flight_;
      for (auto seen = most_.load(); now > seen && !most_.compare_exchange_weak(seen, now);) {
      }
      {
        std::lock_guard lock(mutex_);
        bodies_.push_back(request.body);
        authorizations_.push_back(request.get_header_value("Authorization"));
      }
      reply_(count_++, request, response);
      --in_flight_;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  ~ScriptedEndpoint() {
    server_.stop();
    thread_.join();
  }

  chorus::OpenAIEndpoint endpoint() const {
    return {.base_url = "http://127.0.0.1:" + std::to_string(port_) + "/v1",
            .model = "judge-model",
            .api_key_env = "CHORUS_JUDGE_TEST_KEY",
            .initial_backoff = std::chrono::milliseconds(10)};
  }

  int requests() const {
    return count_.load();
  }
  int most_at_once() const {
    return most_.load();
  }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mutex_);
    return bodies_;
  }
  std::vector<std::string> authorizations() {
    std::lock_guard lock(mutex_);
    return authorizations_;
  }

  static void completion(httplib::Response& response, const std::string& content) {
    nlohmann::json body = {
      {"object", "chat.completion"},
      {"choices",
       {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", content}}}, {"finish_reason", "stop"}}}}};
    response.set_content(body.dump(), "application/json");
  }

private:
  Reply reply_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> count_{0}, in_flight_{0}, most_{0};
  std::mutex mutex_;
  std::vector<std::string> bodies_, authorizations_;
};

} // namespace chorus::test
