# LibTorch (Debian's libtorch-dev, CPU). Its 1.13 headers do not compile as C++20 under clang
# (std::vector<c10::IValue> is instantiated with an incomplete type in a constexpr context), so the
# targets that include them are built as C++17; none of them contains coroutine code, which stays in
# C++20 targets that see no LibTorch header. LibTorch itself is found by ChorusFindDependencies.cmake.

# Makes `target` a LibTorch target: C++17, linked to LibTorch, with <torch/torch.h> precompiled
# (parsing it costs ~9 s per translation unit on the CI machine). chorus_models compiles the header
# once; every other LibTorch target reuses that (its own copy took 10-15 s, eleven times a build).
# Reuse needs the same code-generation flags: chorus is built as static libraries without -fPIC; a
# shared chorus_models would need the executables to get their own header again.
function(chorus_torch_target target)
  set_target_properties(${target} PROPERTIES CXX_STANDARD 17)
  target_link_libraries(${target} PRIVATE torch)
  if(target STREQUAL "chorus_models")
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
  else()
    target_precompile_headers(${target} REUSE_FROM chorus_models)
  endif()
endfunction()
