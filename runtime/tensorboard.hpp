// TensorBoard event files: what `tensorboard --logdir <output>/tensorboard` shows as scalars.
//
// A file `events.out.tfevents.<seconds>.<host>` holds TFRecords, each
//   uint64 length | uint32 masked CRC-32C of the length | `length` bytes | uint32 masked CRC-32C of them
// (little endian), where the bytes are one protobuf Event (tensorboard_event.proto): first one with
// the file version, then one per logged step with a Summary of tag/value pairs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chorus::detail {

/// CRC-32C (Castagnoli) of `data`, and TFRecord's masked form of it.
std::uint32_t crc32c(std::string_view data);
std::uint32_t masked_crc32c(std::string_view data);

class TensorBoardWriter {
public:
  /// Creates `dir` and a new event file in it. @throws Error naming the file if it cannot be written.
  explicit TensorBoardWriter(const std::filesystem::path& dir);

  /// One step's scalars, tagged `<stage>/<key>`; written and flushed at once. Non-finite values are
  /// left out (TensorBoard cannot draw them).
  void write_scalars(std::string_view stage, std::int64_t step, double wall_time,
                     const std::vector<std::pair<std::string, double>>& values);

  const std::filesystem::path& path() const noexcept {
    return path_;
  }

private:
  void write_record(const std::string& data);

  std::filesystem::path path_;
  std::ofstream file_;
  std::mutex mutex_;
};

/// One decoded record of an event file: its step, and its scalars (tag, value) or file version.
struct TensorBoardEvent {
  std::int64_t step = 0;
  double wall_time = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> scalars;
};

/// Reads an event file back, checking every record's CRCs.
/// @throws Error naming the file and the record that is torn or corrupt.
std::vector<TensorBoardEvent> read_tensorboard_events(const std::filesystem::path& file);

} // namespace chorus::detail
