// The requests of the OpenAI API: /v1/chat/completions and /v1/completions bodies read field by
// field into a CompletionRequest, each mistake a 400 naming its field (serve/openai_protocol.hpp).
#include "models/json_grammar.hpp"
#include "models/regex_grammar.hpp"
#include "serve/openai_protocol.hpp"
#include "serve/openai_tools.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string_view>

namespace chorus::serve {

using nlohmann::json;

namespace {
constexpr std::int64_t kMostTopLogprobs = 20; // OpenAI's limit for chat (5 for completions; vLLM's 20)

[[noreturn]] void invalid(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param);
}

// How deep arrays and objects nest in the JSON text `body`, counted without parsing it: a parsed
// value is copied, printed and compared by recursion as deep as it nests, and a request's
// response_format schema is all three.
std::size_t nesting(std::string_view body) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

json parse_object(const std::string& body) {
  constexpr std::size_t kDeepest = 256;
  if (nesting(body) > kDeepest)
    throw ApiError(400, "The request body nests arrays and objects deeper than " + std::to_string(kDeepest) + ".");
  json request;
  try {
    request = json::parse(body);
  } catch (const json::exception& error) { // parse_error, or out_of_range for a number like 1e999
    throw ApiError(400, std::string("The request body is not valid JSON: ") + error.what());
  }
  if (!request.is_object())
    throw ApiError(400, "The request body must be a JSON object.");
  return request;
}

// `number` as a message shows it: 0.6, 2, not 0.600000.
std::string format(double number) {
  auto text = std::to_string(number);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.')
    text.pop_back();
  return text;
}

// Reads the fields of a request body one by one; whatever is left unread at the end is refused,
// as OpenAI refuses arguments it does not know (a typo must not be ignored silently).
class Fields {
public:
  explicit Fields(json request) : request_(std::move(request)) {}

  // The field's value, or nullptr when it is absent or null (clients send null for "not set").
  const json* take(const std::string& key) {
    auto found = request_.find(key);
    if (found == request_.end())
      return nullptr;
    taken_.insert(key);
    return found->is_null() ? nullptr : &*found;
  }

  double number(const std::string& key, double fallback, double low, double high) {
    const auto* value = take(key);
    if (!value)
      return fallback;
    if (!value->is_number())
      invalid(key, "'" + key + "' must be a number.");
    auto number = value->get<double>();
    if (!(number >= low && number <= high))
      invalid(
        key, "'" + key + "' must be between " + format(low) + " and " + format(high) + ", got " + format(number) + ".");
    return number;
  }

  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t low, std::int64_t high) {
    const auto* value = take(key);
    if (!value)
      return fallback;
    if (!value->is_number_integer())
      invalid(key, "'" + key + "' must be an integer.");
    auto number = value->get<std::int64_t>();
    if (number < low || number > high)
      invalid(key,
              "'" + key + "' must be between " + std::to_string(low) + " and " + std::to_string(high) + ", got "
                + std::to_string(number) + ".");
    return number;
  }

  bool boolean(const std::string& key, bool fallback) {
    const auto* value = take(key);
    if (!value)
      return fallback;
    if (!value->is_boolean())
      invalid(key, "'" + key + "' must be a boolean.");
    return value->get<bool>();
  }

  // A field chorus-serve accepts only at its default (a feature it does not have): `is_default`
  // says whether the value given is harmless.
  template <class Check>
  void only_default(const std::string& key, Check is_default) {
    const auto* value = take(key);
    if (value && !is_default(*value))
      invalid(key, "'" + key + "' is not supported by chorus-serve.");
  }

  void ignore(const std::string& key) {
    take(key);
  }

  void refuse_unknown() const {
    for (const auto& [key, value] : request_.items())
      if (!taken_.count(key))
        invalid(key, "Unrecognized request argument supplied: " + key);
  }

private:
  json request_;
  std::set<std::string> taken_;
};

