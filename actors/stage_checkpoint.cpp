// StageCheckpoint: a stage's side of the run's checkpoints. The manifest and its publication are
// RunCheckpoints' (runtime/checkpoints.hpp); the trainer writes and restores its own state.
#include <chorus/checkpoint.hpp>
#include <chorus/errors.hpp>

#include "actors/messages.hpp"
#include "actors/model_state.hpp"
#include "runtime/checkpoints.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace chorus {

namespace {

// A checkpoint's folder of the model trained alongside (PPO's value model).
constexpr const char* kValueModel = "value_model";

} // namespace

struct StageCheckpoint::Impl {
  std::shared_ptr<detail::TrainingState> model;
  std::shared_ptr<detail::TrainingState> value_model; // null: none trains alongside
  std::shared_ptr<detail::RunCheckpoints> run;        // null: the run keeps no checkpoints
  std::string stage;
  int ordinal = 0;
  std::int64_t last_step = 0; // 0: not known
  bool restored = false;
  bool finished = false;
  std::int64_t step = 0;
  Json state = Json::object();

  ~Impl() {
    if (run)
      run->stage_ended();
  }

  Task<void> write(std::int64_t at, Json progress, bool end) {
    detail::CheckpointManifest manifest{.ordinal = ordinal,
                                        .stage = stage,
                                        .step = at,
                                        .finished = end,
                                        .weight_version = model->weight_version,
                                        .state = std::move(progress)};
    auto partial = run->begin_write(manifest);
    co_await model->trainer.ask(actors::SaveStateRequest{(partial / "trainer").string()}, model->timeout);
    if (value_model)
      co_await value_model->trainer.ask(actors::SaveStateRequest{(partial / kValueModel).string()},
                                        value_model->timeout);
    auto folder = run->commit(partial, std::move(manifest));
    spdlog::info("[{}] checkpoint written: {}", stage, folder.string());
  }
};

StageCheckpoint::StageCheckpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StageCheckpoint::StageCheckpoint(StageCheckpoint&&) noexcept = default;
StageCheckpoint& StageCheckpoint::operator=(StageCheckpoint&&) noexcept = default;
StageCheckpoint::~StageCheckpoint() = default;

Task<StageCheckpoint> StageCheckpoint::open(ScoringModel model, std::string stage, std::int64_t last_step) {
  // A scoring model is a trainer without replicas: its checkpoints are a training model's.
  return open(detail::ModelAccess::training(detail::ModelAccess::state_of(model)), std::move(stage), last_step);
}

Task<StageCheckpoint> StageCheckpoint::open(TrainingModel model, std::string stage, std::int64_t last_step,
                                            ScoringModel value_model) {
  auto impl = std::make_unique<Impl>();
  impl->last_step = last_step;
  impl->model = detail::ModelAccess::state_of(model);
  if (value_model)
    impl->value_model = detail::ModelAccess::state_of(value_model);
  impl->stage = std::move(stage);
  impl->run = impl->model->checkpoints;
  if (!impl->run)
    co_return StageCheckpoint(std::move(impl));
  impl->run->stage_started();
  impl->ordinal = impl->run->next_ordinal();
  if (auto point = impl->run->resume_point(impl->ordinal, impl->stage)) {
    auto folder = impl->run->folder(*point) / "trainer";
    auto version = co_await impl->model->trainer.ask(actors::LoadStateRequest{folder.string()}, impl->model->timeout);
    if (version != point->weight_version)
      throw CheckpointError(folder.string() + ": the trainer restored weight version " + std::to_string(version)
                            + ", the checkpoint says " + std::to_string(point->weight_version));
    if (impl->value_model) {
      auto value_folder = impl->run->folder(*point) / kValueModel;
      if (!std::filesystem::is_directory(value_folder))
        throw CheckpointError(value_folder.string()
                              + ": missing: the checkpoint has no value model (it was written by a run without one)");
      impl->value_model->weight_version = co_await impl->value_model->trainer.ask(
        actors::LoadStateRequest{value_folder.string()}, impl->value_model->timeout);
    }
    // Generation waits until the replicas hold the restored weights.
    impl->model->weight_version = version;
    impl->model->inference->min_weight_version = version;
    impl->restored = true;
    impl->finished = point->finished;
    impl->step = point->step;
    impl->state = point->state;
    spdlog::info("[{}] {} from checkpoint {} (step {}, weight version {})", impl->stage,
                 point->finished ? "finished earlier: restored" : "resumed", point->name, point->step, version);
  }
  co_return StageCheckpoint(std::move(impl));
}

bool StageCheckpoint::restored() const noexcept {
  return impl_->restored;
}

bool StageCheckpoint::finished() const noexcept {
  return impl_->finished;
}

std::int64_t StageCheckpoint::step() const noexcept {
  return impl_->step;
}

const Json& StageCheckpoint::state() const noexcept {
  return impl_->state;
}

Task<void> StageCheckpoint::step_done(std::int64_t step, Json state) {
  auto& impl = *impl_;
  impl.step = step;
  if (!impl.run)
    co_return;
  bool stopping = impl.run->stop_pending();
  bool periodic = impl.run->every() > 0 && step % impl.run->every() == 0 && step != impl.last_step;
  if (stopping || periodic)
    co_await impl.write(step, std::move(state), /*end=*/false);
  if (stopping) {
    spdlog::warn("[{}] stopped after step {} with a checkpoint: continue with --resume", impl.stage, step);
    impl.run->stop_now();
    throw CancelledError("stopped after step " + std::to_string(step) + " of " + impl.stage);
  }
}

Task<void> StageCheckpoint::finish(std::int64_t step, Json state) {
  auto& impl = *impl_;
  impl.step = step;
  impl.finished = true;
  if (!impl.run)
    co_return;
  co_await impl.write(step, std::move(state), /*end=*/true);
  if (impl.run->stop_pending()) {
    spdlog::warn("[{}] stopped at the end of the stage: continue with --resume", impl.stage);
    impl.run->stop_now();
    throw CancelledError("stopped at the end of " + impl.stage);
  }
}

} // namespace chorus
