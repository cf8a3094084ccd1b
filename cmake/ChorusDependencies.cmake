# Every dependency comes from Debian's packages (scripts/setup.sh installs them).
# What the libraries link (shared with chorusConfig.cmake), then what the tests and benchmarks need.
include(ChorusFindDependencies)

if(CHORUS_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# Programs the tests and benchmarks run, named by their full paths so that the test of the setup
# script (tests/scripts/setup_lists_every_package.py) sees them: Node.js runs the reference
# tokenizers and the official OpenAI client; Chromium renders the main job's report.
function(chorus_find_program variable program package)
  find_program(${variable} ${program})
  if(NOT ${variable})
    message(FATAL_ERROR "The tests need ${program}: install ${package} (scripts/setup.sh does).")
  endif()
endfunction()
if(CHORUS_BUILD_TESTS OR CHORUS_BUILD_BENCH)
  chorus_find_program(CHORUS_NODE node nodejs)
endif()
if(CHORUS_BUILD_TESTS AND CHORUS_BUILD_EXAMPLES)
  chorus_find_program(CHORUS_CHROMIUM chromium chromium)
endif()
if(CHORUS_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
