// bench_transport: weight sync between two processes on loopback, against the bound of a plain Asio
// TCP copy of the same bytes, in the same run.
//
//   chorus: a child process holds a weight version (64 MiB of fp32 tensors) on a WeightBoard behind
//           the weight server a trainer uses; this process fetches it with a fresh WeightFeed, as a
//           new remote replica does: the manifest over CAF, then the bytes over the data path
//           (weight_data_path.hpp) into newly allocated staging tensors.
//   bound:  a child process writes the same bytes to a TCP socket with Asio; this process reads them
//           into a buffer allocated (and touched) beforehand, 4 MiB per system call as the data path
//           does: no token, no manifest, no allocation.
//   chunks: for the record, the fallback for replicas that cannot reach the data path (2 MiB chunks,
//           4 in flight, over CAF's BASP), from a second child whose server has no data path.
//
//   BENCH transport       MB/s of each (medians); five runs back to back, each run's ratio chorus / Asio
//                         listed, min_ratio their minimum (target 0.5), ratio their median (target 0.8)
//   BENCH transport_lora  bytes a weight version carries with LoRA adapters (r = 16 on every
//                         projection: synced_parameters) against the full weights, for the built-in
//                         model and Qwen2-0.5B's shape; ratio = full / adapters on the latter
#include "actors/messages.hpp"
#include "actors/weight_stream.hpp"
#include "models/checkpoint.hpp"
#include "models/transformer.hpp"
#include "runtime/cluster.hpp"

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int64_t kTensorBytes = std::int64_t{4} << 20;
constexpr int kTensors = 16; // 64 MiB per version
constexpr int kRounds = 4;   // per run
constexpr int kRuns = 5;

// Asio's default moves at most 64 KiB per system call; the bound moves 4 MiB, as the data path does.
std::size_t large_calls(const asio::error_code& error, std::size_t) {
  return error ? 0 : std::size_t{4} << 20;
}

std::vector<torch::Tensor> weights() {
  torch::manual_seed(0);
  std::vector<torch::Tensor> tensors;
  for (int i = 0; i < kTensors; ++i)
    tensors.push_back(torch::randn({kTensorBytes / 4}));
  return tensors;
}

// A parameter list the WeightBoard can snapshot.
struct Holder : torch::nn::Module {
  Holder() {
    auto tensors = weights();
    for (int i = 0; i < kTensors; ++i)
      register_parameter("w" + std::to_string(i), tensors[static_cast<std::size_t>(i)]);
  }
};

caf::actor_system_config& network_config(caf::actor_system_config& config) {
  config.load<caf::io::middleman>();
  config.add_message_types<caf::id_block::chorus_model_actors>();
  config.add_message_types<caf::id_block::chorus_cluster>();
  chorus::configure_cluster_network(config);
  chorus::configure_scheduler(config); // as every chorus process's Runtime sets it
  return config;
}

// Child: serve the weights through a weight server, as a trainer's process does (with its data path,
// or with chunks over CAF only: the fallback).
int serve_weights(bool data_path) {
  caf::actor_system_config config;
  caf::actor_system system(network_config(config));
  auto board = std::make_shared<chorus::actors::WeightBoard>();
  Holder holder;
  board->publish(1, holder);
  auto server = chorus::actors::spawn_weight_server(system, board, data_path ? "127.0.0.1" : "");
  auto port = system.middleman().publish(server, 0, "127.0.0.1");
  if (!port)
    return 1;
  std::printf("PORT %u\n", static_cast<unsigned>(*port));
  std::fflush(stdout);
  pause(); // killed by the parent
  return 0;
}

// Child: write the same bytes to every connection, as fast as TCP takes them.
int serve_tcp() {
  auto tensors = weights();
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(kTensors * kTensorBytes));
  chorus::actors::read_tensor_bytes(tensors, 0, static_cast<std::int64_t>(bytes.size()), bytes.data());
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  std::printf("PORT %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  for (;;) {
    asio::ip::tcp::socket socket(io);
    acceptor.accept(socket);
    asio::write(socket, asio::buffer(bytes), large_calls);
  }
}

struct Child {
  pid_t pid = -1;
  unsigned port = 0;
};

