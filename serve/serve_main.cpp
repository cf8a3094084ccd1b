// chorus-serve: an OpenAI-compatible HTTP server for one model, generating with a policy actor
// (continuous batching). Any OpenAI client works against it: point its base URL at
// http://HOST:PORT/v1.
//
//   chorus-serve --model path/to/hf-folder --port 8000
//   chorus-serve --model builtin:tiny --port 0                 # any free port (printed)
//   CHORUS_SERVE_KEY=secret chorus-serve --model DIR --api-key-env CHORUS_SERVE_KEY
#include "actors/messages.hpp"
#include "actors/model_actors.hpp"
#include "runtime/actor_errors.hpp"
#include "runtime/option_values.hpp"
#include "runtime/runtime.hpp"
#include "runtime/stop_signals.hpp"
#include "serve/openai_server.hpp"

#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage = R"(Usage: chorus-serve --model MODEL [options]

Serves MODEL (builtin:tiny or a Hugging Face model folder) over the OpenAI API:
POST /v1/chat/completions, POST /v1/completions (both stream with "stream": true), GET /v1/models.
  --model MODEL             the model to serve (required)
  --served-model-name NAME  the name requests give as "model" (default: MODEL as given)
  --host ADDR               the address to listen on (default 127.0.0.1)
  --port P                  the port (default 8000; 0: any free port)
  --max-batch-size N        sequences generated at once (default 32)
  --kv-cache-len N          the longest prompt plus completion, in tokens (default 2048)
  --max-tokens N            max_tokens of a chat request that gives none (default 256)
  --generation-config auto|none
                            auto (the default, as vLLM): a request that gives no temperature,
                            top_p, top_k or repetition_penalty gets the model's
                            generation_config.json's; none: OpenAI's defaults (temperature 1,
                            top_p 1, no top_k, no repetition penalty)
  --dtype float32|bfloat16  the dtype the weights are computed in (default float32)
  --threads N               intra-op threads of the model (default 0: the machine's cores)
  --http-threads N          connections served at once (default 64)
  --api-key-env VAR         require "Authorization: Bearer $VAR" (the key itself never goes on a
                            command line, which every user of the machine can read)
Prints "chorus-serve listening on http://ADDR:PORT/v1" once it serves; stops on SIGINT or SIGTERM.
)";

struct Options {
  chorus::actors::ModelActorSpec spec;
  chorus::serve::ServerOptions server;
  std::string served_name;
  std::string generation_config = "auto";
};

Options parse(int argc, char** argv) {
  Options options;
  options.spec.name = "serve";
  options.spec.kv_cache_len = 2048;
  bool model_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&] { return chorus::option_value(argc, argv, i); };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "--model") {
      options.spec.reference = value();
      model_given = true;
    } else if (arg == "--served-model-name") {
      options.served_name = value();
    } else if (arg == "--host") {
      options.server.host = value();
    } else if (arg == "--port") {
      options.server.port = static_cast<int>(chorus::option_integer(arg, value(), 0, 65535));
    } else if (arg == "--max-batch-size") {
      options.spec.max_batch_size = chorus::option_integer(arg, value(), 1, 4096);
    } else if (arg == "--kv-cache-len") {
      options.spec.kv_cache_len = chorus::option_integer(arg, value(), 2, 1 << 20);
    } else if (arg == "--max-tokens") {
      options.server.limits.default_max_tokens = chorus::option_integer(arg, value(), 1, 1 << 20);
    } else if (arg == "--generation-config") {
      options.generation_config = value();
      if (options.generation_config != "auto" && options.generation_config != "none")
        throw std::invalid_argument("--generation-config " + options.generation_config + ": expected auto or none");
    } else if (arg == "--dtype") {
      options.spec.dtype = value();
      if (options.spec.dtype != "float32" && options.spec.dtype != "bfloat16")
        throw std::invalid_argument("--dtype " + options.spec.dtype + ": expected float32 or bfloat16");
    } else if (arg == "--threads") {
      options.spec.threads = static_cast<int>(chorus::option_integer(arg, value(), 0, 1024));
    } else if (arg == "--http-threads") {
      options.server.http_threads = static_cast<int>(chorus::option_integer(arg, value(), 1, 4096));
    } else if (arg == "--api-key-env") {
      auto variable = value();
      const char* key = std::getenv(variable.c_str());
      if (!key || !*key)
        throw std::invalid_argument("--api-key-env " + variable + ": the environment variable is not set or empty");
      options.server.api_key = key;
    } else {
      throw std::invalid_argument("unexpected argument '" + arg + "'");
    }
  }
  if (!model_given || options.spec.reference.empty())
    throw std::invalid_argument("--model MODEL is required");
  options.server.limits.model = options.served_name.empty() ? options.spec.reference : options.served_name;
  return options;
}