// OpenAI's response_format: the JSON Schema to guide decoding with (null for plain text). A schema
// guided decoding cannot generate is refused here, naming where in it and what.
json parse_response_format(const json& format) {
  if (!format.is_object() || !format.contains("type") || !format["type"].is_string())
    invalid("response_format", "'response_format' must be an object with a 'type'.");
  auto type = format["type"].get<std::string>();
  for (const auto& [key, value] : format.items())
    if (key != "type" && !(key == "json_schema" && type == "json_schema"))
      invalid("response_format", "Unrecognized response_format argument: " + key);
  if (type == "text")
    return nullptr;
  if (type == "json_object")
    return {{"type", "object"}};
  if (type != "json_schema")
    invalid("response_format.type",
            "'response_format.type' must be 'text', 'json_object' or 'json_schema', got '" + type + "'.");
  const auto spec = format.value("json_schema", json());
  if (!spec.is_object() || !spec.contains("schema"))
    invalid("response_format.json_schema", "'response_format.json_schema' must be an object with a 'schema'.");
  for (const auto& [key, value] : spec.items())
    if (key != "name" && key != "schema" && key != "strict" && key != "description")
      invalid("response_format.json_schema", "Unrecognized response_format.json_schema argument: " + key);
  try {
    models::json_schema_grammar(spec["schema"]);
  } catch (const std::exception& error) {
    invalid("response_format.json_schema.schema",
            "'response_format.json_schema.schema' cannot be followed: " + std::string(error.what()));
  }
  return spec["schema"];
}

// {"token id": bias, ...}; the policy refuses ids outside its vocabulary.
std::map<std::int64_t, double> parse_logit_bias(const json& bias) {
  constexpr std::size_t kMostTokens = 300; // as OpenAI
  if (!bias.is_object())
    invalid("logit_bias", "'logit_bias' must be an object that maps token ids to numbers.");
  if (bias.size() > kMostTokens)
    invalid("logit_bias",
            "'logit_bias' may hold at most " + std::to_string(kMostTokens) + " tokens, got "
              + std::to_string(bias.size()) + ".");
  std::map<std::int64_t, double> result;
  for (const auto& [key, value] : bias.items()) {
    bool digits = !key.empty() && key.size() <= 18
      && std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits)
      invalid("logit_bias",
              "'logit_bias' keys must be token ids (non-negative integers as strings), got '" + key + "'.");
    if (!value.is_number() || !(value.get<double>() >= -100.0 && value.get<double>() <= 100.0))
      invalid("logit_bias", "'logit_bias' values must be numbers between -100 and 100 (token " + key + ").");
    result[std::stoll(key)] = value.get<double>();
  }
  return result;
}

// vLLM's repetition_penalty: any positive number.
double repetition_penalty(Fields& fields, double fallback) {
  auto penalty = fields.number("repetition_penalty", fallback, 0.0, 1e6);
  if (penalty == 0.0)
    invalid("repetition_penalty", "'repetition_penalty' must be greater than 0.");
  return penalty;
}

