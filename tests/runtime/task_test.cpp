// Task<T> and the compiler: temporaries in a co_await expression must be destroyed exactly once.
// g++ 12 destroys them twice (memory corruption in ordinary recipe code such as
// `co_await ref.ask(Request{"text"})`), which is why the build uses clang++ 19; this test is the
// guard that fails if the build ever goes back to a compiler with that bug.
#include <chorus/task.hpp>

#include "runtime/runtime.hpp"
#include "tests/runtime/test_util.hpp"

#include <asio/post.hpp>
#include <gtest/gtest.h>

using namespace chorus;

namespace {

// Counts live instances, so a destructor that runs without a matching constructor shows.
struct Tracker {
  static inline int alive = 0;
  Tracker() {
    ++alive;
  }
  Tracker(const Tracker&) {
    ++alive;
  }
  Tracker(Tracker&&) noexcept {
    ++alive;
  }
  ~Tracker() {
    --alive;
  }
};

// An aggregate, like every request struct: the shape g++ 12 gets wrong.
struct Counted {
  std::string text;
  Tracker tracker{};
};

constexpr const char* kFirst = "a string long enough to live on the heap";
constexpr const char* kSecond = "another heap-allocated string of text";

Task<std::size_t> measure(Counted value) {
  co_await test::yield();
  co_return value.text.size();
}

Task<std::size_t> measure_by_reference(const Counted& value) {
  co_await test::yield();
  co_return value.text.size();
}

TEST(Task, TemporariesInACoAwaitExpressionAreDestroyedOnce) {
  Tracker::alive = 0;
  Runtime runtime;
  auto total = runtime.run([]() -> Task<std::size_t> {
    std::size_t total = 0;
    for (int i = 0; i < 3; ++i) {
      total += co_await measure(Counted{kFirst});
      total += co_await measure_by_reference(Counted{kSecond});
    }
    co_return total;
  }());
  EXPECT_EQ(total, 3 * (std::string_view(kFirst).size() + std::string_view(kSecond).size()));
  EXPECT_EQ(Tracker::alive, 0) << "a temporary was destroyed more (or fewer) times than it was constructed";
}

} // namespace
