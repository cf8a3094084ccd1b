// safetensors: exact round trips for every dtype, the byte layout other tools expect, and an error
// naming the file and the tensor for every kind of corruption.
#include <chorus/errors.hpp>

#include "models/safetensors.hpp"
#include "tests/expect_error.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <initializer_list>
#include <string_view>

using chorus::CheckpointError;
using chorus::test::expect_error_containing;
using namespace chorus::models;

namespace {

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::path(::testing::TempDir()) / name;
}

// Writes a file with the given header text and `data_bytes` zero bytes of data.
std::filesystem::path write_raw(const std::string& name, const std::string& header, std::size_t data_bytes,
                                std::uint64_t claimed_header_length = 0) {
  auto path = temp_path(name);
  std::ofstream out(path, std::ios::binary);
  std::uint64_t length = claimed_header_length ? claimed_header_length : header.size();
  for (int i = 0; i < 8; ++i)
    out.put(static_cast<char>((length >> (8 * i)) & 0xff));
  out << header << std::string(data_bytes, '\0');
  return path;
}

// Opening `path` must fail with a CheckpointError saying each of `fragments`.
void expect_open_error(const std::filesystem::path& path, std::initializer_list<std::string_view> fragments,
                       const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  expect_error_containing<CheckpointError>([&] { SafetensorsFile::open(path); }, fragments, file, line);
}

TEST(Safetensors, RoundTripKeepsEveryDtypeAndValue) {
  torch::manual_seed(0);
  std::vector<std::pair<std::string, torch::Tensor>> tensors{
    {"f32", torch::randn({3, 5})},
    {"bf16", torch::randn({4, 2}).to(torch::kBFloat16)},
    {"f16", torch::randn({7}).to(torch::kFloat16)},
    {"f64", torch::randn({2, 2, 2}, torch::kFloat64)},
    {"i64", torch::arange(10)},
    {"i32", torch::arange(6, torch::kInt32).reshape({2, 3})},
    {"i8", torch::arange(-4, 4, torch::kInt8)},
    {"u8", torch::arange(0, 200, 7, torch::kUInt8)},
    {"bool", torch::tensor({true, false, true})},
    {"scalar", torch::tensor(3.5f)},
    {"empty", torch::zeros({0, 4})},
    {"transposed", torch::randn({3, 4}).t()}, // not contiguous: stored contiguous
  };
  auto path = temp_path("roundtrip.safetensors");
  save_safetensors(path, tensors, {{"format", "pt"}, {"note", "test"}});
  auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file.entries().size(), tensors.size());
  EXPECT_EQ(file.metadata().at("note"), "test");
  for (const auto& [name, tensor] : tensors) {
    auto loaded = file.load(name);
    EXPECT_EQ(loaded.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(loaded.sizes(), tensor.sizes()) << name;
    EXPECT_TRUE(torch::equal(loaded, tensor)) << name;
  }
  EXPECT_EQ(file.entry("bf16").dtype, "BF16");
}

TEST(Safetensors, LayoutIsLittleEndianLengthThenAlignedJsonThenData) {
  auto path = temp_path("layout.safetensors");
  save_safetensors(path, {{"w", torch::tensor({1.0f, 2.0f})}});
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i)
    length = (length << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  EXPECT_EQ((8 + length) % 8, 0u) << "data section must start 8-byte aligned";
  auto header = nlohmann::json::parse(bytes.substr(8, length));
  EXPECT_EQ(header["w"]["dtype"], "F32");
  EXPECT_EQ(header["w"]["shape"], nlohmann::json::array({2}));
  EXPECT_EQ(header["w"]["data_offsets"], nlohmann::json::array({0, 8}));
  float values[2];
  std::memcpy(values, bytes.data() + 8 + length, 8);
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[1], 2.0f);
}

TEST(Safetensors, MissingTensorNamesFileAndTensor) {
  auto path = temp_path("missing.safetensors");
  save_safetensors(path, {{"present", torch::zeros({1})}});
  auto file = SafetensorsFile::open(path);
  expect_error_containing<CheckpointError>([&] { file.load("model.layers.0.mlp.up_proj.weight"); },
                                           {"missing.safetensors", "model.layers.0.mlp.up_proj.weight"});
}

TEST(Safetensors, TooShortFile) {
  auto path = temp_path("short.safetensors");
  std::ofstream(path) << "abc";
  expect_open_error(path, {"too short"});
}

TEST(Safetensors, HeaderLengthBeyondTheFile) {
  auto path = write_raw("badlength.safetensors", "{}", 0, 1'000'000);
  expect_open_error(path, {"header length 1000000"});
}

TEST(Safetensors, HeaderThatIsNotJson) {
  expect_open_error(write_raw("notjson.safetensors", "{\"a\": [1, 2", 0), {"not a JSON object"});
}

TEST(Safetensors, UnknownDtype) {
  expect_open_error(write_raw("dtype.safetensors", R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2),
                    {"tensor 'w'", "unknown dtype 'F8_E4M3'"});
}

TEST(Safetensors, OffsetsOutsideTheData) {
  expect_open_error(write_raw("offsets.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
                    {"tensor 'w'", "outside the data section"});
}

TEST(Safetensors, SizeThatDisagreesWithShape) {
  expect_open_error(write_raw("size.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                    {"needs 12"});
}

TEST(Safetensors, OverlappingTensors) {
  expect_open_error(
    write_raw(
      "overlap.safetensors",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      12),
    {"overlaps"});
}

TEST(Safetensors, NegativeDimension) {
  expect_open_error(write_raw("negative.safetensors", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0),
                    {"non-negative"});
}

TEST(Safetensors, MissingFile) {
  expect_open_error("/nonexistent/model.safetensors", {"/nonexistent/model.safetensors: cannot open"});
}

} // namespace
