// Dividing the cores between compute actors, and inference actors yielding to a trainer when the
// actors' threads outnumber the cores.
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

TEST(CoreBudget, SharesFollowTheWeightsAndPinnedActorsComeFirst) {
  CoreBudget budget(6);
  auto trainer = budget.join("trainer", 2);
  auto policy = budget.join("policy", 1);
  EXPECT_EQ(trainer->threads(), 4);
  EXPECT_EQ(policy->threads(), 2);
  auto judge = budget.join("judge", 1, /*fixed_threads=*/2);
  EXPECT_EQ(judge->threads(), 2);
  EXPECT_EQ(trainer->threads(), 2); // 4 cores left for weights 2 and 1
  EXPECT_EQ(policy->threads(), 1);
  judge.reset();
  EXPECT_EQ(trainer->threads(), 4);
  EXPECT_EQ(budget.describe(), "trainer: 4, policy: 2");
}

TEST(CoreBudget, InferenceActorsYieldOnlyToATrainerTheyOversubscribeTheCoresWith) {
  CoreBudget budget(2);
  auto policy = budget.join("policy", 1, 1);
  auto judge = budget.join("judge", 1, 1);
  EXPECT_FALSE(policy->should_yield_to_trainer()); // two threads, two cores, no trainer
  auto trainer = budget.join("trainer", 2, 1);
  EXPECT_TRUE(budget.oversubscribed_with_trainer());
  EXPECT_TRUE(policy->should_yield_to_trainer());
  EXPECT_TRUE(judge->should_yield_to_trainer());
  EXPECT_FALSE(trainer->should_yield_to_trainer());
  judge.reset(); // two threads on two cores again
  EXPECT_FALSE(policy->should_yield_to_trainer());
}

// Each test runs in a process of its own (ctest), so CHORUS_CORES reaches the process's budget.
TEST(CoreBudget, AnInferenceActorsThreadLowersItsPriorityBesideATrainer) {
  setenv("CHORUS_CORES", "1", 1);
  ASSERT_EQ(CoreBudget::process().cores(), 1);
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
