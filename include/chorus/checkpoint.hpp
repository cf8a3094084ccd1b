// Checkpoints of training stages, and resuming a run from them.
//
// A recipe program writes a checkpoint every `--checkpoint-every N` steps of each stage and at the end
// of each stage, into <output>/checkpoints/; `--resume --output DIR` continues the run in DIR from
// its newest complete checkpoint. A checkpoint holds the trainer's weights, optimizer state, frozen
// reference and RNG state, the stage's progress (step, dataset position, what its loop counts) and
// the length of metrics.jsonl, whose later lines the resumed steps write again.
//
// Resuming runs the recipe again from the top, so code between stages (evaluations, logging) runs
// again too: a stage that had finished restores its model to where it ended and returns its result
// at once; the stage that was interrupted restores its model and progress and goes on from the next
// step; later stages run as usual. With max_staleness 0 a resumed run ends with the same weights and
// metrics as one that never stopped.
//
// The first SIGINT or SIGTERM during a stage lets the current step finish, writes a checkpoint and
// stops the program (exit code 130); the second stops it at once.
//
// The built-in stages (SFT, GRPO, GSPO, PPO, DPO) do all this themselves. A training loop of your own
// does it with a StageCheckpoint:
//
//   auto checkpoint = co_await StageCheckpoint::open(model, "my_stage", steps);
//   if (checkpoint.finished())
//     co_return checkpoint.state()["loss"].get<double>();
//   for (auto step = checkpoint.step() + 1; step <= steps; ++step) {
//     ... one optimizer step, its metrics logged ...
//     co_await checkpoint.step_done(step, {{"loss", loss}});
//   }
//   co_await checkpoint.finish(steps, {{"loss", loss}});
#pragma once

#include <chorus/config.hpp>
#include <chorus/model.hpp>
#include <chorus/task.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace chorus {

/// One stage's link to the run's checkpoints.
class StageCheckpoint {
public:
  /// Begins stage `stage` of `model`'s training. In a resumed run, restores `model` to where this
  /// stage stood in the checkpoint (a stage is matched by its place among the run's stages).
  /// `last_step`: the stage's last step, if known: finish() writes the checkpoint after it, so
  /// step_done does not write a periodic one there too.
  /// @throws CheckpointError if the checkpoint does not fit (another stage, another model, missing
  /// files), naming the file.
  /// `value_model`, if given, trains alongside `model` (PPO's separate value model): its state is
  /// written with each checkpoint and restored with it.
  static Task<StageCheckpoint> open(TrainingModel model, std::string stage, std::int64_t last_step = 0,
                                    ScoringModel value_model = {});

  /// The same for a scoring model's training (a reward model).
  static Task<StageCheckpoint> open(ScoringModel model, std::string stage, std::int64_t last_step = 0);

  /// This stage was restored from a checkpoint of the run being resumed: state() holds its progress.
  bool restored() const noexcept;

  /// The stage had finished in the run being resumed: return state()'s result without training.
  bool finished() const noexcept;

  /// Steps already done (0 for a stage that starts afresh): continue with step() + 1.
  std::int64_t step() const noexcept;

  /// What the stage recorded with its checkpoint (an empty object for a fresh stage).
  const Json& state() const noexcept;

  /// Call once step `step` is complete and its metrics are logged: writes a checkpoint every
  /// --checkpoint-every steps. After a SIGINT/SIGTERM, writes one and throws CancelledError.
  /// @throws CheckpointError if the checkpoint cannot be written (e.g. a full disk), naming the file.
  Task<void> step_done(std::int64_t step, Json state);

  /// Call when the stage is complete: writes its end checkpoint, which a resumed run restores here.
  Task<void> finish(std::int64_t step, Json state);

  /// Moves the link to the run's checkpoints.
  StageCheckpoint(StageCheckpoint&&) noexcept;
  /// Moves the link to the run's checkpoints.
  StageCheckpoint& operator=(StageCheckpoint&&) noexcept;
  ~StageCheckpoint();

private:
  struct Impl;
  explicit StageCheckpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace chorus
