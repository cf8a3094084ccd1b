// The OpenAI wire format of chorus-serve: what a request body may hold (and the errors naming the
// field when it may not), and the shape of responses, stream chunks and error bodies.
#include "serve/openai_protocol.hpp"

#include <gtest/gtest.h>

#include <limits>

using namespace chorus::serve;
using nlohmann::json;

namespace {

const RequestLimits kLimits{.model = "tiny", .max_choices = 4, .default_max_tokens = 99};

// The ApiError that parsing `body` throws.
ApiError refusal(const std::string& body, bool chat = true) {
  try {
    if (chat)
      parse_chat_request(body, kLimits);
    else
      parse_completion_request(body, kLimits);
  } catch (const ApiError& error) {
    return error;
  }
  ADD_FAILURE() << "accepted: " << body;
  return ApiError(0, "");
}

} // namespace

TEST(OpenAIProtocol, ParsesAChatRequest) {
  auto request = parse_chat_request(R"({"model": "tiny", "messages": [
      {"role": "developer", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}],
      "temperature": 0.5, "top_p": 0.9, "max_completion_tokens": 7, "min_tokens": 2, "stop": "\n", "seed": 3, "n": 2,
      "stream": true, "stream_options": {"include_usage": true}, "user": "u1", "presence_penalty": 0,
      "logprobs": null})",
                                    kLimits);
  ASSERT_EQ(request.messages.size(), 2u);
  EXPECT_EQ(request.messages[0].role, "system");
  EXPECT_EQ(request.messages[1].content, "Hi there");
  EXPECT_EQ(request.sampling.temperature, 0.5);
  EXPECT_EQ(request.sampling.top_p, 0.9);
  EXPECT_EQ(request.sampling.max_tokens, 7);
  EXPECT_EQ(request.sampling.min_tokens, 2);
  EXPECT_EQ(request.sampling.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(request.sampling.seed, 3);
  EXPECT_EQ(request.n, 2);
  EXPECT_TRUE(request.stream);
  EXPECT_TRUE(request.include_usage);
  // Defaults: the server's max_tokens for chat, OpenAI's 16 for completions, a fresh seed.
  auto plain = parse_chat_request(R"({"model": "tiny", "messages": [{"role": "user", "content": "x"}]})", kLimits);
  EXPECT_EQ(plain.sampling.max_tokens, 99);
  EXPECT_EQ(plain.sampling.seed, -1);
  EXPECT_EQ(plain.sampling.temperature, 1.0);
  auto completion = parse_completion_request(R"({"model": "tiny", "prompt": [1, 2, 3]})", kLimits);
  EXPECT_EQ(completion.prompt_tokens, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(completion.sampling.max_tokens, 16);
  EXPECT_EQ(parse_completion_request(R"({"model": "tiny", "prompt": ["once"]})", kLimits).prompt, "once");
  EXPECT_FALSE(plain.sampling.logprobs);
}

TEST(OpenAIProtocol, ParsesPenaltiesBiasesAndLogprobs) {
  auto chat = parse_chat_request(R"({"model": "tiny", "messages": [{"role": "user", "content": "x"}],
      "frequency_penalty": 0.5, "presence_penalty": -1.25, "logit_bias": {"7": -100, "42": 3.5},
      "logprobs": true, "top_logprobs": 3})",
                                 kLimits);
  EXPECT_EQ(chat.sampling.frequency_penalty, 0.5);
  EXPECT_EQ(chat.sampling.presence_penalty, -1.25);
  EXPECT_EQ(chat.sampling.logit_bias, (std::map<std::int64_t, double>{{7, -100.0}, {42, 3.5}}));
  EXPECT_TRUE(chat.sampling.logprobs);
  EXPECT_EQ(chat.sampling.top_logprobs, 3);
  // The completions API's logprobs is the number of alternatives; 0 still asks for the chosen ones.
  auto none = parse_completion_request(R"({"model": "tiny", "prompt": "x", "logprobs": null})", kLimits);
  EXPECT_FALSE(none.sampling.logprobs);
  auto zero = parse_completion_request(R"({"model": "tiny", "prompt": "x", "logprobs": 0})", kLimits);
  EXPECT_TRUE(zero.sampling.logprobs);
  EXPECT_EQ(zero.sampling.top_logprobs, 0);
  auto five = parse_completion_request(R"({"model": "tiny", "prompt": "x", "logprobs": 5})", kLimits);
  EXPECT_EQ(five.sampling.top_logprobs, 5);
}

