# Every dependency comes from Debian's packages (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(Protobuf REQUIRED) # TensorBoard event files
# cpp-httplib (chorus-serve, OpenAI judges): Debian builds it as a library, described by pkg-config.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

# Standalone Asio is header only and ships no CMake config.
find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
add_library(chorus_asio INTERFACE)
target_include_directories(chorus_asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
# Asio detects C++20 coroutines for g++ by itself, not for clang++ with libstdc++: say so.
target_compile_definitions(chorus_asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED
  ASIO_HAS_CO_AWAIT ASIO_HAS_STD_COROUTINE)
target_link_libraries(chorus_asio INTERFACE Threads::Threads)

# CAF 0.17 ships no CMake config either: wrap its libraries in imported targets.
find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
find_library(CAF_CORE_LIBRARY caf_core REQUIRED)
find_library(CAF_IO_LIBRARY caf_io REQUIRED)
add_library(caf::core UNKNOWN IMPORTED)
set_target_properties(caf::core PROPERTIES
  IMPORTED_LOCATION ${CAF_CORE_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${CAF_INCLUDE_DIR}
  INTERFACE_LINK_LIBRARIES Threads::Threads)
add_library(caf::io UNKNOWN IMPORTED)
set_target_properties(caf::io PROPERTIES
  IMPORTED_LOCATION ${CAF_IO_LIBRARY}
  INTERFACE_LINK_LIBRARIES caf::core)

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
