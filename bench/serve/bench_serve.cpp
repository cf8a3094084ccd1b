// bench_serve: chorus-serve's HTTP path against the same policy actor asked directly, in one run, at
// 1, 8 and 32 concurrent clients. Each client is a thread that sends its requests one after another:
// over HTTP (keep-alive, POST /v1/completions, the JSON parsed) or as actor requests (no HTTP, no
// JSON). Same model (builtin:tiny), prompts, lengths and seeds on both sides.
//
//   BENCH serve  generated tokens/s over HTTP / directly, the lowest of the three levels (target 0.9)
#include "actors/messages.hpp"
#include "actors/model_actors.hpp"
#include "runtime/runtime.hpp"
#include "serve/openai_server.hpp"

#include <caf/scoped_actor.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>

using namespace chorus;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::int64_t kMaxTokens = 32;

struct Level {
  int clients;
  int requests_per_client;
};

std::string prompt_of(int client, int request) {
  return "client " + std::to_string(client) + " request " + std::to_string(request) + ": "
    + std::string(static_cast<std::size_t>((client + request) % 11), 'x');
}

std::int64_t seed_of(int client, int request) {
  return 1000 * client + request;
}

struct Measured {
  double seconds = 0;
  std::int64_t requests = 0, tokens = 0;
  double tokens_per_second() const {
    return static_cast<double>(tokens) / seconds;
  }
  double requests_per_second() const {
    return static_cast<double>(requests) / seconds;
  }
};

// Runs `client(c)` on `clients` threads at once; each returns the tokens it was given.
Measured run_clients(int clients, int requests_per_client, const std::function<std::int64_t(int)>& client) {
  std::atomic<std::int64_t> tokens{0};
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] { tokens += client(c); });
  for (auto& thread : threads)
    thread.join();
  Measured measured;
  measured.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  measured.requests = static_cast<std::int64_t>(clients) * requests_per_client;
  measured.tokens = tokens.load();
  return measured;
}

Measured direct(caf::actor_system& system, const caf::actor& policy, const Level& level) {
  return run_clients(level.clients, level.requests_per_client, [&](int c) {
    caf::scoped_actor self(system);
    std::int64_t tokens = 0;
    for (int r = 0; r < level.requests_per_client; ++r) {
      actors::GenerateRequest request;
      request.text = prompt_of(c, r);
      request.params = {.temperature = 1.0, .max_tokens = kMaxTokens, .seed = seed_of(c, r)};
      self->request(policy, caf::infinite, std::move(request))
        .receive([&](const Generation& generation) { tokens += static_cast<std::int64_t>(generation.tokens.size()); },
                 [&](const caf::error& error) {
                   std::fprintf(stderr, "bench_serve: direct request failed: %s\n", system.render(error).c_str());
                   std::exit(1);
                 });
    }
    return tokens;
  });
}

Measured over_http(int port, const Level& level) {
  return run_clients(level.clients, level.requests_per_client, [&](int c) {
    httplib::Client client("127.0.0.1", port);
    client.set_keep_alive(true);
    client.set_tcp_nodelay(true);
    client.set_read_timeout(600, 0);
    std::int64_t tokens = 0;
    for (int r = 0; r < level.requests_per_client; ++r) {
      nlohmann::json body = {{"model", "builtin:tiny"},
                             {"prompt", prompt_of(c, r)},
                             {"max_tokens", kMaxTokens},
                             {"temperature", 1.0},
                             {"seed", seed_of(c, r)}};
      auto response = client.Post("/v1/completions", body.dump(), "application/json");
      if (!response || response->status != 200) {
        std::fprintf(stderr, "bench_serve: HTTP request failed: %s\n",
                     response ? response->body.c_str() : httplib::to_string(response.error()).c_str());
        std::exit(1);
      }
      auto reply = nlohmann::json::parse(response->body);
      tokens += reply["usage"]["completion_tokens"].get<std::int64_t>();
    }
    return tokens;
  });
}

} // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  spdlog::set_level(spdlog::level::warn);
  Runtime runtime;
  // One intra-op thread, as in bench_batching: the clients need the other core.
  actors::ModelActorSpec spec{
    .name = "serve", .reference = "builtin:tiny", .max_batch_size = 32, .kv_cache_len = 256, .threads = 1};
  auto policy = actors::spawn_policy_actor(runtime.system(), spec);
  runtime.adopt("serve", policy);
  serve::ServerOptions options;
  options.port = 0;
  options.limits.model = "builtin:tiny";
  auto server = std::make_unique<serve::OpenAIServer>(runtime.system(), policy, options);
  int port = server->start();

  direct(runtime.system(), policy, {1, 2}); // warm-up: loads the model, sizes the cache
  over_http(port, {1, 2});

  double worst = 1e9;
  std::string figures;
  for (Level level : {Level{1, 24}, Level{8, 8}, Level{32, 6}}) {
    Measured best_direct, best_http;
    for (int round = 0; round < 2; ++round) { // alternate, keep each side's best: the machine is noisy
      auto d = direct(runtime.system(), policy, level);
      if (d.tokens_per_second() > best_direct.tokens_per_second() || best_direct.seconds == 0)
        best_direct = d;
      auto h = over_http(port, level);
      if (h.tokens_per_second() > best_http.tokens_per_second() || best_http.seconds == 0)
        best_http = h;
    }
    double ratio = best_http.tokens_per_second() / best_direct.tokens_per_second();
    worst = std::min(worst, ratio);
    std::printf("%2d clients, %3lld requests of up to %lld tokens: direct %.0f tok/s %.1f req/s (%lld tokens), "
                "HTTP %.0f tok/s %.1f req/s (%lld tokens): %.2f\n",
                level.clients, static_cast<long long>(best_direct.requests), static_cast<long long>(kMaxTokens),
                best_direct.tokens_per_second(), best_direct.requests_per_second(),
                static_cast<long long>(best_direct.tokens), best_http.tokens_per_second(),
                best_http.requests_per_second(), static_cast<long long>(best_http.tokens), ratio);
    char figure[160];
    std::snprintf(figure, sizeof(figure), "c%d_http_tok_s=%.0f c%d_direct_tok_s=%.0f c%d_http_req_s=%.1f ",
                  level.clients, best_http.tokens_per_second(), level.clients, best_direct.tokens_per_second(),
                  level.clients, best_http.requests_per_second());
    figures += figure;
  }
  std::printf("BENCH serve %sratio=%.2f target=0.9\n", figures.c_str(), worst);
  server.reset();
  policy = nullptr;
  runtime.shutdown();
  return 0;
}