TEST(OpenAIProtocol, ParsesResponseFormatsAndChoices) {
  const std::string base = R"({"model": "tiny", "messages": [{"role": "user", "content": "x"}], )";
  auto text = parse_chat_request(base + R"("response_format": {"type": "text"}})", kLimits);
  EXPECT_TRUE(text.sampling.json_schema.is_null());
  auto object = parse_chat_request(base + R"("response_format": {"type": "json_object"}})", kLimits);
  EXPECT_EQ(object.sampling.json_schema, json({{"type", "object"}}));
  auto schema = json::parse(R"({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
                                "additionalProperties": false})");
  auto with_schema = parse_chat_request(
    base + R"("response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true, "schema": )"
      + schema.dump() + "}}}",
    kLimits);
  EXPECT_EQ(with_schema.sampling.json_schema, schema);
  auto completion =
    parse_completion_request(R"({"model": "tiny", "prompt": "x", "guided_choice": ["yes", "no"]})", kLimits);
  EXPECT_EQ(completion.sampling.choice, (std::vector<std::string>{"yes", "no"}));
  // A schema guided decoding cannot follow is refused up front, naming where in it and what.
  auto unfollowable =
    refusal(base + R"("response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema":
      {"type": "object", "properties": {"id": {"type": "integer", "multipleOf": 2}}}}}})");
  EXPECT_EQ(unfollowable.param, "response_format.json_schema.schema");
  EXPECT_NE(std::string(unfollowable.what()).find("$.properties.id: the keyword 'multipleOf' is not supported"),
            std::string::npos)
    << unfollowable.what();
  EXPECT_EQ(refusal(base + R"("response_format": {"type": "yaml"}})").param, "response_format.type");
  EXPECT_EQ(refusal(base + R"("response_format": "json"})").param, "response_format");
  EXPECT_EQ(refusal(base + R"("response_format": {"type": "json_schema"}})").param, "response_format.json_schema");
  EXPECT_EQ(refusal(base + R"("response_format": {"type": "json_object", "schema": {}}})").param, "response_format");
  EXPECT_EQ(refusal(base + R"("guided_choice": []})").param, "guided_choice");
  // A schema nested a million deep in an annotation is never compiled, but copying or printing it
  // would recurse that deep: the body is refused before it is parsed.
  auto deep = refusal(base + R"("response_format": {"type": "json_schema", "json_schema": {"schema": {"description": )"
                      + std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}}}}");
  EXPECT_EQ(deep.status, 400);
  EXPECT_NE(std::string(deep.what()).find("deeper than 256"), std::string::npos) << deep.what();
  EXPECT_EQ(refusal(base + R"("guided_choice": ["a"], "response_format": {"type": "json_object"}})").param,
            "guided_choice");
  // vLLM's guided_regex: a pattern the grammar cannot follow is refused up front, naming its byte.
  auto dated =
    parse_completion_request(R"({"model": "tiny", "prompt": "x", "guided_regex": "\\d{4}-\\d{2}"})", kLimits);
  EXPECT_EQ(dated.sampling.regex, "\\d{4}-\\d{2}");
  auto lookahead = refusal(base + R"j("guided_regex": "a(?=b)"})j");
  EXPECT_EQ(lookahead.param, "guided_regex");
  EXPECT_NE(std::string(lookahead.what()).find("cannot be followed: regex: at byte 3: lookaround"), std::string::npos)
    << lookahead.what();
  EXPECT_EQ(refusal(base + R"("guided_regex": ""})").param, "guided_regex");
  EXPECT_EQ(refusal(base + R"("guided_regex": "a", "guided_choice": ["a"]})").param, "guided_regex");
}

