// NetworkNamespace: a network namespace joined to this one by a veth pair, for tests (and the soak
// program) that put a node behind a link they can cut or shape. Needs root and iproute2.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

namespace chorus::test {

/// Runs `command` through the shell; returns its exit code and what it printed.
inline std::pair<int, std::string> shell(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe)
    return {-1, "cannot run " + command};
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe))
    output += buffer;
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

/// This process is `here()` on the link, the namespace `there()`; the namespace routes everything
/// else through this side, so it reaches this process's other addresses too. Names and the /24 come
/// from the process id and `index`, so that processes and namespaces side by side do not meet.
class NetworkNamespace {
public:
  /// Null, with `why`, when it cannot be made here (not root, no `ip`, no namespaces).
  static std::unique_ptr<NetworkNamespace> make(std::string& why, int index = 0) {
    auto id = std::to_string(::getpid()) + "x" + std::to_string(index);
    auto made =
      std::unique_ptr<NetworkNamespace>(new NetworkNamespace("chorus" + id, "cv" + id + "a", "cv" + id + "b"));
    // 10.200.0.0 to 10.249.255.0: 12,500 /24s, so that processes side by side (tests in parallel)
    // and one process's namespaces do not share one.
    auto key = (static_cast<long>(::getpid()) * 4 + index) % 12500;
    auto net = "10." + std::to_string(200 + key / 250) + "." + std::to_string(key % 250 + 1);
    auto& ns = *made;
    ns.here_ = net + ".1";
    ns.there_ = net + ".2";
    for (const auto& command :
         {"ip netns add " + ns.name_, "ip link add " + ns.link_ + " type veth peer name " + ns.peer_,
          "ip link set " + ns.peer_ + " netns " + ns.name_, "ip addr add " + ns.here_ + "/24 dev " + ns.link_,
          "ip link set " + ns.link_ + " up", ns.inside("ip addr add " + ns.there_ + "/24 dev " + ns.peer_),
          ns.inside("ip link set " + ns.peer_ + " up"), ns.inside("ip link set lo up"),
          ns.inside("ip route add default via " + ns.here_)}) {
      auto [code, output] = shell(command);
      if (code != 0) {
        why = "cannot make a network namespace here ('" + command + "': " + output + ")";
        return nullptr;
      }
    }
    return made;
  }

  ~NetworkNamespace() {
    shell("ip link del " + link_); // takes its peer with it
    shell("ip netns del " + name_);
  }

  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;

  const std::string& name() const {
    return name_;
  }
  const std::string& here() const {
    return here_;
  }
  const std::string& there() const {
    return there_;
  }

  /// `command` run inside the namespace.
  std::string inside(const std::string& command) const {
    return "ip netns exec " + name_ + " " + command;
  }

  /// Takes this side of the link down or up; false (with the output in `why`) if `ip` failed.
  bool set_link(bool up, std::string* why = nullptr) const {
    auto [code, output] = shell("ip link set " + link_ + (up ? " up" : " down"));
    if (why)
      *why = output;
    return code == 0;
  }

  /// Shapes the traffic leaving this side with queueing discipline `qdisc` (e.g. "netem delay 50ms
  /// loss 2%"); empty, or why it cannot.
  std::string shape(const std::string& qdisc) const {
    auto [code, output] = shell("tc qdisc add dev " + link_ + " root " + qdisc);
    return code == 0 ? std::string() : output;
  }

private:
  NetworkNamespace(std::string name, std::string link, std::string peer)
    : name_(std::move(name)), link_(std::move(link)), peer_(std::move(peer)) {}

  std::string name_, link_, peer_, here_, there_;
};

} // namespace chorus::test
