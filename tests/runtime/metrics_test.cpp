// MetricsLogger: JSON lines with every figure, and throttled progress lines with an ETA.
#include <chorus/errors.hpp>
#include <chorus/metrics.hpp>

#include "runtime/tensorboard.hpp"
#include "tests/expect_error.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <limits>
#include <sstream>

using namespace chorus;
using chorus::test::expect_error_containing;

namespace {

struct Captured {
  std::ostringstream text;
  std::shared_ptr<spdlog::logger> logger;
  Captured() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text);
    logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_pattern("%v");
  }
};

TEST(Metrics, WritesOneJsonLinePerStep) {
  auto path = std::filesystem::path(::testing::TempDir()) / "metrics_lines.jsonl";
  std::filesystem::remove(path);
  {
    MetricsLogger logger({.jsonl = path});
    logger.log("sft", 1, {{"loss", 2.5}, {"lr", 1e-5}});
    logger.log("gspo", 2, {{"reward_mean", 0.75}, {"kl", std::numeric_limits<double>::quiet_NaN()}});
  }
  std::ifstream in(path);
  std::string first, second;
  std::getline(in, first);
  std::getline(in, second);
  auto a = nlohmann::json::parse(first);
  auto b = nlohmann::json::parse(second);
  EXPECT_EQ(a["stage"], "sft");
  EXPECT_EQ(a["step"], 1);
  EXPECT_DOUBLE_EQ(a["loss"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(a["lr"].get<double>(), 1e-5);
  EXPECT_TRUE(a.contains("time_s"));
  EXPECT_EQ(b["stage"], "gspo");
  EXPECT_TRUE(b["kl"].is_null()) << "non-finite figures are written as null, keeping the line valid JSON";
}

TEST(Metrics, ProgressLineShowsFractionAndFigures) {
  Captured console;
  MetricsLogger logger({.console = console.logger, .console_interval = std::chrono::milliseconds(0)});
  logger.begin_stage("sft", 10);
  logger.log("sft", 5, {{"loss", 0.5}});
  logger.log("sft", 10, {{"loss", 0.25}});
  auto text = console.text.str();
  EXPECT_NE(text.find("[sft] 5/10 50%"), std::string::npos) << text;
  EXPECT_NE(text.find("ETA"), std::string::npos) << text;
  EXPECT_NE(text.find("loss 0.5"), std::string::npos) << text;
  EXPECT_NE(text.find("[sft] 10/10 100%"), std::string::npos) << text;
  EXPECT_NE(text.find("took"), std::string::npos) << text;
}

TEST(Metrics, ProgressIsThrottledButTheLastStepAlwaysPrints) {
  Captured console;
  MetricsLogger logger({.console = console.logger, .console_interval = std::chrono::hours(1)});
  logger.begin_stage("rl", 100);
  for (int step = 1; step <= 100; ++step)
    logger.log("rl", step, {});
  auto text = console.text.str();
  auto lines = std::count(text.begin(), text.end(), '\n');
  EXPECT_EQ(lines, 2) << text; // the first step, then the last
  EXPECT_NE(text.find("100/100"), std::string::npos) << text;
}

// The published check value of CRC-32C, which TFRecord framing uses.
TEST(TensorBoard, Crc32cIsCastagnolis) {
  EXPECT_EQ(detail::crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(detail::crc32c(""), 0u);
}

TEST(TensorBoard, EveryLoggedFigureDecodesBackFromTheEventFile) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "tensorboard_events";
  std::filesystem::remove_all(dir);
  {
    MetricsLogger logger({.tensorboard = dir});
    logger.log("sft", 1, {{"loss", 2.5}, {"lr", 1e-5}});
    logger.log("sft", 2, {{"loss", 1.25}, {"lr", 2e-5}});
    logger.log("gspo", 1, {{"reward_mean", 0.75}, {"kl", std::numeric_limits<double>::quiet_NaN()}});
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    files.push_back(entry.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].filename().string().rfind("events.out.tfevents.", 0), 0u) << files[0];

  auto events = detail::read_tensorboard_events(files[0]);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_EQ(events[1].step, 1);
  EXPECT_EQ(events[1].scalars, (std::vector<std::pair<std::string, float>>{{"sft/loss", 2.5f}, {"sft/lr", 1e-5f}}));
  EXPECT_EQ(events[2].step, 2);
  EXPECT_EQ(events[2].scalars, (std::vector<std::pair<std::string, float>>{{"sft/loss", 1.25f}, {"sft/lr", 2e-5f}}));
  // A non-finite figure is left out: TensorBoard cannot draw it.
  EXPECT_EQ(events[3].scalars, (std::vector<std::pair<std::string, float>>{{"gspo/reward_mean", 0.75f}}));
  EXPECT_GT(events[3].wall_time, 1.7e9); // seconds since 1970, as TensorBoard expects

  // A flipped bit or a torn end is an error naming the file and the record, never garbage.
  std::string bytes;
  {
    std::ifstream in(files[0], std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& content) {
    std::ofstream(files[0], std::ios::binary | std::ios::trunc) << content;
  };
  auto flipped = bytes;
  flipped[bytes.size() - 10] ^= 0x10;
  write(flipped);
  expect_error_containing<Error>([&] { detail::read_tensorboard_events(files[0]); },
                                 {"record 4", "CRC does not match"});
  write(bytes.substr(0, bytes.size() - 3));
  expect_error_containing<Error>([&] { detail::read_tensorboard_events(files[0]); }, {"torn"});
}

TEST(Metrics, UnwritableFileIsAnError) {
  EXPECT_THROW(MetricsLogger({.jsonl = "/nonexistent-dir/metrics.jsonl"}), Error);
}

} // namespace
