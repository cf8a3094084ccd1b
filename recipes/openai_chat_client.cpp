#include "recipes/openai_chat_client.hpp"

#include <chorus/errors.hpp>

#include "runtime/blocking_call.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <random>
#include <thread>

namespace chorus::detail {

using nlohmann::json;

namespace {

// Whether an answer with this status may succeed when asked again.
bool retryable(int status) {
  return status == 408 || status == 429 || status >= 500;
}

// The error message of an OpenAI-style error body, or the start of whatever the body is.
std::string error_message(const std::string& body) {
  try {
    auto parsed = json::parse(body);
    if (parsed.contains("error") && parsed["error"].is_object() && parsed["error"].contains("message"))
      return parsed["error"]["message"].get<std::string>();
  } catch (const std::exception&) {
  }
  return body.substr(0, 200);
}

} // namespace

OpenAIChatClient::OpenAIChatClient(OpenAIEndpoint endpoint, std::string who)
  : endpoint_(std::move(endpoint)), who_(std::move(who)),
    pool_(static_cast<std::size_t>(std::max(1, endpoint_.max_concurrency))) {
  auto fail = [this](const std::string& what) { throw ConfigError("grader '" + who_ + "': endpoint " + what); };
  const auto& url = endpoint_.base_url;
  auto scheme = url.find("://");
  if (url.empty() || scheme == std::string::npos
      || (url.compare(0, scheme, "http") != 0 && url.compare(0, scheme, "https") != 0))
    fail("base_url '" + url + "': expected http://HOST[:PORT]/PATH or https://...");
  auto path = url.find('/', scheme + 3);
  origin_ = url.substr(0, path);
  path_ = path == std::string::npos ? "" : url.substr(path);
  while (!path_.empty() && path_.back() == '/')
    path_.pop_back();
  path_ += "/chat/completions";
  if (endpoint_.model.empty())
    fail("model must not be empty");
  if (endpoint_.max_concurrency < 1 || endpoint_.max_retries < 0 || endpoint_.timeout.count() <= 0)
    fail("limits: max_concurrency and timeout must be positive, max_retries not negative");
  if (!endpoint_.api_key_env.empty())
    if (const char* key = std::getenv(endpoint_.api_key_env.c_str()))
      api_key_ = key;
}

OpenAIChatClient::~OpenAIChatClient() {
  pool_.join();
}

std::string OpenAIChatClient::request_body(const std::vector<ChatMessage>& messages,
                                           const SamplingParams& sampling) const {
  json body = {{"model", endpoint_.model},
               {"messages", json::array()},
               {"temperature", sampling.temperature},
               {"max_tokens", sampling.max_tokens}};
  for (const auto& message : messages)
    body["messages"].push_back({{"role", message.role}, {"content", message.content}});
  if (sampling.top_p < 1.0)
    body["top_p"] = sampling.top_p;
  if (sampling.min_tokens > 0) // a vLLM extension, which chorus-serve honours too
    body["min_tokens"] = sampling.min_tokens;
  if (!sampling.stop.empty())
    body["stop"] = sampling.stop;
  if (sampling.seed >= 0)
    body["seed"] = sampling.seed;
  if (sampling.presence_penalty != 0.0)
    body["presence_penalty"] = sampling.presence_penalty;
  if (sampling.frequency_penalty != 0.0)
    body["frequency_penalty"] = sampling.frequency_penalty;
  if (sampling.repetition_penalty != 1.0) // vLLM's; OpenAI's own API has none
    body["repetition_penalty"] = sampling.repetition_penalty;
  for (const auto& [token, bias] : sampling.logit_bias)
    body["logit_bias"][std::to_string(token)] = bias;
  if (!sampling.json_schema.is_null())
    body["response_format"] = {
      {"type", "json_schema"},
      {"json_schema", {{"name", "output"}, {"schema", sampling.json_schema}, {"strict", true}}}};
  // vLLM's (and chorus-serve's); OpenAI itself has no equivalent.
  if (!sampling.choice.empty())
    body["guided_choice"] = sampling.choice;
  if (!sampling.regex.empty())
    body["guided_regex"] = sampling.regex;
  if (!sampling.enable_thinking) // vLLM's (and chorus-serve's) arguments of the chat template
    body["chat_template_kwargs"] = {{"enable_thinking", false}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

Task<std::string> OpenAIChatClient::chat(std::vector<ChatMessage> messages, SamplingParams sampling) {
  auto body = request_body(messages, sampling);
  std::function<std::string()> call = [this, body = std::move(body)] { return post(body); };
  co_return co_await run_blocking(pool_, std::move(call));
}

std::unique_ptr<httplib::Client> OpenAIChatClient::take_connection() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
  }
  auto connection = std::make_unique<httplib::Client>(origin_);
  auto seconds = std::chrono::duration_cast<std::chrono::microseconds>(endpoint_.timeout).count();
  connection->set_connection_timeout(seconds / 1000000, seconds % 1000000);
  connection->set_read_timeout(seconds / 1000000, seconds % 1000000);
  connection->set_write_timeout(seconds / 1000000, seconds % 1000000);
  connection->set_keep_alive(true);
  if (!api_key_.empty())
    connection->set_bearer_token_auth(api_key_);
  return connection;
}

void OpenAIChatClient::give_back(std::unique_ptr<httplib::Client> connection) {
  std::lock_guard lock(mutex_);
  idle_.push_back(std::move(connection));
}

std::string OpenAIChatClient::post(const std::string& body) {
  thread_local std::mt19937 jitter{std::random_device{}()};
  auto url = origin_ + path_;
  std::string last_error;
  for (int attempt = 0; attempt <= endpoint_.max_retries; ++attempt) {
    auto wait = endpoint_.initial_backoff * (1 << std::min(attempt, 16));
    auto connection = take_connection();
    auto result = connection->Post(path_, body, "application/json");
    if (!result) {
      auto why = result.error() == httplib::Error::Read
        ? std::string("no answer within the timeout, or the connection broke")
        : result.error() == httplib::Error::Connection ? std::string("cannot connect")
                                                       : httplib::to_string(result.error());
      last_error = url + ": " + why;
    } else if (result->status == 200) {
      give_back(std::move(connection));
      try {
        auto reply = json::parse(result->body);
        const auto& content = reply.at("choices").at(0).at("message").at("content");
        return content.is_null() ? std::string() : content.get<std::string>();
      } catch (const std::exception& error) {
        throw Error("grader '" + who_ + "': " + url + " answered 200 with a body that is not a chat completion ("
                    + error.what() + "): " + result->body.substr(0, 200));
      }
    } else {
      give_back(std::move(connection));
      last_error = url + " answered " + std::to_string(result->status) + ": " + error_message(result->body);
      if (!retryable(result->status))
        throw Error("grader '" + who_ + "': " + last_error);
      if (auto after = result->get_header_value("Retry-After"); !after.empty()) {
        try {
          wait = std::chrono::milliseconds(static_cast<long long>(std::stod(after) * 1000));
        } catch (const std::exception&) { // an HTTP date: keep the backoff
        }
      }
    }
    if (attempt == endpoint_.max_retries)
      break;
    wait += std::chrono::milliseconds(std::uniform_int_distribution<long long>(0, wait.count() / 4)(jitter));
    spdlog::warn("grader '{}': {}; retrying in {} ms ({} of {})", who_, last_error, wait.count(), attempt + 1,
                 endpoint_.max_retries);
    std::this_thread::sleep_for(wait);
  }
  throw Error("grader '" + who_ + "': " + last_error + " (after " + std::to_string(endpoint_.max_retries + 1)
              + " attempts)");
}

} // namespace chorus::detail
