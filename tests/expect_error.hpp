// expect_error_containing: the check behind most of chorus's error tests. A call (or, in C++20
// tests, an awaited Task) must throw an exception of the given type whose message contains every
// fragment given; a failure is reported at the caller's line with the whole message, so a test
// that checks an error's words reads as the words:
//
//   expect_error_containing([&] { load_config<Training>(file, {}); }, {"unknown.json", "'optimizer.lrr'"});
//   co_await expect_error_containing(model.generate(...), {"model 'policy'", "went down"});
//
// Usable from the LibTorch tests too, which are C++17.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <vector>

#if __cplusplus >= 202002L
#include <chorus/task.hpp>
#endif

namespace chorus::test {

namespace expect_error_detail {

// Fails the test at `file`:`line` unless `what` contains every fragment.
inline void expect_contains(const std::string& what, std::initializer_list<std::string_view> fragments,
                            const char* file, int line) {
  for (auto fragment : fragments)
    if (what.find(fragment) == std::string::npos)
      ADD_FAILURE_AT(file, line) << "the error does not say \"" << fragment << "\"; it says: " << what;
}

} // namespace expect_error_detail

/// Calls `call`, which must throw an `Error` (any std::exception by default) whose message contains
/// each of `fragments`. Returns the message ("" if nothing or something else was thrown).
template <class Error = std::exception, class Call, std::enable_if_t<std::is_invocable_v<Call&>, int> = 0>
std::string expect_error_containing(Call&& call, std::initializer_list<std::string_view> fragments,
                                    const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  try {
    call();
  } catch (const Error& error) {
    std::string what = error.what();
    expect_error_detail::expect_contains(what, fragments, file, line);
    return what;
  } catch (const std::exception& other) {
    ADD_FAILURE_AT(file, line) << "expected a " << typeid(Error).name() << ", got: " << other.what();
    return "";
  }
  ADD_FAILURE_AT(file, line) << "expected an error saying \"" << (fragments.size() ? *fragments.begin() : "")
                             << "\", but nothing was thrown";
  return "";
}

#if __cplusplus >= 202002L
/// As above, for a Task that must fail: awaits it and checks its error.
template <class Error = std::exception, class T>
Task<std::string> expect_error_containing(Task<T> task, std::vector<std::string> fragments,
                                          const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  try {
    co_await std::move(task);
  } catch (const Error& error) {
    std::string what = error.what();
    for (const auto& fragment : fragments)
      expect_error_detail::expect_contains(what, {fragment}, file, line);
    co_return what;
  } catch (const std::exception& other) {
    ADD_FAILURE_AT(file, line) << "expected a " << typeid(Error).name() << ", got: " << other.what();
    co_return "";
  }
  ADD_FAILURE_AT(file, line) << "expected an error, but the task succeeded";
  co_return "";
}
#endif

} // namespace chorus::test
