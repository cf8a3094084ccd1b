// Environments: the other side of a multi-turn conversation in RL. An environment starts an episode
// from a prompt, reacts to each model turn with the next user message, and ends the episode with a
// reward. ENVGRPO / ENVGSPO train on the model's own turns only; the environment's turns are context.
//
//   struct GuessTheNumber : Environment {
//     int secret = 0;
//     Task<std::vector<ChatMessage>> reset(const Prompt& prompt) override {
//       secret = prompt.metadata["secret"];
//       co_return prompt.prompt;
//     }
//     Task<EnvReply> step(const std::vector<ChatMessage>& conversation) override {
//       int guess = std::atoi(conversation.back().content.c_str());
//       if (guess == secret) co_return EnvReply::finish(1.0, "found it");
//       co_return EnvReply::next(guess < secret ? "Higher." : "Lower.");
//     }
//   };
//   co_await ENVGRPO({.dataset = prompts, .model = model, .logger = ctx.logger(), ...},
//                    {.environment = [] { return std::make_unique<GuessTheNumber>(); }, .max_turns = 4}).run();
#pragma once

#include <chorus/dataset.hpp>
#include <chorus/generation.hpp>
#include <chorus/grpo.hpp>
#include <chorus/gspo.hpp>
#include <chorus/task.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace chorus {

/// An environment's answer to a model turn: the next message, the results of the turn's function
/// calls, or the end of the episode.
struct EnvReply {
  /// The next user message (when not done and there are no tool_results).
  std::string message;
  /// Whether the episode ends with this reply.
  bool done = false;
  /// The episode's reward in [0, 1] (when done).
  double reward = 0.0;
  /// Why the episode got its reward (when done): the grade's explanation.
  std::string explanation;
  /// The results of the model turn's tool calls, one "tool" message each, in the calls' order (when
  /// not done): the model's next turn reads them instead of a user message.
  std::vector<std::string> tool_results;

  /// A reply that goes on with the next user message `message`.
  static EnvReply next(std::string message) {
    return {std::move(message), false, 0.0, {}, {}};
  }
  /// A reply that goes on with the results of the model turn's tool calls.
  static EnvReply from_tools(std::vector<std::string> results) {
    return {{}, false, 0.0, {}, std::move(results)};
  }
  /// A reply that ends the episode with `reward` and `explanation`.
  static EnvReply finish(double reward, std::string explanation = {}) {
    return {{}, true, reward, std::move(explanation), {}};
  }
};

/// One episode's other side; a new instance per episode (see EnvironmentFactory).
class Environment {
public:
  virtual ~Environment() = default;

  /// Starts an episode on `prompt`: returns the conversation the model answers first.
  virtual Task<std::vector<ChatMessage>> reset(const Prompt& prompt) = 0;

  /// Reacts to the model's turn, the last message of `conversation`, read by parse_assistant_turn:
  /// with EnvironmentOptions::tools, its tool_calls parsed out of its text; a thinking model's
  /// (Qwen3's) `<think>` block is its reasoning, the answer after it its content.
  virtual Task<EnvReply> step(const std::vector<ChatMessage>& conversation) = 0;
};

/// Makes a fresh environment for each episode.
using EnvironmentFactory = std::function<std::unique_ptr<Environment>()>;

/// Registers an environment under `name`, so that it can be found by name: in this process, or on
/// a cluster node whose program registered it too (chorus::node_main, include/chorus/node.hpp).
/// @throws ConfigError for an empty name or factory.
void register_environment(std::string name, EnvironmentFactory factory);

class RecipeContext;

/// The environment registered as `name`: made in this process when `node` is empty, else hosted on
/// cluster node `node` (the recipe started with --cluster), whose program registered the same name;
/// each episode then lives on that node and its reset and steps are requests to it. Which one is
/// a matter of configuration: the recipe's code is the same.
/// @throws ConfigError if `name` is not registered here (empty node); ActorError naming the node if
/// it cannot be reached or did not register `name`. An episode's step on a node that died throws
/// ActorDownError naming the node (the episode is gone with it); a new episode's reset waits for
/// the node to come back as find_environment_on_nodes says.
Task<EnvironmentFactory> find_environment(RecipeContext& ctx, std::string name, std::string node = "",
                                          double rejoin_wait_s = 180);

/// The environment registered as `name`, hosted on every one of cluster nodes `nodes`: each new
/// episode goes to the node with the fewest episodes. A node that dies is left out: the episodes it
/// had fail (ENVGRPO and ENVGSPO retry their rollouts) and the run goes on with the others; every
/// 2 s the recipe tries to spawn a new host there, and once the node serves again it is back in the
/// pool. When every node is down, a new episode's reset waits up to `rejoin_wait_s` for one to come
/// back, then throws ActorDownError naming them (0: at once).
Task<EnvironmentFactory> find_environment_on_nodes(RecipeContext& ctx, std::string name, std::vector<std::string> nodes,
                                                   double rejoin_wait_s = 180);

/// The environment of ENVGRPO and ENVGSPO.
struct EnvironmentOptions {
  /// Makes the environment of each episode (e.g. from find_environment).
  EnvironmentFactory environment;
  /// Model turns per episode; an episode with no final reward by then scores 0.
  int max_turns = 4;
  /// The functions the model may call, rendered into every prompt by the chat template (a ChatML
  /// model: Qwen3's `<tools>` system turn). Each model turn's `<tool_call>` blocks are parsed into its
  /// tool_calls before the environment's step, which answers them with EnvReply::from_tools.
  std::vector<Tool> tools;
};

/// GRPO over multi-turn episodes: the options are GRPO's (the grader is unused: the environment
/// gives the reward); a model turn cut by max_tokens ends its episode with reward 0.
class ENVGRPO {
public:
  /// @throws ConfigError as GRPO does, and for no environment or max_turns < 1.
  ENVGRPO(GrpoOptions options, EnvironmentOptions environment);

  /// Trains as GRPO does, on episodes with the environment.
  Task<GrpoResult> run() const;

private:
  GrpoOptions options_;
  EnvironmentOptions environment_;
};

/// GSPO over multi-turn episodes (see ENVGRPO).
class ENVGSPO {
public:
  /// @throws ConfigError as GSPO does, and for no environment or max_turns < 1.
  ENVGSPO(GspoOptions options, EnvironmentOptions environment);

  /// Trains as GSPO does, on episodes with the environment.
  Task<GspoResult> run() const;

private:
  GspoOptions options_;
  EnvironmentOptions environment_;
};

} // namespace chorus
