// The official OpenAI client (npm `openai`) against a running chorus-serve:
//   node openai_client_test.mjs BASE_URL MODEL
// The API key comes from CHORUS_SERVE_TEST_KEY, as the server's does. Exits non-zero on the first
// check that fails, saying which.
import OpenAI from "openai";
import assert from "node:assert/strict";

const [baseURL, model] = process.argv.slice(2);
const apiKey = process.env.CHORUS_SERVE_TEST_KEY;
assert.ok(baseURL && model && apiKey, "usage: node openai_client_test.mjs BASE_URL MODEL (key in CHORUS_SERVE_TEST_KEY)");
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });
const messages = [{ role: "system", content: "Answer briefly." }, { role: "user", content: "What is 2+3?" }];

async function check(name, body) {
  const started = Date.now();
  await body();
  console.log(`ok ${name} (${Date.now() - started} ms)`);
}

// Runs `call`, which must fail with the client's error class `type` and HTTP `status`; returns the error.
async function refused(call, type, status) {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error.constructor.name}: ${error.message}`);
    assert.equal(error.status, status);
    assert.equal(typeof error.error?.message, "string", "an OpenAI error body has error.message");
    return error;
  }
  assert.fail(`expected ${type.name} (${status}), but the request succeeded`);
}

await check("models.list names the served model", async () => {
  const models = [];
  for await (const entry of client.models.list()) models.push(entry.id);
  assert.deepEqual(models, [model]);
});

let plain;
await check("a plain chat completion", async () => {
  plain = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0.8, seed: 7 });
  assert.equal(plain.object, "chat.completion");
  assert.match(plain.id, /^chatcmpl-/);
  assert.equal(plain.choices.length, 1);
  const [choice] = plain.choices;
  assert.equal(choice.message.role, "assistant");
  assert.equal(typeof choice.message.content, "string");
  assert.ok(["stop", "length"].includes(choice.finish_reason), choice.finish_reason);
  assert.ok(plain.usage.prompt_tokens > 0);
  assert.ok(plain.usage.completion_tokens >= 1 && plain.usage.completion_tokens <= 12, JSON.stringify(plain.usage));
  assert.equal(plain.usage.total_tokens, plain.usage.prompt_tokens + plain.usage.completion_tokens);
});

await check("a streamed chat completion adds up to the same completion", async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 12, temperature: 0.8, seed: 7, stream: true, stream_options: { include_usage: true },
  });
  let text = "", chunks = 0, finish = null, usage = null, role = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      chunks += 1;
      role ??= choice.delta.role ?? null;
      text += choice.delta.content ?? "";
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.equal(role, "assistant");
  assert.equal(text, plain.choices[0].message.content, "the same seed streams the same text");
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.ok(chunks >= 2, `streamed in ${chunks} chunks`);
  assert.deepEqual(usage, plain.usage);
});

await check("a plain and a streamed text completion", async () => {
  const prompt = "The quick brown fox";
  const completion = await client.completions.create({ model, prompt, max_tokens: 10, temperature: 0, n: 2 });
  assert.equal(completion.object, "text_completion");
  assert.equal(completion.choices.length, 2);
  assert.equal(completion.choices[0].text, completion.choices[1].text, "greedy choices agree");
  const stream = await client.completions.create({ model, prompt, max_tokens: 10, temperature: 0, stream: true });
  let text = "";
  for await (const chunk of stream) for (const choice of chunk.choices) text += choice.text;
  assert.equal(text, completion.choices[0].text);
});

await check("log-probs of a chat completion, plain and streamed", async () => {
  const asked = { model, messages, max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3 };
  const reply = await client.chat.completions.create(asked);
  const [choice] = reply.choices;
  const content = choice.logprobs.content;
  assert.ok(content.length >= 1 && content.length <= reply.usage.completion_tokens, `${content.length} positions`);
  const text = Buffer.from(content.flatMap((entry) => entry.bytes)).toString("utf8");
  if (!choice.message.content.includes("\uFFFD")) // ill-formed UTF-8 may be replaced differently
    assert.equal(text, choice.message.content, "the tokens' bytes make up the text");
  for (const entry of content) {
    assert.ok(entry.logprob <= 0, `log-prob ${entry.logprob}`);
    assert.equal(entry.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.deepEqual(entry.top_logprobs[0].bytes, entry.bytes);
    assert.ok(Math.abs(entry.top_logprobs[0].logprob - entry.logprob) < 1e-4);
    assert.ok(entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob);
  }
  const stream = await client.chat.completions.create({ ...asked, stream: true });
  const streamed = [];
  for await (const chunk of stream) for (const part of chunk.choices) streamed.push(...(part.logprobs?.content ?? []));
  assert.deepEqual(streamed.map((entry) => entry.bytes), content.map((entry) => entry.bytes));
  streamed.forEach((entry, i) => assert.ok(Math.abs(entry.logprob - content[i].logprob) < 1e-4));

  // The built-in model's token ids are its bytes: ban the first token, and it is not drawn.
  if (content[0].bytes.length === 1) {
    const banned = await client.chat.completions.create({ ...asked, logit_bias: { [content[0].bytes[0]]: -100 } });
    assert.notDeepEqual(banned.choices[0].logprobs.content[0].bytes, content[0].bytes);
  }
  const penalised = await client.chat.completions.create({ ...asked, presence_penalty: 2, frequency_penalty: 2 });
  assert.equal(penalised.choices.length, 1);
});

await check("log-probs of a text completion", async () => {
  const completion = await client.completions.create({
    model, prompt: "The quick brown fox", max_tokens: 6, temperature: 0, logprobs: 2 });
  const { tokens, token_logprobs, top_logprobs, text_offset } = completion.choices[0].logprobs;
  assert.ok(tokens.length >= 1);
  assert.equal(token_logprobs.length, tokens.length);
  assert.equal(top_logprobs.length, tokens.length);
  assert.equal(text_offset[0], 0);
  for (const alternatives of top_logprobs) {
    const count = Object.keys(alternatives).length;
    assert.ok(count >= 1 && count <= 2, JSON.stringify(alternatives));
  }
  const plainCompletion = await client.completions.create({ model, prompt: "The quick brown fox", max_tokens: 6 });
  assert.equal(plainCompletion.choices[0].logprobs, null);
});

await check("echo scores a text without generating", async () => {
  const prompt = "The quick brown fox";
  const scored = await client.completions.create({ model, prompt, max_tokens: 0, echo: true, logprobs: 1 });
  const [choice] = scored.choices;
  assert.equal(choice.text, prompt);
  const { tokens, token_logprobs, top_logprobs } = choice.logprobs;
  assert.equal(tokens.join(""), prompt, "the built-in model's tokens are the prompt's bytes");
  assert.equal(token_logprobs[0], null);
  assert.equal(top_logprobs[0], null);
  assert.ok(token_logprobs.slice(1).every((value) => value <= 0), JSON.stringify(token_logprobs));
  assert.ok(top_logprobs.slice(1).every((alternatives) => Object.keys(alternatives).length === 1));
  assert.equal(scored.usage.completion_tokens, 0);
  const continued = await client.completions.create({ model, prompt, max_tokens: 4, temperature: 0, echo: true });
  assert.ok(continued.choices[0].text.startsWith(prompt), continued.choices[0].text);
});

await check("structured output: a JSON schema, JSON mode, a choice, a pattern and a regex", async () => {
  const schema = {
    type: "object",
    properties: { answer: { enum: ["yes", "no"] }, why: { type: "string", maxLength: 10 } },
    required: ["answer", "why"], additionalProperties: false,
  };
  const response_format = { type: "json_schema", json_schema: { name: "verdict", strict: true, schema } };
  const replies = await Promise.all(Array.from({ length: 6 }, (_, seed) =>
    client.chat.completions.create({ model, messages, max_tokens: 160, seed, response_format })));
  const whole = replies.map((reply) => reply.choices[0]).filter((choice) => choice.finish_reason === "stop");
  assert.ok(whole.length >= 3, `only ${whole.length} of 6 answers ended within 160 tokens`);
  for (const choice of whole) {
    const value = JSON.parse(choice.message.content);
    assert.deepEqual(Object.keys(value), ["answer", "why"], choice.message.content);
    assert.ok(["yes", "no"].includes(value.answer), choice.message.content);
    assert.ok([...value.why].length <= 10, choice.message.content);
  }
  // Streamed, the pieces add up to the same JSON as the plain reply with the same seed.
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 160, seed: 0, response_format, stream: true });
  let streamed = "";
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";
  assert.equal(streamed, replies[0].choices[0].message.content);
  const object = await client.chat.completions.create({ model, messages, max_tokens: 160, seed: 1,
    response_format: { type: "json_object" } });
  if (object.choices[0].finish_reason === "stop") {
    const value = JSON.parse(object.choices[0].message.content);
    assert.ok(value !== null && typeof value === "object" && !Array.isArray(value), object.choices[0].message.content);
  }
  const picked = await client.completions.create({ model, prompt: "The sky is", max_tokens: 8, guided_choice: ["blue", "green"] });
  assert.ok(["blue", "green"].includes(picked.choices[0].text), picked.choices[0].text);
  const error = await refused(() => client.chat.completions.create({ model, messages, response_format: {
    type: "json_schema", json_schema: { name: "x", schema: { type: "integer", multipleOf: 2 } } } }), OpenAI.BadRequestError, 400);
  assert.equal(error.param, "response_format.json_schema.schema");
  assert.match(error.message, /the keyword 'multipleOf' is not supported/);
  // A pattern in the schema, and vLLM's guided_regex for the whole completion.
  const coded = await client.chat.completions.create({ model, messages, max_tokens: 32, response_format: {
    type: "json_schema", json_schema: { name: "code", schema: { type: "string", pattern: "^[A-Z]{2}-\\d{3}$" } } } });
  assert.match(JSON.parse(coded.choices[0].message.content), /^[A-Z]{2}-\d{3}$/);
  const dated = await client.completions.create({ model, prompt: "Today is", max_tokens: 16,
    guided_regex: "20[0-9]{2}-(0[1-9]|1[0-2])-[0-3][0-9]" });
  assert.match(dated.choices[0].text, /^20[0-9]{2}-(0[1-9]|1[0-2])-[0-3][0-9]$/);
  const lookahead = await refused(() => client.completions.create({ model, prompt: "x", guided_regex: "a(?=b)" }),
    OpenAI.BadRequestError, 400);
  assert.equal(lookahead.param, "guided_regex");
  assert.match(lookahead.message, /at byte 3: lookaround '\(\?=' is not supported/);
});

await check("function calling: required, a named tool, streamed calls, a tool conversation", async () => {
  const tools = [
    { type: "function", function: { name: "get_weather", description: "Weather in a city.", parameters: {
      type: "object", properties: { city: { type: "string", maxLength: 8 } }, required: ["city"], additionalProperties: false } } },
    { type: "function", function: { name: "now", parameters: { type: "object", properties: {}, additionalProperties: false } } },
  ];
  const ask = [{ role: "user", content: "Weather in Oslo?" }];
  // The untrained model is held to calls by guided decoding: they come back parsed.
  const required = await client.chat.completions.create({ model, messages: ask, tools, tool_choice: "required",
    max_tokens: 200, seed: 3, logit_bias: { 256: -100 }, parallel_tool_calls: false });
  const choice = required.choices[0];
  assert.equal(choice.finish_reason, "tool_calls", JSON.stringify(choice));
  assert.equal(choice.message.tool_calls.length, 1); // parallel_tool_calls: false
  for (const call of choice.message.tool_calls) {
    assert.equal(call.type, "function");
    assert.match(call.id, /^call_/);
    assert.ok(["get_weather", "now"].includes(call.function.name), call.function.name);
    const args = JSON.parse(call.function.arguments);
    if (call.function.name === "get_weather") assert.ok(typeof args.city === "string" && [...args.city].length <= 8);
    else assert.deepEqual(args, {});
  }
  const named = await client.chat.completions.create({ model, messages: ask, tools, max_tokens: 200, seed: 4,
    tool_choice: { type: "function", function: { name: "get_weather" } } });
  assert.deepEqual(named.choices[0].message.tool_calls.map((call) => call.function.name), ["get_weather"]);
  // Streamed, the client's accumulated deltas make the same calls as the plain reply with the same seed.
  const stream = await client.chat.completions.create({ model, messages: ask, tools, tool_choice: "required",
    max_tokens: 200, seed: 3, logit_bias: { 256: -100 }, parallel_tool_calls: false, stream: true });
  const calls = [];
  let finish;
  for await (const chunk of stream) {
    for (const delta of chunk.choices[0]?.delta?.tool_calls ?? []) {
      calls[delta.index] ??= { name: "", arguments: "" };
      calls[delta.index].name += delta.function?.name ?? "";
      calls[delta.index].arguments += delta.function?.arguments ?? "";
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, "tool_calls");
  assert.deepEqual(calls, choice.message.tool_calls.map((call) => ({ name: call.function.name, arguments: call.function.arguments })));
  // The conversation goes on with the call and its result; "auto" lets the model answer in text.
  const followed = await client.chat.completions.create({ model, tools, max_tokens: 8, messages: [...ask,
    { role: "assistant", content: null, tool_calls: [choice.message.tool_calls[0]] },
    { role: "tool", tool_call_id: choice.message.tool_calls[0].id, content: "-3 °C, snow" }] });
  assert.ok(["stop", "length", "tool_calls"].includes(followed.choices[0].finish_reason));
  const error = await refused(() => client.chat.completions.create({ model, messages: ask, tools,
    tool_choice: { type: "function", function: { name: "get_time" } } }), OpenAI.BadRequestError, 400);
  assert.equal(error.param, "tool_choice");
});

await check("32 concurrent requests", async () => {
  const requests = Array.from({ length: 32 }, (_, i) =>
    client.chat.completions.create({
      model, max_tokens: 8, seed: i,
      messages: [{ role: "user", content: `Request number ${i}: say something.` }],
    }));
  const replies = await Promise.all(requests);
  assert.equal(replies.length, 32);
  assert.equal(new Set(replies.map((reply) => reply.id)).size, 32, "every response has its own id");
  for (const reply of replies) {
    assert.equal(reply.choices.length, 1);
    assert.ok(reply.usage.completion_tokens >= 1 && reply.usage.completion_tokens <= 8);
  }
});

await check("malformed requests get OpenAI error bodies and 4xx codes", async () => {
  let error = await refused(() => client.chat.completions.create({ model, max_tokens: 4 }), OpenAI.BadRequestError, 400);
  assert.equal(error.param, "messages");
  assert.equal(error.type, "invalid_request_error");
  error = await refused(() => client.chat.completions.create({ model, messages, temperature: 7 }), OpenAI.BadRequestError, 400);
  assert.equal(error.param, "temperature");
  error = await refused(() => client.chat.completions.create({ model, messages: [{ role: "wizard", content: "x" }] }),
    OpenAI.BadRequestError, 400);
  assert.equal(error.param, "messages[0].role");
  error = await refused(() => client.chat.completions.create({ model, messages, max_tokens: 100000 }), OpenAI.BadRequestError, 400);
  assert.match(error.message, /exceeds/);
  error = await refused(() => client.chat.completions.create({ model, messages, frobnicate: true }), OpenAI.BadRequestError, 400);
  assert.equal(error.param, "frobnicate");
  error = await refused(() => client.chat.completions.create({ model: "no-such-model", messages }), OpenAI.NotFoundError, 404);
  assert.equal(error.code, "model_not_found");
  const stranger = new OpenAI({ baseURL, apiKey: "wrong-key", maxRetries: 0 });
  error = await refused(() => stranger.chat.completions.create({ model, messages }), OpenAI.AuthenticationError, 401);
  assert.equal(error.code, "invalid_api_key");

  // A body that is not JSON at all: the client cannot send one, so plain fetch does.
  const response = await fetch(`${baseURL}/chat/completions`, {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` }, body: "{\"model\": ",
  });
  assert.equal(response.status, 400);
  const body = await response.json();
  assert.equal(body.error.type, "invalid_request_error");
  assert.match(body.error.message, /not valid JSON/);
});

console.log("all checks passed");
