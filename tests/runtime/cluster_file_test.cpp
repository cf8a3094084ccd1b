// Cluster files: what a good one holds, and errors that name the file, the key and what was expected.
#include <chorus/errors.hpp>

#include "runtime/cluster.hpp"
#include "tests/expect_error.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>

using namespace chorus;
using chorus::test::expect_error_containing;

namespace {

std::filesystem::path write(const std::string& name, const std::string& text) {
  auto path = std::filesystem::path(::testing::TempDir()) / name;
  std::ofstream(path) << text;
  return path;
}

// Reading a cluster file holding `text` must fail with a ConfigError saying each of `fragments`.
void expect_cluster_file_error(const std::string& text, std::initializer_list<std::string_view> fragments,
                               const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  auto path = write("cluster_error.json", text);
  expect_error_containing<ConfigError>([&] { read_cluster_file(path); }, fragments, file, line);
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
  expect_cluster_file_error(R"({"secret": "s", "nodes": {"gen-1": {"host": "h"}}})",
                            {"cluster_error.json", "nodes.gen-1.port"});
  expect_cluster_file_error(R"({"nodes": {"gen-1": {"port": 1}}})", {"'secret'"});
  expect_cluster_file_error(R"({"secret": "s", "nodes": {"gen-1": {"prot": 1}}})", {"nodes.gen-1.prot"});

  expect_cluster_file_error(R"({"secret": "s", )", {"not valid JSON"});
  expect_cluster_file_error(R"({"secret": "s", "nodes": {"gen-1": {"port": 1e999}}})", {"not valid JSON"});

  expect_cluster_file_error(R"({"secret": "s", "nodes": {}})", {"at least one node"});

  EXPECT_THROW(read_cluster_file("/nonexistent/cluster.json"), ConfigError);
}

} // namespace
