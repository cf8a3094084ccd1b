// Checkpoint and resume of the two-stage recipe (SFT, then GSPO with max_staleness 0) as a user runs
// it: killed with SIGKILL in the middle of GSPO and resumed, or stopped by SIGTERM and resumed, it
// ends with the weights, metrics and evaluation of a run that was never interrupted.
#include "tests/integration/run_outputs.hpp"
#include "tests/test_process.hpp"

#include <gtest/gtest.h>

#include <csignal>

using namespace chorus;
using namespace chorus::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

#ifdef CHORUS_TWO_STAGE_PROGRAM

// Small enough to take seconds; one intra-op thread and the synchronous loop, so that every run does
// the same arithmetic.
const std::vector<std::string> kArgs{"--set",
                                     "train_prompts=64",
                                     "--set",
                                     "demonstrations=32",
                                     "--set",
                                     "eval_prompts=16",
                                     "--set",
                                     "sft_epochs=1",
                                     "--set",
                                     "gspo_max_steps=6",
                                     "--set",
                                     "gspo_batch_size=32",
                                     "--set",
                                     "threads=1",
                                     "--set",
                                     "max_staleness=0",
                                     "--checkpoint-every",
                                     "1"};

fs::path run_dir(const std::string& name) {
  return fs::path(::testing::TempDir()) / ("resume_" + name);
}

std::vector<std::string> args_for(const fs::path& output, std::vector<std::string> extra = {}, bool lora = false) {
  auto all = kArgs;
  if (lora) // adapters: the checkpoints hold them and their optimizer state, not the frozen base
    all.insert(all.end(), {"--set", "lora.r=8", "--set", "sft_learning_rate=0.005"});
  all.insert(all.end(), {"--output", output.string()});
  all.insert(all.end(), extra.begin(), extra.end());
  return all;
}

std::string eval_line(const std::string& output) {
  auto at = output.find("EVAL");
  return at == std::string::npos ? "" : output.substr(at, output.find('\n', at) - at);
}

std::string latest_checkpoint(const fs::path& output) {
  std::ifstream in(output / "checkpoints" / "latest");
  std::string name;
  std::getline(in, name);
  return name;
}

// The uninterrupted run, once per test process (ctest runs each test in its own, concurrently); with
// `Lora`, of the policy's LoRA adapters.
template <bool Lora>
class ResumeRun : public ::testing::Test {
public:
  static std::vector<std::string> args_for(const fs::path& output, std::vector<std::string> extra = {}) {
    return ::args_for(output, std::move(extra), Lora);
  }

  static void SetUpTestSuite() {
    full_dir_ = run_dir(std::string(Lora ? "full_lora_" : "full_") + std::to_string(::getpid()));
    fs::remove_all(full_dir_);
    ChildProcess full(CHORUS_TWO_STAGE_PROGRAM, args_for(full_dir_));
    full_exit_ = full.wait(300s);
    full_eval_ = eval_line(full.output());
    full_output_ = full.output();
  }

  static void TearDownTestSuite() {
    fs::remove_all(full_dir_);
  }

