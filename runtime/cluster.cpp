#include "runtime/cluster.hpp"

#include <chorus/config.hpp>

#include <fstream>
#include <sstream>

namespace chorus {

namespace {

// Bumped whenever a message that crosses processes changes.
constexpr const char* kWireProtocol = "chorus-wire-6";

std::string known_nodes(const Cluster& cluster) {
  std::string names;
  for (const auto& node : cluster.nodes)
    names += (names.empty() ? "" : ", ") + node.name;
  return names.empty() ? "none" : names;
}

} // namespace

const ClusterNode& Cluster::node(const std::string& name) const {
  for (const auto& node : nodes)
    if (node.name == name)
      return node;
  throw ConfigError(file.string() + ": no node '" + name + "' (the file names: " + known_nodes(*this) + ")");
}

Cluster read_cluster_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    throw ConfigError("cannot read the cluster file " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  Json json;
  try {
    json = Json::parse(text.str());
  } catch (const Json::exception& error) { // parse_error, or out_of_range for a number like 1e999
    throw ConfigError(file.string() + ": not valid JSON: " + error.what());
  }
  ConfigLocation top{file.string(), ""};
  if (!json.is_object())
    top.fail("an object with \"secret\" and \"nodes\"", json);
  Cluster cluster;
  cluster.file = file;
  for (const auto& [key, value] : json.items())
    if (key != "secret" && key != "nodes" && key != "recipe_host")
      top.child(key).fail_unknown({"secret", "nodes", "recipe_host"});
  if (json.contains("recipe_host")) {
    if (!json["recipe_host"].is_string() || json["recipe_host"].get<std::string>().empty())
      top.child("recipe_host").fail("the address at which nodes reach the recipe's process", json["recipe_host"]);
    cluster.recipe_host = json["recipe_host"].get<std::string>();
  }
  if (!json.contains("secret") || !json["secret"].is_string() || json["secret"].get<std::string>().empty())
    top.child("secret").fail("a non-empty string shared by every process of the cluster",
                             json.contains("secret") ? json["secret"] : Json());
  cluster.secret = json["secret"].get<std::string>();
  auto nodes_at = top.child("nodes");
  if (!json.contains("nodes") || !json["nodes"].is_object())
    nodes_at.fail("an object from node name to {\"host\", \"port\"}", json.contains("nodes") ? json["nodes"] : Json());
  for (const auto& [name, value] : json["nodes"].items()) {
    auto at = nodes_at.child(name);
    if (!value.is_object())
      at.fail("an object with \"host\" and \"port\"", value);
    for (const auto& [key, field] : value.items())
      if (key != "host" && key != "port")
        at.child(key).fail_unknown({"host", "port"});
    ClusterNode node{name, "127.0.0.1", 0};
    if (value.contains("host")) {
      if (!value["host"].is_string() || value["host"].get<std::string>().empty())
        at.child("host").fail("a host name or address", value["host"]);
      node.host = value["host"].get<std::string>();
    }
    if (!value.contains("port") || !value["port"].is_number_integer() || value["port"].get<std::int64_t>() < 1
        || value["port"].get<std::int64_t>() > 65535)
      at.child("port").fail("a port number from 1 to 65535", value.contains("port") ? value["port"] : Json());
    node.port = static_cast<std::uint16_t>(value["port"].get<std::int64_t>());
    cluster.nodes.push_back(std::move(node));
  }
  if (cluster.nodes.empty())
    nodes_at.fail("at least one node");
  return cluster;
}

void configure_cluster_network(caf::actor_system_config& config) {
  config.set("middleman.app-identifiers", std::vector<std::string>{kWireProtocol});
  config.set("middleman.heartbeat-interval", caf::timespan{std::chrono::seconds(1)});
  config.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(5)});
}

} // namespace chorus
