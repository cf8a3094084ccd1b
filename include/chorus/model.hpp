// Models in a recipe: a ModelRef names one (a config field), its builder spawns the actors that host
// it, and the handles they return generate, score and train.
//
//   auto builder = co_await config.model.to_builder(ctx, {.kv_cache_len = 4096});
//   auto model = co_await builder.spawn_train("policy", {.max_batch_size = 64});
//   auto completion = co_await model.generate({{"user", "What is 2+2?"}}, {.max_tokens = 32});
//   auto report = co_await model.train_sft(samples, {.lr = 1e-5});
//   auto reward_model = co_await builder.spawn_scoring("reward");   // a score head instead of the LM head
//   float score = co_await reward_model.score({{"user", "What is 2+2?"}}, "4");
//
// Everything awaited here is a request to an actor: a policy replica (generation), the trainer (steps)
// or an inference model. The handles are cheap to copy and may be used from many coroutines at once.
#pragma once

#include <chorus/config.hpp>
#include <chorus/generation.hpp>
#include <chorus/task.hpp>
#include <chorus/training.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace chorus {

class RecipeContext;
class InferenceModel;
class TrainingModel;
class ScoringModel;

namespace detail {
struct ModelSpec;
struct InferenceState;
struct TrainingState;
struct ModelAccess; // the implementation's way to the private constructors
} // namespace detail

/// LoRA adapters (Hu et al. 2021), named as PEFT's LoraConfig: each targeted projection W becomes
/// W + s B A with A [r, in] and B [out, r] trained and W frozen, s = lora_alpha / r. Only the
/// adapters train, get AdamW state and travel to the replicas; the KL and DPO reference is the base
/// with the adapters off, not a second copy of the weights.
struct LoraOptions {
  /// The adapters' rank; 0: none (full fine-tuning).
  std::int64_t r = 0;
  /// The scale's numerator: s = lora_alpha / r.
  double lora_alpha = 32.0;
  /// Dropout on an adapter's input while training.
  double lora_dropout = 0.0;
  /// The projections adapted: any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
  std::vector<std::string> target_modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};
  /// rsLoRA: s = lora_alpha / sqrt(r).
  bool use_rslora = false;
  /// Modules trained in full beside the adapters (PEFT's modules_to_save), each naming every module
  /// whose name ends with it: e.g. "norm" for the RMSNorm weights.
  std::vector<std::string> modules_to_save;
};
CHORUS_CONFIG(LoraOptions, r, lora_alpha, lora_dropout, target_modules, use_rslora, modules_to_save)