  // Resumes the run in `output` and checks it against the uninterrupted one. `folder_only`: with
  // `--resume --output DIR` alone, the config read from the folder; else with the original command
  // line again.
  static void resume_and_compare(const fs::path& output, bool folder_only = false) {
    ChildProcess resumed(CHORUS_TWO_STAGE_PROGRAM,
                         folder_only ? std::vector<std::string>{"--resume", "--output", output.string()}
                                     : args_for(output, {"--resume"}));
    ASSERT_EQ(resumed.wait(300s), 0) << resumed.output();
    EXPECT_NE(resumed.output().find("resumed from checkpoint 0002-gspo-"), std::string::npos) << resumed.output();
    EXPECT_NE(resumed.output().find("[sft] finished earlier: restored"), std::string::npos) << resumed.output();
    EXPECT_EQ(eval_line(resumed.output()), full_eval_);

    auto expected = read_metrics(full_dir_ / "metrics.jsonl");
    auto got = read_metrics(output / "metrics.jsonl");
    ASSERT_EQ(got.size(), expected.size()) << "a step was lost or logged twice";
    for (std::size_t i = 0; i < got.size(); ++i) {
      // The sampler's log-probs vary in their last bits with how requests were batched.
      EXPECT_NEAR(got[i].value("logprob_gap", 0.0), expected[i].value("logprob_gap", 0.0), 1e-5);
      got[i].erase("logprob_gap");
      expected[i].erase("logprob_gap");
      EXPECT_EQ(metrics_difference(got[i], expected[i]), "") << "metrics line " << i;
    }
    auto weights = Lora ? "adapter_model.safetensors" : "model.safetensors";
    EXPECT_LT(max_weight_difference(full_dir_ / "final-model" / weights, output / "final-model" / weights), 1e-6);
  }

  static inline fs::path full_dir_;
  static inline int full_exit_ = -1;
  static inline std::string full_eval_, full_output_;
};

using Resume = ResumeRun<false>;
using ResumeWithAdapters = ResumeRun<true>;

// Killed after GSPO's third checkpoint; `name` names the run's folder.
template <class Run>
void kill_in_gspo_and_resume(const std::string& name, bool folder_only) {
  auto output = run_dir(name);
  fs::remove_all(output);
  {
    ChildProcess run(CHORUS_TWO_STAGE_PROGRAM, Run::args_for(output));
    ASSERT_TRUE(
      run.wait_for_output("checkpoint written: " + (output / "checkpoints" / "0002-gspo-step000003").string(), 300s))
      << run.output();
    run.signal(SIGKILL); // no chance to write anything more
    EXPECT_EQ(run.wait(), 128 + SIGKILL);
  }
  auto latest = latest_checkpoint(output);
  EXPECT_TRUE(latest.starts_with("0002-gspo-step00000")) << latest;
  Run::resume_and_compare(output, folder_only);
}

TEST_F(ResumeWithAdapters, ARunKilledInTheMiddleOfGspoAndResumedEndsAsIfNeverStopped) {
  ASSERT_EQ(full_exit_, 0) << full_output_;
  EXPECT_NE(full_output_.find("LoRA"), std::string::npos) << full_output_;
  EXPECT_TRUE(fs::exists(full_dir_ / "final-model" / "adapter_config.json"));
  kill_in_gspo_and_resume<ResumeWithAdapters>("killed_lora", /*folder_only=*/false);
}

// Resumed with `--resume --output DIR` alone: the config comes from the folder.
TEST_F(Resume, ARunKilledInTheMiddleOfGspoAndResumedEndsAsIfNeverStopped) {
  ASSERT_EQ(full_exit_, 0) << full_output_;
  kill_in_gspo_and_resume<Resume>("killed", /*folder_only=*/true);
}

TEST_F(Resume, SigtermFinishesTheStepWritesACheckpointAndTheRunResumes) {
  ASSERT_EQ(full_exit_, 0) << full_output_;
  auto output = run_dir("terminated");
  fs::remove_all(output);
  {
    ChildProcess run(CHORUS_TWO_STAGE_PROGRAM, args_for(output, {"--checkpoint-every", "0"}));
    ASSERT_TRUE(run.wait_for_output("[gspo] 1/6", 300s)) << run.output();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(300s), 130) << run.output();
    EXPECT_NE(run.output().find("stopping after the current step and its checkpoint"), std::string::npos)
      << run.output();
    EXPECT_NE(run.output().find("continue with --resume --output"), std::string::npos) << run.output();
  }
  // Every-0 writes only stage ends: the checkpoint in GSPO is the one the stop wrote, at the last
  // step the metrics hold.
  auto latest = latest_checkpoint(output);
  ASSERT_TRUE(latest.starts_with("0002-gspo-step")) << latest;
  auto metrics = read_metrics(output / "metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(metrics.back()["stage"], "gspo");
  EXPECT_EQ(latest, "0002-gspo-step00000" + std::to_string(metrics.back()["step"].get<int>()));
  resume_and_compare(output);
}