Child start(const char* self, const char* mode) {
  int fds[2];
  if (pipe(fds) != 0)
    throw std::runtime_error("pipe failed");
  Child child;
  child.pid = fork();
  if (child.pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    execl(self, self, mode, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string line;
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n')
    line += c;
  close(fds[0]);
  if (std::sscanf(line.c_str(), "PORT %u", &child.port) != 1)
    throw std::runtime_error("child " + std::string(mode) + " did not start: '" + line + "'");
  return child;
}

void stop(const Child& child) {
  kill(child.pid, SIGKILL);
  waitpid(child.pid, nullptr, 0);
}

// Seconds for one fetch of the version through a fresh WeightFeed, as a new replica does, checking
// that it came by the path expected.
double fetch_once(caf::actor_system& system, const caf::actor& server, bool data_path) {
  auto done = std::make_shared<std::promise<std::string>>();
  auto start = Clock::now();
  auto feed = std::make_shared<chorus::actors::WeightFeed>(server, "bench");
  system.spawn([done, feed, data_path](caf::event_based_actor* self) -> caf::behavior {
    // The callback lives in the feed and must not own it; the behavior does, so the feed and its
    // tensors go when the actor quits.
    feed->start(self, [self, raw = feed.get(), done, data_path] {
      if (raw->ready() != 1)
        done->set_value(raw->error());
      else if (raw->versions_by_data_path() != (data_path ? 1 : 0))
        done->set_value(data_path ? "the version came in chunks, not over the data path"
                                  : "the version did not come in chunks");
      else
        done->set_value({});
      self->quit();
    });
    return {[feed](const chorus::actors::WeightsPublished&) {}};
  });
  feed.reset();
  auto error = done->get_future().get();
  auto seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!error.empty())
    throw std::runtime_error("weight fetch failed: " + error);
  return seconds;
}

// Seconds to read the same bytes from a TCP socket into a buffer allocated (and touched) beforehand.
double read_once(unsigned port, std::vector<std::uint8_t>& bytes) {
  asio::io_context io;
  auto start = Clock::now();
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  asio::read(socket, asio::buffer(bytes), large_calls);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Bytes of one weight version of `config`'s model: its full weights, and with r = 16 adapters.
std::pair<std::int64_t, std::int64_t> version_bytes(const chorus::models::ModelConfig& config) {
  auto bytes = [](const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
    std::int64_t total = 0;
    for (const auto& [name, tensor] : tensors)
      total += static_cast<std::int64_t>(tensor.nbytes());
    return total;
  };
  chorus::models::Transformer model(config, /*seed=*/1);
  model->to(chorus::models::storage_dtype(config.torch_dtype));
  auto full = bytes(chorus::actors::synced_parameters(*model));
  chorus::models::LoraConfig lora;
  lora.r = 16;
  model->add_adapters(lora, /*seed=*/2);
  return {full, bytes(chorus::actors::synced_parameters(*model))};
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--serve-weights") == 0)
    return serve_weights(/*data_path=*/true);
  if (argc == 2 && std::strcmp(argv[1], "--serve-chunks") == 0)
    return serve_weights(/*data_path=*/false);
  if (argc == 2 && std::strcmp(argv[1], "--serve-tcp") == 0)
    return serve_tcp();
  at::set_num_threads(1);
  const double megabytes = static_cast<double>(kTensors * kTensorBytes) / 1e6;

  auto weights_child = start(argv[0], "--serve-weights");
  auto chunks_child = start(argv[0], "--serve-chunks");
  auto tcp_child = start(argv[0], "--serve-tcp");
  // Five runs back to back, each the median of its interleaved rounds: the target asks for every run.
  std::vector<double> ratios, chorus_rates, asio_rates, chunk_rates;
  {
    caf::actor_system_config config;
    caf::actor_system system(network_config(config));
    auto server = system.middleman().remote_actor("127.0.0.1", static_cast<std::uint16_t>(weights_child.port));
    auto chunks_server = system.middleman().remote_actor("127.0.0.1", static_cast<std::uint16_t>(chunks_child.port));
    if (!server || !chunks_server) {
      std::fprintf(stderr, "cannot reach the weight servers: %s\n",
                   system.render(server ? chunks_server.error() : server.error()).c_str());
      return 1;
    }
    std::vector<std::uint8_t> buffer(static_cast<std::size_t>(kTensors * kTensorBytes));
    fetch_once(system, *server, true); // warm-up: connection, allocator
    fetch_once(system, *chunks_server, false);
    read_once(tcp_child.port, buffer);
    for (int run = 0; run < kRuns; ++run) {
      std::vector<double> chorus_seconds, asio_seconds;
      // Interleaved rounds: both sides see the same machine load.
      for (int round = 0; round < kRounds; ++round) {
        chorus_seconds.push_back(fetch_once(system, *server, true));
        asio_seconds.push_back(read_once(tcp_child.port, buffer));
      }
      chunk_rates.push_back(megabytes / fetch_once(system, *chunks_server, false)); // for the record
      chorus_rates.push_back(megabytes / median(chorus_seconds));
      asio_rates.push_back(megabytes / median(asio_seconds));
      ratios.push_back(chorus_rates.back() / asio_rates.back());
      std::printf("run %d: chorus %.1f MB/s, asio %.1f MB/s, ratio %.3f\n", run + 1, chorus_rates.back(),
                  asio_rates.back(), ratios.back());
    }
  }
  stop(weights_child);
  stop(chunks_child);
  stop(tcp_child);
  std::string listed;
  for (auto ratio : ratios) {
    char text[16];
    std::snprintf(text, sizeof text, "%.3f", ratio);
    listed += (listed.empty() ? "" : ",") + std::string(text);
  }
  std::printf("BENCH transport chorus_MBps=%.1f asio_MBps=%.1f chunks_over_caf_MBps=%.1f version_MB=%.1f ratios=%s "
              "min_ratio=%.3f ratio=%.3f target=0.8\n",
              median(chorus_rates), median(asio_rates), median(chunk_rates), megabytes, listed.c_str(),
              *std::min_element(ratios.begin(), ratios.end()), median(ratios));

  auto [tiny_full, tiny_adapters] = version_bytes(chorus::models::ModelConfig::tiny(264));
  auto [qwen_full, qwen_adapters] = version_bytes(chorus::models::ModelConfig::qwen2_half_billion());
  std::printf(
    "BENCH transport_lora tiny_full_MB=%.2f tiny_lora_MB=%.2f qwen2_0.5b_full_MB=%.1f qwen2_0.5b_lora_MB=%.2f "
    "ratio=%.1f target=10\n",
    tiny_full / 1e6, tiny_adapters / 1e6, qwen_full / 1e6, qwen_adapters / 1e6,
    static_cast<double>(qwen_full) / static_cast<double>(qwen_adapters));
  return 0;
}
