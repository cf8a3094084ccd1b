// A chorus-serve process for a test: builtin:tiny on a free loopback port.
#pragma once

#include "../test_process.hpp"

#include <memory>
#include <string>
#include <vector>

namespace chorus::test {

struct ServeProcess {
  std::unique_ptr<ChildProcess> child;
  int port = 0;

  std::string base_url() const {
    return "http://127.0.0.1:" + std::to_string(port) + "/v1";
  }

  /// Starts chorus-serve with `extra` arguments and waits until it listens (the port is in the
  /// line it prints); fails the test, with the output, if it does not.
  static ServeProcess start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--model", "builtin:tiny", "--port", "0", "--max-batch-size", "32"};
    args.insert(args.end(), extra.begin(), extra.end());
    ServeProcess serve;
    serve.child = std::make_unique<ChildProcess>(CHORUS_SERVE_PROGRAM, args);
    auto line = serve.child->wait_for_line("chorus-serve listening on http://127.0.0.1:", std::chrono::seconds(120));
    if (!line) {
      ADD_FAILURE() << "chorus-serve did not start:\n" << serve.child->output();
      return serve;
    }
    serve.port = std::stoi(line->substr(line->find("127.0.0.1:") + 10));
    return serve;
  }
};

} // namespace chorus::test
