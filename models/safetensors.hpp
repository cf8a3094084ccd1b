// Reading and writing the safetensors format, the way Hugging Face checkpoints store weights:
//
//   8 bytes     N, the header's length, unsigned 64-bit little endian
//   N bytes     JSON: {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
//               optional "__metadata__": {string: string}}; offsets count from the end of the header
//   the rest    every tensor's raw little-endian bytes
//
// A file is checked completely when opened: every entry's dtype, shape and offsets, so that a corrupt
// or truncated file is an error that names the file and the tensor, never a crash or garbage weights.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace chorus::models {

/// Where one tensor lies in a safetensors file.
struct TensorEntry {
  std::string name;
  std::string dtype; // as in the file: F32, BF16, F16, F64, I64, I32, I16, I8, U8, BOOL
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0; // byte offsets into the data section
  std::uint64_t end = 0;
};

/// An opened, validated safetensors file. The data section is memory-mapped, so opening a large
/// checkpoint reads only its header.
class SafetensorsFile {
public:
  /// @throws CheckpointError naming the file and, where it applies, the tensor.
  static SafetensorsFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const noexcept {
    return path_;
  }

  /// Every tensor, in the order of the file's data section.
  const std::vector<TensorEntry>& entries() const noexcept {
    return entries_;
  }

  bool contains(const std::string& name) const;

  /// The entry named `name`. @throws CheckpointError naming the file and the missing tensor.
  const TensorEntry& entry(const std::string& name) const;

  /// A copy of tensor `name` in its stored dtype, on the CPU.
  /// @throws CheckpointError naming the file and the missing tensor.
  torch::Tensor load(const std::string& name) const;

  /// The `__metadata__` map (e.g. {"format": "pt"}); empty if the file has none.
  const std::map<std::string, std::string>& metadata() const noexcept {
    return metadata_;
  }

private:
  struct Mapping;

  std::filesystem::path path_;
  std::shared_ptr<Mapping> mapping_;
  const std::uint8_t* data_ = nullptr; // start of the data section inside the mapping
  std::vector<TensorEntry> entries_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

/// Writes `tensors` (any device, any layout; stored contiguous) to `path` in the given order.
/// @throws CheckpointError if the file cannot be written or a dtype has no safetensors name.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

/// The safetensors name of a torch dtype ("F32", "BF16", ...). @throws CheckpointError if none.
std::string safetensors_dtype(torch::ScalarType type);

} // namespace chorus::models
