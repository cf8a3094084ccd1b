#include "actors/weight_data_path.hpp"

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the weight data path sends raw little-endian bytes");

namespace chorus::actors {

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr char kMagic[] = "CHORUSW1";
constexpr std::size_t kMagicBytes = 8, kTokenChars = 32;
constexpr std::size_t kGrantsKept = 64;
constexpr auto kGrantLifetime = std::chrono::minutes(1);
// A replica that sends no token in this long, or stops reading a version for this long, is dropped.
constexpr auto kHelloTimeout = std::chrono::seconds(10);
constexpr auto kStallTimeout = std::chrono::seconds(60);
// Bytes per send/receive call: large, so that a version moves in few system calls.
constexpr std::size_t kBytesPerCall = std::size_t{4} << 20;

std::string random_token() {
  std::random_device device;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (std::size_t i = 0; i < kTokenChars / 8; ++i) {
    auto word = device(); // 32 random bits
    for (int nibble = 0; nibble < 8; ++nibble, word >>= 4)
      token += kHex[word & 0xF];
  }
  return token;
}

std::int64_t byte_count(const std::vector<torch::Tensor>& tensors) {
  std::int64_t total = 0;
  for (const auto& tensor : tensors)
    total += static_cast<std::int64_t>(tensor.nbytes());
  return total;
}

// Closes `socket` (after calling `on_stall`) when `progress` stops moving for `stall`: a peer that
// went silent. Stops when `finished` is set. Runs on the socket's io_context.
template <class Progress, class Finished, class OnStall>
void watch(asio::steady_timer& timer, tcp::socket& socket, Clock::duration stall, Progress progress, Finished finished,
           OnStall on_stall, std::int64_t seen) {
  timer.expires_after(stall);
  timer.async_wait([&timer, &socket, stall, progress, finished, on_stall, seen](const asio::error_code& error) {
    if (error || finished())
      return;
    auto now = progress();
    if (now == seen) {
      on_stall();
      asio::error_code ignored;
      socket.close(ignored);
      return;
    }
    watch(timer, socket, stall, progress, finished, on_stall, now);
  });
}

} // namespace

// -- WeightDataServer ----------------------------------------------------------------

struct WeightDataServer::Impl {
  // What a token may read: the version's tensors while the weight server keeps the version (the
  // server's pinned versions own them; a token never keeps a version alive).
  struct Grant {
    std::weak_ptr<const std::vector<torch::Tensor>> tensors;
    Clock::time_point issued;
  };

  // One replica's connection: its token, then the version's bytes.
  struct Session : std::enable_shared_from_this<Session> {
    Session(Impl& server, tcp::socket socket)
      : server(server), socket(std::move(socket)), timer(this->socket.get_executor()) {}

    void start() {
      auto self = shared_from_this();
      timer.expires_after(kHelloTimeout);
      timer.async_wait([self](const asio::error_code& error) {
        if (!error && !self->greeted) {
          asio::error_code ignored;
          self->socket.close(ignored);
        }
      });
      asio::async_read(socket, asio::buffer(hello), [self](const asio::error_code& error, std::size_t) {
        self->greeted = true;
        self->timer.cancel();
        if (!error)
          self->on_hello();
      });
    }

    void on_hello() {
      if (std::memcmp(hello.data(), kMagic, kMagicBytes) != 0)
        return; // not a replica: dropped
      tensors = server.take(std::string(hello.data() + kMagicBytes, kTokenChars));
      if (!tensors)
        return; // a wrong, used or expired token, or a version no longer kept: dropped before any byte
      size = static_cast<std::uint64_t>(byte_count(*tensors));
      buffers.push_back(asio::buffer(&size, sizeof size));
      for (const auto& tensor : *tensors)
        buffers.push_back(asio::buffer(tensor.data_ptr(), tensor.nbytes())); // gather: no copy
      auto self = shared_from_this();
      watch(timer, socket, kStallTimeout, [self] { return self->sent; }, [self] { return self->finished; }, [] {}, 0);
      asio::async_write(
        socket, buffers,
        [self](const asio::error_code& error, std::size_t sent) -> std::size_t {
          self->sent = static_cast<std::int64_t>(sent);
          return error ? 0 : kBytesPerCall;
        },
        [self](const asio::error_code& error, std::size_t) {
          self->finished = true;
          self->timer.cancel();
          if (!error)
            ++self->server.served;
        });
    }