// The model's generation_config.json's sampling defaults into the server's limits; returns an error
// message, or "" when they were taken.
std::string take_sampling_defaults(Options& options, const std::string& generation_config) {
  std::vector<std::string> applied;
  try {
    applied = chorus::serve::apply_generation_config(options.server.limits, nlohmann::json::parse(generation_config));
  } catch (const std::exception& error) {
    return options.spec.reference + "/" + error.what();
  }
  std::string listed;
  for (const auto& setting : applied)
    listed += (listed.empty() ? "" : ", ") + setting;
  if (!listed.empty())
    spdlog::info("chorus-serve: sampling defaults from the model's generation_config.json (--generation-config none "
                 "for OpenAI's): {}",
                 listed);
  return "";
}

} // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse(argc, argv);
  } catch (const std::exception& error) {
    std::cerr << "chorus-serve: error: " << error.what() << "\n" << kUsage;
    return 2;
  }

  chorus::StopSignals stop; // before any thread starts

  chorus::Runtime runtime;
  auto policy = chorus::actors::spawn_policy_actor(runtime.system(), options.spec);
  runtime.adopt("serve", policy);
  // The policy actor answers its first request once the model has loaded (or failed to).
  std::string failure;
  {
    caf::scoped_actor self(runtime.system()); // gone before shutdown, which waits for every actor
    self->request(policy, caf::infinite, chorus::actors::ModelInfoRequest{})
      .receive(
        [&](const chorus::actors::ModelInfo& info) {
          options.server.reasoning = info.thinks;
          options.server.reasoning_opened = info.opens_thinking();
          options.server.tool_call_format = info.tool_call_format();
          if (options.generation_config == "auto" && !info.generation_config.empty())
            failure = take_sampling_defaults(options, info.generation_config);
        },
        [&](const caf::error& error) {
          failure = chorus::handler_error_message(error);
          if (failure.empty())
            failure = runtime.system().render(error);
        });
  }
  if (!failure.empty()) {
    std::cerr << "chorus-serve: error: " << failure << "\n";
    policy = nullptr; // CAF 0.17 waits at shutdown for every handle to a detached actor to go
    runtime.shutdown();
    return 1;
  }

  auto server = std::make_unique<chorus::serve::OpenAIServer>(runtime.system(), std::move(policy), options.server);
  int port = 0;
  try {
    port = server->start();
  } catch (const std::exception& error) {
    std::cerr << "chorus-serve: error: " << error.what() << "\n";
    server.reset();
    runtime.shutdown();
    return 1;
  }
  std::printf("chorus-serve listening on http://%s:%d/v1 (model '%s')\n", options.server.host.c_str(), port,
              options.server.limits.model.c_str());
  std::fflush(stdout);
  auto stopped_by = stop.wait();
  spdlog::info("chorus-serve: {} received, stopping", stopped_by);
  server.reset(); // stops serving and lets go of the policy actor
  runtime.shutdown();
  return 0;
}
