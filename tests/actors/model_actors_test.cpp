// The model actors through the API a recipe sees (include/chorus/model.hpp): concurrent generation,
// train steps and weight versions, the sampler-trainer log-prob gap, save and load in a new process,
// errors inside actors, bad options, and shutdown with requests in flight.
#include <chorus/chorus.hpp>
#include <chorus/model.hpp>

#include "actors/environment_messages.hpp"
#include "actors/messages.hpp"
#include "actors/model_actors.hpp"
#include "actors/model_state.hpp"
#include "runtime/runtime.hpp"
#include "tests/expect_error.hpp"
#include "tests/test_process.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>

using namespace chorus;
using chorus::test::expect_error_containing;

namespace {

std::string join_ids(const std::vector<std::int64_t>& ids) {
  std::string text;
  for (auto id : ids)
    text += (text.empty() ? "" : ",") + std::to_string(id);
  return text;
}

class ModelActors : public ::testing::Test {
protected:
  std::filesystem::path output_ = std::filesystem::path(::testing::TempDir())
    / ("model_actors_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  Runtime runtime_;
  RecipeContext ctx_{runtime_, "test", output_, MetricsLogger(), spdlog::default_logger()};

  Task<TrainingModel> training_model(int replicas = 1, bool keep_reference = false) {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 256, .replicas = replicas});
    co_return co_await builder.spawn_train("policy", {.max_batch_size = 8, .keep_reference = keep_reference});
  }
};

TEST_F(ModelActors, ManyCoroutinesGenerateAtOnceAndEachGetsItsOwnCompletion) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await training_model();
    std::vector<Task<Generation>> requests;
    for (int i = 0; i < 16; ++i)
      requests.push_back(model.generate({{"user", "hello " + std::to_string(i)}}, {.max_tokens = 6, .seed = i}));
    auto results = co_await when_all(std::move(requests));
    EXPECT_EQ(results.size(), 16u);
    for (const auto& result : results) {
      EXPECT_FALSE(result.tokens.empty());
      EXPECT_EQ(result.tokens.size(), result.logprobs.size());
      EXPECT_FALSE(result.prompt_tokens.empty());
      EXPECT_EQ(result.weight_version, 0);
      EXPECT_TRUE(result.finish_reason == "stop" || result.finish_reason == "length");
    }
    // The prompts differ, so their chat renderings do.
    EXPECT_NE(results[0].prompt_tokens, results[1].prompt_tokens);
    // The same seed and prompt give the same completion, whatever shares the batch.
    auto again = co_await model.generate({{"user", "hello 3"}}, {.max_tokens = 6, .seed = 3});
    EXPECT_EQ(again.tokens, results[3].tokens);
  }());
}

TEST_F(ModelActors, ATrainStepPublishesANewVersionThatTheNextGenerationReports) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await training_model();
    auto before = co_await model.complete("abc", {.temperature = 0, .max_tokens = 5});
    EXPECT_EQ(before.weight_version, 0);
    auto old_logprobs = co_await model.logprobs(before.prompt_tokens, before.tokens);

    TrainSample sample{before.prompt_tokens, co_await model.tokenize("xyz"), 0.0, {}, before.weight_version};
    auto report = co_await model.train_sft({sample, sample}, {.lr = 1e-2, .micro_batch_size = 1});
    EXPECT_EQ(report.weight_version, 1);
    EXPECT_EQ(model.weight_version(), 1);
    EXPECT_TRUE(std::isfinite(report.loss));
    EXPECT_GT(report.loss, 0.0);
    EXPECT_GT(report.grad_norm, 0.0);
    EXPECT_EQ(report.tokens, 6);

    auto after = co_await model.complete("abc", {.temperature = 0, .max_tokens = 5});
    EXPECT_EQ(after.weight_version, 1);
    auto new_logprobs = co_await model.logprobs(before.prompt_tokens, before.tokens);
    EXPECT_NE(new_logprobs, old_logprobs);
  }());
}

