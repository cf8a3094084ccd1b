# Finds what chorus's libraries link and defines the imported targets they name. Used twice: by
# chorus's own build, and by chorusConfig.cmake when another project calls find_package(chorus), so
# that the exported targets find their dependencies again. Every one comes from Debian's packages
# (scripts/setup.sh installs them). CHORUS_WITH_TORCH says whether the LibTorch parts are wanted.
include_guard(GLOBAL)
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(Protobuf REQUIRED) # TensorBoard event files
# cpp-httplib (chorus-serve, OpenAI judges): Debian builds it as a library, described by pkg-config.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)
# Regular expressions with Unicode classes (PCRE2): the tokenizers' split patterns, and the "pattern"
# of the JSON Schemas that schema_violation checks.
pkg_check_modules(pcre2 REQUIRED IMPORTED_TARGET GLOBAL libpcre2-8)

# Standalone Asio is header only and ships no CMake config.
if(NOT TARGET asio::asio)
  find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
  add_library(asio::asio INTERFACE IMPORTED GLOBAL)
  target_include_directories(asio::asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
  # Asio detects C++20 coroutines for g++ by itself, not for clang++ with libstdc++: say so.
  target_compile_definitions(asio::asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED
    ASIO_HAS_CO_AWAIT ASIO_HAS_STD_COROUTINE)
  target_link_libraries(asio::asio INTERFACE Threads::Threads)
endif()

# CAF 0.17 ships no CMake config either: wrap its libraries in imported targets.
if(NOT TARGET caf::core)
  find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
  find_library(CAF_CORE_LIBRARY caf_core REQUIRED)
  find_library(CAF_IO_LIBRARY caf_io REQUIRED)
  add_library(caf::core UNKNOWN IMPORTED GLOBAL)
  set_target_properties(caf::core PROPERTIES
    IMPORTED_LOCATION ${CAF_CORE_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${CAF_INCLUDE_DIR}
    INTERFACE_LINK_LIBRARIES Threads::Threads)
  add_library(caf::io UNKNOWN IMPORTED GLOBAL)
  set_target_properties(caf::io PROPERTIES
    IMPORTED_LOCATION ${CAF_IO_LIBRARY}
    INTERFACE_LINK_LIBRARIES caf::core)
endif()

if(CHORUS_WITH_TORCH)
  # LibTorch (Debian's libtorch-dev, CPU).
  # GLOBAL: a user project that adds chorus with add_subdirectory links targets that name LibTorch's
  # imported targets, which must therefore be visible outside this folder.
  if(NOT TARGET torch)
    find_package(Torch REQUIRED GLOBAL)
  endif()
  # The BLAS chorus's programs load: Debian's OpenBLAS built for OpenMP (libopenblas0-openmp), whose
  # matrix products run on as many threads as the calling thread's OpenMP setting. That is how each
  # compute actor gets the cores it is given (actors/core_budget.hpp): the system's default OpenBLAS
  # (pthread) keeps one pool for the whole process, which two actors cannot share. Linked by full
  # path and kept even when no symbol is used from it, so that the program's RUNPATH finds these
  # copies before LibTorch asks for libblas.so.3 by name (the loader then reuses them). Without the
  # package the programs still run, their products on the one thread of the calling actor.
  if(NOT TARGET chorus_openmp_blas)
    add_library(chorus_openmp_blas INTERFACE IMPORTED GLOBAL)
    set(chorus_blas_dir /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp)
    if(EXISTS ${chorus_blas_dir}/libopenblas.so.0 AND EXISTS ${chorus_blas_dir}/libblas.so.3
       AND EXISTS ${chorus_blas_dir}/liblapack.so.3)
      set(CMAKE_LINK_LIBRARY_USING_CHORUS_NO_AS_NEEDED
        "LINKER:--push-state,--no-as-needed" "<LINK_ITEM>" "LINKER:--pop-state")
      set(CMAKE_LINK_LIBRARY_USING_CHORUS_NO_AS_NEEDED_SUPPORTED TRUE)
      set_target_properties(chorus_openmp_blas PROPERTIES INTERFACE_LINK_LIBRARIES
        "$<LINK_LIBRARY:CHORUS_NO_AS_NEEDED,${chorus_blas_dir}/libopenblas.so.0,${chorus_blas_dir}/libblas.so.3,${chorus_blas_dir}/liblapack.so.3>")
    else()
      message(WARNING "chorus: ${chorus_blas_dir} has no OpenBLAS (install libopenblas0-openmp): each "
                      "compute actor's matrix products will run on one thread")
    endif()
  endif()
  # The tokenizers' NFC normalisation (ICU).
  pkg_check_modules(icu REQUIRED IMPORTED_TARGET GLOBAL icu-uc)
endif()
