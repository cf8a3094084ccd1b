// RunCheckpoints without a model: what `latest` names, what survives a crash mid-write, what a
// commit prunes, and what --resume reads back (and refuses).
#include <chorus/errors.hpp>

#include "runtime/checkpoints.hpp"
#include "tests/expect_error.hpp"

#include <gtest/gtest.h>

#include <fstream>

using chorus::CheckpointError;
using chorus::detail::CheckpointManifest;
using chorus::detail::RunCheckpoints;
using chorus::test::expect_error_containing;
namespace fs = std::filesystem;

namespace {

class Checkpoints : public ::testing::Test {
protected:
  void SetUp() override {
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "checkpoints");
    append_metrics("{\"step\":1}\n");
  }

  void append_metrics(const std::string& text) {
    std::ofstream(dir_ / "metrics.jsonl", std::ios::app) << text;
  }

  RunCheckpoints open(bool resume, int every = 2) {
    return RunCheckpoints(
      {.dir = dir_ / "checkpoints", .every = every, .resume = resume, .metrics = dir_ / "metrics.jsonl"});
  }

  // A checkpoint of stage `ordinal` at `step`, with a file standing in for the trainer's part.
  fs::path write(RunCheckpoints& run, int ordinal, const std::string& stage, std::int64_t step, bool finished) {
    CheckpointManifest manifest{.ordinal = ordinal,
                                .stage = stage,
                                .step = step,
                                .finished = finished,
                                .weight_version = step,
                                .state = {{"steps", step}}};
    auto partial = run.begin_write(manifest);
    std::ofstream(partial / "trainer.bin") << "weights of step " << step;
    return run.commit(partial, manifest);
  }

  std::string latest() {
    std::ifstream in(dir_ / "checkpoints" / "latest");
    std::string name;
    std::getline(in, name);
    return name;
  }

  fs::path dir_ = fs::path(::testing::TempDir())
    / ("checkpoints_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
};

std::vector<std::string> folders(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_directory())
      names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

} // namespace

TEST_F(Checkpoints, LatestNamesTheNewestAndACommitKeepsOnlyItAndEarlierStagesEnds) {
  auto run = open(false);
  write(run, 1, "sft", 2, false);
  write(run, 1, "sft", 4, false);
  write(run, 1, "sft", 4, true);
  write(run, 2, "gspo", 3, false);
  write(run, 2, "gspo", 6, false);
  EXPECT_EQ(latest(), "0002-gspo-step000006");
  EXPECT_EQ(folders(dir_ / "checkpoints"),
            (std::vector<std::string>{"0001-sft-step000004-end", "0002-gspo-step000006"}));
  auto manifest = chorus::detail::read_manifest(dir_ / "checkpoints" / latest());
  EXPECT_EQ(manifest.stage, "gspo");
  EXPECT_EQ(manifest.step, 6);
  EXPECT_EQ(manifest.metrics_bytes, fs::file_size(dir_ / "metrics.jsonl"));
}

TEST_F(Checkpoints, ACrashMidWriteLeavesTheLastCompleteCheckpointAsLatest) {
  auto run = open(false);
  write(run, 1, "gspo", 2, false);
  // Killed while writing step 4: its partial folder exists, half written, and so does a folder a
  // killed run renamed but never named latest (no manifest: it died before writing it).
  auto partial = run.begin_write({.ordinal = 1, .stage = "gspo", .step = 4});
  std::ofstream(partial / "trainer.bin") << "half";
  fs::create_directories(dir_ / "checkpoints" / "0001-gspo-step000005");
  EXPECT_EQ(latest(), "0001-gspo-step000002");

  auto resumed = open(true);
  ASSERT_TRUE(resumed.resumed_from());
  EXPECT_EQ(resumed.resumed_from()->step, 2);
  auto point = resumed.resume_point(1, "gspo");
  ASSERT_TRUE(point);
  EXPECT_EQ(point->state["steps"], 2);
  write(resumed, 1, "gspo", 4, false); // the next commit clears what the crash left
  EXPECT_EQ(folders(dir_ / "checkpoints"), (std::vector<std::string>{"0001-gspo-step000004"}));
}

TEST_F(Checkpoints, ResumingCutsTheMetricsBackToTheCheckpointAndFindsEachStagesPoint) {
  auto run = open(false);
  write(run, 1, "sft", 4, true);
  append_metrics("{\"step\":2}\n");
  write(run, 2, "gspo", 2, false);
  auto at_checkpoint = fs::file_size(dir_ / "metrics.jsonl");
  append_metrics("{\"step\":3}\n"); // logged after the checkpoint, before the crash

  auto resumed = open(true);
  EXPECT_EQ(fs::file_size(dir_ / "metrics.jsonl"), at_checkpoint);
  EXPECT_EQ(resumed.next_ordinal(), 1);
  auto sft = resumed.resume_point(1, "sft");
  ASSERT_TRUE(sft);
  EXPECT_TRUE(sft->finished);
  EXPECT_EQ(sft->step, 4);
  auto gspo = resumed.resume_point(2, "gspo");
  ASSERT_TRUE(gspo);
  EXPECT_FALSE(gspo->finished);
  EXPECT_FALSE(resumed.resume_point(3, "eval")); // began after the checkpoint: runs afresh
}

TEST_F(Checkpoints, ResumingWhatDoesNotFitIsACheckpointErrorThatSaysWhy) {
  expect_error_containing<CheckpointError>([&] { open(true); }, {"no complete checkpoint"});

  auto run = open(false);
  write(run, 1, "sft", 4, true);
  write(run, 2, "gspo", 2, false);
  auto resumed = open(true);
  expect_error_containing<CheckpointError>([&] { resumed.resume_point(2, "grpo"); }, {"the recipe changed"});

  fs::remove_all(dir_ / "checkpoints" / "0001-sft-step000004-end");
  auto without_sft = open(true);
  expect_error_containing<CheckpointError>([&] { without_sft.resume_point(1, "sft"); }, {"end checkpoint of stage 1"});

  std::ofstream(dir_ / "checkpoints" / "0002-gspo-step000002" / "checkpoint.json") << "{\"format\": 3}";
  expect_error_containing<CheckpointError>([&] { open(true); }, {"checkpoint.json"});

  write(run, 2, "gspo", 4, false); // the metrics hold one line at this checkpoint
  fs::resize_file(dir_ / "metrics.jsonl", 0);
  expect_error_containing<CheckpointError>([&] { open(true); }, {"metrics were changed"});
}

TEST_F(Checkpoints, AStopIsDeferredOnlyWhileAStageRuns) {
  auto run = open(false);
  EXPECT_FALSE(run.defer_stop());
  EXPECT_FALSE(run.stop_pending());
  run.stage_started();
  EXPECT_TRUE(run.defer_stop());
  EXPECT_TRUE(run.stop_pending());
  bool stopped = false;
  run.on_stop([&] { stopped = true; });
  run.stop_now();
  EXPECT_TRUE(stopped);
}

TEST_F(Checkpoints, ACheckpointFolderThatCannotBeWrittenIsAnErrorNamingIt) {
  // A file where the folder should be: fails for root too, unlike a read-only folder.
  fs::remove_all(dir_ / "checkpoints");
  std::ofstream(dir_ / "checkpoints") << "not a folder";
  auto run = open(false);
  expect_error_containing<CheckpointError>([&] { write(run, 1, "sft", 1, false); },
                                           {"checkpoints/.partial-0001-sft-step000001"});
}