/// How the actors hosting a model are laid out.
struct BuilderOptions {
  /// Tensor-parallel degree: devices one model is split over. Only 1 is supported on a CPU machine.
  int tp = 1;
  /// The longest sequence (prompt and completion, in tokens) a replica holds in its KV cache.
  std::int64_t kv_cache_len = 4096;
  /// "float32" or "bfloat16": the dtype weights are computed in. A bfloat16 trainer keeps fp32 master
  /// copies of its weights, which its optimizer updates (fp32 AdamW state).
  std::string dtype = "float32";
  /// Where the model's weights, KV caches, activations and optimizer state live: "cpu", or "cuda" /
  /// "cuda:N" with a LibTorch built with CUDA (docs/gpu.md). A device this process's LibTorch does not
  /// have is a ConfigError that says what it has.
  std::string device = "cpu";
  /// Gradient checkpointing in the trainer: each decoder layer keeps only its input for the backward
  /// pass and runs again there, so a step holds one layer's activations at a time instead of every
  /// layer's (long completions, big batches) for one more forward pass of compute. The same gradients.
  bool gradient_checkpointing = false;
  /// Inference replicas of a training model (each a policy actor with its own copy of the weights).
  int replicas = 1;
  /// Intra-op threads of each actor; 0 gives the machine's cores to the compute actors working at the
  /// moment (all of them to a lone one, split between those working at once, none to a waiting one).
  int threads = 0;
  /// Where the inference actors run: a node of the cluster file the recipe was started with
  /// (`--cluster FILE`), or empty for this process. It places an inference model, or the replicas of
  /// a training model (its trainer stays in the recipe's process). The recipe's code is the same
  /// wherever they run.
  std::string node;
  /// One node per replica of a training model (size `replicas`; "" for this process); overrides
  /// `node` for replicas, e.g. {"", "gen-1"} keeps one replica here and puts one on gen-1.
  std::vector<std::string> replica_nodes;
  /// Where the trainer of a training model runs (its weight server with it): a cluster node, or empty
  /// for the recipe's process. Its replicas, wherever they are, stream its weights over the network;
  /// `save` writes on that node's file system.
  std::string trainer_node;
  /// Data parallelism for a training model: more trainer ranks, one on each node named (the first
  /// rank is the trainer above). Each step's micro-batches are divided between the ranks and
  /// their gradients summed (c10d Gloo): the same step as one trainer, in less time per step.
  std::vector<std::string> trainer_nodes;
  /// Seeds the built-in model's initial weights (ignored for a folder) and new adapters' A.
  std::uint64_t seed = 0;
  /// LoRA adapters to train on the model (r > 0), instead of all its weights.
  LoraOptions adapter;
  /// When every replica (or an inference model's only actor) was on nodes that were lost, how long a
  /// request waits for one to be respawned on its node once the node is back, before it fails as it
  /// would at once with 0. The group deadline of an RL algorithm still bounds each rollout.
  double rejoin_wait_s = 180;
};

/// What losing replicas has cost a model so far (counted from its spawn).
struct ReplicaLosses {
  /// Requests whose replica was lost under them, sent again to another (or a rejoined) replica.
  std::int64_t requests_retried = 0;
  /// Seconds the model had no replica while one was being respawned (BuilderOptions::rejoin_wait_s).
  double rejoin_wait_s = 0;
};

/// Options of a model that trains.
struct TrainOptions {
  /// The most sequences a replica generates at once (continuous batching).
  std::int64_t max_batch_size = 32;
  /// Keep a frozen copy of the initial weights: the reference of the KL penalty (TrainParams::kl_beta)
  /// and of DPO. Costs one more copy of the weights.
  bool keep_reference = true;
};

/// Options of an inference-only model (a judge, a reference).
struct InferenceOptions {
  /// The most sequences generated at once (continuous batching).
  std::int64_t max_batch_size = 32;
};

/// Spawns the actors of one model. Returned by ModelRef::to_builder.
class ModelBuilder {
public:
  /// Spawns the trainer and `replicas` policy actors, and waits until all have loaded the model.
  /// @throws ConfigError for options the machine cannot honour; ActorError if loading fails (the
  /// message names the file and what is wrong).
  Task<TrainingModel> spawn_train(std::string name, TrainOptions options = {}) const;

  /// Spawns one inference actor and waits until it has loaded the model.
  Task<InferenceModel> spawn_inference(std::string name, InferenceOptions options = {}) const;

  /// Spawns a scoring model (the SDK's into_scoring_model): the transformer with a scalar `score` head
  /// on its last token's hidden state instead of the language-model head, in one actor that scores
  /// and trains (a reward model, or PPO's value model), placed on `node` like an inference model.
  /// A `...ForSequenceClassification` folder (num_labels 1) loads as it is; a language model's folder
  /// (or builtin:tiny) gets a new score head, drawn from the builder's seed.
  /// @throws ActorError if loading fails.
  Task<ScoringModel> spawn_scoring(std::string name) const;

  /// The model reference the builder was made from (ModelRef::reference).
  const std::string& reference() const noexcept;

private:
  friend struct detail::ModelAccess;
  ModelBuilder(RecipeContext& ctx, std::shared_ptr<const detail::ModelSpec> spec);

  RecipeContext* ctx_;
  std::shared_ptr<const detail::ModelSpec> spec_;
};

