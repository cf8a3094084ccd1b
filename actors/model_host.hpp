// What every model-hosting actor does the same way: load its model on its own thread, keep its
// intra-op thread count at its share of the cores while it works, and describe itself.
#pragma once

#include "actors/core_budget.hpp"
#include "actors/messages.hpp"
#include "actors/model_actors.hpp"
#include "models/pretrained.hpp"

#include <memory>
#include <string>

namespace chorus::actors {

class WeightBoard;

/// The LibTorch dtype of "float32" (or "fp32") and "bfloat16" (or "bf16").
/// @throws std::invalid_argument for any other name.
torch::ScalarType parse_dtype(const std::string& dtype);

/// The LibTorch device of "cpu", "cuda" or "cuda:N", one this process has.
/// @throws std::invalid_argument naming the device and what this process's LibTorch has.
torch::Device parse_device(const std::string& device);

/// A policy actor that adopts the weight versions `board` publishes (none if null).
caf::actor spawn_policy_with_board(caf::actor_system& system, ModelActorSpec spec, std::shared_ptr<WeightBoard> board);

struct ModelHost {
  ModelActorSpec spec;
  models::Pretrained model;
  std::unique_ptr<CoreShare> cores;
  int threads = 0;
  /// Set when loading failed: every request is answered with it.
  std::string load_error;
  /// This actor's thread runs at a lower priority for the trainer's sake (prepare).
  bool yielded = false;

  /// Loads the model named by `spec` and joins the core budget with `weight`. Never throws: a failure
  /// is kept in load_error.
  void load(ModelActorSpec model_spec, int weight);

  /// Throws load_error if loading failed; sets this thread's intra-op threads to the current share;
  /// lowers this thread's priority while it should yield to a trainer (CoreShare).
  void prepare();

  /// Sets this thread's intra-op (OpenMP) threads, which the BLAS follows too, to the actor's share
  /// of the cores now. Called before each unit of work: shares change as other actors start and stop.
  void follow_share();

  /// Marks the actor working (it holds its share of the cores) or waiting (it holds none).
  void set_busy(bool busy);

  /// The actor works while this lives: busy, with its share's threads set.
  class Working {
  public:
    explicit Working(ModelHost& host);
    ~Working();
    Working(const Working&) = delete;
    Working& operator=(const Working&) = delete;

  private:
    ModelHost& host_;
  };

  ModelInfo info(std::int64_t weight_version) const;

  /// The model's tokens of a request's chat (with the chat template) or text.
  TokenizeReply tokenize(const TokenizeRequest& request) const;
};

} // namespace chorus::actors
