// node_main: a process that hosts the components a recipe places on it (policy replicas, judges,
// trainers, and the environments registered in it). It publishes a spawner actor through CAF's
// middleman on the address and port given, and serves until SIGINT or SIGTERM.
#include <chorus/node.hpp>

#include "actors/environment_host.hpp"
#include "actors/node_spawner.hpp"
#include "runtime/cluster.hpp"
#include "runtime/option_values.hpp"
#include "runtime/runtime.hpp"
#include "runtime/stop_signals.hpp"

#include <caf/io/middleman.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

namespace {

constexpr const char* kUsage = R"(Usage: chorus-node --cluster FILE --name NAME [--bind ADDR] [--port P]
       chorus-node --name NAME --bind ADDR --port P      (secret in $CHORUS_CLUSTER_SECRET)

Hosts the recipe components placed on node NAME (the name the recipe's cluster file gives it).
  --cluster FILE  the cluster file: this node's secret, address and port
  --bind ADDR     the address to listen on (default: the node's host in the file)
  --port P        the port to listen on (default: the node's port in the file; 0: any free port)
Without a cluster file, --bind and --port are required and the secret is read from the
environment variable CHORUS_CLUSTER_SECRET (a command line is visible to every user).
Prints "chorus-node NAME listening on ADDR:PORT" once it serves; stops on SIGINT or SIGTERM.
)";

struct Options {
  std::string cluster_file, name, bind;
  std::optional<long> port;
};

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&] { return chorus::option_value(argc, argv, i); };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "--cluster") {
      options.cluster_file = value();
    } else if (arg == "--name") {
      options.name = value();
    } else if (arg == "--bind") {
      options.bind = value();
    } else if (arg == "--port") {
      options.port = chorus::option_integer(arg, value(), 0, 65535);
    } else {
      throw std::invalid_argument("unexpected argument '" + arg + "'");
    }
  }
  if (options.name.empty())
    throw std::invalid_argument("--name NAME is required");
  if (options.cluster_file.empty() && (options.bind.empty() || !options.port))
    throw std::invalid_argument("without --cluster FILE, --bind ADDR and --port P are required");
  return options;
}

} // namespace

int chorus::node_main(int argc, char** argv) {
  Options options;
  std::shared_ptr<const chorus::Cluster> cluster;
  chorus::ClusterNode node;
  try {
    options = parse(argc, argv);
    if (!options.cluster_file.empty()) {
      cluster = std::make_shared<const chorus::Cluster>(chorus::read_cluster_file(options.cluster_file));
      node = cluster->node(options.name);
    } else {
      const char* secret = std::getenv("CHORUS_CLUSTER_SECRET");
      if (!secret || !*secret)
        throw std::invalid_argument("without --cluster FILE, the secret comes from CHORUS_CLUSTER_SECRET, "
                                    "which is not set");
      chorus::Cluster alone;
      alone.file = "(command line)";
      alone.secret = secret;
      alone.nodes.push_back({options.name, options.bind, 0});
      cluster = std::make_shared<const chorus::Cluster>(std::move(alone));
      node = cluster->nodes.front();
    }
  } catch (const std::exception& error) {
    std::cerr << "chorus-node: error: " << error.what() << "\n" << kUsage;
    return 2;
  }
  if (!options.bind.empty())
    node.host = options.bind;
  if (options.port)
    node.port = static_cast<std::uint16_t>(*options.port);

  chorus::StopSignals stop; // before any thread starts

  chorus::Runtime runtime({.cluster = cluster});
  auto spawner = chorus::actors::spawn_node_spawner(
    runtime.system(), node.name, cluster->secret, [&runtime](caf::actor actor) { runtime.adopt("", actor); },
    chorus::actors::spawn_environment_host);
  runtime.adopt("spawner", spawner);
  auto port = runtime.system().middleman().publish(spawner, node.port, node.host.c_str(), /*reuse_addr=*/true);
  if (!port) {
    std::cerr << "chorus-node: error: cannot listen on " << node.host << ":" << node.port << ": "
              << runtime.system().render(port.error()) << "\n";
    return 1;
  }
  std::printf("chorus-node %s listening on %s:%u\n", node.name.c_str(), node.host.c_str(),
              static_cast<unsigned>(*port));
  std::fflush(stdout);
  auto stopped_by = stop.wait();
  spdlog::info("chorus-node {}: {} received, stopping", node.name, stopped_by);
  runtime.shutdown();
  return 0;
}