/// A model named in a config: `builtin:tiny`, or the path of a Hugging Face model folder
/// (config.json, model.safetensors or its sharded index, tokenizer.json).
struct ModelRef {
  /// `builtin:tiny` (the default) or the path of a Hugging Face model folder.
  std::string reference = "builtin:tiny";
  /// A LoRA adapter folder in PEFT's format (adapter_config.json, adapter_model.safetensors) loaded
  /// onto the model, which is its base; empty: none. A training model trains it further.
  std::string adapter;

  /// Checks `options` against this machine and returns a builder for the model's actors.
  /// @throws ConfigError naming the option that cannot be honoured (e.g. tp > 1 without devices).
  Task<ModelBuilder> to_builder(RecipeContext& ctx, BuilderOptions options = {}) const;
};

/// How a training model is saved.
struct SaveOptions {
  /// A model with LoRA adapters: write a full Hugging Face folder with the adapters merged into the
  /// weights, instead of the adapter folder.
  bool merge_adapter = false;
};

/// How generate_and_validate samples and retries.
struct ValidateOptions {
  /// Each attempt's sampling.
  SamplingParams sampling{.temperature = 0.0, .max_tokens = 256};
  /// Times the model is asked again, shown its answer and what was wrong with it, after an answer
  /// that is not JSON satisfying the schema.
  int max_parsing_retries = 3;
};

/// generate_and_validate's result: the parsed value and how it was reached.
struct ValidatedGeneration {
  /// The JSON value that satisfies the schema.
  Json value;
  /// The generation it was parsed from (the last attempt's).
  Generation generation;
  /// Answers before it that did not parse or satisfy the schema.
  int failed_attempts = 0;
};

/// A model that generates and scores: a policy replica or a judge.
class InferenceModel {
public:
  InferenceModel() = default;

  /// Whether this handle holds a model (a default-constructed one does not).
  explicit operator bool() const noexcept {
    return state_ != nullptr;
  }

  /// Generates a completion of a chat (rendered with the model's chat template and a generation
  /// prompt), offering the model `tools` (read its calls back with parse_assistant_turn; make it call
  /// one with params.tool_choice). Requests from many coroutines are batched together by the actor.
  /// @throws ActorError for bad input (the message says what), TimeoutError past `timeout`.
  Task<Generation> generate(std::vector<ChatMessage> messages, SamplingParams params = {},
                            std::vector<Tool> tools = {}) const;

  /// Generates a continuation of plain text (no chat template), after the tokens the tokenizer
  /// starts a text with (the beginning-of-sequence token of Llama and Gemma, none for Qwen), as
  /// transformers and vLLM tokenise a prompt.
  Task<Generation> complete(std::string text, SamplingParams params = {}) const;

  /// Generates a reply to `messages` that is JSON satisfying `schema` (chorus/json_schema.hpp's
  /// subset): an answer that does not parse or fit is followed by the answer and a user turn saying
  /// what is wrong (and the schema), and the model asked again, up to max_parsing_retries times.
  /// With options.sampling.json_schema = schema every answer follows it (guided decoding): only one
  /// cut by max_tokens is retried.
  /// @throws ValidationError naming the last problem when no answer satisfies the schema.
  Task<ValidatedGeneration> generate_and_validate(std::vector<ChatMessage> messages, Json schema,
                                                  ValidateOptions options = {}) const;

  /// Generates a continuation of `prompt_tokens` as they are: for callers that keep a conversation
  /// in token space (multi-turn episodes), where re-tokenizing text could change the tokens.
  /// `tools` (already in the prompt) are what params.tool_choice may call.
  Task<Generation> generate_tokens(std::vector<std::int64_t> prompt_tokens, SamplingParams params = {},
                                   std::vector<Tool> tools = {}) const;

  /// The log-probability of each completion token after the prompt, in one forward pass.
  Task<std::vector<float>> logprobs(std::vector<std::int64_t> prompt_tokens,
                                    std::vector<std::int64_t> completion_tokens) const;

  /// The ids of `text` (no special tokens added).
  Task<std::vector<std::int64_t>> tokenize(std::string text) const;