TEST_F(Resume, WhatCannotBeResumedIsRefusedWithExitCode2AndTheReason) {
  auto expect_refused = [](std::vector<std::string> args, const std::string& text) {
    ChildProcess run(CHORUS_TWO_STAGE_PROGRAM, args);
    EXPECT_EQ(run.wait(60s), 2) << run.output();
    EXPECT_NE(run.output().find(text), std::string::npos) << run.output();
  };
  expect_refused({"--resume"}, "--resume needs --output DIR");
  expect_refused({"--checkpoint-every", "-3"}, "--checkpoint-every -3: expected an integer from 0 to");

  auto empty = run_dir("empty");
  fs::remove_all(empty);
  fs::create_directories(empty);
  expect_refused(args_for(empty, {"--resume"}), "is not a run to resume");

  // A run that wrote its config but no checkpoint yet.
  auto fresh = run_dir("no_checkpoint");
  fs::remove_all(fresh);
  fs::create_directories(fresh);
  fs::copy_file(full_dir_ / "config.json", fresh / "config.json");
  expect_refused(args_for(fresh, {"--resume"}), "no complete checkpoint to resume from");

  // Another config than the run's.
  auto changed = run_dir("changed");
  fs::remove_all(changed);
  fs::copy(full_dir_, changed, fs::copy_options::recursive);
  expect_refused(args_for(changed, {"--resume", "--set", "gspo_max_steps=9"}), "config key 'gspo_max_steps' differs");
  // Given with the folder alone, a --set must agree with the run's config too.
  expect_refused({"--resume", "--output", changed.string(), "--set", "gspo_max_steps=9"},
                 "config key 'gspo_max_steps' differs");
  auto config = run_dir("a_config.json");
  {
    std::ifstream in(changed / "config.json");
    auto json = Json::parse(in);
    json["gspo_max_steps"] = 9;
    std::ofstream(config) << json.dump();
  }
  expect_refused({"--resume", "--output", changed.string(), "--config", config.string()},
                 "config key 'gspo_max_steps' differs");
}

// A full disk, as a file-size limit shows it: the first checkpoint cannot be written (the optimizer's
// moments are twice the weights). The run fails naming the file, and nothing incomplete is presented
// as complete: no checkpoint is named latest, no final model folder exists.
TEST(Outputs, AFullDiskIsAnErrorNamingTheFileAndLeavesNothingLookingComplete) {
  auto output = run_dir("full_disk");
  fs::remove_all(output);
  auto args = args_for(output);
  args.insert(args.begin(), {"--fsize=16000000", "--", CHORUS_TWO_STAGE_PROGRAM});
  ChildProcess run("/usr/bin/prlimit", args);
  EXPECT_EQ(run.wait(300s), 1) << run.output();
  EXPECT_NE(run.output().find("optimizer.safetensors: write failed (disk full?)"), std::string::npos) << run.output();
  EXPECT_FALSE(fs::exists(output / "checkpoints" / "latest"));
  EXPECT_FALSE(fs::exists(output / "final-model"));
}

TEST(Outputs, AnOutputDirectoryThatCannotBeCreatedIsAnError) {
  auto file = run_dir("a_file");
  std::ofstream(file) << "not a directory";
  ChildProcess run(CHORUS_TWO_STAGE_PROGRAM, args_for(file / "run"));
  EXPECT_EQ(run.wait(60s), 1) << run.output();
  EXPECT_NE(run.output().find("cannot create the output directory"), std::string::npos) << run.output();
}

#else

TEST(Resume, NeedsTheExamples) {
  GTEST_SKIP() << "built without the examples (the sanitizer build)";
}

#endif

} // namespace
