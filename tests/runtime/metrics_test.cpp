// MetricsLogger: JSON lines with every figure, and throttled progress lines with an ETA.
#include <chorus/errors.hpp>
#include <chorus/metrics.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <limits>
#include <sstream>

using namespace chorus;

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

TEST(Metrics, UnwritableFileIsAnError) {
  EXPECT_THROW(MetricsLogger({.jsonl = "/nonexistent-dir/metrics.jsonl"}), Error);
}

} // namespace
