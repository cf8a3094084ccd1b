// generate_and_validate (include/chorus/model.hpp): generation until the reply is JSON that satisfies
// a schema, each failed answer shown back to the model with what is wrong with it.
#include <chorus/errors.hpp>
#include <chorus/json_schema.hpp>
#include <chorus/model.hpp>

#include <functional>

namespace chorus {

namespace {

using Generate = std::function<Task<Generation>(std::vector<ChatMessage>, SamplingParams)>;

Task<ValidatedGeneration> generate_until_valid(Generate generate, std::vector<ChatMessage> messages, Json schema,
                                               ValidateOptions options) {
  if (options.max_parsing_retries < 0)
    throw ConfigError("generate_and_validate: max_parsing_retries must be >= 0");
  std::string problem;
  for (int attempt = 0; attempt <= options.max_parsing_retries; ++attempt) {
    auto generation = co_await generate(messages, options.sampling);
    auto value = parse_json_reply(generation.text);
    problem = value ? schema_violation(*value, schema) : "not valid JSON";
    if (problem.empty())
      co_return ValidatedGeneration{std::move(*value), std::move(generation), attempt};
    messages.push_back({"assistant", generation.text});
    messages.push_back({"user",
                        "That answer is not usable: " + problem
                          + ". Answer again with only a JSON value that satisfies this JSON schema: " + schema.dump()});
  }
  throw ValidationError("generate_and_validate: no answer satisfied the schema in "
                        + std::to_string(options.max_parsing_retries + 1) + " attempt(s); the last: " + problem);
}

} // namespace

Task<ValidatedGeneration> InferenceModel::generate_and_validate(std::vector<ChatMessage> messages, Json schema,
                                                                ValidateOptions options) const {
  return generate_until_valid([model = *this](std::vector<ChatMessage> m,
                                              SamplingParams s) { return model.generate(std::move(m), std::move(s)); },
                              std::move(messages), std::move(schema), std::move(options));
}

Task<ValidatedGeneration> TrainingModel::generate_and_validate(std::vector<ChatMessage> messages, Json schema,
                                                               ValidateOptions options) const {
  return generate_until_valid([model = *this](std::vector<ChatMessage> m,
                                              SamplingParams s) { return model.generate(std::move(m), std::move(s)); },
                              std::move(messages), std::move(schema), std::move(options));
}

} // namespace chorus
