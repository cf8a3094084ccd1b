# Warnings for chorus's own targets (not for the headers of its dependencies, included as SYSTEM).
add_library(chorus_warnings INTERFACE)
target_compile_options(chorus_warnings INTERFACE -Wall -Wextra -Wpedantic -Wno-unused-parameter
  # Options structs are filled with designated initialisers that name only what differs from the defaults.
  -Wno-missing-field-initializers
  # ... which LibTorch targets, built as C++17 (cmake/ChorusTorch.cmake), use as clang's extension.
  # (and the variadic macros of runtime/message.hpp)
  "$<$<STREQUAL:$<TARGET_PROPERTY:CXX_STANDARD>,17>:-Wno-c++20-designator;-Wno-c++20-extensions>")

# C++20 requires designated initialisers in declaration order (GCC refuses any other); clang only
# warns. An error in every chorus target, the tests and the manual's programs included, keeps the
# option structs' one order honest (GRPO, GSPO and PPO share theirs: include/chorus/grpo.hpp).
add_compile_options($<$<CXX_COMPILER_ID:Clang>:-Werror=reorder-init-list>)
