// The environment the node tests host: two model turns, then the share of 'x' in the model's replies;
// each step waits 200 ms (as an environment waiting on a tool would), and the explanation says
// where the episode ran and the secret its prompt carried.
#pragma once

#include <chorus/chorus.hpp>

#include <string>

namespace chorus::test {

struct TwoTurns : Environment {
  explicit TwoTurns(std::string where) : where(std::move(where)) {}
  std::string where;
  int turns = 0;
  int secret = 0;

  Task<std::vector<ChatMessage>> reset(const Prompt& prompt) override {
    secret = prompt.metadata.value("secret", -1);
    co_return prompt.prompt;
  }

  Task<EnvReply> step(const std::vector<ChatMessage>& conversation) override {
    co_await sleep_for(std::chrono::milliseconds(200));
    if (++turns < 2)
      co_return EnvReply::next("Once more (secret " + std::to_string(secret) + ").");
    double xs = 0, total = 0;
    for (const auto& message : conversation)
      if (message.role == "assistant")
        for (char c : message.content) {
          xs += c == 'x';
          ++total;
        }
    co_return EnvReply::finish(total > 0 ? xs / total : 0.0, where + ": secret " + std::to_string(secret));
  }
};

} // namespace chorus::test