// The fields both endpoints share.
void parse_common(Fields& fields, CompletionRequest& request, const RequestLimits& limits,
                  std::int64_t default_max_tokens, std::int64_t least_max_tokens = 1) {
  const auto* model = fields.take("model");
  if (!model)
    invalid("model", "You must provide a model parameter.");
  if (!model->is_string())
    invalid("model", "'model' must be a string.");
  request.model = model->get<std::string>();
  if (request.model != limits.model)
    throw ApiError(404, "The model '" + request.model + "' does not exist; this server serves '" + limits.model + "'.",
                   "model", "model_not_found");

  auto& sampling = request.sampling;
  sampling.temperature = fields.number("temperature", limits.default_temperature, 0.0, 2.0);
  sampling.top_p = fields.number("top_p", limits.default_top_p, 0.0, 1.0);
  if (sampling.top_p == 0.0) // as vLLM does: the single most likely token
    sampling.temperature = 0.0, sampling.top_p = 1.0;
  sampling.top_k = fields.integer("top_k", limits.default_top_k, 0, 1 << 30); // a vLLM extension
  sampling.max_tokens = fields.integer("max_tokens", default_max_tokens, least_max_tokens, 1 << 30);
  if (request.chat) // the newer name of max_tokens
    sampling.max_tokens = fields.integer("max_completion_tokens", sampling.max_tokens, 1, 1 << 30);
  sampling.min_tokens = fields.integer("min_tokens", 0, 0, sampling.max_tokens); // a vLLM extension
  sampling.seed =
    fields.integer("seed", -1, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max());
  if (sampling.seed < 0)
    sampling.seed = -1; // every negative seed means "fresh"
  request.n = fields.integer("n", 1, 1, limits.max_choices);

  if (const auto* stop = fields.take("stop")) {
    if (stop->is_string()) {
      sampling.stop = {stop->get<std::string>()};
    } else if (stop->is_array() && stop->size() <= 4
               && std::all_of(stop->begin(), stop->end(), [](const json& s) { return s.is_string(); })) {
      sampling.stop = stop->get<std::vector<std::string>>();
    } else {
      invalid("stop", "'stop' must be a string or an array of at most 4 strings.");
    }
    for (const auto& text : sampling.stop)
      if (text.empty())
        invalid("stop", "'stop' strings must not be empty.");
  }

  request.stream = fields.boolean("stream", false);
  if (const auto* options = fields.take("stream_options")) {
    if (!request.stream)
      invalid("stream_options", "'stream_options' is only allowed when 'stream' is true.");
    if (!options->is_object())
      invalid("stream_options", "'stream_options' must be an object.");
    for (const auto& [key, value] : options->items()) {
      if (key != "include_usage")
        invalid("stream_options", "Unrecognized stream option: " + key);
      if (!value.is_boolean())
        invalid("stream_options", "'stream_options.include_usage' must be a boolean.");
      request.include_usage = value.get<bool>();
    }
  }

  sampling.frequency_penalty = fields.number("frequency_penalty", 0.0, -2.0, 2.0);
  sampling.repetition_penalty = repetition_penalty(fields, limits.default_repetition_penalty); // vLLM's
  sampling.presence_penalty = fields.number("presence_penalty", 0.0, -2.0, 2.0);
  if (const auto* bias = fields.take("logit_bias"))
    sampling.logit_bias = parse_logit_bias(*bias);
  if (const auto* format = fields.take("response_format"))
    sampling.json_schema = parse_response_format(*format);
  if (const auto* choice = fields.take("guided_choice")) { // vLLM's
    if (!choice->is_array() || choice->empty()
        || !std::all_of(choice->begin(), choice->end(), [](const json& c) { return c.is_string(); }))
      invalid("guided_choice", "'guided_choice' must be a non-empty array of strings.");
    if (!sampling.json_schema.is_null())
      invalid("guided_choice", "'guided_choice' cannot be combined with a JSON 'response_format'.");
    sampling.choice = choice->get<std::vector<std::string>>();
  }
  if (const auto* regex = fields.take("guided_regex")) { // vLLM's
    if (!regex->is_string() || regex->get_ref<const std::string&>().empty())
      invalid("guided_regex", "'guided_regex' must be a non-empty string.");
    if (!sampling.json_schema.is_null() || !sampling.choice.empty())
      invalid("guided_regex", "'guided_regex' cannot be combined with a JSON 'response_format' or 'guided_choice'.");
    sampling.regex = regex->get<std::string>();
    try {
      models::regex_grammar(sampling.regex);
    } catch (const std::exception& error) {
      invalid("guided_regex", "'guided_regex' cannot be followed: " + std::string(error.what()));
    }
  }
  fields.ignore("user");
  fields.ignore("metadata");
  fields.ignore("store");
  fields.ignore("service_tier");
}

