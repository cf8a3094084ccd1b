// CHORUS_RECIPE_MAIN end to end: a real recipe program in a child process, its exit codes, its
// outputs, its errors, and Ctrl-C.
#include <chorus/recipe_main.hpp>

#include "tests/test_process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace {

struct Outcome {
  int exit_code = -1;
  std::string output; // stdout and stderr together
};

// Runs the test recipe program with `args`. When `interrupt_after` shows up in its output, sends
// it SIGINT.
Outcome run_program(const std::vector<std::string>& args, const std::string& interrupt_after = "") {
  chorus::test::ChildProcess child(CHORUS_TEST_RECIPE_PROGRAM, args);
  if (!interrupt_after.empty()) {
    EXPECT_TRUE(child.wait_for_output(interrupt_after, std::chrono::seconds(60))) << child.output();
    child.signal(SIGINT);
  }
  int code = child.wait();
  return {code, child.output()};
}

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(RecipeMain, RunWritesConfigMetricsAndLog) {
  auto out = fresh_dir("recipe_ok");
  auto outcome = run_program({"--set", "steps=4", "--output", out.string()});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.output;
  EXPECT_NE(outcome.output.find("[train] 4/4 100%"), std::string::npos) << outcome.output;
  // The last line says how long the run took and how much of the machine it used.
  EXPECT_NE(outcome.output.find("finished in "), std::string::npos) << outcome.output;
  EXPECT_NE(outcome.output.find(" cores: "), std::string::npos) << outcome.output;
  EXPECT_NE(outcome.output.find("% busy); outputs in "), std::string::npos) << outcome.output;
  auto config = nlohmann::json::parse(std::ifstream(out / "config.json"));
  EXPECT_EQ(config["steps"], 4);
  std::ifstream metrics(out / "metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    auto row = nlohmann::json::parse(line);
    ++lines;
    EXPECT_EQ(row["stage"], "train");
    EXPECT_EQ(row["step"], lines);
    EXPECT_DOUBLE_EQ(row["loss"].get<double>(), 1.0 / lines);
  }
  EXPECT_EQ(lines, 4);
  EXPECT_TRUE(std::filesystem::exists(out / "log.txt"));
}

TEST(RecipeMain, HelpListsOptionsAndConfigFields) {
  auto outcome = run_program({"--help"});
  EXPECT_EQ(outcome.exit_code, 0);
  for (const char* expected : {"--config", "--set", "--output", "mode", "string", "\"ok\"", "steps", "int"})
    EXPECT_NE(outcome.output.find(expected), std::string::npos) << expected << " missing:\n" << outcome.output;
}

TEST(RecipeMain, BadConfigExitsWithTwoAndNamesTheKey) {
  auto outcome = run_program({"--set", "steps=many"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.output.find("key 'steps': expected int"), std::string::npos) << outcome.output;
}

TEST(RecipeMain, ABadClusterFileExitsWithTwoAndNamesTheFileAndKey) {
  auto file = std::filesystem::path(::testing::TempDir()) / "recipe_cluster.json";
  std::ofstream(file) << R"({"secret": "s", "nodes": {"gen-1": {"host": "127.0.0.1"}}})";
  auto outcome = run_program({"--cluster", file.string(), "--output", fresh_dir("recipe_cluster").string()});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.output.find("recipe_cluster.json: key 'nodes.gen-1.port'"), std::string::npos) << outcome.output;
}

TEST(RecipeMain, UnknownOptionExitsWithTwo) {
  auto outcome = run_program({"--epochs", "3"});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.output.find("unknown option '--epochs'"), std::string::npos) << outcome.output;
}

TEST(RecipeMain, FailingRecipeExitsWithOneAndSaysWhy) {
  auto outcome = run_program({"--set", "mode=fail", "--output", fresh_dir("recipe_fail").string()});
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_NE(outcome.output.find("the recipe failed on purpose"), std::string::npos) << outcome.output;
}

TEST(RecipeMain, AConfigErrorFromTheRecipeExitsWithTwo) {
  auto outcome = run_program({"--set", "mode=bad_value", "--output", fresh_dir("recipe_bad_value").string()});
  EXPECT_EQ(outcome.exit_code, 2);
  EXPECT_NE(outcome.output.find("steps must be even, got 3"), std::string::npos) << outcome.output;
}

TEST(RecipeMain, CtrlCStopsTheRecipeCleanlyAndSaysSo) {
  auto out = fresh_dir("recipe_wait");
  auto outcome = run_program({"--set", "mode=wait", "--output", out.string()}, "waiting for a signal");
  EXPECT_EQ(outcome.exit_code, 130) << outcome.output;
  EXPECT_NE(outcome.output.find("stopped by Ctrl-C"), std::string::npos) << outcome.output;
  EXPECT_TRUE(std::filesystem::exists(out / "metrics.jsonl"));
}

TEST(CommandLine, ParsesEveryOption) {
  const char* argv[] = {"prog", "-c", "c.json", "--set", "a=1", "--set=b.c=2", "-o", "out", "--log-level=debug"};
  auto cli = chorus::parse_command_line(9, argv);
  EXPECT_EQ(cli.config_file, "c.json");
  EXPECT_EQ(cli.overrides, (std::vector<std::string>{"a=1", "b.c=2"}));
  EXPECT_EQ(cli.output_dir, "out");
  EXPECT_EQ(cli.log_level, "debug");
  EXPECT_FALSE(cli.help);
}

TEST(CommandLine, RejectsMistakes) {
  const char* missing[] = {"prog", "--config"};
  EXPECT_THROW(chorus::parse_command_line(2, missing), chorus::UsageError);
  const char* stray[] = {"prog", "lr=3"};
  EXPECT_THROW(chorus::parse_command_line(2, stray), chorus::UsageError);
  const char* level[] = {"prog", "--log-level", "loud"};
  EXPECT_THROW(chorus::parse_command_line(3, level), chorus::UsageError);
}

} // namespace
