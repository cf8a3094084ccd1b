// The byte layout a weight version streams in: tensors laid end to end, cut into chunks that cross
// tensor boundaries, put back together bit for bit.
#include "actors/weight_stream.hpp"

#include <gtest/gtest.h>

using namespace chorus::actors;

TEST(WeightStream, ChunksAcrossTensorBoundariesRebuildTheTensorsExactly) {
  torch::manual_seed(1);
  std::vector<torch::Tensor> sent{torch::randn({3, 5}), torch::randn({7}), torch::randn({2, 2}).to(torch::kBFloat16)};
  std::vector<torch::Tensor> received;
  std::int64_t total = 0;
  for (const auto& tensor : sent) {
    received.push_back(torch::zeros_like(tensor));
    total += tensor.numel() * static_cast<std::int64_t>(tensor.element_size());
  }
  constexpr std::int64_t chunk = 13; // odd: every boundary falls inside a float
  std::vector<std::uint8_t> bytes;
  for (std::int64_t begin = 0; begin < total; begin += chunk) {
    auto size = std::min(chunk, total - begin);
    bytes.resize(static_cast<std::size_t>(size));
    read_tensor_bytes(sent, begin, size, bytes.data());
    write_tensor_bytes(received, begin, size, bytes.data());
  }
  for (std::size_t i = 0; i < sent.size(); ++i)
    EXPECT_TRUE(torch::equal(sent[i], received[i])) << "tensor " << i;
  EXPECT_THROW(read_tensor_bytes(sent, total - 2, 4, bytes.data()), std::out_of_range);
}
