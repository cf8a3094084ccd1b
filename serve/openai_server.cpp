#include "serve/openai_server.hpp"

#include "serve/generation_call.hpp"

#include <caf/scoped_actor.hpp>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <sys/socket.h>

namespace chorus::serve {

// cpp-httplib as Debian builds it listens with a backlog of 5: 32 clients connecting at once
// overflow it, and the kernel drops their handshakes (a second's retry each, or a reset). Listening
// again on the bound socket widens the backlog (Linux allows it).
class HttpServer : public httplib::Server {
public:
  void widen_backlog() {
    ::listen(svr_sock_, SOMAXCONN);
  }
};

namespace {

void reply_error(httplib::Response& response, const ApiError& error) {
  response.status = error.status;
  response.set_content(error_body(error), "application/json");
}

// What a failed choice tells the client: its own mistake (a prompt too long for the model) or ours.
ApiError choice_error(const GenerationCall::Event& event) {
  if (event.bad_request)
    return ApiError(400, event.text);
  return ApiError(500, "The model failed to generate: " + event.text, {}, {}, "server_error");
}

// One GenerateRequest per choice; choice i of a seeded request uses seed + i, so that choices differ
// and the request as a whole is still reproducible.
std::vector<actors::GenerateRequest> generate_requests(const CompletionRequest& request) {
  std::vector<actors::GenerateRequest> requests;
  for (std::int64_t choice = 0; choice < request.n; ++choice) {
    actors::GenerateRequest generate;
    generate.messages = request.messages;
    generate.text = request.prompt;
    generate.tokens = request.prompt_tokens;
    generate.params = request.sampling;
    generate.tools = request.tools;
    if (request.sampling.seed >= 0)
      generate.params.seed = request.sampling.seed + choice;
    requests.push_back(std::move(generate));
  }
  return requests;
}

bool authorized(const httplib::Request& request, const std::string& key) {
  auto given = request.get_header_value("Authorization");
  auto expected = "Bearer " + key;
  // Compares every byte whatever the first difference: no timing hint about the key.
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < given.size() && i < expected.size(); ++i)
    difference |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return difference == 0;
}

// The state of a streamed response between calls of its content provider.
struct Stream {
  ResponseHeader header;
  bool include_usage = false;
  std::unique_ptr<GenerationCall> call;
  std::vector<StreamedChoice> sent; // what went out of each choice
  std::vector<Generation> finished;
};

// Writes the next event(s) of `stream`; false when the client is gone (the choices are cancelled).
bool stream_next(Stream& stream, httplib::DataSink& sink) {
  auto write = [&sink](const std::string& text) { return text.empty() || sink.write(text.data(), text.size()); };
  auto event = stream.call->next();
  if (!event) {
    bool written = (!stream.include_usage || write(usage_event(stream.header, stream.finished))) && write(kDoneEvent);
    sink.done();
    return written;
  }
  auto choice = static_cast<std::int64_t>(event->choice);
  auto& sent = stream.sent[event->choice];
  bool written = true;
  switch (event->kind) {
    case GenerationCall::Event::Kind::piece:
      written = write(chunk_event(stream.header, choice, event->text, event->logprobs, sent));
      break;
    case GenerationCall::Event::Kind::finished: {
      // The pieces are a prefix of the completion's text: send what they did not cover, with the
      // log-probs of the positions not sent yet.
      const auto& text = event->generation.text;
      const auto& sent_text = sent.turn.text();
      auto rest = text.compare(0, sent_text.size(), sent_text) == 0 ? text.substr(sent_text.size()) : std::string();
      const auto& positions = event->generation.token_logprobs;
      std::vector<PositionLogprobs> unsent(
        positions.begin() + static_cast<std::ptrdiff_t>(std::min(sent.positions, positions.size())), positions.end());
      if (!rest.empty() || !sent.started || !unsent.empty())
        written = write(chunk_event(stream.header, choice, rest, unsent, sent));
      written = written && write(finish_event(stream.header, choice, event->generation.finish_reason, sent));
      stream.finished[event->choice] = std::move(event->generation);
      break;
    }
    case GenerationCall::Event::Kind::failed:
      // The status line went out already: the error goes in the stream, which ends there.
      write(error_event(choice_error(*event)));
      write(kDoneEvent);
      sink.done();
      stream.call->cancel();
      return true;
  }
  if (!written)
    stream.call->cancel();
  return written;
}

} // namespace

OpenAIServer::OpenAIServer(caf::actor_system& system, caf::actor policy, ServerOptions options)
  : system_(system), policy_(std::move(policy)), options_(std::move(options)), http_(std::make_unique<HttpServer>()) {
  route();
}

