// A second process for remote_ask_test: publishes the runtime tests' actor on a free loopback port,
// prints "PORT <n>", and serves until it is killed.
#include "tests/runtime/test_actors.hpp"

#include <caf/io/middleman.hpp>

#include <cstdio>
#include <thread>

int main() {
  chorus::Runtime runtime({.network = true, .configure = [](caf::actor_system_config& config) {
                             config.add_message_types<caf::id_block::chorus_runtime_test>();
                           }});
  auto actor = runtime.spawn("echo-actor", chorus::test::test_actor);
  auto port = runtime.system().middleman().publish(actor.handle(), 0, "127.0.0.1");
  if (!port) {
    std::fprintf(stderr, "publish failed: %s\n", runtime.system().render(port.error()).c_str());
    return 1;
  }
  std::printf("PORT %u\n", static_cast<unsigned>(*port));
  std::fflush(stdout);
  while (true)
    std::this_thread::sleep_for(std::chrono::seconds(1));
}
