// A node program that hosts the test environment (as a user's node program would: register, then
// chorus::node_main).
#include <chorus/node.hpp>

#include "tests/integration/test_environments.hpp"

int main(int argc, char** argv) {
  chorus::register_environment("two_turns", [] { return std::make_unique<chorus::test::TwoTurns>("node"); });
  return chorus::node_main(argc, argv);
}
