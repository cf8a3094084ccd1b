// The trainer actor: owns the trainable weights and the optimizer (actors/trainer.hpp), publishes
// each new weight version to its replicas, and saves checkpoints. Steps run one at a time in arrival
// order; a bad request is answered with an error and the actor keeps serving.
#include "actors/data_parallel.hpp"
#include "actors/model_host.hpp"
#include "actors/trainer.hpp"
#include "actors/weight_board.hpp"
#include "actors/weight_stream.hpp"
#include "models/generation.hpp"
#include "runtime/actor_host.hpp"
#include "runtime/timeline.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>

namespace chorus::actors {

namespace {

struct TrainerState {
  ModelHost host;
  std::unique_ptr<Trainer> trainer;
  std::shared_ptr<WeightBoard> board; // null on data-parallel ranks > 0: nothing generates from them
  caf::actor weight_server;           // tells replicas in other processes of each version (null too)
  std::vector<caf::actor> ranks;      // rank 0 of a data-parallel group: the others, to forward to
  static inline const char* name = "chorus.trainer";
};

using TrainerActor = StatefulActor<TrainerState>;

// Rank 0 of a data-parallel group sends every request that changes the weights to the other ranks
// before it runs the request itself: all ranks then run the same steps in the same order. A rank's
// failure shows on rank 0 as a failed collective (Gloo), so their replies are not awaited.
template <class Request>
void forward_to_ranks(TrainerActor* self, const Request& request) {
  for (const auto& rank : self->state.ranks)
    caf::anon_send(rank, request);
}

// Makes the current weights version `version` for the replicas in this process (the board) and in
// others (the weight server tells them).
void publish(TrainerActor* self, std::int64_t version) {
  auto& state = self->state;
  if (!state.board)
    return;
  {
    TimelineSpan span(state.host.spec.name, "weight publish", "version " + std::to_string(version));
    state.board->publish(version, *state.host.model.model);
  }
  if (state.weight_server)
    self->send(state.weight_server, WeightsPublished{version});
}

// Loads the model and makes its trainer; a failure is kept as the host's load error, which every
// request then reports.
void start_trainer(TrainerActor* self, ModelActorSpec spec, bool keep_reference, DataParallelSpec data_parallel) {
  auto& state = self->state;
  // A backward pass costs about twice a forward: the trainer claims two shares of the cores.
  state.host.load(std::move(spec), /*weight=*/2);
  if (!state.host.load_error.empty())
    return;
  try {
    state.trainer = std::make_unique<Trainer>(state.host.model, keep_reference);
    state.trainer->before_micro_batch([&host = state.host] { host.follow_share(); });
    if (data_parallel.size > 1)
      state.trainer->join(std::make_unique<GradientGroup>(data_parallel));
    publish(self, 0); // replicas start from exactly these weights
  } catch (const std::exception& error) {
    state.host.load_error = error.what();
  }
}

// One optimizer step, published to the replicas before the report goes back.
TrainReport train(TrainerActor* self, const TrainRequest& request) {
  auto& state = self->state;
  state.host.prepare();
  ModelHost::Working working(state.host);
  auto objective = parse_objective(request.objective);
  forward_to_ranks(self, request);
  TrainReport report;
  {
    TimelineSpan span(state.host.spec.name, request.objective + " step",
                      std::to_string(request.samples.size() + request.pairs.size()) + " samples");
    bool pairs = objective == Objective::dpo || objective == Objective::reward;
    report = pairs ? state.trainer->pair_step(objective, request.pairs, request.params)
                   : state.trainer->step(objective, request.samples, request.params);
  }
  publish(self, report.weight_version);
  // A sampler that disagrees with the trainer about the same weights and tokens biases every
  // policy-gradient step silently: say so loudly. bf16 rounds differently in the two code paths.
  double tolerance = state.host.spec.dtype == "float32" ? 1e-4 : 5e-2;
  if (report.logprob_gap > tolerance)
    spdlog::warn("{}: sampler and trainer log-probs differ by {:.2e} per token on weight version {}: sampling "
                 "and training disagree about the same weights",
                 state.host.spec.name, report.logprob_gap, report.weight_version - 1);
  return report;
}

caf::behavior trainer_actor(TrainerActor* self, ModelActorSpec spec, std::shared_ptr<WeightBoard> board,
                            caf::actor weight_server, bool keep_reference, DataParallelSpec data_parallel) {
  self->state.board = std::move(board);
  self->state.weight_server = std::move(weight_server);
  start_trainer(self, std::move(spec), keep_reference, std::move(data_parallel));
  return {
    guarded([self](const ModelInfoRequest&) {
      self->state.host.prepare();
      auto info = self->state.host.info(self->state.trainer->version());
      if (auto* group = self->state.trainer->group())
        info.data_parallel_port = group->store_port();
      return info;
    }),
    guarded([self](const JoinRanks& join) { self->state.ranks = join.ranks; }),
    guarded([self](const TrainRequest& request) { return train(self, request); }),
    guarded([self](const ValuesRequest& request) {
      self->state.host.prepare();
      ModelHost::Working working(self->state.host);
      return ValuesReply{self->state.trainer->values(request.samples)};
    }),
    guarded([self](const ResetReferenceRequest& request) {
      self->state.host.prepare();
      forward_to_ranks(self, request);
      self->state.trainer->reset_reference();
    }),
    guarded([self](const SaveRequest& request) {
      auto& state = self->state;
      state.host.prepare();
      std::filesystem::create_directories(request.folder);
      const auto& spec = state.host.spec;
      // An adapter folder names its base as this run loaded it (a folder given as an adapter names
      // its own base in turn).
      auto base = spec.adapter.empty() ? spec.reference : models::adapter_base_model(spec.adapter);
      models::save_pretrained_model(state.host.model, request.folder, request.merge_adapter, base);
    }),
    guarded([self](const SaveStateRequest& request) {
      auto& state = self->state;
      state.host.prepare();
      TimelineSpan span(state.host.spec.name, "checkpoint", request.folder);
      state.trainer->save_state(request.folder);
    }),
    guarded([self](const LoadStateRequest& request) {
      auto& state = self->state;
      state.host.prepare();
      forward_to_ranks(self, request);
      state.trainer->load_state(request.folder);
      publish(self, state.trainer->version());
      return state.trainer->version();
    }),
    guarded([self](const ScoresRequest& request) {
      auto& state = self->state;
      state.host.prepare();
      ModelHost::Working working(state.host);
      return ScoresReply{state.trainer->scores(request.samples), state.trainer->version()};
    }),
    guarded([self](const TokenizeRequest& request) {
      self->state.host.prepare();
      return self->state.host.tokenize(request);
    }),
    guarded([self](const LogprobsRequest& request) {
      auto& state = self->state;
      state.host.prepare();
      ModelHost::Working working(state.host);
      auto scores =
        models::score_logprobs(state.host.model.model, {request.prompt_tokens}, {request.completion_tokens});
      return LogprobsReply{std::move(scores.front()), state.trainer->version()};
    }),
  };
}

} // namespace

caf::actor spawn_trainer_rank(caf::actor_system& system, ModelActorSpec spec, bool keep_reference,
                              DataParallelSpec data_parallel) {
  return system.spawn<caf::detached>(trainer_actor, std::move(spec), nullptr, caf::actor{}, keep_reference,
                                     std::move(data_parallel));
}

caf::actor spawn_scoring_actor(caf::actor_system& system, ModelActorSpec spec) {
  spec.scoring = true;
  return system.spawn<caf::detached>(trainer_actor, std::move(spec), nullptr, caf::actor{}, /*keep_reference=*/false,
                                     DataParallelSpec{});
}

TrainingActors spawn_training_actors(caf::actor_system& system, ModelActorSpec trainer_spec,
                                     ModelActorSpec replica_spec, int replicas, bool keep_reference,
                                     DataParallelSpec data_parallel, std::string weights_host) {
  auto board = std::make_shared<WeightBoard>();
  TrainingActors actors;
  actors.weight_server = spawn_weight_server(system, board, std::move(weights_host));
  actors.trainer = system.spawn<caf::detached>(trainer_actor, std::move(trainer_spec), board, actors.weight_server,
                                               keep_reference, std::move(data_parallel));
  for (int i = 0; i < replicas; ++i) {
    auto spec = replica_spec;
    spec.name += "/replica" + std::to_string(i);
    actors.replicas.push_back(spawn_policy_with_board(system, std::move(spec), board));
  }
  return actors;
}

int available_devices() {
  return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
}

std::string libtorch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "."
    + std::to_string(TORCH_VERSION_PATCH);
}

} // namespace chorus::actors
