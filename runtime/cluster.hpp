// A cluster file names the chorus-node processes a recipe may place components on, and the secret
// that joins them:
//
//   {"secret": "change me", "recipe_host": "10.0.0.2",
//    "nodes": {"gen-1": {"host": "127.0.0.1", "port": 7101}, "judge-1": {"host": "10.0.0.7", "port": 7101}}}
//
// A recipe program reads it with `--cluster FILE`; `chorus-node --cluster FILE --name gen-1` serves
// the node of that name. Include only from runtime/ and actors/: it spells CAF types.
#pragma once

#include <caf/actor_system_config.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace chorus {

struct ClusterNode {
  std::string name;
  std::string host;
  std::uint16_t port = 0;
};

struct Cluster {
  /// The file it was read from, for messages.
  std::filesystem::path file;
  std::string secret;
  std::vector<ClusterNode> nodes;
  /// The address at which nodes reach the recipe's process ("recipe_host"; loopback unless told):
  /// where data-parallel trainer ranks meet rank 0, and where replicas on nodes read weight versions
  /// from a trainer in the recipe's process (its weight data path).
  std::string recipe_host = "127.0.0.1";

  /// The node called `name`. @throws ConfigError naming the file and the nodes it has.
  const ClusterNode& node(const std::string& name) const;
};

/// Reads and checks a cluster file. @throws ConfigError naming the file, the key and what was expected.
Cluster read_cluster_file(const std::filesystem::path& file);

/// The CAF network settings every process of a cluster shares: the wire protocol's identifier (a
/// peer built from another version of chorus is refused at the handshake, before any message is
/// read) and heartbeats, so that a node cut off without closing its connection is noticed within
/// seconds.
void configure_cluster_network(caf::actor_system_config& config);

/// The CAF scheduler settings of every chorus process: idle workers wait on their condition
/// variable after the short busy-poll phase instead of polling with sleeps (a request from outside
/// CAF answers in ~15 us instead of ~90 us). Runtime applies it; a raw actor_system should too.
void configure_scheduler(caf::actor_system_config& config);

} // namespace chorus
