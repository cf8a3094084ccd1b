// Cluster files: what a good one holds, and errors that name the file, the key and what was expected.
#include <chorus/errors.hpp>

#include "runtime/cluster.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace chorus;

namespace {

std::filesystem::path write(const std::string& name, const std::string& text) {
  auto path = std::filesystem::path(::testing::TempDir()) / name;
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::string& text) {
  auto path = write("cluster_error.json", text);
  try {
    read_cluster_file(path);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "no ConfigError";
}

TEST(ClusterFile, ReadsTheSecretAndEachNode) {
  auto path = write("cluster_good.json",
                    R"({"secret": "s", "nodes": {"gen-1": {"host": "10.0.0.2", "port": 7101}, "j": {"port": 7102}}})");
  auto cluster = read_cluster_file(path);
  EXPECT_EQ(cluster.secret, "s");
  ASSERT_EQ(cluster.nodes.size(), 2u);
  EXPECT_EQ(cluster.node("gen-1").host, "10.0.0.2");
  EXPECT_EQ(cluster.node("gen-1").port, 7101);
  EXPECT_EQ(cluster.node("j").host, "127.0.0.1"); // loopback unless told
  EXPECT_THROW(cluster.node("gen-2"), ConfigError);
}

TEST(ClusterFile, MistakesNameTheFileAndTheKey) {
  auto missing_port = error_of(R"({"secret": "s", "nodes": {"gen-1": {"host": "h"}}})");
  EXPECT_NE(missing_port.find("cluster_error.json"), std::string::npos) << missing_port;
  EXPECT_NE(missing_port.find("nodes.gen-1.port"), std::string::npos) << missing_port;

  auto no_secret = error_of(R"({"nodes": {"gen-1": {"port": 1}}})");
  EXPECT_NE(no_secret.find("'secret'"), std::string::npos) << no_secret;

  auto typo = error_of(R"({"secret": "s", "nodes": {"gen-1": {"prot": 1}}})");
  EXPECT_NE(typo.find("nodes.gen-1.prot"), std::string::npos) << typo;

  auto bad_json = error_of(R"({"secret": "s", )");
  EXPECT_NE(bad_json.find("not valid JSON"), std::string::npos) << bad_json;
  auto huge_number = error_of(R"({"secret": "s", "nodes": {"gen-1": {"port": 1e999}}})");
  EXPECT_NE(huge_number.find("not valid JSON"), std::string::npos) << huge_number;

  auto no_nodes = error_of(R"({"secret": "s", "nodes": {}})");
  EXPECT_NE(no_nodes.find("at least one node"), std::string::npos) << no_nodes;

  EXPECT_THROW(read_cluster_file("/nonexistent/cluster.json"), ConfigError);
}

} // namespace
