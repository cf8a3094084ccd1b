# Refuses a compiler that miscompiles chorus's coroutines. Used by chorus's own build and by
# chorusConfig.cmake, so that a project using chorus gets the same explanation.
#
# g++ 12 (Debian 12's default) destroys temporaries inside a co_await expression twice, so ordinary
# recipe code such as `co_await ref.ask(Request{...})` corrupts memory. clang++ 19, from Debian 12's
# own packages (scripts/setup.sh installs it), compiles the same code correctly.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  message(FATAL_ERROR "g++ ${CMAKE_CXX_COMPILER_VERSION} miscompiles C++20 coroutines (temporaries in a "
    "co_await expression are destroyed twice). Install clang++-19 (chorus's scripts/setup.sh does) and configure "
    "again in a fresh build directory, or pass -DCMAKE_CXX_COMPILER=clang++-19.")
endif()