TEST(OpenAIProtocol, EchoPutsThePromptBeforeTheCompletion) {
  auto request = parse_completion_request(
    R"({"model": "tiny", "prompt": "ab", "echo": true, "max_tokens": 0, "logprobs": 1})", kLimits);
  EXPECT_TRUE(request.echo);
  EXPECT_EQ(request.sampling.max_tokens, 0);
  EXPECT_TRUE(request.sampling.prompt_logprobs);
  chorus::Generation generation;
  generation.text = "c";
  generation.finish_reason = "length";
  generation.prompt_logprobs = {{{97, "a", std::numeric_limits<float>::quiet_NaN()}, {}},
                                {{98, "b", -2.0f}, {{98, "b", -2.0f}}}};
  generation.token_logprobs = {{{99, "c", -0.5f}, {{99, "c", -0.5f}}}};
  auto body = json::parse(response_body(make_header(request), {generation}));
  const auto& choice = body["choices"][0];
  EXPECT_EQ(choice["text"], "abc");
  EXPECT_EQ(choice["logprobs"]["tokens"], json({"a", "b", "c"}));
  EXPECT_TRUE(choice["logprobs"]["token_logprobs"][0].is_null()); // nothing before the first token
  EXPECT_TRUE(choice["logprobs"]["top_logprobs"][0].is_null());
  EXPECT_EQ(choice["logprobs"]["token_logprobs"][1], -2.0);
  EXPECT_EQ(choice["logprobs"]["top_logprobs"][2], json({{"c", -0.5}}));
  EXPECT_EQ(choice["logprobs"]["text_offset"], json({0, 1, 2}));
  // Token ids as the prompt: the echoed text is their tokens' text; no log-probs unless asked.
  auto ids = parse_completion_request(R"({"model": "tiny", "prompt": [97, 98], "echo": true})", kLimits);
  auto plain = json::parse(response_body(make_header(ids), {generation}));
  EXPECT_EQ(plain["choices"][0]["text"], "abc");
  EXPECT_TRUE(plain["choices"][0]["logprobs"].is_null());
}

