// The weight data path on its own: a granted version's bytes land in the reader's tensors exactly;
// a token works once and a wrong one gets no byte; a silent server and a cancel end the read.
#include "actors/weight_data_path.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <gtest/gtest.h>

#include <future>
#include <thread>

using namespace chorus::actors;

namespace {

std::shared_ptr<const std::vector<torch::Tensor>> version() {
  torch::manual_seed(3);
  return std::make_shared<const std::vector<torch::Tensor>>(std::vector<torch::Tensor>{
    torch::randn({1000, 1500}), torch::randn({7}).to(torch::kBFloat16), torch::randn({3, 5})});
}

std::vector<torch::Tensor> empty_like_all(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> out;
  for (const auto& tensor : tensors)
    out.push_back(torch::zeros_like(tensor));
  return out;
}

std::int64_t bytes_of(const std::vector<torch::Tensor>& tensors) {
  std::int64_t total = 0;
  for (const auto& tensor : tensors)
    total += static_cast<std::int64_t>(tensor.nbytes());
  return total;
}

// The server's count of versions served, once it settles: the reader has every byte a moment
// before the server's write completes on its own thread.
std::int64_t served_when_settled(const WeightDataServer& server, std::int64_t expected) {
  for (int i = 0; i < 500 && server.served() < expected; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return server.served();
}

// A peer that accepts one connection, reads the token and never answers; it ends when the reader
// closes the connection.
struct SilentServer {
  SilentServer() {
    thread = std::thread([this] {
      asio::ip::tcp::socket socket(io);
      acceptor.accept(socket);
      char hello[40];
      asio::error_code ignored;
      asio::read(socket, asio::buffer(hello), ignored);
      asio::read(socket, asio::buffer(hello), ignored); // until the reader gives up and closes
    });
  }
  ~SilentServer() {
    thread.join();
  }

  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  std::uint16_t port = acceptor.local_endpoint().port();
  std::thread thread;
};

} // namespace

TEST(WeightDataPath, AGrantedVersionArrivesBitForBitInTheReadersTensors) {
  WeightDataServer server("127.0.0.1");
  auto sent = version();
  auto received = empty_like_all(*sent);
  WeightDataReader reader(server.host(), server.port(), server.grant(sent), received, bytes_of(*sent));
  EXPECT_EQ(reader.run(), "");
  for (std::size_t i = 0; i < sent->size(); ++i)
    EXPECT_TRUE(torch::equal((*sent)[i], received[i])) << "tensor " << i;
  EXPECT_EQ(served_when_settled(server, 1), 1);
}

TEST(WeightDataPath, ATokenWorksOnceAndAWrongOneGetsNoWeights) {
  WeightDataServer server("127.0.0.1");
  auto sent = version();
  auto token = server.grant(sent);
  auto total = bytes_of(*sent);
  auto first = empty_like_all(*sent);
  ASSERT_EQ(WeightDataReader(server.host(), server.port(), token, first, total).run(), "");

  auto again = empty_like_all(*sent);
  auto error = WeightDataReader(server.host(), server.port(), token, again, total).run();
  EXPECT_NE(error.find("refused the token"), std::string::npos) << error;
  EXPECT_TRUE(torch::equal(again[0], torch::zeros_like(again[0]))) << "a used token must get no byte";

  auto forged = token;
  forged[0] = forged[0] == 'a' ? 'b' : 'a';
  error = WeightDataReader(server.host(), server.port(), forged, again, total).run();
  EXPECT_NE(error.find("refused the token"), std::string::npos) << error;
  EXPECT_EQ(served_when_settled(server, 1), 1);
}

TEST(WeightDataPath, ATokenDoesNotKeepItsVersionAlive) {
  WeightDataServer server("127.0.0.1");
  auto sent = version();
  auto total = bytes_of(*sent);
  auto received = empty_like_all(*sent);
  std::weak_ptr<const std::vector<torch::Tensor>> kept = sent;
  auto token = server.grant(sent);
  sent.reset(); // the weight server dropped the version (newer ones replaced it)
  EXPECT_TRUE(kept.expired());
  auto error = WeightDataReader(server.host(), server.port(), token, received, total).run();
  EXPECT_NE(error.find("refused the token"), std::string::npos) << error;
}

TEST(WeightDataPath, AReaderWhoseTensorsDoNotMatchTheVersionReadsNothing) {
  WeightDataServer server("127.0.0.1");
  auto sent = version();
  auto smaller = std::vector<torch::Tensor>{torch::zeros({10})};
  // The manifest and the staging tensors disagree: refused before connecting.
  auto error = WeightDataReader(server.host(), server.port(), server.grant(sent), smaller, bytes_of(*sent)).run();
  EXPECT_NE(error.find("staging tensors hold 40 bytes"), std::string::npos) << error;
  // The server sends another size than the manifest said: refused before reading.
  error = WeightDataReader(server.host(), server.port(), server.grant(sent), smaller, 40).run();
  EXPECT_NE(error.find("the manifest says 40"), std::string::npos) << error;
  EXPECT_TRUE(torch::equal(smaller[0], torch::zeros({10})));
}

TEST(WeightDataPath, AServerThatGoesSilentEndsTheReadAfterTheIdleTimeout) {
  auto into = std::vector<torch::Tensor>{torch::zeros({10})};
  std::string error;
  auto start = std::chrono::steady_clock::now();
  std::uint16_t port = 0;
  {
    SilentServer silent;
    port = silent.port;
    error = WeightDataReader("127.0.0.1", port, std::string(32, 'a'), into, 40).run(std::chrono::milliseconds(200));
  }
  EXPECT_NE(error.find("no byte came from the weight data path at 127.0.0.1:" + std::to_string(port) + " for 200 ms"),
            std::string::npos)
    << error;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(WeightDataPath, CancelEndsAReadUnderWay) {
  SilentServer silent;
  auto into = std::vector<torch::Tensor>{torch::zeros({10})};
  WeightDataReader reader("127.0.0.1", silent.port, std::string(32, 'a'), into, 40);
  auto result = std::async(std::launch::async, [&] { return reader.run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  reader.cancel();
  ASSERT_EQ(result.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(result.get(), "cancelled");
}

TEST(WeightDataPath, NothingListeningIsAClearError) {
  std::uint16_t port = 0;
  {
    WeightDataServer gone("127.0.0.1");
    port = gone.port();
  }
  auto into = std::vector<torch::Tensor>{torch::zeros({10})};
  auto error = WeightDataReader("127.0.0.1", port, std::string(32, 'a'), into, 40).run();
  EXPECT_NE(error.find("cannot connect to the weight data path at 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
    << error;
}