  /// The ids of a chat rendered with the model's template, with `tools` the functions the model
  /// may call (ChatML models: Qwen3's `<tools>` system turn; Llama 3.1 and later: the first user
  /// message; parse_assistant_turn reads calls back);
  /// `enable_thinking` false: a thinking template's generation prompt skips the thinking
  /// (SamplingParams::enable_thinking).
  /// @throws ActorError for a role or tools the model's chat format has no place for.
  Task<std::vector<std::int64_t>> tokenize_chat(std::vector<ChatMessage> messages, bool add_generation_prompt = true,
                                                std::vector<Tool> tools = {}, bool enable_thinking = true) const;

  /// Whether the model's chat template is a thinking one (Qwen3's): its completions hold a
  /// `<think>` block before the answer, which parse_assistant_turn splits off as the reasoning.
  bool thinks() const;

  /// Whether the template's generation prompt, with `enable_thinking` as given, leaves the `<think>`
  /// block open (Qwen3's "Thinking-2507" models, QwQ, DeepSeek-R1's distillations): the completion
  /// starts inside the reasoning and closes it with `</think>` (parse_assistant_turn's `opened`).
  bool opens_thinking(bool enable_thinking = true) const;

  /// How the model's chat template writes function calls: what parse_assistant_turn is given to
  /// read its calls (Qwen's `<tool_call>` blocks; Llama 3.1's JSON object).
  ToolCallFormat tool_call_format() const;

  /// The model's name as spawned.
  const std::string& name() const;

  /// How long a request may take before it fails with TimeoutError (default 10 minutes).
  InferenceModel with_timeout(std::chrono::milliseconds timeout) const;

  /// What losing its actors (on lost nodes) has cost so far.
  ReplicaLosses losses() const;

private:
  friend class TrainingModel;
  friend struct detail::ModelAccess;
  explicit InferenceModel(std::shared_ptr<detail::InferenceState> state, std::chrono::milliseconds timeout);

  std::shared_ptr<detail::InferenceState> state_;
  std::chrono::milliseconds timeout_{std::chrono::minutes(10)};
};

/// A model that trains: a trainer actor owning the weights and optimizer, and policy replicas that
/// generate with the newest weights the trainer published (each Generation says which version).
class TrainingModel {
public:
  TrainingModel() = default;

  /// Whether this handle holds a model (a default-constructed one does not).
  explicit operator bool() const noexcept {
    return state_ != nullptr;
  }

  /// As InferenceModel: routed to the replica with the fewest requests in flight; a replica that
  /// is lost is dropped from routing (and reported) and the request retried on another.
  /// @throws Error once no replica is left.
  Task<Generation> generate(std::vector<ChatMessage> messages, SamplingParams params = {},
                            std::vector<Tool> tools = {}) const;
  /// As InferenceModel::complete, on a replica chosen as for generate().
  Task<Generation> complete(std::string text, SamplingParams params = {}) const;
  /// As InferenceModel::generate_and_validate, each attempt on a replica chosen as for generate().
  Task<ValidatedGeneration> generate_and_validate(std::vector<ChatMessage> messages, Json schema,
                                                  ValidateOptions options = {}) const;
  /// As InferenceModel::generate_tokens, on a replica chosen as for generate().
  Task<Generation> generate_tokens(std::vector<std::int64_t> prompt_tokens, SamplingParams params = {},
                                   std::vector<Tool> tools = {}) const;
  /// As InferenceModel::logprobs, on a replica chosen as for generate().
  Task<std::vector<float>> logprobs(std::vector<std::int64_t> prompt_tokens,
                                    std::vector<std::int64_t> completion_tokens) const;
  /// As InferenceModel::tokenize, on a replica chosen as for generate().
  Task<std::vector<std::int64_t>> tokenize(std::string text) const;
  /// As InferenceModel::tokenize_chat, on a replica chosen as for generate().
  Task<std::vector<std::int64_t>> tokenize_chat(std::vector<ChatMessage> messages, bool add_generation_prompt = true,
                                                std::vector<Tool> tools = {}, bool enable_thinking = true) const;
  /// As InferenceModel::thinks.
  bool thinks() const;
  /// As InferenceModel::opens_thinking.
  bool opens_thinking(bool enable_thinking = true) const;
  /// As InferenceModel::tool_call_format.
  ToolCallFormat tool_call_format() const;