TEST_F(ModelActors, SamplerAndTrainerLogprobsAgreeWhateverSharesTheBatch) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await training_model();
    std::vector<Task<Generation>> requests;
    for (int i = 0; i < 6; ++i)
      requests.push_back(model.complete(std::string(static_cast<std::size_t>(1 + 3 * i), 'a' + static_cast<char>(i)),
                                        {.max_tokens = 10 + 3 * i, .seed = 100 + i}));
    auto generations = co_await when_all(std::move(requests));
    std::vector<TrainSample> samples;
    for (const auto& g : generations)
      samples.push_back({g.prompt_tokens, g.tokens, 0.0, g.logprobs, g.weight_version});
    // Zero advantages: the step measures the gap without moving the weights much.
    auto report = co_await model.train_policy(samples, {.lr = 1e-6, .micro_batch_size = 4});
    EXPECT_GE(report.logprob_gap, 0.0);
    EXPECT_LT(report.logprob_gap, 1e-5);
    EXPECT_EQ(report.weight_version, 1);
    // Samples from an older version are left out of the gap.
    auto stale = co_await model.train_policy(samples, {.lr = 1e-6});
    EXPECT_EQ(stale.logprob_gap, -1.0);
  }());
}

TEST_F(ModelActors, DpoStepsNeedAndUseTheFrozenReference) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await training_model(1, /*keep_reference=*/true);
    PreferencePair pair{{1, 2, 3}, {4, 5}, {6, 7}};
    auto report = co_await model.train_dpo({pair}, {.lr = 1e-3});
    EXPECT_EQ(report.weight_version, 1);
    EXPECT_NEAR(report.loss, std::log(2.0), 1e-5); // the policy still equals the reference
    auto plain = co_await training_model();
    co_await expect_error_containing<ActorError>(plain.train_dpo({pair}, {}), {"keep_reference"});
  }());
}

TEST_F(ModelActors, SaveThenLoadInANewProcessGivesTheSameLogprobs) {
  std::string folder;
  std::vector<std::int64_t> prompt, completion;
  std::vector<float> expected;
  runtime_.run([&]() -> Task<void> {
    auto model = co_await training_model();
    prompt = co_await model.tokenize("The quick brown fox");
    completion = co_await model.tokenize(" jumps");
    TrainSample sample{prompt, completion, 0.0, {}, 0};
    co_await model.train_sft({sample}, {.lr = 1e-2});
    expected = co_await model.logprobs(prompt, completion); // replicas hold version 1 by now
    folder = co_await model.save("saved", ctx_);
  }());
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(folder) / "model.safetensors"));
  test::ChildProcess probe(CHORUS_TEST_MODEL_PROBE, {folder, join_ids(prompt), join_ids(completion)});
  auto line = probe.wait_for_line("LOGPROBS ", std::chrono::seconds(60));
  ASSERT_TRUE(line) << probe.output();
  auto loaded = nlohmann::json::parse(line->substr(9)).get<std::vector<float>>();
  ASSERT_EQ(loaded.size(), expected.size());
  for (std::size_t i = 0; i < loaded.size(); ++i)
    EXPECT_NEAR(loaded[i], expected[i], 1e-5);
  EXPECT_EQ(probe.wait(), 0);
}

TEST_F(ModelActors, AnExceptionInsideAnActorReachesTheCallerAndTheActorKeepsServing) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await training_model();
    try {
      co_await model.complete("abc", {.max_tokens = 1000}); // beyond kv_cache_len = 256
      ADD_FAILURE() << "no error";
    } catch (const ActorError& error) {
      EXPECT_EQ(error.actor(), "policy/replica0");
      EXPECT_NE(std::string(error.what()).find("256 positions"), std::string::npos) << error.what();
    }
    try {
      TrainSample bad{{1, 2}, {3, 4}, 1.0, {-0.5f}, 0}; // one log-prob for two tokens
      co_await model.train_policy({bad}, {});
      ADD_FAILURE() << "no error";
    } catch (const ActorError& error) {
      EXPECT_EQ(error.actor(), "policy/trainer");
      EXPECT_NE(std::string(error.what()).find("sample 0: 1 behaviour log-probs for 2 completion tokens"),
                std::string::npos)
        << error.what();
    }
    auto fine = co_await model.complete("abc", {.max_tokens = 3});
    EXPECT_FALSE(fine.tokens.empty());
    TrainSample good{{1, 2}, {3, 4}, 0.0, {}, 0};
    auto report = co_await model.train_sft({good}, {});
    EXPECT_EQ(report.weight_version, 1);
  }());
}

TEST_F(ModelActors, OptionsTheMachineCannotHonourAreConfigErrors) {
  runtime_.run([&]() -> Task<void> {
    co_await expect_error_containing<ConfigError>(ModelRef{"builtin:tiny"}.to_builder(ctx_, {.tp = 2}),
                                                  {"tp = 2 needs 2 devices"});
    EXPECT_THROW(co_await ModelRef{"/no/such/folder"}.to_builder(ctx_), ConfigError);
    EXPECT_THROW(co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.dtype = "float64"}), ConfigError);
  }());
}

