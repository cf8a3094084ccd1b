// CHORUS_RECIPE_MAIN end to end: a real recipe program in a child process, its exit codes, its
// outputs, its errors, and Ctrl-C.
#include <chorus/recipe_main.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

struct Outcome {
  int exit_code = -1;
  std::string output; // stdout and stderr together
};

// Runs the test recipe program with `args`. When `interrupt_after` shows up in its output, sends
// it SIGINT. Kills it (and fails) if it runs longer than 60 s.
Outcome run_program(const std::vector<std::string>& args, const std::string& interrupt_after = "") {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    std::vector<char*> argv{const_cast<char*>(CHORUS_TEST_RECIPE_PROGRAM)};
    for (const auto& arg : args)
      argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  Outcome outcome;
  bool interrupted = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char buffer[4096];
  while (true) {
    pollfd poll_fd{fds[0], POLLIN, 0};
    if (poll(&poll_fd, 1, 100) > 0) {
      auto n = read(fds[0], buffer, sizeof(buffer));
      if (n <= 0)
        break;
      outcome.output.append(buffer, static_cast<std::size_t>(n));
    }
    if (!interrupt_after.empty() && !interrupted && outcome.output.find(interrupt_after) != std::string::npos) {
      kill(pid, SIGINT);
      interrupted = true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      ADD_FAILURE() << "the recipe program hung; output:\n" << outcome.output;
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return outcome;
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