TEST(OpenAIProtocol, LogprobsInResponsesAndChunks) {
  chorus::Generation generation;
  generation.text = "ab\xC3\xA9";
  generation.tokens = {97, 98, 195, 169, 2};
  generation.finish_reason = "stop";
  // "é" is two byte tokens: each is part of a character, which "bytes" keeps whole.
  generation.token_logprobs = {{{97, "a", -0.5f}, {{97, "a", -0.5f}, {120, "x", -1.5f}}},
                               {{98, "b", -0.25f}, {{98, "b", -0.25f}, {120, "x", -2.0f}}},
                               {{195, "\xC3", -0.125f}, {}},
                               {{169, "\xA9", -1.0f}, {}}};
  auto request = parse_chat_request(
    R"({"model": "tiny", "messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 2})",
    kLimits);
  auto header = make_header(request);
  auto body = json::parse(response_body(header, {generation}));
  const auto& content = body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u);
  EXPECT_EQ(content[0]["token"], "a");
  EXPECT_EQ(content[0]["logprob"], -0.5);
  EXPECT_EQ(content[0]["bytes"], json({97}));
  EXPECT_EQ(content[0]["top_logprobs"][1], json({{"token", "x"}, {"logprob", -1.5}, {"bytes", {120}}}));
  EXPECT_EQ(content[2]["bytes"], json({195}));
  EXPECT_EQ(content[2]["token"], "\xEF\xBF\xBD"); // half a character: U+FFFD as text, the byte in "bytes"
  EXPECT_TRUE(body["choices"][0]["logprobs"]["refusal"].is_null());

  // Streamed: each chunk carries its positions; the record of what went out moves on.
  StreamedChoice sent;
  std::vector<chorus::PositionLogprobs> first(generation.token_logprobs.begin(), generation.token_logprobs.begin() + 2);
  auto chunk = json::parse(chunk_event(header, 0, "ab", first, sent).substr(6));
  EXPECT_EQ(chunk["choices"][0]["logprobs"]["content"].size(), 2u);
  EXPECT_EQ(chunk["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(sent.positions, 2u);
  EXPECT_EQ(sent.turn.text(), "ab");
  chunk = json::parse(chunk_event(header, 0, "", {}, sent).substr(6));
  EXPECT_FALSE(chunk["choices"][0]["delta"].contains("role"));
  EXPECT_TRUE(chunk["choices"][0]["logprobs"]["content"].empty());

  // The completions API: parallel lists, alternatives as {text: logprob}, offsets in characters.
  auto completion = parse_completion_request(R"({"model": "tiny", "prompt": "x", "logprobs": 2})", kLimits);
  auto text_header = make_header(completion);
  auto text_body = json::parse(response_body(text_header, {generation}));
  const auto& logprobs = text_body["choices"][0]["logprobs"];
  EXPECT_EQ(logprobs["tokens"].size(), 4u);
  EXPECT_EQ(logprobs["token_logprobs"][1], -0.25);
  EXPECT_EQ(logprobs["top_logprobs"][0], json({{"a", -0.5}, {"x", -1.5}}));
  EXPECT_EQ(logprobs["text_offset"], json({0, 1, 2, 3})); // the second byte of "é" starts no character
  StreamedChoice text_sent;
  std::vector<chorus::PositionLogprobs> last(generation.token_logprobs.begin() + 2, generation.token_logprobs.end());
  chunk_event(text_header, 0, "ab", first, text_sent);
  chunk = json::parse(chunk_event(text_header, 0, "\xC3\xA9", last, text_sent).substr(6));
  EXPECT_EQ(chunk["choices"][0]["logprobs"]["text_offset"], json({2, 3}));

  // Not asked for: null, as before.
  auto plain =
    make_header(parse_chat_request(R"({"model": "tiny", "messages": [{"role": "user", "content": "x"}]})", kLimits));
  EXPECT_TRUE(json::parse(response_body(plain, {generation}))["choices"][0]["logprobs"].is_null());
}

TEST(OpenAIProtocol, RefusesWhatItCannotServeNamingTheField) {
  EXPECT_EQ(refusal("[1, 2]").status, 400);
  EXPECT_NE(std::string(refusal("{\"model\": ").what()).find("not valid JSON"), std::string::npos);
  EXPECT_NE(std::string(refusal("{\"model\": 1e999}").what()).find("not valid JSON"), std::string::npos);
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": "x"}]})").param, "model");
  auto unknown_model = refusal(R"({"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]})");
  EXPECT_EQ(unknown_model.status, 404);
  EXPECT_EQ(unknown_model.code, "model_not_found");
  const std::string base = R"({"model": "tiny", "messages": [{"role": "user", "content": "x"}], )";
  EXPECT_EQ(refusal(base + R"("temperature": 2.5})").param, "temperature");
  EXPECT_EQ(refusal(base + R"("temperature": "hot"})").param, "temperature");
  EXPECT_EQ(refusal(base + R"("max_tokens": 0})").param, "max_tokens");
  EXPECT_EQ(refusal(base + R"("max_tokens": 1.5})").param, "max_tokens");
  EXPECT_EQ(refusal(base + R"("n": 5})").param, "n");
  EXPECT_EQ(refusal(base + R"("stop": ["a", "b", "c", "d", "e"]})").param, "stop");
  EXPECT_EQ(refusal(base + R"("stop": [""]})").param, "stop");
  EXPECT_EQ(refusal(base + R"("stream_options": {"include_usage": true}})").param, "stream_options");
  EXPECT_EQ(refusal(base + R"("frequency_penalty": 2.5})").param, "frequency_penalty");
  EXPECT_EQ(refusal(base + R"("presence_penalty": "some"})").param, "presence_penalty");
  EXPECT_EQ(refusal(base + R"("repetition_penalty": 0})").param, "repetition_penalty");
  EXPECT_EQ(refusal(base + R"("repetition_penalty": -1.1})").param, "repetition_penalty");
  EXPECT_EQ(refusal(base + R"("logit_bias": [1]})").param, "logit_bias");
  EXPECT_EQ(refusal(base + R"("logit_bias": {"-3": 1}})").param, "logit_bias");
  EXPECT_EQ(refusal(base + R"("logit_bias": {"abc": 1}})").param, "logit_bias");
  EXPECT_EQ(refusal(base + R"("logit_bias": {"3": 101}})").param, "logit_bias");
  EXPECT_EQ(refusal(base + R"("top_logprobs": 2})").param, "top_logprobs"); // needs logprobs: true
  EXPECT_EQ(refusal(base + R"("logprobs": true, "top_logprobs": 21})").param, "top_logprobs");
  EXPECT_EQ(refusal(base + R"("logprobs": 1})").param, "logprobs"); // chat's is a boolean
  EXPECT_EQ(refusal(R"({"model": "tiny", "prompt": "a", "logprobs": true})", false).param, "logprobs");
  EXPECT_EQ(refusal(R"({"model": "tiny", "prompt": "a", "logprobs": 21})", false).param, "logprobs");
  EXPECT_EQ(refusal(base + R"("tools": [{"type": "function"}]})").param, "tools[0]");
  EXPECT_EQ(refusal(base + R"("temprature": 1})").param, "temprature");
  EXPECT_EQ(refusal(R"({"model": "tiny", "messages": []})").param, "messages");
  EXPECT_EQ(refusal(R"({"model": "tiny", "messages": [{"role": "function", "content": "x"}]})").param,
            "messages[0].role");
  EXPECT_EQ(refusal(R"({"model": "tiny", "messages": [{"role": "user"}]})").param, "messages[0].content");
  EXPECT_EQ(refusal(R"({"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})").param,
            "messages[0].content");
  EXPECT_EQ(refusal(R"({"model": "tiny"})", false).param, "prompt");
  EXPECT_EQ(refusal(R"({"model": "tiny", "prompt": ["a", "b"]})", false).param, "prompt");
  EXPECT_EQ(refusal(R"({"model": "tiny", "prompt": ""})", false).param, "prompt");
  EXPECT_EQ(refusal(R"({"model": "tiny", "prompt": "a", "echo": true, "stream": true})", false).param, "echo");
  EXPECT_EQ(refusal(R"({"model": "tiny", "prompt": "a", "max_tokens": 0})", false).param, "max_tokens"); // echo only
  EXPECT_EQ(refusal(R"({"model": "tiny", "prompt": "a", "max_completion_tokens": 3})", false).param,
            "max_completion_tokens");
}

