// CoreBudget: divides the machine's cores between the compute actors of this process (policy
// replicas, trainers, judges), so that their intra-op thread teams together stay within the cores:
// oversubscribed OpenMP teams made every op wait on its team (3-4x slower on the 2-core machine).
// Valid C++17 without LibTorch.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace chorus::actors {

class CoreBudget;

/// The threads OpenBLAS runs each matrix product on (0: LibTorch uses another BLAS).
int blas_threads();

/// The intra-op (OpenMP) threads for an actor whose share is `share`: the share, except while BLAS
/// runs its products on a pool of several threads (a lone compute actor). A team of OpenMP threads
/// spinning beside OpenBLAS's oversubscribes the cores (both sides of bench_models ran 3-4x slower
/// with two of each on 2 cores); the products, most of the work, reach the cores through BLAS, and
/// the fused element-wise kernels run on the actor's own thread.
int intra_op_threads(int share);

/// One compute actor's share: the number of intra-op threads it should use now. Released (and the
/// cores redistributed) when destroyed.
class CoreShare {
public:
  ~CoreShare();
  CoreShare(const CoreShare&) = delete;
  CoreShare& operator=(const CoreShare&) = delete;

  /// The threads this actor should use; changes when actors join or leave.
  int threads() const noexcept {
    return threads_.load();
  }

  /// True while this is an inference actor (weight 1) that shares the cores with a trainer and the
  /// compute actors' threads outnumber the cores: it should then yield the cores to the trainer.
  bool should_yield_to_trainer() const;

private:
  friend class CoreBudget;
  CoreShare(CoreBudget* budget, std::uint64_t id) : budget_(budget), id_(id) {}

  CoreBudget* budget_;
  std::uint64_t id_;
  std::atomic<int> threads_{1};
};

class CoreBudget {
public:
  /// The budget of this process, over std::thread::hardware_concurrency() cores (or CHORUS_CORES).
  static CoreBudget& process();

  explicit CoreBudget(int cores);

  /// Registers a compute actor named `name`. `weight` is its claim relative to the others (a trainer
  /// claims 2: a backward pass costs twice a forward); `fixed_threads` > 0 pins its thread count and
  /// takes those cores out of the shared pool. Logs the new split.
  std::unique_ptr<CoreShare> join(std::string name, int weight, int fixed_threads = 0);

  int cores() const noexcept {
    return cores_;
  }

  /// True while a member of weight > 1 (a trainer) is registered and the members' threads exceed the
  /// cores.
  bool oversubscribed_with_trainer() const;

  /// "policy: 1, trainer: 1" for the actors registered now.
  std::string describe() const;

private:
  friend class CoreShare;
  void leave(std::uint64_t id);
  void rebalance();                    // with mutex_ held
  bool oversubscribed_locked() const;  // with mutex_ held
  std::string describe_locked() const; // with mutex_ held

  struct Member {
    std::uint64_t id;
    std::string name;
    int weight;
    int fixed;
    CoreShare* share;
  };

  int cores_;
  mutable std::mutex mutex_;
  std::vector<Member> members_;
  std::uint64_t next_id_ = 1;
};

} // namespace chorus::actors