ChatMessage parse_message(const json& message, std::size_t index) {
  auto where = "messages[" + std::to_string(index) + "]";
  if (!message.is_object())
    invalid(where, "'" + where + "' must be an object with 'role' and 'content'.");
  auto role = message.find("role");
  if (role == message.end() || !role->is_string())
    invalid(where + ".role", "'" + where + ".role' must be a string.");
  ChatMessage result{role->get<std::string>(), {}, {}};
  if (result.role == "developer") // the newer name of the system role
    result.role = "system";
  if (result.role != "system" && result.role != "user" && result.role != "assistant" && result.role != "tool")
    invalid(where + ".role",
            "'" + where + ".role' must be 'system', 'developer', 'user', 'assistant' or 'tool', got '" + result.role
              + "'.");
  if (auto calls = message.find("tool_calls"); calls != message.end() && !calls->is_null()) {
    if (result.role != "assistant")
      invalid(where + ".tool_calls", "'" + where + ".tool_calls' is only allowed in an assistant message.");
    result.tool_calls = parse_message_tool_calls(*calls, where);
  }
  if (auto reasoning = message.find("reasoning_content"); reasoning != message.end() && !reasoning->is_null()) {
    if (result.role != "assistant" || !reasoning->is_string())
      invalid(where + ".reasoning_content",
              "'" + where + ".reasoning_content' must be a string, in an assistant message.");
    result.reasoning = reasoning->get<std::string>();
  }
  auto content = message.find("content");
  if ((content == message.end() || content->is_null()) && (!result.tool_calls.empty() || !result.reasoning.empty())) {
    // an assistant turn that only calls functions, or only thought
  } else if (content == message.end() || content->is_null()) {
    invalid(where + ".content", "'" + where + ".content' is required.");
  } else if (content->is_string()) {
    result.content = content->get<std::string>();
  } else if (content->is_array()) { // content parts: only text ones
    for (const auto& part : *content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        invalid(where + ".content", "'" + where + ".content' parts must be {\"type\": \"text\", \"text\": ...}.");
      result.content += part["text"].get<std::string>();
    }
  } else {
    invalid(where + ".content", "'" + where + ".content' must be a string or an array of text parts.");
  }
  for (const auto& [key, value] : message.items())
    if (key != "role" && key != "content" && key != "name" && key != "tool_calls" && key != "tool_call_id"
        && key != "reasoning_content")
      invalid(where + "." + key, "'" + where + "." + key + "' is not supported by chorus-serve.");
  return result;
}

} // namespace

CompletionRequest parse_chat_request(const std::string& body, const RequestLimits& limits) {
  Fields fields(parse_object(body));
  CompletionRequest request;
  request.chat = true;
  const auto* messages = fields.take("messages");
  if (!messages)
    invalid("messages", "'messages' is required.");
  if (!messages->is_array() || messages->empty())
    invalid("messages", "'messages' must be a non-empty array.");
  for (std::size_t i = 0; i < messages->size(); ++i)
    request.messages.push_back(parse_message((*messages)[i], i));
  parse_common(fields, request, limits, limits.default_max_tokens);
  request.sampling.logprobs = fields.boolean("logprobs", false);
  request.sampling.top_logprobs = fields.integer("top_logprobs", 0, 0, kMostTopLogprobs);
  if (request.sampling.top_logprobs > 0 && !request.sampling.logprobs)
    invalid("top_logprobs", "'top_logprobs' requires 'logprobs' to be true.");
  if (fields.take("tools")) // again, keeping the order of each schema's keys (the prompt shows them)
    request.tools = parse_tools(nlohmann::ordered_json::parse(body)["tools"]);
  auto tool_choice = parse_tool_choice(fields.take("tool_choice"), request.tools);
  if (tool_choice == "none")
    request.tools.clear(); // the model is not told about them, so it writes a message
  else if (!tool_choice.empty() && request.sampling.json_schema.is_null() && request.sampling.choice.empty()
           && request.sampling.regex.empty())
    request.sampling.tool_choice = tool_choice;
  else if (!tool_choice.empty())
    invalid("tool_choice", "'tool_choice' 'required' or a function cannot be combined with guided decoding.");
  request.sampling.parallel_tool_calls = fields.boolean("parallel_tool_calls", true);
  if (const auto* kwargs = fields.take("chat_template_kwargs")) { // vLLM's: arguments of the template
    if (!kwargs->is_object())
      invalid("chat_template_kwargs", "'chat_template_kwargs' must be an object.");
    for (const auto& [key, value] : kwargs->items()) {
      if (key != "enable_thinking")
        invalid("chat_template_kwargs." + key,
                "'chat_template_kwargs." + key + "' is not supported by chorus-serve (only 'enable_thinking' is).");
      if (!value.is_boolean())
        invalid("chat_template_kwargs.enable_thinking", "'chat_template_kwargs.enable_thinking' must be a boolean.");
      request.sampling.enable_thinking = value.get<bool>();
    }
  }
  fields.refuse_unknown();
  return request;
}