TEST(OpenAIProtocol, ErrorBodiesAreOpenAIs) {
  auto body = json::parse(error_body(ApiError(404, "no such model", "model", "model_not_found")));
  EXPECT_EQ(body["error"]["message"], "no such model");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "model");
  EXPECT_EQ(body["error"]["code"], "model_not_found");
  auto plain = json::parse(error_body(ApiError(400, "bad")));
  EXPECT_TRUE(plain["error"]["param"].is_null());
  EXPECT_TRUE(plain["error"]["code"].is_null());
}

TEST(OpenAIProtocol, ResponsesAndChunks) {
  auto request = parse_chat_request(R"({"model": "tiny", "messages": [{"role": "user", "content": "x"}]})", kLimits);
  auto header = make_header(request);
  EXPECT_EQ(header.id.rfind("chatcmpl-", 0), 0u);
  EXPECT_NE(make_header(request).id, header.id);
  chorus::Generation first, second;
  first.text = "caf\xC3\xA9 \xFF"; // ill-formed UTF-8 becomes U+FFFD rather than failing the response
  first.prompt_tokens = {1, 2, 3};
  first.tokens = {4, 5};
  first.finish_reason = "stop";
  second = first;
  second.tokens = {6};
  second.finish_reason = "length";
  auto body = json::parse(response_body(header, {first, second}));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "caf\xC3\xA9 \xEF\xBF\xBD");
  EXPECT_EQ(body["choices"][1]["index"], 1);
  EXPECT_EQ(body["choices"][1]["finish_reason"], "length");
  EXPECT_EQ(body["usage"], json({{"prompt_tokens", 3}, {"completion_tokens", 3}, {"total_tokens", 6}}));

  StreamedChoice sent;
  auto event = chunk_event(header, 1, "caf", {}, sent);
  ASSERT_EQ(event.rfind("data: ", 0), 0u);
  ASSERT_EQ(event.substr(event.size() - 2), "\n\n");
  auto chunk = json::parse(event.substr(6));
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_EQ(chunk["id"], header.id);
  EXPECT_EQ(chunk["choices"][0]["delta"], json({{"role", "assistant"}, {"content", "caf"}}));
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  auto finish = json::parse(finish_event(header, 1, "stop", sent).substr(6));
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(finish["choices"][0]["delta"].empty());
  auto usage = json::parse(usage_event(header, {first}).substr(6));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 2);

  auto completion = parse_completion_request(R"({"model": "tiny", "prompt": "x"})", kLimits);
  auto text_header = make_header(completion);
  EXPECT_EQ(text_header.id.rfind("cmpl-", 0), 0u);
  auto text_body = json::parse(response_body(text_header, {first}));
  EXPECT_EQ(text_body["object"], "text_completion");
  EXPECT_TRUE(text_body["choices"][0].contains("text"));
  auto models = json::parse(models_body("tiny", 5));
  EXPECT_EQ(models["data"][0]["id"], "tiny");
}