// On a CPU-only LibTorch (Debian's) the error says so; with CUDA, this version still refuses the
// device, saying that instead. Either way the option and the device are named.
TEST_F(ModelActors, ADeviceThisProcessCannotUseIsAConfigErrorSayingWhatItHas) {
  runtime_.run([&]() -> Task<void> {
    auto devices = chorus::actors::available_devices();
    if (devices == 0) {
      for (const std::string device : {"cuda", "cuda:1"}) {
        auto message = co_await expect_error_containing<ConfigError>(
          ModelRef{"builtin:tiny"}.to_builder(ctx_, {.device = device}),
          {"model 'builtin:tiny'", "device '" + device + "'", "without CUDA", "(CPU only): use device = cpu"});
        EXPECT_NE(message.find("this process's LibTorch " + chorus::actors::libtorch_version()), std::string::npos)
          << message;
      }
    } else { // a CUDA LibTorch: the device after the last one does not exist
      auto device = "cuda:" + std::to_string(devices);
      co_await expect_error_containing<ConfigError>(
        ModelRef{"builtin:tiny"}.to_builder(ctx_, {.device = device}),
        {"device '" + device + "' does not exist", "LibTorch sees " + std::to_string(devices) + " CUDA device(s)"});
    }
    for (const auto* device : {"gpu", "cuda:", "cuda:x", "CUDA", "cuda:0:1"})
      co_await expect_error_containing<ConfigError>(ModelRef{"builtin:tiny"}.to_builder(ctx_, {.device = device}),
                                                    {"expected cpu, cuda or cuda:N"});
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.device = "cpu"});
    EXPECT_EQ(builder.reference(), "builtin:tiny");
  }());
}

TEST_F(ModelActors, AModelThatFailsToLoadIsAnErrorNamingTheFile) {
  auto folder = output_ / "broken";
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "config.json") << "{\"model_type\": \"llama\"";
  std::ofstream(folder / "tokenizer.json") << "{}";
  runtime_.run([&]() -> Task<void> {
    auto builder = co_await ModelRef{folder.string()}.to_builder(ctx_);
    try {
      co_await builder.spawn_inference("judge");
      ADD_FAILURE() << "no error";
    } catch (const ActorError& error) {
      // In words for people: the model and what it was doing, no C++ type names.
      std::string what = error.what();
      EXPECT_NE(what.find("config.json"), std::string::npos) << what;
      EXPECT_NE(what.find("model 'judge' (inference) failed while loading its model"), std::string::npos) << what;
      EXPECT_EQ(what.find("chorus::"), std::string::npos) << what;
      EXPECT_NE(error.request().find("ModelInfoRequest"), std::string::npos) << "the type name stays for logs";
    }
  }());
}

TEST_F(ModelActors, AnInferenceModelTokenizesChatsAndStopsAtStopStrings) {
  runtime_.run([&]() -> Task<void> {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 128});
    auto judge = co_await builder.spawn_inference("judge", {.max_batch_size = 4});
    auto chat = co_await judge.tokenize_chat({{"user", "Hi"}});
    EXPECT_EQ(chat.front(), 257); // <|im_start|> of the byte tokenizer
    // Whatever the untrained model says, the text ends before the first stop string.
    auto result = co_await judge.complete("a", {.temperature = 1.0, .max_tokens = 40, .stop = {"e"}, .seed = 1});
    EXPECT_EQ(result.text.find('e'), std::string::npos);
  }());
}

TEST_F(ModelActors, ShutdownWithRequestsInFlightFailsThemInsteadOfHanging) {
  int failed = 0, finished = 0;
  runtime_.run([&]() -> Task<void> {
    auto model = co_await training_model();
    for (int i = 0; i < 4; ++i) {
      asio::co_spawn(
        runtime_.executor(),
        [model, &failed, &finished]() -> Task<void> {
          try {
            co_await model.complete("abc", {.max_tokens = 250});
            ++finished;
          } catch (const Error&) {
            ++failed;
          }
        },
        asio::detached);
    }
    co_await model.tokenize("x"); // the generations are queued behind nothing: they have started
  }());
  auto start = std::chrono::steady_clock::now();
  runtime_.shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(failed + finished, 4);
}

} // namespace