OpenAIServer::~OpenAIServer() {
  stop();
}

void OpenAIServer::route() {
  auto& http = *http_;
  auto threads = static_cast<std::size_t>(std::max(1, options_.http_threads));
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(options_.max_body_bytes);
  http.set_keep_alive_max_count(100000);
  http.set_tcp_nodelay(true);

  http.set_pre_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
    if (options_.api_key.empty() || authorized(request, options_.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    reply_error(response, ApiError(401, "Incorrect API key provided.", {}, "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  // Statuses httplib sets by itself (no route, a body too large) get OpenAI's error body too.
  http.set_error_handler([this](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty())
      return;
    if (response.status == 404)
      reply_error(response, ApiError(404, "Unknown request URL: " + request.method + " " + request.path + "."));
    else if (response.status == 413)
      reply_error(
        response,
        ApiError(413, "The request body is larger than " + std::to_string(options_.max_body_bytes) + " bytes."));
    else
      reply_error(
        response,
        ApiError(response.status, "The request could not be served (HTTP " + std::to_string(response.status) + ")."));
  });
  http.set_exception_handler(
    [](const httplib::Request& request, httplib::Response& response, std::exception_ptr error) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      spdlog::error("chorus-serve: {} {} failed: {}", request.method, request.path, what);
      reply_error(response, ApiError(500, "The server failed: " + what, {}, {}, "server_error"));
    });

  http.Get("/health", [this](const httplib::Request&, httplib::Response& response) {
    // The policy actor answers between decode steps: a live server, and how busy it is.
    caf::scoped_actor self(system_);
    self->request(policy_, std::chrono::seconds(30), actors::ModelInfoRequest{})
      .receive(
        [&](const actors::ModelInfo& info) {
          response.set_content(nlohmann::json{{"status", "ok"}, {"generating", info.pending}}.dump(),
                               "application/json");
        },
        [&](const caf::error& error) {
          reply_error(response,
                      ApiError(503, "The model is not answering: " + system_.render(error), {}, {}, "server_error"));
        });
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& response) {
    static const auto started =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    response.set_content(models_body(options_.limits.model, started), "application/json");
  });

  auto generate = [this](bool chat) {
    return [this, chat](const httplib::Request& http_request, httplib::Response& response) {
      CompletionRequest request;
      try {
        request = chat ? parse_chat_request(http_request.body, options_.limits)
                       : parse_completion_request(http_request.body, options_.limits);
      } catch (const ApiError& error) {
        reply_error(response, error);
        return;
      }
      auto header = make_header(request);
      header.reasoning = options_.reasoning;
      header.reasoning_opened = options_.reasoning_opened[request.sampling.enable_thinking ? 1 : 0];
      header.tool_call_format = options_.tool_call_format;
      auto call = std::make_unique<GenerationCall>(system_, policy_, generate_requests(request), request.stream,
                                                   options_.request_timeout);
      if (request.stream) {
        auto stream = std::make_shared<Stream>();
        stream->header = std::move(header);
        stream->include_usage = request.include_usage;
        stream->call = std::move(call);
        auto choices = static_cast<std::size_t>(request.n);
        stream->sent.resize(choices);
        stream->finished.resize(choices);
        response.set_header("Cache-Control", "no-cache");
        response.set_chunked_content_provider(
          "text/event-stream", [stream](std::size_t, httplib::DataSink& sink) { return stream_next(*stream, sink); });
        return;
      }
      std::vector<Generation> choices(static_cast<std::size_t>(request.n));
      while (auto event = call->next()) {
        if (event->kind == GenerationCall::Event::Kind::failed) {
          reply_error(response, choice_error(*event));
          return; // the call's destructor cancels the other choices
        }
        if (event->kind == GenerationCall::Event::Kind::finished)
          choices[event->choice] = std::move(event->generation);
      }
      response.set_content(response_body(header, choices), "application/json");
    };
  };
  http.Post("/v1/chat/completions", generate(true));
  http.Post("/v1/completions", generate(false));
}

int OpenAIServer::start() {
  int port = options_.port == 0 ? http_->bind_to_any_port(options_.host)
                                : (http_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port < 0)
    throw std::runtime_error("cannot listen on " + options_.host + ":" + std::to_string(options_.port)
                             + " (in use, or not an address of this machine)");
  http_->widen_backlog();
  serving_ = std::thread([this] { http_->listen_after_bind(); });
  // stop() can only stop a server that has begun listening: wait for that here.
  while (!http_->is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return port;
}

void OpenAIServer::stop() {
  http_->stop();
  if (serving_.joinable())
    serving_.join();
}

} // namespace chorus::serve