// As vLLM serves by default: what a request leaves out comes from the model's generation_config.json
// (Qwen3's settings here), what it gives wins, and a setting the sampler lacks is reported.
TEST(OpenAIProtocol, TheModelsGenerationConfigSetsTheDefaultsARequestLeavesOut) {
  auto limits = kLimits;
  auto applied = apply_generation_config(limits, json::parse(R"({"bos_token_id": 151643, "do_sample": true,
    "eos_token_id": [151645, 151643], "temperature": 0.6, "top_k": 20, "top_p": 0.95, "max_new_tokens": 77,
    "repetition_penalty": 1.05, "min_p": 0.0, "transformers_version": "4.51.0"})"));
  EXPECT_EQ(applied,
            (std::vector<std::string>{"temperature=0.6", "top_p=0.95", "top_k=20", "repetition_penalty=1.05",
                                      "not applied: max_new_tokens=77"}));
  const std::string chat = R"({"model": "tiny", "messages": [{"role": "user", "content": "x"}])";
  auto plain = parse_chat_request(chat + "}", limits).sampling;
  EXPECT_DOUBLE_EQ(plain.temperature, 0.6);
  EXPECT_DOUBLE_EQ(plain.top_p, 0.95);
  EXPECT_EQ(plain.top_k, 20);
  EXPECT_EQ(plain.max_tokens, 99); // --max-tokens's: the file's could leave a long prompt no room
  EXPECT_DOUBLE_EQ(plain.repetition_penalty, 1.05);
  auto given = parse_chat_request(
                 chat + R"(, "temperature": 1.0, "top_k": 0, "max_tokens": 5, "repetition_penalty": 1.2})", limits)
                 .sampling;
  EXPECT_DOUBLE_EQ(given.repetition_penalty, 1.2);
  EXPECT_DOUBLE_EQ(given.temperature, 1.0);
  EXPECT_DOUBLE_EQ(given.top_p, 0.95);
  EXPECT_EQ(given.top_k, 0);
  EXPECT_EQ(given.max_tokens, 5);
  auto greedy = parse_chat_request(chat + R"(, "top_p": 0})", limits).sampling; // vLLM's greedy
  EXPECT_DOUBLE_EQ(greedy.temperature, 0.0);
  auto completion = parse_completion_request(R"({"model": "tiny", "prompt": "x"})", limits).sampling;
  EXPECT_DOUBLE_EQ(completion.temperature, 0.6);
  EXPECT_EQ(completion.max_tokens, 16); // the completions API's own default stays

  // Without a file (or keys) OpenAI's defaults stay.
  auto openai = kLimits;
  EXPECT_TRUE(apply_generation_config(openai, json::parse(R"({"eos_token_id": 2})")).empty());
  EXPECT_DOUBLE_EQ(parse_chat_request(chat + "}", openai).sampling.temperature, 1.0);
  EXPECT_TRUE(apply_generation_config(openai, json()).empty());
  // vLLM's top_k -1 means none, as 0 here; a min_p that does something is reported as not applied.
  EXPECT_EQ(apply_generation_config(openai, json::parse(R"({"top_k": -1, "min_p": 0.05})")),
            (std::vector<std::string>{"not applied: min_p=0.05"}));
  EXPECT_EQ(parse_chat_request(chat + "}", openai).sampling.top_k, 0);

  // A value no request could give is refused naming the file and the key.
  for (const auto* bad :
       {R"({"temperature": 3.0})", R"({"top_k": -2})", R"({"top_p": "high"})", R"({"repetition_penalty": 0})"}) {
    auto refused = kLimits;
    try {
      apply_generation_config(refused, json::parse(bad));
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::invalid_argument& error) {
      std::string message = error.what();
      EXPECT_EQ(message.rfind("generation_config.json: '", 0), 0u) << message;
      EXPECT_NE(message.find(json::parse(bad).begin().key()), std::string::npos) << message;
    }
  }
}
