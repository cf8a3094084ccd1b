// CoreBudget: gives this process's cores to the compute actors (policy replicas, trainers, judges)
// that are working now. A lone working actor gets every core; actors working at the same time split
// them by weight; an actor waiting for requests holds none. Each actor reads its share before each
// unit of work (a decode step, a trainer's micro-batch) and sets its own OpenMP threads to it: the
// OpenMP build of OpenBLAS that chorus links runs a matrix product on the calling thread's OpenMP
// threads, so LibTorch's element-wise loops and the products follow the same setting.
// Valid C++17 without LibTorch.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace chorus::actors {

class CoreBudget;

/// One compute actor's place in the budget. Released (and the cores given to the others) when
/// destroyed.
class CoreShare {
public:
  ~CoreShare();
  CoreShare(const CoreShare&) = delete;
  CoreShare& operator=(const CoreShare&) = delete;

  /// The threads this actor should use now: pinned, or its weight's part of the unpinned cores shared
  /// with the other actors working now (all of them when none is).
  int threads() const;

  /// Marks the actor working (it holds its share) or waiting for work (it holds none).
  void set_busy(bool busy);

  /// True while this is an inference actor (weight 1) beside a trainer and the threads of the actors
  /// holding cores, this one included, outnumber the cores: it should then yield them to the trainer.
  bool should_yield_to_trainer() const;

private:
  friend class CoreBudget;
  CoreShare(CoreBudget* budget, std::uint64_t id) : budget_(budget), id_(id) {}

  CoreBudget* budget_;
  std::uint64_t id_;
};

class CoreBudget {
public:
  /// The budget of this process, over std::thread::hardware_concurrency() cores (or CHORUS_CORES).
  static CoreBudget& process();

  explicit CoreBudget(int cores);

  /// Registers a compute actor named `name`, waiting for work. `weight` is its claim relative to the
  /// others working at the same time (a trainer claims 2: a backward pass costs twice a forward);
  /// `fixed_threads` > 0 pins its thread count and takes those cores out of the shared pool for good
  /// (reproducible runs). Logs the actors registered.
  std::unique_ptr<CoreShare> join(std::string name, int weight, int fixed_threads = 0);

  int cores() const noexcept {
    return cores_;
  }

  /// "judge: 1 (pinned), policy: waiting, trainer: 2": each registered actor's threads now.
  std::string describe() const;

private:
  friend class CoreShare;
  struct Member {
    std::uint64_t id;
    std::string name;
    int weight;
    int fixed;
    bool busy = false;
  };

  void leave(std::uint64_t id);
  void set_busy(std::uint64_t id, bool busy);
  const Member& member_locked(std::uint64_t id) const;  // with mutex_ held
  int threads_locked(const Member& member) const;       // with mutex_ held
  bool should_yield_locked(const Member& member) const; // with mutex_ held
  std::string working_locked() const;                   // with mutex_ held

  int cores_;
  mutable std::mutex mutex_;
  std::vector<Member> members_;
  std::set<std::string> logged_; // the splits already logged: each once, at info
  std::uint64_t next_id_ = 1;
};

} // namespace chorus::actors
