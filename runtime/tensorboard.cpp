// TensorBoard event files: TFRecord framing with CRC-32C, protobuf Events.
#include "runtime/tensorboard.hpp"

#include <chorus/errors.hpp>

#include "runtime/tensorboard_event.pb.h"

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iterator>
#include <unistd.h>

namespace chorus::detail {

namespace {

constexpr std::array<std::uint32_t, 256> kCrcTable = [] {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    auto crc = i;
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1; // the Castagnoli polynomial, reflected
    table[i] = crc;
  }
  return table;
}();

void append_le(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint64_t read_le(const char* data, int bytes) {
  std::uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i)
    value = (value << 8) | static_cast<unsigned char>(data[i]);
  return value;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0)
    return "localhost";
  return name;
}

} // namespace

std::uint32_t crc32c(std::string_view data) {
  std::uint32_t crc = 0xffffffffu;
  for (char c : data)
    crc = kCrcTable[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

std::uint32_t masked_crc32c(std::string_view data) {
  auto crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  auto now = std::chrono::system_clock::now();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  path_ = dir / ("events.out.tfevents." + std::to_string(seconds) + "." + host_name());
  file_.open(path_, std::ios::binary | std::ios::app);
  if (ec || !file_)
    throw Error(path_.string() + ": cannot create the TensorBoard event file");
  tensorboard::Event first;
  first.set_wall_time(std::chrono::duration<double>(now.time_since_epoch()).count());
  first.set_file_version("brain.Event:2");
  write_record(first.SerializeAsString());
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string header;
  append_le(header, data.size(), 8);
  std::string record = header;
  append_le(record, masked_crc32c(header), 4);
  record += data;
  append_le(record, masked_crc32c(data), 4);
  file_.write(record.data(), static_cast<std::streamsize>(record.size()));
  file_.flush();
}

void TensorBoardWriter::write_scalars(std::string_view stage, std::int64_t step, double wall_time,
                                      const std::vector<std::pair<std::string, double>>& values) {
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  auto* summary = event.mutable_summary();
  for (const auto& [key, value] : values) {
    if (!std::isfinite(value))
      continue;
    auto* entry = summary->add_value();
    entry->set_tag(std::string(stage) + "/" + key);
    entry->set_simple_value(static_cast<float>(value));
  }
  auto data = event.SerializeAsString();
  std::lock_guard<std::mutex> lock(mutex_);
  write_record(data);
}

std::vector<TensorBoardEvent> read_tensorboard_events(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw Error(file.string() + ": cannot open");
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::vector<TensorBoardEvent> events;
  for (std::size_t at = 0; at < bytes.size();) {
    auto where = [&] {
      return file.string() + ": record " + std::to_string(events.size() + 1) + " at byte " + std::to_string(at);
    };
    if (bytes.size() - at < 12)
      throw Error(where() + ": torn (shorter than a record header)");
    std::string_view header(bytes.data() + at, 8);
    if (read_le(bytes.data() + at + 8, 4) != masked_crc32c(header))
      throw Error(where() + ": the length's CRC does not match");
    auto length = read_le(bytes.data() + at, 8);
    if (length > bytes.size() - at - 16)
      throw Error(where() + ": torn (its " + std::to_string(length) + " bytes run past the end)");
    std::string_view data(bytes.data() + at + 12, length);
    if (read_le(bytes.data() + at + 12 + length, 4) != masked_crc32c(data))
      throw Error(where() + ": the data's CRC does not match");
    tensorboard::Event event;
    if (!event.ParseFromArray(data.data(), static_cast<int>(data.size())))
      throw Error(where() + ": not an Event protobuf");
    TensorBoardEvent decoded{event.step(), event.wall_time(), event.file_version(), {}};
    for (const auto& value : event.summary().value())
      decoded.scalars.emplace_back(value.tag(), value.simple_value());
    events.push_back(std::move(decoded));
    at += 16 + length;
  }
  return events;
}

} // namespace chorus::detail
