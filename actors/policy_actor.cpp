// The policy actor: generation with continuous batching. A generate request is tokenized and queued
// in the batcher and answered later through a response promise; the actor drives the batcher by
// sending itself a DecodeStep after each step, so requests that arrive meanwhile (queued in the
// mailbox ahead of the next DecodeStep) join the running batch one step later. Never blocks on
// anything but its own model; never answers a request twice.
#include "actors/model_host.hpp"
#include "actors/weight_board.hpp"
#include "actors/weight_stream.hpp"
#include "models/batcher.hpp"
#include "models/guided_grammars.hpp"
#include "models/position_logprobs.hpp"
#include "models/text_stream.hpp"
#include "runtime/actor_host.hpp"
#include "runtime/timeline.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <limits>
#include <random>
#include <unordered_map>

CHORUS_MESSAGE_TYPES(chorus_model_actors);

namespace chorus::actors {

namespace {

struct PolicyState {
  ModelHost host;
  std::shared_ptr<WeightBoard> board; // a replica in the trainer's process; else null
  std::unique_ptr<WeightFeed> feed;   // a replica in another process; else null
  std::int64_t version = 0;
  std::int64_t required = 0; // the newest version a request asked for: new sequences wait for it
  std::unique_ptr<models::ContinuousBatcher> batcher;
  std::unique_ptr<models::GuidedGrammars> grammars; // made on the first request
  struct Pending {
    caf::typed_response_promise<Generation> promise;
    std::vector<std::int64_t> prompt_tokens;
    std::vector<std::string> stop;
    std::uint64_t request_id = 0;
    bool logprobs = false; // Generation::token_logprobs asked for
    std::vector<PositionLogprobs> prompt_logprobs;
  };
  std::unordered_map<models::ContinuousBatcher::Id, Pending> pending;
  std::unordered_map<std::uint64_t, models::ContinuousBatcher::Id> by_request; // cancellable requests
  bool stepping = false;
  std::mt19937_64 seeds{std::random_device{}()};
  static inline const char* name = "chorus.policy";
};

using PolicyActor = StatefulActor<PolicyState>;

std::vector<std::int64_t> stop_ids(const models::Pretrained& model) {
  auto ids = model.tokenizer->stop_token_ids();
  for (auto id : model.model->config().eos_token_ids)
    if (std::find(ids.begin(), ids.end(), id) == ids.end())
      ids.push_back(id);
  return ids;
}

Generation finish(const models::Pretrained& model, PolicyState::Pending& pending, models::GeneratedSequence sequence) {
  if (!sequence.error.empty())
    throw std::runtime_error(sequence.error);
  Generation result;
  auto text = model.tokenizer->decode(sequence.tokens, /*skip_special=*/true);
  result.text = models::text_before_stop(text, pending.stop);
  bool stopped_by_string = result.text.size() != text.size();
  result.finish_reason = sequence.finish == models::FinishReason::stop || stopped_by_string ? "stop" : "length";
  result.prompt_tokens = std::move(pending.prompt_tokens);
  if (pending.logprobs)
    result.token_logprobs = models::position_logprobs(
      *model.tokenizer, sequence, 0, models::tokens_in_text(*model.tokenizer, sequence.tokens, result.text.size()));
  result.tokens = std::move(sequence.tokens);
  result.logprobs = std::move(sequence.logprobs);
  result.prompt_logprobs = std::move(pending.prompt_logprobs);
  return result;
}

// Adopts the newest published weights when no sequence is running; reports whether the batcher may
// admit new sequences (not while newer weights wait for the running ones to finish, nor while a
// remote replica still fetches the version its requests asked for).
bool sync_weights(PolicyState& state, caf::event_based_actor* self) {
  if (state.feed) {
    if (state.feed->ready() > state.version) {
      if (state.batcher->running() > 0)
        return false;
      state.version = state.feed->adopt(self, *state.host.model.model);
    }
    return state.version >= state.required;
  }
  if (!state.board || state.board->version() <= state.version)
    return true;
  if (state.batcher->running() > 0)
    return false;
  TimelineSpan span(state.host.spec.name, "weight sync", "version " + std::to_string(state.board->version()));
  state.version = state.board->adopt(*state.host.model.model, state.version);
  return true;
}

void fail_all(PolicyState& state, const std::string& why) {
  for (auto& [id, pending] : state.pending)
    pending.promise.deliver(make_handler_error(why));
  state.pending.clear();
  state.by_request.clear();
  state.batcher->clear();
}

// The one place the decode loop is (re)armed: sends the next DecodeStep unless one is on its way or
// there is nothing a step could do. Sequences that all wait for weights still being fetched leave
// it unarmed: the feed arms it again when they come (on_weights).
void arm_decode(PolicyActor* self) {
  auto& state = self->state;
  if (state.batcher)
    state.host.set_busy(!state.batcher->idle()); // a replica with nothing to decode holds no cores
  if (state.stepping || !state.batcher || state.batcher->idle())
    return;
  auto newest = state.feed ? std::max(state.version, state.feed->ready()) : state.version;
  if (state.batcher->running() == 0 && newest < state.required)
    return;
  state.stepping = true;
  self->send(self, DecodeStep{});
}

void decode_step(PolicyActor* self) {
  auto& state = self->state;
  TimelineSpan span(state.host.spec.name, "decode step",
                    std::to_string(state.batcher->running()) + " running, " + std::to_string(state.batcher->waiting())
                      + " waiting");
  try {
    state.host.prepare();
    bool admit = sync_weights(state, self);
    auto finished = state.batcher->step(admit);
    // Idle before the answers go out: a trainer step they lead to must find the cores free, or its
    // thread count (and the last bits of its numbers) would depend on this actor's timing.
    if (state.batcher->idle())
      state.host.set_busy(false);
    for (auto& done : finished) {
      auto found = state.pending.find(done.id);
      if (found == state.pending.end())
        continue;
      try {
        auto generation = finish(state.host.model, found->second, std::move(done.sequence));
        // Weights change only while no sequence runs: these are the weights that made all of it.
        generation.weight_version = state.version;
        found->second.promise.deliver(std::move(generation));
      } catch (const std::exception& error) { // this sequence's text only: the others carry on
        found->second.promise.deliver(make_handler_error(std::string("generation failed: ") + error.what()));
      }
      state.by_request.erase(found->second.request_id);
      state.pending.erase(found);
    }
  } catch (const std::exception& error) {
    fail_all(state, std::string("generation failed: ") + error.what());
  }
  state.stepping = false;
  arm_decode(self);
}

// A remote replica's feed completed a version, or failed: a replica that cannot follow its trainer
// stops, so that the recipe routes its requests to the other replicas.
void on_weights(PolicyActor* self) {
  auto& state = self->state;
  if (!state.feed->error().empty()) {
    fail_all(state, "weight sync failed: " + state.feed->error());
    self->quit(caf::make_error(caf::sec::runtime_error, "weight sync failed: " + state.feed->error()));
    return;
  }
  arm_decode(self);
}

// The prompt's tokens: the chat template over `messages`, or `text` encoded after the tokens the
// tokenizer starts a text with (Llama's and Gemma's beginning-of-sequence token, as transformers and
// vLLM put it there), or `tokens` as given.
std::vector<std::int64_t> prompt_of(const models::Pretrained& model, const GenerateRequest& request) {
  if (!request.messages.empty())
    return model.tokenizer->apply_chat_template(request.messages, true, request.tools, request.params.enable_thinking);
  if (!request.text.empty()) {
    auto prompt = model.tokenizer->text_prefix();
    auto text = model.tokenizer->encode(request.text);
    prompt.insert(prompt.end(), text.begin(), text.end());
    return prompt;
  }
  return request.tokens;
}

// The batcher's request for `prompt` with the request's sampling; with a stream, each token's final
// text goes to it before the stop strings are checked.
models::SequenceRequest sequence_of(PolicyActor* self, const GenerateRequest& request,
                                    const std::vector<std::int64_t>& prompt) {
  const auto& model = self->state.host.model;
  const auto& params = request.params;
  models::SequenceRequest sequence;
  sequence.prompt = prompt;
  sequence.options.temperature = params.temperature;
  sequence.options.top_k = params.top_k;
  sequence.options.top_p = params.top_p;
  sequence.options.max_new_tokens = params.max_tokens;
  sequence.options.min_new_tokens = params.min_tokens;
  sequence.options.seed = params.seed >= 0 ? static_cast<std::uint64_t>(params.seed) : self->state.seeds();
  sequence.options.stop_token_ids = stop_ids(model);
  sequence.options.sample_below = model.tokenizer->vocab_size();
  sequence.options.presence_penalty = params.presence_penalty;
  sequence.options.frequency_penalty = params.frequency_penalty;
  sequence.options.repetition_penalty = params.repetition_penalty;
  for (const auto& [token, bias] : params.logit_bias)
    sequence.options.logit_bias.emplace_back(token, static_cast<float>(bias));
  sequence.options.top_logprobs = params.logprobs ? params.top_logprobs : 0;
  if (!self->state.grammars)
    self->state.grammars = std::make_unique<models::GuidedGrammars>(model.tokenizer);
  sequence.options.grammar = self->state.grammars->grammar_for(params, request.tools);
  models::StopCheck stop_check;
  if (!params.stop.empty())
    stop_check = models::stop_at_strings(model.tokenizer, params.stop);
  if (request.stream_to) {
    // Each delta carries the positions of the tokens whose text begins in the text sent so far.
    sequence.should_stop =
      [self, sink = request.stream_to, id = request.id, stop_check, logprobs = params.logprobs,
       tokenizer = model.tokenizer, positions = std::size_t{0},
       stream = models::TextStream(model.tokenizer, params.stop)](const models::GeneratedSequence& so_far) mutable {
        if (auto piece = stream.advance(so_far.tokens); !piece.empty()) {
          GenerationDelta delta{id, std::move(piece), {}};
          if (logprobs) {
            auto end = models::tokens_in_text(*tokenizer, so_far.tokens, stream.emitted(), positions);
            delta.logprobs = models::position_logprobs(*tokenizer, so_far, positions, end);
            positions = end;
          }
          self->send(sink, std::move(delta));
        }
        return stop_check && stop_check(0, so_far.tokens);
      };
  } else if (stop_check) {
    sequence.should_stop = [stop_check](const models::GeneratedSequence& so_far) {
      return stop_check(0, so_far.tokens);
    };
  }
  return sequence;
}

// SamplingParams::prompt_logprobs: the prompt scored in one forward pass, its first token without a
// log-prob (nothing comes before it).
std::vector<PositionLogprobs> prompt_positions(const models::Pretrained& model, const std::vector<std::int64_t>& prompt,
                                               std::int64_t top) {
  const auto& tokenizer = *model.tokenizer;
  auto transformer = model.model;
  auto scored = models::score_prompt(transformer, prompt, top, tokenizer.vocab_size());
  std::vector<PositionLogprobs> positions{
    {models::token_logprob(tokenizer, prompt.front(), std::numeric_limits<float>::quiet_NaN()), {}}};
  auto rest = models::position_logprobs(tokenizer, scored, 0, scored.tokens.size());
  positions.insert(positions.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
  return positions;
}

// Queues the request in the batcher; the answer comes through a promise when its sequence finishes.
caf::result<Generation> generate(PolicyActor* self, GenerateRequest& request) {
  auto& state = self->state;
  try {
    state.host.prepare();
    auto prompt = prompt_of(state.host.model, request);
    auto sequence = sequence_of(self, request, prompt);
    if (state.feed) {
      state.required = std::max(state.required, request.min_weight_version);
      state.feed->want(self, state.required);
    }
    auto id = state.batcher->add(std::move(sequence)); // checks the prompt first
    std::vector<PositionLogprobs> prompt_logprobs;
    if (request.params.prompt_logprobs) {
      try {
        prompt_logprobs = prompt_positions(state.host.model, prompt, request.params.top_logprobs);
      } catch (...) {
        state.batcher->cancel(id);
        throw;
      }
    }
    auto promise = self->make_response_promise<Generation>();
    state.pending.emplace(id,
                          PolicyState::Pending{promise, std::move(prompt), request.params.stop, request.id,
                                               request.params.logprobs, std::move(prompt_logprobs)});
    if (request.id != 0)
      state.by_request[request.id] = id;
    arm_decode(self);
    return caf::delegated<Generation>{};
  } catch (const std::invalid_argument& error) { // the prompt or the sampling as asked
    return make_bad_request_error(error.what());
  } catch (const std::exception& error) {
    return make_handler_error(error.what());
  }
}

void cancel(PolicyActor* self, const CancelGeneration& cancel) {
  auto& state = self->state;
  auto found = state.by_request.find(cancel.id);
  if (found == state.by_request.end())
    return; // finished (or failed) before the cancellation arrived
  state.batcher->cancel(found->second);
  state.pending.at(found->second).promise.deliver(make_handler_error("generation cancelled by the asker"));
  state.pending.erase(found->second);
  state.by_request.erase(found);
}

// Loads the model; a replica in another process starts following its trainer's weight server.
void start_policy(PolicyActor* self, ModelActorSpec spec, std::shared_ptr<WeightBoard> board,
                  caf::actor weight_server) {
  auto& state = self->state;
  state.host.load(std::move(spec), /*weight=*/1);
  state.board = std::move(board);
  if (!state.host.load_error.empty())
    return;
  if (weight_server) {
    state.feed = std::make_unique<WeightFeed>(std::move(weight_server), state.host.spec.name,
                                              /*pinned_staging=*/state.host.spec.device != "cpu");
    state.version = -1; // whatever it loaded, a replica generates only with weights its trainer sent
    state.feed->start(self, [self] { on_weights(self); });
  }
  state.batcher = std::make_unique<models::ContinuousBatcher>(state.host.model.model, state.host.spec.max_batch_size,
                                                              state.host.spec.kv_cache_len);
}

caf::behavior policy_actor(PolicyActor* self, ModelActorSpec spec, std::shared_ptr<WeightBoard> board,
                           caf::actor weight_server) {
  start_policy(self, std::move(spec), std::move(board), std::move(weight_server));
  return {
    guarded([self](const ModelInfoRequest&) {
      auto& state = self->state;
      state.host.prepare();
      if (state.batcher->idle())
        sync_weights(state, self);
      auto info = state.host.info(state.version);
      info.pending = static_cast<std::int64_t>(state.pending.size());
      return info;
    }),
    [self](GenerateRequest& request) { return generate(self, request); },
    [self](const DecodeStep&) { decode_step(self); },
    [self](const WeightsPublished& published) {
      if (self->state.feed)
        self->state.feed->want(self, published.version);
    },
    [self](const CancelGeneration& request) { cancel(self, request); },
    guarded([self](const LogprobsRequest& request) {
      auto& state = self->state;
      state.host.prepare();
      sync_weights(state, self); // adopts the newest weights unless sequences are running
      auto scores =
        models::score_logprobs(state.host.model.model, {request.prompt_tokens}, {request.completion_tokens});
      return LogprobsReply{std::move(scores.front()), state.version};
    }),
    guarded([self](const TokenizeRequest& request) {
      self->state.host.prepare();
      return self->state.host.tokenize(request);
    }),
  };
}

} // namespace

caf::actor spawn_policy_with_board(caf::actor_system& system, ModelActorSpec spec, std::shared_ptr<WeightBoard> board) {
  return system.spawn<caf::detached>(policy_actor, std::move(spec), std::move(board), caf::actor{});
}

caf::actor spawn_remote_replica(caf::actor_system& system, ModelActorSpec spec, caf::actor weight_server) {
  return system.spawn<caf::detached>(policy_actor, std::move(spec), nullptr, std::move(weight_server));
}

caf::actor spawn_policy_actor(caf::actor_system& system, ModelActorSpec spec) {
  return spawn_policy_with_board(system, std::move(spec), nullptr);
}

} // namespace chorus::actors