  /// One optimizer step of supervised fine-tuning: cross-entropy over the completion tokens.
  Task<TrainReport> train_sft(std::vector<TrainSample> samples, TrainParams params) const;

  /// One optimizer step of the clipped policy-gradient objective (token-level ratio for GRPO/PPO,
  /// sequence-level for GSPO), with the samples' advantages and behaviour log-probs.
  Task<TrainReport> train_policy(std::vector<TrainSample> samples, TrainParams params) const;

  /// Makes the current weights the frozen reference of the KL penalty and of DPO: what RL after SFT
  /// wants (GRPO, GSPO and PPO do it when they start, unless told not to).
  Task<void> reset_reference() const;

  /// PPO: the value head's estimate at each completion token of each sample (no step).
  Task<std::vector<std::vector<float>>> values(std::vector<TrainSample> samples) const;

  /// One PPO step: the clipped policy gradient with per-token advantages (TrainSample::
  /// token_advantages) and the value head's clipped loss towards TrainSample::returns.
  Task<TrainReport> train_ppo(std::vector<TrainSample> samples, TrainParams params) const;

  /// One optimizer step of DPO over preference pairs, against the frozen reference copy (spawn_train
  /// with .keep_reference = true).
  Task<TrainReport> train_dpo(std::vector<PreferencePair> pairs, TrainParams params) const;

  /// Saves the weights and tokenizer as a Hugging Face folder `<output_dir>/<model_name>`; returns
  /// its path. A model with LoRA adapters saves them in PEFT's format (adapter_config.json,
  /// adapter_model.safetensors, with the tokenizer), or with `.merge_adapter` a full folder with the
  /// adapters merged into its weights.
  Task<std::string> save(std::string model_name, RecipeContext& ctx, SaveOptions options = {}) const;

  /// The weight version of the newest step (0 before any).
  std::int64_t weight_version() const;

  /// The model's name as spawned.
  const std::string& name() const;

  /// Replicas still serving.
  std::size_t replicas() const;

  /// What losing replicas (on lost nodes) has cost so far.
  ReplicaLosses losses() const;

  /// An inference handle on this model's replicas (routed as generate() is, with the newest weights
  /// the trainer reported): for what takes an InferenceModel, e.g. evaluate() or a judge.
  InferenceModel as_inference() const;

private:
  friend struct detail::ModelAccess;
  explicit TrainingModel(std::shared_ptr<detail::TrainingState> state);

  std::shared_ptr<detail::TrainingState> state_;
};

/// A scoring model: a transformer whose `score` head maps the hidden state of a sequence's last token
/// to one number (a reward model; PPO's value model reads it at every token). Spawned by
/// ModelBuilder::spawn_scoring; saved as a Hugging Face `...ForSequenceClassification` folder.
class ScoringModel {
public:
  ScoringModel() = default;

  /// Whether this handle holds a model (a default-constructed one does not).
  explicit operator bool() const noexcept {
    return state_ != nullptr;
  }

  /// The score of `completion` as the assistant's reply to `prompt` (the conversation rendered with
  /// the model's chat template, as training renders it).
  Task<float> score(std::vector<ChatMessage> prompt, std::string completion) const;

  /// The score of each sample's prompt and completion tokens, in one request.
  Task<std::vector<float>> score_tokens(std::vector<TrainSample> samples) const;

  /// One optimizer step of the Bradley-Terry loss, -log sigmoid(score(chosen) - score(rejected)):
  /// reward modelling on preferences. The report's reward_accuracy and reward_margin are the pairs'.
  Task<TrainReport> train_pairs(std::vector<PreferencePair> pairs, TrainParams params) const;

  /// One optimizer step of the squared error between each sample's score and its TrainSample::label.
  Task<TrainReport> train_regression(std::vector<TrainSample> samples, TrainParams params) const;

