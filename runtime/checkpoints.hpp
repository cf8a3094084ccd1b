// RunCheckpoints: the checkpoints of one recipe run, kept in <output>/checkpoints/. It names, publishes,
// prunes and reads them back; what a checkpoint holds besides its manifest (weights, optimizer state,
// RNG) is written by the trainer into the folder it is handed (actors/trainer_state.cpp).
//
//   checkpoints/
//     latest                      the name of the newest complete checkpoint, replaced by rename
//     0001-sft-step000032-end/    checkpoint.json and trainer/: the end of the run's first stage
//     0002-gspo-step000012/       the newest one, in the middle of the second stage
//     .partial-0002-gspo-.../     one being written: never read, removed by the next commit
//
// A checkpoint is written under a partial name, synced to disk and renamed; only then does `latest`
// name it. A crash at any point leaves `latest` naming a complete checkpoint (or nothing).
//
// After each commit the folder holds the end checkpoints of earlier stages (a resumed run restores
// them where those stages are skipped) and the new one: nothing else.
#pragma once

#include <chorus/config.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace chorus::detail {

/// What `checkpoint.json` records.
struct CheckpointManifest {
  /// Which stage of the run: 1 for the first stage that began, 2 for the next, ...
  int ordinal = 0;
  std::string stage;
  /// Steps the stage had completed.
  std::int64_t step = 0;
  /// Whether the stage had completed all of its steps.
  bool finished = false;
  /// The trainer's weight version.
  std::int64_t weight_version = 0;
  /// How long metrics.jsonl was: a resumed run cuts off what was logged after the checkpoint.
  std::uint64_t metrics_bytes = 0;
  /// The stage's own progress (its loop counters, its result so far).
  Json state = Json::object();
  /// The checkpoint's folder name (not stored: it is the folder's name).
  std::string name;
};

class RunCheckpoints {
public:
  struct Options {
    /// <output>/checkpoints
    std::filesystem::path dir;
    /// Write a checkpoint every `every` steps of a stage (0: only at the end of each stage).
    int every = 0;
    /// Continue from the newest complete checkpoint in `dir`.
    bool resume = false;
    /// The run's metrics.jsonl: on resume, cut back to the checkpoint's length (empty: no metrics file).
    std::filesystem::path metrics;
  };

  /// On resume, reads the newest checkpoint and cuts metrics.jsonl back to it.
  /// @throws CheckpointError naming the file when there is no complete checkpoint or one is unreadable.
  explicit RunCheckpoints(Options options);

  int every() const noexcept {
    return options_.every;
  }

  /// The newest checkpoint a resumed run continues from (none for a fresh run).
  const std::optional<CheckpointManifest>& resumed_from() const noexcept {
    return latest_;
  }

  // -- stages (recipe executor) -------------------------------------------------

  /// Numbers the stages of a run in the order they begin.
  int next_ordinal() noexcept {
    return ++ordinal_;
  }

  /// Where stage `ordinal` stood in the run being resumed: its end checkpoint for a stage that had
  /// finished, the newest checkpoint for the stage that was interrupted, nothing for a stage that had
  /// not begun (or in a fresh run).
  /// @throws CheckpointError if that run's stage `ordinal` had another name (the recipe changed) or
  /// its end checkpoint is missing.
  std::optional<CheckpointManifest> resume_point(int ordinal, const std::string& stage) const;

  /// The folder of a committed checkpoint.
  std::filesystem::path folder(const CheckpointManifest& manifest) const {
    return options_.dir / manifest.name;
  }

  // -- writing ------------------------------------------------------------------

  /// A new empty folder to write `manifest`'s checkpoint into before commit().
  /// @throws CheckpointError if it cannot be created (e.g. an unwritable output directory).
  std::filesystem::path begin_write(const CheckpointManifest& manifest);

  /// Writes the manifest (its metrics_bytes measured now) into `partial`, syncs everything to disk,
  /// renames it to its final name, points `latest` at it and prunes. Returns the final folder.
  /// @throws CheckpointError naming the file that could not be written (e.g. a full disk).
  std::filesystem::path commit(const std::filesystem::path& partial, CheckpointManifest manifest);

  // -- stopping at a step's end ---------------------------------------------------

  /// A stage that writes checkpoints is running (counted: stages may nest).
  void stage_started() noexcept {
    ++active_stages_;
  }
  void stage_ended() noexcept {
    --active_stages_;
  }

  /// Called on the first SIGINT/SIGTERM: while a stage runs, it finishes its current step, writes a
  /// checkpoint and stops the recipe (returns true); otherwise the caller stops the recipe at once.
  bool defer_stop() noexcept;

  bool stop_pending() const noexcept {
    return stop_pending_.load();
  }

  /// What ends the recipe once the deferred stop's checkpoint is written (Runtime::request_stop).
  void on_stop(std::function<void()> stop) {
    stop_ = std::move(stop);
  }
  void stop_now() const {
    if (stop_)
      stop_();
  }

private:
  std::map<int, CheckpointManifest> committed() const;
  void prune(const CheckpointManifest& kept) const;

  Options options_;
  std::optional<CheckpointManifest> latest_;
  std::map<int, CheckpointManifest> finished_; // the resumed run's end checkpoints, by ordinal
  int ordinal_ = 0;
  std::atomic<int> active_stages_{0};
  std::atomic<bool> stop_pending_{false};
  std::function<void()> stop_;
};

/// The manifest in `folder`/checkpoint.json. @throws CheckpointError naming the file and the key.
CheckpointManifest read_manifest(const std::filesystem::path& folder);

} // namespace chorus::detail