CompletionRequest parse_completion_request(const std::string& body, const RequestLimits& limits) {
  Fields fields(parse_object(body));
  CompletionRequest request;
  request.chat = false;
  const auto* prompt = fields.take("prompt");
  if (!prompt)
    invalid("prompt", "'prompt' is required.");
  auto is_token = [](const json& value) { return value.is_number_integer() && value.get<std::int64_t>() >= 0; };
  if (prompt->is_string()) {
    request.prompt = prompt->get<std::string>();
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    request.prompt = (*prompt)[0].get<std::string>();
  } else if (prompt->is_array() && !prompt->empty() && std::all_of(prompt->begin(), prompt->end(), is_token)) {
    request.prompt_tokens = prompt->get<std::vector<std::int64_t>>();
  } else {
    invalid("prompt",
            "'prompt' must be a string, an array of one string, or an array of token ids "
            "(one prompt per request: ask for several completions of it with 'n').");
  }
  if (request.prompt_tokens.empty() && request.prompt.empty())
    invalid("prompt", "'prompt' must not be empty.");
  // Echo with max_tokens 0 scores a text without generating (as evaluation harnesses do).
  request.echo = fields.boolean("echo", false);
  parse_common(fields, request, limits, 16, request.echo ? 0 : 1);
  if (request.echo && request.stream)
    invalid("echo", "'echo' is not supported with 'stream' by chorus-serve.");
  request.sampling.prompt_logprobs = request.echo; // the echoed tokens' texts (and log-probs)
  // An integer here: the alternatives per position (null or absent: no log-probs).
  if (auto top = fields.integer("logprobs", -1, 0, kMostTopLogprobs); top >= 0) {
    request.sampling.logprobs = true;
    request.sampling.top_logprobs = top;
  }
  fields.only_default("suffix",
                      [](const json& value) { return value.is_string() && value.get<std::string>().empty(); });
  fields.only_default("best_of", [](const json& value) { return value.is_number() && value.get<double>() == 1; });
  fields.refuse_unknown();
  return request;
}

std::vector<std::string> apply_generation_config(RequestLimits& limits, const nlohmann::json& generation_config) {
  std::vector<std::string> applied;
  if (!generation_config.is_object())
    return applied;
  Fields fields(generation_config);
  try {
    if (fields.take("temperature"))
      applied.push_back("temperature="
                        + format(limits.default_temperature = fields.number("temperature", 1.0, 0.0, 2.0)));
    if (fields.take("top_p"))
      applied.push_back("top_p=" + format(limits.default_top_p = fields.number("top_p", 1.0, 0.0, 1.0)));
    if (const auto* top_k = fields.take("top_k"); top_k && *top_k != -1) // -1: vLLM's "none", as 0 here
      applied.push_back("top_k=" + std::to_string(limits.default_top_k = fields.integer("top_k", 0, 0, 1 << 30)));
    if (fields.take("repetition_penalty"))
      applied.push_back("repetition_penalty="
                        + format(limits.default_repetition_penalty = repetition_penalty(fields, 1.0)));
  } catch (const ApiError& error) {
    throw std::invalid_argument("generation_config.json: " + std::string(error.what()));
  }
  // What this server does not take: min_p (no such sampler; 0 changes nothing), and max_new_tokens,
  // which would fail every request whose prompt leaves less room in the KV cache (vLLM caps it to
  // the room left; here a chat request's default stays --max-tokens).
  if (const auto* min_p = fields.take("min_p"); min_p && *min_p != 0)
    applied.push_back("not applied: min_p=" + min_p->dump());
  if (const auto* max_new_tokens = fields.take("max_new_tokens"))
    applied.push_back("not applied: max_new_tokens=" + max_new_tokens->dump());
  return applied;
}

} // namespace chorus::serve