  /// PPO's value model: the score at each completion token of each sample (the estimate of the
  /// return from there), without a step.
  Task<std::vector<std::vector<float>>> values(std::vector<TrainSample> samples) const;

  /// PPO's value model: one step of the clipped value loss (TrainParams::value_clip_range) towards
  /// TrainSample::returns, from TrainSample::old_values.
  Task<TrainReport> train_values(std::vector<TrainSample> samples, TrainParams params) const;

  /// The ids of `text` (no special tokens added).
  Task<std::vector<std::int64_t>> tokenize(std::string text) const;

  /// As InferenceModel::tokenize_chat.
  Task<std::vector<std::int64_t>> tokenize_chat(std::vector<ChatMessage> messages, bool add_generation_prompt = true,
                                                std::vector<Tool> tools = {}, bool enable_thinking = true) const;

  /// Saves the weights and tokenizer as a Hugging Face folder `<output_dir>/<model_name>`
  /// (`...ForSequenceClassification`, the head as `score.weight`); returns its path.
  Task<std::string> save(std::string model_name, RecipeContext& ctx) const;

  /// The weight version of the newest step (0 before any).
  std::int64_t weight_version() const;

  /// The model's name as spawned.
  const std::string& name() const;

private:
  friend struct detail::ModelAccess;
  explicit ScoringModel(std::shared_ptr<detail::TrainingState> state);

  std::shared_ptr<detail::TrainingState> state_;
};

// -- config ---------------------------------------------------------------------

/// Reads and writes ModelRef config fields: `builtin:tiny` or the path of a Hugging Face model folder.
template <>
struct ConfigCodec<ModelRef> {
  /// The type's name in messages and `--help`.
  static std::string type_name() {
    return "model (builtin:tiny or a Hugging Face folder; or {\"model\": ..., \"adapter\": a LoRA folder})";
  }
  /// Reads a non-empty JSON string, or an object {"model": ..., "adapter": ...}, into `out`.
  /// @throws ConfigError for anything else, naming the key.
  static void read(const Json& value, ModelRef& out, const ConfigLocation& at) {
    auto text = [](const Json& v) { return v.is_string() && !v.get<std::string>().empty(); };
    if (value.is_object()) {
      for (const auto& [key, item] : value.items())
        if (key != "model" && key != "adapter")
          at.fail("a model object with the keys \"model\" and \"adapter\" (unknown key '" + key + "')", value);
      if (!value.contains("model") || !text(value["model"]))
        at.fail("a model object whose \"model\" is builtin:tiny or the path of a Hugging Face model folder", value);
      if (value.contains("adapter") && !value["adapter"].is_string())
        at.fail("a model object whose \"adapter\" is the path of a LoRA adapter folder", value);
      out.reference = value["model"].get<std::string>();
      out.adapter = value.value("adapter", std::string());
      return;
    }
    if (!text(value))
      at.fail("a model: builtin:tiny or the path of a Hugging Face model folder", value);
    out.reference = value.get<std::string>();
    out.adapter.clear();
  }
  /// The reference as a JSON string, or an object when there is an adapter.
  static Json write(const ModelRef& value) {
    if (value.adapter.empty())
      return value.reference;
    return {{"model", value.reference}, {"adapter", value.adapter}};
  }
  /// A non-empty string (builtin:tiny, or the path of a Hugging Face model folder), or an object with
  /// it as "model" and a LoRA adapter folder as "adapter".
  static Json schema() {
    Json reference = {{"type", "string"}, {"minLength", 1}, {"format", "chorus-model"}};
    return {{"oneOf",
             {reference,
              {{"type", "object"},
               {"properties", {{"model", reference}, {"adapter", {{"type", "string"}}}}},
               {"required", {"model"}},
               {"additionalProperties", false}}}}};
  }
  /// Reads a `--set` value: the text as the reference.
  static Json parse_text(std::string_view text, const ConfigLocation&) {
    return std::string(text);
  }
};

} // namespace chorus
