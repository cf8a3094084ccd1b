// The parsers under fuzzing read files, as they do in the product: each input is written to one
// file per process (in TMPDIR, or /tmp) and the parser opens that.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace chorus::fuzz {

inline std::filesystem::path input_file(const char* name, const std::uint8_t* data, std::size_t size) {
  static const auto dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto path = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") / ("chorus-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path;
  }();
  auto path = dir / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
    .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

} // namespace chorus::fuzz
