// Multi-turn episodes: the environment's turns are spliced between the model's in token space and
// masked out; ENVGRPO and ENVGSPO run on them.
#include <chorus/chorus.hpp>

#include "models/bpe_tokenizer.hpp"
#include "models/tokenizer.hpp"
#include "recipes/policy_optimization.hpp"
#include "recipes/stage_clock.hpp"
#include "runtime/runtime.hpp"
#include "tests/expect_error.hpp"
#include "tests/thinking_model.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <regex>

using namespace chorus;
using chorus::test::expect_error_containing;

namespace {

// Says "Again." after each model turn until the third, then rewards the share of 'o' in the replies.
struct Repeat : Environment {
  int turns = 0;
  Task<std::vector<ChatMessage>> reset(const Prompt& prompt) override {
    co_return prompt.prompt;
  }
  Task<EnvReply> step(const std::vector<ChatMessage>& conversation) override {
    if (++turns < 3)
      co_return EnvReply::next("Again.");
    double os = 0, total = 0;
    for (const auto& message : conversation)
      if (message.role == "assistant")
        for (char c : message.content) {
          os += c == 'o';
          ++total;
        }
    co_return EnvReply::finish(total > 0 ? os / total : 0.0, "share of o");
  }
};

class Environments : public ::testing::Test {
protected:
  Runtime runtime_;
  RecipeContext ctx_{runtime_, "test", std::filesystem::path(::testing::TempDir()) / "environments", MetricsLogger(),
                     spdlog::default_logger()};

  // The tiny model taught to answer "ok" and end its turn, so that episodes go on.
  Task<TrainingModel> polite_model() {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 256});
    auto model = co_await builder.spawn_train("policy", {.max_batch_size = 64});
    std::vector<Completion> examples;
    for (const char* text : {"Hi.", "Again.", "Go on.", "Write something."})
      examples.push_back({{{"user", text}}, "ok", Json::object()});
    co_await SFT({.dataset = examples, .model = model, .lr = 3e-3, .epochs = 15, .samples_per_batch = 4}).run();
    co_return model;
  }
};

} // namespace

TEST_F(Environments, TheEnvironmentsTurnsAreSplicedInAndMaskedOut) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await polite_model();
    Prompt prompt{{{"user", "Hi."}}, Json::object()};
    detail::StageClock clock;
    auto rollout =
      co_await detail::episode(model, {.environment = [] { return std::make_unique<Repeat>(); }, .max_turns = 4},
                               prompt, {.temperature = 0.0, .max_tokens = 8}, clock);
    auto stages = clock.totals();
    EXPECT_GT(stages.busy[detail::StageClock::generate], 0.0);
    EXPECT_GT(stages.busy[detail::StageClock::grade], 0.0); // the environment's turns
    EXPECT_EQ(rollout.grade.explanation, "share of o");
    EXPECT_EQ(rollout.tokens.size(), rollout.mask.size());
    EXPECT_EQ(rollout.tokens.size(), rollout.logprobs.size());
    auto trained = std::count(rollout.mask.begin(), rollout.mask.end(), 1);
    EXPECT_EQ(trained, rollout.generated);
    EXPECT_GT(rollout.mask.size(), static_cast<std::size_t>(trained)); // the environment's turns are there
    for (std::size_t i = 0; i < rollout.mask.size(); ++i)
      if (!rollout.mask[i])
        EXPECT_EQ(rollout.logprobs[i], 0.0f);
    // Prompt and episode tokens are the conversation as the chat template renders it (the byte
    // tokenizer re-tokenizes text exactly), up to the newline after the last end-of-turn.
    std::vector<ChatMessage> conversation = prompt.prompt;
    for (int turn = 0; turn < 3; ++turn) {
      conversation.push_back({"assistant", "ok"});
      if (turn < 2)
        conversation.push_back({"user", "Again."});
    }
    auto rendered = co_await model.tokenize_chat(conversation, false);
    auto sequence = rollout.prompt_tokens;
    sequence.insert(sequence.end(), rollout.tokens.begin(), rollout.tokens.end());
    EXPECT_LE(sequence.size(), rendered.size());
    EXPECT_TRUE(sequence.size() <= rendered.size() && std::equal(sequence.begin(), sequence.end(), rendered.begin()));
    EXPECT_NEAR(rollout.grade.score, 0.5, 1e-9); // "ok" three times
  }());
}

