// A node program: the chorus-node of a cluster that can also host your environments. chorus-node
// itself hosts model actors only (policy replicas, judges, trainers); a node that hosts environments
// must run code that knows them, so it is a program of yours, three lines long:
//
//   int main(int argc, char** argv) {
//     chorus::register_environment("guess", [] { return std::make_unique<GuessTheNumber>(); });
//     return chorus::node_main(argc, argv);
//   }
//
// The recipe registers the same environment, and finds it with
// `co_await find_environment(ctx, "guess", config.environment_node)`.
#pragma once

namespace chorus {

/// Runs a chorus-node (the same options: --cluster FILE --name NAME [--bind ADDR] [--port P]) that
/// hosts, besides model actors, the environments registered before it was called. Returns the
/// process's exit code once SIGINT or SIGTERM stops it.
int node_main(int argc, char** argv);

} // namespace chorus
