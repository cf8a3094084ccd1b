# The sanitizer builds (scripts/build.sh --sanitize, --tsan): their flags, and the environment every
# test runs in (CHORUS_TEST_ENVIRONMENT).
if(CHORUS_SANITIZE)
  # fuzzer-no-link: coverage for the libFuzzer targets (fuzz/), which this build links with libFuzzer.
  add_compile_options(-fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(CHORUS_SANITIZE_THREAD)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()

# The suppressions (scripts/*.supp) match function names, so reports must be symbolized, and by the
# compiler's own llvm-symbolizer: named here, since the one on PATH may be an older LLVM's.
if(CHORUS_SANITIZE OR CHORUS_SANITIZE_THREAD)
  string(REGEX MATCH "^[0-9]+" compiler_major "${CMAKE_CXX_COMPILER_VERSION}")
  find_program(CHORUS_LLVM_SYMBOLIZER llvm-symbolizer-${compiler_major})
  if(NOT CHORUS_LLVM_SYMBOLIZER)
    message(FATAL_ERROR "The sanitizer builds need llvm-symbolizer-${compiler_major} to name the functions in "
      "their reports, which the suppressions match: install llvm-${compiler_major} (scripts/setup.sh does).")
  endif()
endif()

# Under sanitizers every report fails the test (AddressSanitizer and LeakSanitizer exit non-zero by
# themselves; UBSan is told to). The suppressions cover only code that is not ours. One variable
# only: gtest_discover_tests passes a list property on as separate arguments.
set(CHORUS_TEST_ENVIRONMENT "")
if(CHORUS_SANITIZE)
  set(CHORUS_TEST_ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=${PROJECT_SOURCE_DIR}/scripts/ubsan.supp:external_symbolizer_path=${CHORUS_LLVM_SYMBOLIZER}")
elseif(CHORUS_SANITIZE_THREAD)
  set(CHORUS_TEST_ENVIRONMENT "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${PROJECT_SOURCE_DIR}/scripts/tsan.supp:external_symbolizer_path=${CHORUS_LLVM_SYMBOLIZER}")
endif()