namespace {

// A tiny random model with a real tokenizer and chat template, saved by test_save_llama_tiny:
// Llama 3.2's, or `variant`'s ("gemma3", "mistral_nemo"). Empty (and the test failed) if it failed.
std::filesystem::path tiny_model_folder(const std::string& name, const std::string& variant) {
  auto folder = std::filesystem::path(::testing::TempDir()) / name;
  if (std::system((std::string(CHORUS_SAVE_LLAMA_TINY) + " " + folder.string() + " " + variant).c_str()) != 0) {
    ADD_FAILURE() << "test_save_llama_tiny " << variant << " failed";
    return {};
  }
  return folder;
}

// Records each turn it is asked to react to (for the test), then replies.
struct Recording : Environment {
  std::shared_ptr<std::vector<ChatMessage>> turns;
  explicit Recording(std::shared_ptr<std::vector<ChatMessage>> seen) : turns(std::move(seen)) {}
  Task<std::vector<ChatMessage>> reset(const Prompt& prompt) override {
    co_return prompt.prompt;
  }
  Task<EnvReply> step(const std::vector<ChatMessage>& conversation) override {
    turns->push_back(conversation.back());
    co_return reply(conversation);
  }
  virtual EnvReply reply(const std::vector<ChatMessage>& conversation) = 0;
};

// Answers the model's call of add with the sum, then rewards a second call made after reading it.
struct Calculator : Recording {
  using Recording::Recording;
  EnvReply reply(const std::vector<ChatMessage>& conversation) override {
    const auto& turn = conversation.back();
    if (turn.tool_calls.size() != 1 || turn.tool_calls[0].name != "add")
      return EnvReply::finish(0.0, "no call of add");
    if (turns->size() == 1) {
      auto arguments = Json::parse(turn.tool_calls[0].arguments);
      return EnvReply::from_tools({std::to_string(arguments["a"].get<int>() + arguments["b"].get<int>())});
    }
    return EnvReply::finish(conversation[conversation.size() - 2].role == "tool" ? 1.0 : 0.0, "read the sum");
  }
};

// An episode of "2+3?" with the Calculator, offering the tool add (of two digits), the untrained
// model held to calls of it by guided decoding (tool_choice).
Task<detail::Rollout> calculator_episode(TrainingModel& model, std::shared_ptr<std::vector<ChatMessage>> seen,
                                         SamplingParams sampling) {
  EnvironmentOptions options{.environment = [seen] { return std::make_unique<Calculator>(seen); },
                             .max_turns = 3,
                             .tools = {{"add", "Adds two digits.", R"({"type": "object", "properties":
                   {"a": {"type": "integer", "minimum": 1, "maximum": 9},
                    "b": {"type": "integer", "minimum": 1, "maximum": 9}},
                   "required": ["a", "b"], "additionalProperties": false})"}}};
  sampling.tool_choice = "add";
  detail::StageClock clock;
  co_return co_await detail::episode(model, options, {{{"user", "2+3?", {}}}, Json::object()}, sampling, clock);
}

// The text of an episode's masked tokens (the environment's turns), to the byte tokenizer.
std::string masked_text(const detail::Rollout& rollout) {
  std::vector<std::int64_t> context;
  for (std::size_t i = 0; i < rollout.tokens.size(); ++i)
    if (!rollout.mask[i])
      context.push_back(rollout.tokens[i]);
  return models::ByteTokenizer().decode(context);
}

} // namespace

TEST_F(Environments, ToolCallsAreParsedAnsweredAndTheToolsRendered) {
  runtime_.run([&]() -> Task<void> {
    // The tools' system turn alone is ~450 bytes to the byte tokenizer.
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 1024});
    auto model = co_await builder.spawn_train("policy");
    EXPECT_FALSE(model.thinks()); // the byte tokenizer's ChatML has no thinking
    auto seen = std::make_shared<std::vector<ChatMessage>>();
    SamplingParams sampling{.temperature = 1.0, .max_tokens = 120, .seed = 7};
    sampling.logit_bias = {{models::ByteTokenizer::kEndOfText, -100.0}}; // end turns with <|im_end|>
    auto rollout = co_await calculator_episode(model, seen, sampling);
    EXPECT_EQ(rollout.grade.score, 1.0) << rollout.grade.explanation;
    EXPECT_EQ(seen->size(), 2u);
    if (seen->empty() || seen->front().tool_calls.size() != 1) {
      ADD_FAILURE() << "the first turn made no call";
      co_return;
    }
    const auto& first = seen->front();
    EXPECT_EQ(first.content, "");
    auto arguments = Json::parse(first.tool_calls[0].arguments);
    auto sum = std::to_string(arguments["a"].get<int>() + arguments["b"].get<int>());

    models::ByteTokenizer bytes; // builtin:tiny's tokenizer
    auto prompt = bytes.decode(rollout.prompt_tokens);
    EXPECT_EQ(prompt.find("<|im_start|>system\n# Tools\n"), 0u) << prompt;
    EXPECT_NE(prompt.find("{\"name\": \"add\", \"description\": \"Adds two digits.\""), std::string::npos) << prompt;
    // Between the two calls, masked out: the tool's result as Qwen's template writes it.
    EXPECT_EQ(masked_text(rollout),
              "\n<|im_start|>user\n<tool_response>\n" + sum + "\n</tool_response><|im_end|>\n<|im_start|>assistant\n");
  }());
}

