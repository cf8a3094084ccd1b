// bench_main_job: the main job (examples/sft_then_gspo, as scripts/run_main.sh runs it) against the
// same recipe written in Python as a competent PyTorch user would (main_job.py: asyncio, batched
// generation with a preallocated KV cache, autograd and torch.optim.AdamW), one after the other on
// the same machine: the same model and initial weights (builtin:tiny, seed 0), the same data (the
// one chorus's run generated and wrote), the same settings (the run's config.json) and steps.
//
//   ./build/bench/main_job/bench_main_job                      # the main job as it ships
//   ./build/bench/main_job/bench_main_job --set gspo_max_steps=4 --set eval_prompts=20   # a quick look
//
// Prints each stage's wall time on both sides, CPU utilisation (CPU seconds / wall seconds / cores),
// both EVAL lines and
//   BENCH main_job python_s=.. chorus_s=.. ... ratio=<python_s / chorus_s> target=1.5
// A run where chorus's accuracy after GSPO is more than 5 points below Python's does not count:
// ratio=0 and counted=no.
#include "models/pretrained.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Measured {
  double wall = 0, cpu = 0;
  std::string output; // standard output
};

// Runs `argv` with `environment` added, its standard output and error into files in `folder`;
// measures its wall time and the CPU time of it and its threads.
Measured run(const std::vector<std::string>& argv, const std::vector<std::string>& environment, const fs::path& folder,
             const std::string& name) {
  auto out = folder / (name + ".stdout"), err = folder / (name + ".stderr");
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0)
    throw std::runtime_error("fork failed");
  if (pid == 0) {
    int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    for (const auto& setting : environment)
      putenv(const_cast<char*>(setting.c_str()));
    std::vector<char*> args;
    for (const auto& arg : argv)
      args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  Measured result;
  result.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
    + static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::ifstream in(out);
  result.output.assign(std::istreambuf_iterator<char>(in), {});
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream log(err);
    std::string text(std::istreambuf_iterator<char>(log), {});
    throw std::runtime_error(name + " failed (exit status " + std::to_string(WEXITSTATUS(status))
                             + "): " + text.substr(text.size() > 3000 ? text.size() - 3000 : 0));
  }
  return result;
}

// The last line of `output` that starts with `tag` ("EVAL", "STAGES"); "" if there is none.
std::string line_of(const std::string& output, const std::string& tag) {
  auto at = output.rfind(tag + " ");
  return at == std::string::npos ? "" : output.substr(at, output.find('\n', at) - at);
}

// The key=value figures of that line.
std::map<std::string, double> figures(const std::string& output, const std::string& tag, const std::string& side) {
  auto text = line_of(output, tag);
  if (text.empty())
    throw std::runtime_error(side + " printed no " + tag + " line");
  std::istringstream line(text.substr(tag.size() + 1));
  std::map<std::string, double> result;
  for (std::string pair; line >> pair;)
    if (auto eq = pair.find('='); eq != std::string::npos)
      result[pair.substr(0, eq)] = std::stod(pair.substr(eq + 1));
  return result;
}

} // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::vector<std::string> sets;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg != "--set" || i + 1 == argc) {
      std::fprintf(stderr, "usage: bench_main_job [--set key=value]...  (settings of the main job, both sides)\n");
      return 2;
    }
    sets.push_back(argv[++i]);
  }
  try {
    auto cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    auto folder = fs::temp_directory_path() / ("chorus-bench-main-job-" + std::to_string(getpid()));
    fs::create_directories(folder);
    // The initial weights both sides start from: builtin:tiny as the main job creates it (seed 0).
    chorus::models::save_pretrained_model(chorus::models::builtin_tiny(0), folder / "model");

    std::printf("main job: chorus (examples/sft_then_gspo), then the same recipe in Python (bench/main_job/"
                "main_job.py, PyTorch, %d threads, OMP_WAIT_POLICY=PASSIVE), on %d cores\n",
                cores, cores);
    std::vector<std::string> chorus_argv{CHORUS_MAIN_JOB, "--output", (folder / "chorus").string()};
    for (const auto& set : sets)
      chorus_argv.insert(chorus_argv.end(), {"--set", set});
    auto chorus = run(chorus_argv, {}, folder, "chorus");
    std::printf("chorus: %.1f s\n", chorus.wall);
    // The Python version's best settings: every core for its intra-op threads, and OpenMP threads that
    // sleep instead of spinning between ops (spinning beside OpenBLAS's pool cost it 3x).
    auto python = run({"/usr/bin/python3", std::string(CHORUS_SOURCE_DIR) + "/bench/main_job/main_job.py",
                       folder.string(), std::to_string(cores)},
                      {"OMP_WAIT_POLICY=PASSIVE"}, folder, "python");
    std::printf("python: %.1f s\n", python.wall);

    auto chorus_stages = figures(chorus.output, "STAGES", "chorus");
    auto python_stages = figures(python.output, "STAGES", "python");
    std::printf("\n  %-22s %9s %9s %7s\n", "stage (wall seconds)", "python", "chorus", "ratio");
    for (const auto* stage : {"base_eval", "sft", "sft_eval", "gspo", "gspo_eval"})
      std::printf("  %-22s %9.1f %9.1f %7.2f\n", stage, python_stages[stage], chorus_stages[stage],
                  python_stages[stage] / std::max(chorus_stages[stage], 1e-9));
    std::printf("  %-22s %9.1f %9s\n", "  gspo: generate+grade", python_stages["gspo_generation"], "overlap");
    std::printf("  %-22s %9.1f %9s\n", "  gspo: train", python_stages["gspo_training"], "overlap");
    std::printf("  %-22s %9.1f %9.1f %7.2f\n", "whole program", python.wall, chorus.wall, python.wall / chorus.wall);
    double python_use = python.cpu / python.wall / cores, chorus_use = chorus.cpu / chorus.wall / cores;
    std::printf("  %-22s %9.2f %9.2f\n", "CPU utilisation", python_use, chorus_use);
    std::printf("python %s\nchorus %s\n", line_of(python.output, "EVAL").c_str(),
                line_of(chorus.output, "EVAL").c_str());

    auto python_acc = figures(python.output, "EVAL", "python")["gspo_acc"];
    auto chorus_acc = figures(chorus.output, "EVAL", "chorus")["gspo_acc"];
    bool counted = chorus_acc >= python_acc - 0.05 - 1e-9;
    std::printf("BENCH main_job python_s=%.1f chorus_s=%.1f python_cpu_use=%.2f chorus_cpu_use=%.2f python_acc=%.2f "
                "chorus_acc=%.2f counted=%s ratio=%.2f target=1.5\n",
                python.wall, chorus.wall, python_use, chorus_use, python_acc, chorus_acc, counted ? "yes" : "no",
                counted ? python.wall / chorus.wall : 0.0);
    fs::remove_all(folder);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_main_job: %s\n", error.what());
    return 1;
  }
  return 0;
}
