// Dividing the cores between the compute actors working now, and inference actors yielding to a
// trainer when the actors' threads outnumber the cores.
#include "actors/core_budget.hpp"
#include "actors/model_host.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

using namespace chorus::actors;

namespace {

int this_thread_nice() {
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
  EXPECT_EQ(errno, 0);
  return nice;
}

TEST(CoreBudget, ALoneWorkingActorGetsEveryCore) {
  CoreBudget budget(6);
  auto trainer = budget.join("trainer", 2);
  auto policy = budget.join("policy", 1);
  policy->set_busy(true);
  EXPECT_EQ(policy->threads(), 6); // the trainer waits: it holds none
  EXPECT_EQ(budget.describe(), "trainer: waiting, policy: 6");
  policy->set_busy(false);
  trainer->set_busy(true);
  EXPECT_EQ(trainer->threads(), 6);
}

TEST(CoreBudget, ActorsWorkingAtOnceSplitTheCoresByWeightAfterThePinnedOnes) {
  CoreBudget budget(6);
  auto trainer = budget.join("trainer", 2);
  auto policy = budget.join("policy", 1);
  trainer->set_busy(true);
  policy->set_busy(true);
  EXPECT_EQ(trainer->threads(), 4);
  EXPECT_EQ(policy->threads(), 2);
  auto judge = budget.join("judge", 1, /*fixed_threads=*/2);
  EXPECT_EQ(judge->threads(), 2);   // pinned: whether it works or not
  EXPECT_EQ(trainer->threads(), 2); // 4 cores left for weights 2 and 1
  EXPECT_EQ(policy->threads(), 1);
  judge.reset();
  policy->set_busy(false);
  EXPECT_EQ(trainer->threads(), 6);
  policy.reset(); // leaving while working or not: the others get its cores
  EXPECT_EQ(trainer->threads(), 6);
}

TEST(CoreBudget, MoreWorkingActorsThanCoresGetOneThreadEach) {
  CoreBudget budget(2);
  auto trainer = budget.join("trainer", 2);
  auto policy = budget.join("policy", 1);
  auto judge = budget.join("judge", 1);
  for (auto* share : {trainer.get(), policy.get(), judge.get()})
    share->set_busy(true);
  EXPECT_EQ(trainer->threads(), 1);
  EXPECT_EQ(policy->threads(), 1);
  EXPECT_EQ(judge->threads(), 1);
  EXPECT_TRUE(policy->should_yield_to_trainer()); // three threads on two cores
  judge->set_busy(false);
  EXPECT_FALSE(policy->should_yield_to_trainer());
}

TEST(CoreBudget, InferenceActorsYieldOnlyToATrainerTheyOversubscribeTheCoresWith) {
  CoreBudget budget(2);
  auto policy = budget.join("policy", 1, 1);
  auto judge = budget.join("judge", 1, 1);
  EXPECT_FALSE(policy->should_yield_to_trainer()); // two threads, two cores, no trainer
  auto trainer = budget.join("trainer", 2, 1);
  EXPECT_TRUE(policy->should_yield_to_trainer());
  EXPECT_TRUE(judge->should_yield_to_trainer());
  EXPECT_FALSE(trainer->should_yield_to_trainer());
  judge.reset(); // two threads on two cores again
  EXPECT_FALSE(policy->should_yield_to_trainer());
}

// The process's budget reads CHORUS_CORES once, when first used. ctest runs each test in a process
// of its own, so the variable set just before reaches it; run as one binary, the first test's count
// stays, and the tests that need another say so and skip.
constexpr const char* kOwnProcess =
  "needs a process of its own, whose core budget CHORUS_CORES makes (ctest runs it so)";

// What LibTorch (and the OpenMP OpenBLAS, which reads the same setting) runs an actor's work on.
TEST(CoreBudget, AWorkingActorsThreadRunsLibTorchOnItsShare) {
  setenv("CHORUS_CORES", "4", 1);
  if (CoreBudget::process().cores() != 4)
    GTEST_SKIP() << kOwnProcess;
  ModelHost trainer, policy;
  trainer.load({.name = "trainer"}, /*weight=*/2);
  policy.load({.name = "policy"}, /*weight=*/2);
  ASSERT_TRUE(trainer.load_error.empty()) << trainer.load_error;
  int alone = 0, together = 0, after = 0;
  std::thread([&] {
    ModelHost::Working working(trainer);
    alone = at::get_num_threads();
    policy.set_busy(true);
    trainer.follow_share(); // as before a micro-batch
    together = at::get_num_threads();
    policy.set_busy(false);
    trainer.follow_share();
    after = at::get_num_threads();
  }).join();
  EXPECT_EQ(alone, 4);
  EXPECT_EQ(together, 2);
  EXPECT_EQ(after, 4);
}

TEST(CoreBudget, AnInferenceActorsThreadLowersItsPriorityBesideATrainer) {
  setenv("CHORUS_CORES", "1", 1);
  if (CoreBudget::process().cores() != 1)
    GTEST_SKIP() << kOwnProcess;
  ModelHost trainer, policy;
  trainer.load({.name = "trainer", .threads = 1}, /*weight=*/2);
  policy.load({.name = "policy", .threads = 1}, /*weight=*/1);
  ASSERT_TRUE(trainer.load_error.empty()) << trainer.load_error;
  int policy_before = 0, policy_after = 0, trainer_before = 0, trainer_after = 0;
  std::thread([&] {
    policy_before = this_thread_nice();
    policy.prepare();
    policy_after = this_thread_nice();
  }).join();
  std::thread([&] {
    trainer_before = this_thread_nice();
    trainer.prepare();
    trainer_after = this_thread_nice();
  }).join();
  EXPECT_TRUE(policy.yielded);
  EXPECT_EQ(policy_after, std::min(policy_before + 5, 19));
  EXPECT_FALSE(trainer.yielded);
  EXPECT_EQ(trainer_after, trainer_before);
}

} // namespace
