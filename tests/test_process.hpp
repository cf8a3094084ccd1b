// ChildProcess: runs a program of the build as a child process, reads its output (stdout and stderr
// together) as it comes, signals it, and reaps it, with a deadline on every wait so a test never hangs.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace chorus::test {

class ChildProcess {
public:
  ChildProcess(const std::string& program, const std::vector<std::string>& args) {
    int fds[2];
    if (pipe(fds) != 0)
      throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      dup2(fds[1], STDERR_FILENO);
      close(fds[0]);
      std::vector<char*> argv{const_cast<char*>(program.c_str())};
      for (const auto& arg : args)
        argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
  }

  ~ChildProcess() {
    if (!exit_code_) {
      kill(pid_, SIGKILL);
      wait(std::chrono::seconds(10));
    }
    close(out_);
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  /// Reads output until `text` appears or the child closes its output or `timeout` passes.
  /// Returns whether `text` appeared.
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline || !read_some(100))
        return output_.find(text) != std::string::npos;
    }
    return true;
  }

  /// Reads output until a complete line starting with `prefix` has arrived; returns that line, or
  /// nothing if the child closed its output or `timeout` passed first.
  std::optional<std::string> wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      for (std::size_t start = 0, end; (end = output_.find('\n', start)) != std::string::npos; start = end + 1)
        if (output_.compare(start, prefix.size(), prefix) == 0)
          return output_.substr(start, end - start);
      if (std::chrono::steady_clock::now() > deadline || !read_some(100))
        return std::nullopt;
    }
  }

  /// Reads output for up to `timeout`; returns whether the child has closed its output (it ended,
  /// or is about to: reap it with wait()).
  bool ended(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline)
      if (!read_some(100))
        return true;
    return false;
  }

  void signal(int number) {
    kill(pid_, number);
  }

  /// Reads the rest of the output and reaps the child; kills it if it outlives `timeout`.
  /// Returns the exit code, or 128 + the signal that ended it.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    if (exit_code_)
      return *exit_code_;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (read_some(100)) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "child process hung; output so far:\n" << output_;
        kill(pid_, SIGKILL);
        break;
      }
    }
    int status = 0;
    waitpid(pid_, &status, 0);
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return *exit_code_;
  }

  const std::string& output() const {
    return output_;
  }

private:
  // Returns false once the child closed its output.
  bool read_some(int timeout_ms) {
    pollfd poll_fd{out_, POLLIN, 0};
    if (poll(&poll_fd, 1, timeout_ms) <= 0)
      return true;
    char buffer[4096];
    auto n = read(out_, buffer, sizeof(buffer));
    if (n <= 0)
      return false;
    output_.append(buffer, static_cast<std::size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int out_ = -1;
  std::string output_;
  std::optional<int> exit_code_;
};

} // namespace chorus::test