// Llama 3.1's format (a random model with Llama 3.2's tokenizer and template): the tools open the
// first user message, the turn that is a JSON call is read as the call, and its result comes back
// in an ipython turn, masked out.
TEST_F(Environments, ALlamaModelsJsonCallsAreParsedAndAnsweredInIpythonTurns) {
  runtime_.run([&]() -> Task<void> {
    auto folder = tiny_model_folder("llama32-tiny", "");
    if (folder.empty())
      co_return;
    auto builder = co_await ModelRef{folder.string()}.to_builder(ctx_, {.kv_cache_len = 1024});
    auto model = co_await builder.spawn_train("llama");
    EXPECT_EQ(model.tool_call_format(), ToolCallFormat::json);
    auto seen = std::make_shared<std::vector<ChatMessage>>();
    auto rollout = co_await calculator_episode(model, seen, {.temperature = 1.0, .max_tokens = 60, .seed = 7});
    EXPECT_EQ(rollout.grade.score, 1.0) << rollout.grade.explanation;
    EXPECT_EQ(seen->size(), 2u);
    if (seen->empty() || seen->front().tool_calls.size() != 1) {
      ADD_FAILURE() << "the first turn made no call";
      co_return;
    }
    EXPECT_EQ(seen->front().content, "");
    auto arguments = Json::parse(seen->front().tool_calls[0].arguments);
    auto sum = std::to_string(arguments["a"].get<int>() + arguments["b"].get<int>());

    auto tokenizer = models::BpeTokenizer::load(folder);
    auto prompt = tokenizer->decode(rollout.prompt_tokens);
    EXPECT_NE(prompt.find("<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date"), std::string::npos)
      << prompt;
    EXPECT_NE(prompt.find("<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions"),
              std::string::npos)
      << prompt;
    EXPECT_NE(prompt.find("\"name\": \"add\",\n        \"description\": \"Adds two digits.\""), std::string::npos)
      << prompt;
    // Between the two calls, masked out: the result as Llama's template writes it (a JSON string).
    std::vector<std::int64_t> masked;
    for (std::size_t i = 0; i < rollout.tokens.size(); ++i)
      if (!rollout.mask[i])
        masked.push_back(rollout.tokens[i]);
    EXPECT_EQ(tokenizer->decode(masked),
              "<|start_header_id|>ipython<|end_header_id|>\n\n\"" + sum
                + "\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  }());
}

// Mistral Nemo (a random model with its Tekken tokenizer and template): the guided call is written
// as [TOOL_CALLS][...], read back with a nine-character id, and the template, which refuses any
// other id, renders the result paired with it; the second call reads the sum.
TEST_F(Environments, AMistralModelsCallsAreReadBackWithIdsItsTemplateAccepts) {
  runtime_.run([&]() -> Task<void> {
    auto folder = tiny_model_folder("mistral-nemo-tiny", "mistral_nemo");
    if (folder.empty())
      co_return;
    auto builder = co_await ModelRef{folder.string()}.to_builder(ctx_, {.kv_cache_len = 1024});
    auto model = co_await builder.spawn_train("mistral");
    EXPECT_EQ(model.tool_call_format(), ToolCallFormat::mistral);
    auto seen = std::make_shared<std::vector<ChatMessage>>();
    auto rollout = co_await calculator_episode(model, seen, {.temperature = 1.0, .max_tokens = 60, .seed = 7});
    EXPECT_EQ(rollout.grade.score, 1.0) << rollout.grade.explanation;
    if (seen->empty() || seen->front().tool_calls.size() != 1) {
      ADD_FAILURE() << "the first turn made no call";
      co_return;
    }
    const auto& call = seen->front().tool_calls[0];
    EXPECT_EQ(call.id.size(), 9u);
    auto tokenizer = models::BpeTokenizer::load(folder);
    std::vector<std::int64_t> masked;
    for (std::size_t i = 0; i < rollout.tokens.size(); ++i)
      if (!rollout.mask[i])
        masked.push_back(rollout.tokens[i]);
    auto arguments = Json::parse(call.arguments);
    auto sum = std::to_string(arguments["a"].get<int>() + arguments["b"].get<int>());
    EXPECT_EQ(tokenizer->decode(masked),
              "[TOOL_RESULTS]{\"content\": " + sum + ", \"call_id\": \"" + call.id + "\"}[/TOOL_RESULTS]");
  }());
}

namespace {

// Asks once more after the first turn, then rewards a second answer.
struct AskAgain : Recording {
  using Recording::Recording;
  EnvReply reply(const std::vector<ChatMessage>&) override {
    return turns->size() == 1 ? EnvReply::next("Again.") : EnvReply::finish(1.0, "answered twice");
  }
};

} // namespace

// Gemma 3 (a random model with Gemma 3's SentencePiece tokenizer and template): its turns end at
// <end_of_turn>, the environment's reply comes back in a user turn, masked out, and the next
// generation prompt is Gemma's "model" turn.
TEST_F(Environments, AGemmaModelsTurnsEndAtEndOfTurnAndTheRepliesComeBackAsUserTurns) {
  runtime_.run([&]() -> Task<void> {
    auto folder = tiny_model_folder("gemma3-tiny", "gemma3");
    if (folder.empty())
      co_return;
    auto builder = co_await ModelRef{folder.string()}.to_builder(ctx_, {.kv_cache_len = 256});
    auto model = co_await builder.spawn_train("gemma");
    auto seen = std::make_shared<std::vector<ChatMessage>>();
    EnvironmentOptions options{.environment = [seen] { return std::make_unique<AskAgain>(seen); }, .max_turns = 3};
    SamplingParams sampling{.temperature = 1.0, .max_tokens = 12, .seed = 5, .regex = "[0-9]{1,3}"};
    detail::StageClock clock;
    auto rollout = co_await detail::episode(model, options, {{{"user", "2+2?", {}}}, Json::object()}, sampling, clock);
    EXPECT_EQ(rollout.grade.score, 1.0) << rollout.grade.explanation;
    EXPECT_EQ(seen->size(), 2u);
    for (const auto& turn : *seen)
      EXPECT_TRUE(std::regex_match(turn.content, std::regex("[0-9]{1,3}"))) << turn.content;
    auto tokenizer = models::BpeTokenizer::load(folder);
    EXPECT_EQ(tokenizer->decode(rollout.prompt_tokens),
              "<bos><start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n");
    std::vector<std::int64_t> masked;
    for (std::size_t i = 0; i < rollout.tokens.size(); ++i)
      if (!rollout.mask[i])
        masked.push_back(rollout.tokens[i]);
    EXPECT_EQ(tokenizer->decode(masked), "\n<start_of_turn>user\nAgain.<end_of_turn>\n<start_of_turn>model\n");
    // A plain-text prompt starts with <bos>, as transformers and vLLM tokenise it.
    auto completion = co_await model.complete("2+2=", {.max_tokens = 2});
    auto text = tokenizer->encode("2+2=");
    text.insert(text.begin(), *tokenizer->special_token("<bos>"));
    EXPECT_EQ(completion.prompt_tokens, text);
    EXPECT_EQ(tokenizer->decode(completion.prompt_tokens), "<bos>2+2=");
  }());
}

namespace {

// Asks once more after the first turn, then rewards a second turn that thought first.
struct AskTwice : Recording {
  using Recording::Recording;
  EnvReply reply(const std::vector<ChatMessage>& conversation) override {
    if (turns->size() == 1)
      return EnvReply::next("Again.");
    return EnvReply::finish(conversation.back().reasoning.empty() ? 0.0 : 1.0, "thought");
  }
};

} // namespace

// builtin:tiny saved with Qwen3's chat template (a thinking one): each turn reaches the environment
// with its <think> block as the reasoning, and the episode goes on after a user message although
// the template then writes the earlier turn without its reasoning.
TEST_F(Environments, AThinkingModelsTurnsReachTheEnvironmentWithTheirReasoningSplitOff) {
  runtime_.run([&]() -> Task<void> {
    auto folder = co_await test::save_thinking_tiny(ctx_, "thinking-tiny");
    auto model =
      co_await (co_await ModelRef{folder.string()}.to_builder(ctx_, {.kv_cache_len = 256})).spawn_train("policy");
    EXPECT_TRUE(model.thinks());

    models::ByteTokenizer bytes; // the saved tokenizer's ids
    // Untrained, the model is held to a short thought and a number by guided decoding.
    SamplingParams sampling{.temperature = 1.0, .max_tokens = 40, .seed = 3};
    sampling.logit_bias = {{models::ByteTokenizer::kEndOfText, -100.0}}; // end turns with <|im_end|>
    sampling.regex = "<think>\n[a-z]{1,4}\n</think>\n\n[0-9]{1,2}";
    auto seen = std::make_shared<std::vector<ChatMessage>>();
    EnvironmentOptions options{.environment = [seen] { return std::make_unique<AskTwice>(seen); }, .max_turns = 3};
    detail::StageClock clock;
    auto rollout = co_await detail::episode(model, options, {{{"user", "2+2?", {}}}, Json::object()}, sampling, clock);
    EXPECT_EQ(rollout.grade.score, 1.0) << rollout.grade.explanation;
    EXPECT_EQ(seen->size(), 2u);
    for (const auto& turn : *seen) {
      EXPECT_TRUE(std::regex_match(turn.reasoning, std::regex("[a-z]{1,4}"))) << turn.reasoning;
      EXPECT_TRUE(std::regex_match(turn.content, std::regex("[0-9]{1,2}"))) << turn.content;
    }
    EXPECT_EQ(masked_text(rollout), "\n<|im_start|>user\nAgain.<|im_end|>\n<|im_start|>assistant\n");

    // Thinking turned off: every generation prompt ends with the template's empty block.
    seen->clear();
    sampling.enable_thinking = false;
    sampling.regex = "[0-9]{1,2}";
    rollout = co_await detail::episode(model, options, {{{"user", "2+2?", {}}}, Json::object()}, sampling, clock);
    EXPECT_EQ(rollout.grade.score, 0.0); // no reasoning to reward
    EXPECT_EQ(seen->size(), 2u);
    const std::string skipped = "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    auto prompt = bytes.decode(rollout.prompt_tokens);
    EXPECT_EQ(prompt.substr(prompt.size() - std::min(prompt.size(), skipped.size())), skipped) << prompt;
    EXPECT_EQ(masked_text(rollout), "\n<|im_start|>user\nAgain.<|im_end|>\n" + skipped);
  }());
}

TEST_F(Environments, EnvGrpoAndEnvGspoTrainOnEpisodes) {
  runtime_.run([&]() -> Task<void> {
    auto model = co_await polite_model();
    std::vector<Prompt> prompts{{{{"user", "Hi."}}, Json::object()}, {{{"user", "Go on."}}, Json::object()}};
    EnvironmentOptions environment{.environment = [] { return std::make_unique<Repeat>(); }, .max_turns = 3};
    auto grpo = co_await ENVGRPO({.dataset = prompts,
                                  .model = model,
                                  .lr = 1e-4,
                                  .samples_per_batch = 8,
                                  .completions_per_sample = 4,
                                  .max_num_grpo_steps = 2,
                                  .sampling = {.temperature = 1.0, .max_tokens = 6}},
                                 environment)
                  .run();
    EXPECT_EQ(grpo.steps, 2);
    EXPECT_GE(grpo.reward_mean, 0.0);
    EXPECT_LE(grpo.reward_mean, 1.0);
    auto version = model.weight_version();
    auto gspo = co_await ENVGSPO({.dataset = prompts,
                                  .model = model,
                                  .lr = 1e-4,
                                  .samples_per_batch = 8,
                                  .completions_per_sample = 4,
                                  .max_num_gspo_steps = 1,
                                  .sampling = {.temperature = 1.0, .max_tokens = 6}},
                                 environment)
                  .run();
    EXPECT_EQ(gspo.steps, 1);
    EXPECT_GT(model.weight_version(), version);
  }());
  EXPECT_THROW(ENVGRPO({.dataset = {{{{"user", "x"}}, Json::object()}}}, {}), ConfigError);
}

TEST_F(Environments, AFactoryThatMakesNoEnvironmentIsAnError) {
  runtime_.run([&]() -> Task<void> {
    auto builder = co_await ModelRef{"builtin:tiny"}.to_builder(ctx_, {.kv_cache_len = 128});
    auto model = co_await builder.spawn_train("policy");
    detail::StageClock clock;
    auto episode =
      detail::episode(model, {.environment = [] { return std::unique_ptr<Environment>(); }, .max_turns = 2},
                      {{{"user", "Hi."}}, Json::object()}, {.max_tokens = 4}, clock);
    co_await expect_error_containing<Error>(std::move(episode), {"returned no environment"});
  }());
}