    Impl& server;
    tcp::socket socket;
    asio::steady_timer timer;
    std::array<char, kMagicBytes + kTokenChars> hello{};
    bool greeted = false, finished = false;
    std::shared_ptr<const std::vector<torch::Tensor>> tensors;
    std::uint64_t size = 0;
    std::vector<asio::const_buffer> buffers;
    std::int64_t sent = 0;
  };

  explicit Impl(std::string host) : host(std::move(host)) {}

  void listen() {
    tcp::endpoint endpoint;
    asio::error_code error;
    auto address = asio::ip::make_address(host, error);
    if (error) { // a host name
      tcp::resolver resolver(io);
      auto found = resolver.resolve(host, "0", error);
      if (error || found.empty())
        throw std::runtime_error("the weight data path cannot resolve '" + host + "': " + error.message());
      address = found.begin()->endpoint().address();
    }
    acceptor.open(address.is_v6() ? tcp::v6() : tcp::v4());
    acceptor.bind({address, 0}, error);
    if (error) {
      spdlog::warn("the weight data path cannot listen on {} ({}): listening on every address; replicas connect "
                   "to {}",
                   host, error.message(), host);
      acceptor.bind({address.is_v6() ? asio::ip::address(asio::ip::address_v6::any())
                                     : asio::ip::address(asio::ip::address_v4::any()),
                     0});
    }
    acceptor.listen();
    port = acceptor.local_endpoint().port();
    accept();
    thread = std::thread([this] { io.run(); });
  }

  void accept() {
    acceptor.async_accept([this](const asio::error_code& error, tcp::socket socket) {
      if (error == asio::error::operation_aborted || !acceptor.is_open())
        return;
      if (!error) {
        std::make_shared<Session>(*this, std::move(socket))->start();
        accept();
        return;
      }
      // A lasting error (no file descriptors left): try again in a while, not in a busy loop.
      backoff.expires_after(std::chrono::milliseconds(100));
      backoff.async_wait([this](const asio::error_code& waited) {
        if (!waited)
          accept();
      });
    });
  }

  std::shared_ptr<const std::vector<torch::Tensor>> take(const std::string& token) {
    std::lock_guard lock(mutex);
    auto found = grants.find(token);
    if (found == grants.end())
      return {};
    auto grant = std::move(found->second);
    grants.erase(found);
    if (Clock::now() - grant.issued > kGrantLifetime)
      return {};
    return grant.tensors.lock();
  }

  asio::io_context io; // first: destroyed last, after the sockets that use it
  tcp::acceptor acceptor{io};
  asio::steady_timer backoff{io};
  std::string host;
  std::uint16_t port = 0;
  std::mutex mutex;
  std::map<std::string, Grant> grants;
  std::deque<std::string> order; // of issue
  std::atomic<std::int64_t> served{0};
  std::thread thread;
};

WeightDataServer::WeightDataServer(const std::string& host) : impl_(std::make_unique<Impl>(host)) {
  try {
    impl_->listen();
  } catch (const asio::system_error& error) {
    throw std::runtime_error("the weight data path cannot listen on " + host + ": " + error.what());
  }
}

WeightDataServer::~WeightDataServer() {
  impl_->io.stop(); // the sessions under way are destroyed with the io_context: their sockets close
  if (impl_->thread.joinable())
    impl_->thread.join();
}

const std::string& WeightDataServer::host() const noexcept {
  return impl_->host;
}

std::uint16_t WeightDataServer::port() const noexcept {
  return impl_->port;
}

std::string WeightDataServer::grant(const std::shared_ptr<const std::vector<torch::Tensor>>& tensors) {
  auto token = random_token();
  auto now = Clock::now();
  std::lock_guard lock(impl_->mutex);
  impl_->grants[token] = {tensors, now};
  impl_->order.push_back(token);
  // Unused grants (their replicas went away) expire; used ones are gone already.
  auto& grants = impl_->grants;
  auto& order = impl_->order;
  while (!order.empty()) {
    auto found = grants.find(order.front());
    if (found != grants.end() && order.size() <= kGrantsKept && now - found->second.issued <= kGrantLifetime)
      break;
    if (found != grants.end())
      grants.erase(found);
    order.pop_front();
  }
  return token;
}

