// Fuzzes the safetensors reader: any bytes either open as a file whose every tensor loads, or fail
// with a CheckpointError. Anything else (a crash, a read out of bounds, another exception) is a bug.
#include <chorus/errors.hpp>

#include "fuzz/input_file.hpp"
#include "models/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto path = chorus::fuzz::input_file("model.safetensors", data, size);
  try {
    auto file = chorus::models::SafetensorsFile::open(path);
    for (const auto& entry : file.entries()) {
      auto tensor = file.load(entry.name);
      if (tensor.numel() > 0)
        (void)tensor.sum().item<double>(); // touches every byte the entry claims
    }
  } catch (const chorus::CheckpointError&) {
  }
  return 0;
}
