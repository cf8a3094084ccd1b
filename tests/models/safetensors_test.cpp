// safetensors: exact round trips for every dtype, the byte layout other tools expect, and an error
// naming the file and the tensor for every kind of corruption.
#include <chorus/errors.hpp>

#include "models/safetensors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

using chorus::CheckpointError;
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

std::string error_of(const std::filesystem::path& path, const std::string& tensor = "") {
  try {
    auto file = SafetensorsFile::open(path);
    if (!tensor.empty())
      file.load(tensor);
  } catch (const CheckpointError& error) {
    return error.what();
  }
  return "no CheckpointError";
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
  auto what = error_of(path, "model.layers.0.mlp.up_proj.weight");
  EXPECT_NE(what.find("missing.safetensors"), std::string::npos) << what;
  EXPECT_NE(what.find("model.layers.0.mlp.up_proj.weight"), std::string::npos) << what;
}

TEST(Safetensors, TooShortFile) {
  auto path = temp_path("short.safetensors");
  std::ofstream(path) << "abc";
  EXPECT_NE(error_of(path).find("too short"), std::string::npos);
}

TEST(Safetensors, HeaderLengthBeyondTheFile) {
  auto path = write_raw("badlength.safetensors", "{}", 0, 1'000'000);
  auto what = error_of(path);
  EXPECT_NE(what.find("header length 1000000"), std::string::npos) << what;
}

TEST(Safetensors, HeaderThatIsNotJson) {
  auto what = error_of(write_raw("notjson.safetensors", "{\"a\": [1, 2", 0));
  EXPECT_NE(what.find("not a JSON object"), std::string::npos) << what;
}

TEST(Safetensors, UnknownDtype) {
  auto what =
    error_of(write_raw("dtype.safetensors", R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2));
  EXPECT_NE(what.find("tensor 'w'"), std::string::npos) << what;
  EXPECT_NE(what.find("unknown dtype 'F8_E4M3'"), std::string::npos) << what;
}

TEST(Safetensors, OffsetsOutsideTheData) {
  auto what =
    error_of(write_raw("offsets.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8));
  EXPECT_NE(what.find("tensor 'w'"), std::string::npos) << what;
  EXPECT_NE(what.find("outside the data section"), std::string::npos) << what;
}

TEST(Safetensors, SizeThatDisagreesWithShape) {
  auto what = error_of(write_raw("size.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(what.find("needs 12"), std::string::npos) << what;
}

TEST(Safetensors, OverlappingTensors) {
  auto what = error_of(write_raw(
    "overlap.safetensors",
    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
    12));
  EXPECT_NE(what.find("overlaps"), std::string::npos) << what;
}

TEST(Safetensors, NegativeDimension) {
  auto what =
    error_of(write_raw("negative.safetensors", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0));
  EXPECT_NE(what.find("non-negative"), std::string::npos) << what;
}

TEST(Safetensors, MissingFile) {
  auto what = error_of("/nonexistent/model.safetensors");
  EXPECT_NE(what.find("/nonexistent/model.safetensors: cannot open"), std::string::npos) << what;
}

} // namespace