namespace {

TEST_F(ModelActors, AGenerationTheAskerStopsWaitingForStopsInTheActor) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await training_model();
    // Eight long generations fill every slot; the asker gives up on them after 50 ms (a few may
    // sample the end token before that).
    std::vector<Task<void>> abandoned;
    int timed_out = 0;
    for (int i = 0; i < 8; ++i)
      abandoned.push_back([](TrainingModel model, int i, int& timed_out) -> Task<void> {
        try {
          co_await with_deadline(model.complete("abc", {.max_tokens = 250, .seed = i}), std::chrono::milliseconds(50));
        } catch (const DeadlineError&) {
          ++timed_out;
        }
      }(model, i, timed_out));
    co_await when_all(std::move(abandoned));
    EXPECT_GT(timed_out, 0);
    auto replica = detail::ModelAccess::state_of(model)->inference->replicas.front()->ref;
    auto info = co_await replica.ask(actors::ModelInfoRequest{});
    EXPECT_EQ(info.pending, 0); // the cancellations arrived first and freed the slots
    auto after = co_await model.complete("abc", {.max_tokens = 3, .seed = 1});
    EXPECT_EQ(after.tokens.size(), 3u);
  }());
}

} // namespace

// A request's guided decoding crosses processes: the schema travels as its JSON text, the choices
// as strings, and no schema stays no schema.
TEST(ModelMessages, SamplingParamsKeepTheirSchemaAndChoicesThroughSerialisation) {
  auto round_trip = [](SamplingParams params) {
    std::vector<char> bytes;
    caf::binary_serializer sink(nullptr, bytes);
    EXPECT_FALSE(sink(params));
    SamplingParams back;
    caf::binary_deserializer source(nullptr, bytes);
    EXPECT_FALSE(source(back));
    return back;
  };
  SamplingParams guided{.temperature = 0.5, .max_tokens = 9};
  guided.json_schema = {{"type", "object"}, {"properties", {{"a", {{"enum", {1, "two", nullptr}}}}}}};
  auto back = round_trip(guided);
  EXPECT_EQ(back.json_schema, guided.json_schema);
  EXPECT_EQ(back.max_tokens, 9);
  SamplingParams choice;
  choice.choice = {"yes", "no"};
  back = round_trip(choice);
  EXPECT_TRUE(back.json_schema.is_null());
  EXPECT_EQ(back.choice, choice.choice);
}

// Tools cross processes with a request (a replica or an environment host on another node): calls in
// the conversation, the tools offered, the guided choice of a call, and an environment's results.
TEST(ModelMessages, ToolsCallsAndResultsSurviveSerialisation) {
  auto round_trip = [](auto value) {
    std::vector<char> bytes;
    caf::binary_serializer sink(nullptr, bytes);
    EXPECT_FALSE(sink(value)); // no error
    decltype(value) back;
    caf::binary_deserializer source(nullptr, bytes);
    EXPECT_FALSE(source(back));
    return back;
  };
  std::vector<ChatMessage> messages{
    {"user", "2+3?", {}},
    {"assistant", "Adding.", {{"add", R"({"a": 2, "b": 3})", "call_1"}, {"now", "{}", ""}}},
    {"tool", "5", {}}};
  auto back = round_trip(messages);
  ASSERT_EQ(back.size(), 3u);
  ASSERT_EQ(back[1].tool_calls.size(), 2u);
  EXPECT_EQ(back[1].tool_calls[0].arguments, R"({"a": 2, "b": 3})");
  EXPECT_EQ(back[1].tool_calls[0].id, "call_1");
  EXPECT_EQ(back[1].tool_calls[1].name, "now");
  EXPECT_EQ(back[2].role, "tool");
  auto tools = round_trip(std::vector<Tool>{{"add", "Adds.", R"({"type": "object"})"}, {"now", "", ""}});
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[0].description, "Adds.");
  EXPECT_EQ(tools[0].parameters, R"({"type": "object"})");
  SamplingParams params;
  params.tool_choice = "required";
  params.parallel_tool_calls = false;
  auto params_back = round_trip(params);
  EXPECT_EQ(params_back.tool_choice, "required");
  EXPECT_FALSE(params_back.parallel_tool_calls);
  auto reply = round_trip(EnvReply::from_tools({"5", "12:00"}));
  EXPECT_EQ(reply.tool_results, (std::vector<std::string>{"5", "12:00"}));
  EXPECT_FALSE(reply.done);
}