std::int64_t WeightDataServer::served() const noexcept {
  return impl_->served.load();
}

// -- WeightDataReader ----------------------------------------------------------------

struct WeightDataReader::Impl {
  asio::io_context io;
  tcp::socket socket{io};
  asio::steady_timer timer{io};
  std::string host;
  std::uint16_t port = 0;
  std::string token;
  std::vector<torch::Tensor> into;
  std::int64_t total_bytes = 0;
  std::atomic<bool> cancelled{false};
};

WeightDataReader::WeightDataReader(std::string host, std::uint16_t port, std::string token,
                                   std::vector<torch::Tensor> into, std::int64_t total_bytes)
  : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->token = std::move(token);
  impl_->into = std::move(into);
  impl_->total_bytes = total_bytes;
}

WeightDataReader::~WeightDataReader() = default;

void WeightDataReader::cancel() {
  impl_->cancelled = true;
  asio::post(impl_->io, [impl = impl_.get()] {
    asio::error_code ignored;
    impl->socket.close(ignored);
  });
}

std::string WeightDataReader::run(std::chrono::milliseconds idle_timeout) {
  auto& s = *impl_;
  const auto where = s.host + ":" + std::to_string(s.port);
  if (byte_count(s.into) != s.total_bytes)
    return "the staging tensors hold " + std::to_string(byte_count(s.into)) + " bytes, the version "
      + std::to_string(s.total_bytes);
  std::string error;
  asio::error_code code;
  tcp::resolver resolver(s.io);
  auto endpoints = resolver.resolve(s.host, std::to_string(s.port), code);
  if (code)
    return "cannot resolve the weight data path's host " + where + ": " + code.message();

  std::string hello = kMagic + s.token;
  std::uint64_t size = 0;
  std::vector<asio::mutable_buffer> buffers;
  for (const auto& tensor : s.into)
    buffers.push_back(asio::buffer(tensor.data_ptr(), tensor.nbytes())); // scatter: no copy
  std::int64_t progress = 0; // bytes and steps so far: the watchdog sees them move
  bool finished = false;
  auto fail = [&](const std::string& why) {
    if (error.empty())
      error = s.cancelled ? "cancelled" : why;
    finished = true;
    s.timer.cancel();
  };
  watch(
    s.timer, s.socket, idle_timeout, [&] { return progress; }, [&] { return finished; },
    [&] {
      error =
        "no byte came from the weight data path at " + where + " for " + std::to_string(idle_timeout.count()) + " ms";
    },
    0);
  asio::async_connect(s.socket, endpoints, [&](const asio::error_code& connected, const tcp::endpoint&) {
    if (connected || s.cancelled)
      return fail("cannot connect to the weight data path at " + where + ": " + connected.message());
    ++progress;
    asio::async_write(s.socket, asio::buffer(hello), [&](const asio::error_code& sent, std::size_t) {
      if (sent || s.cancelled)
        return fail("cannot send the token to the weight data path at " + where + ": " + sent.message());
      ++progress;
      asio::async_read(s.socket, asio::buffer(&size, sizeof size), [&](const asio::error_code& read, std::size_t) {
        if (read || s.cancelled)
          return fail("the weight data path at " + where + " refused the token or closed: " + read.message());
        if (size != static_cast<std::uint64_t>(s.total_bytes))
          return fail("the weight data path at " + where + " sends " + std::to_string(size)
                      + " bytes, the manifest says " + std::to_string(s.total_bytes));
        asio::async_read(
          s.socket, buffers,
          [&](const asio::error_code& part, std::size_t received) -> std::size_t {
            progress = 2 + static_cast<std::int64_t>(received);
            return part ? 0 : kBytesPerCall;
          },
          [&](const asio::error_code& done, std::size_t received) {
            if (done || s.cancelled)
              return fail("the weight data path at " + where + " broke off after " + std::to_string(received) + " of "
                          + std::to_string(s.total_bytes) + " bytes: " + done.message());
            finished = true;
            s.timer.cancel();
          });
      });
    });
  });
  s.io.run();
  if (error.empty() && !finished)
    error = "the weight data path at " + where + " went silent";
  return error;
}

} // namespace chorus::actors
