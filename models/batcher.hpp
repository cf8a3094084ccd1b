// ContinuousBatcher: generation for sequences that arrive and finish at different times. Each running
// sequence owns a slot of one preallocated KV cache; every step admits waiting sequences into free
// slots (a batched prefill per group of similar prompt lengths) and then advances every running
// sequence by one token (one batched decode), so a sequence joins the running batch as soon as
// another one finishes.
#pragma once

#include "models/generation.hpp"

#include <ATen/core/Generator.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <unordered_set>
#include <vector>

namespace chorus::models {

/// One sequence to continue.
struct SequenceRequest {
  std::vector<std::int64_t> prompt;
  /// Its own sampling options: sequences in one batch may differ in temperature, seed, length...
  SamplingOptions options;
  /// Called after each new token with what was generated so far; true ends the sequence.
  std::function<bool(const GeneratedSequence& so_far)> should_stop;
};

class ContinuousBatcher {
public:
  using Id = std::uint64_t;

  struct Finished {
    Id id;
    GeneratedSequence sequence;
  };

  /// Runs up to `max_batch_size` sequences at once, each at most `max_sequence_length` tokens long
  /// (prompt and completion). The cache starts small and doubles (in sequences and in length) as the
  /// running sequences need it.
  ContinuousBatcher(Transformer model, std::int64_t max_batch_size, std::int64_t max_sequence_length);

  /// Queues a sequence and returns its id.
  /// @throws std::invalid_argument for an empty prompt, a token id outside the vocabulary, or a
  /// prompt plus max_new_tokens beyond max_sequence_length or the model's positions.
  Id add(SequenceRequest request);

  /// One step: admits waiting sequences into free slots (unless `admit` is false: to let the running
  /// ones finish before the weights change), then generates one token for every running sequence.
  /// Returns the sequences that finished in it.
  std::vector<Finished> step(bool admit = true);

  /// True when nothing is waiting or running.
  bool idle() const noexcept {
    return waiting_.empty() && running_.empty();
  }

  std::size_t running() const noexcept {
    return running_.size();
  }

  std::size_t waiting() const noexcept {
    return waiting_.size();
  }

  /// Drops one waiting or running sequence, freeing its slot at once; its id is never reported.
  /// Returns false if no such sequence is queued or running (it finished already).
  bool cancel(Id id);

  /// Drops every waiting and running sequence (their ids are never reported) and frees the cache.
  void clear();

private:
  struct Sequence {
    Id id;
    SequenceRequest request;
    GeneratedSequence result;
    at::Generator generator;
    std::int64_t slot = -1;
    std::int64_t length = 0;               // tokens in the cache
    std::int64_t pending = 0;              // the newest token, not yet in the cache
    std::optional<GrammarMatcher> grammar; // with options.grammar: where its parse stands
    // With a repetition penalty: the ids of the prompt and of the first `seen_tokens` generated.
    std::unordered_set<std::int64_t> seen;
    std::size_t seen_tokens = 0;
  };

  // Adds `token` (with its log-prob) to `sequence`; true if that ends it.
  bool append(Sequence& sequence, std::int64_t token, float logprob);
  // Bans, in `samplable`, what the grammar of each guided row does not allow; true in `exhausted`
  // for a guided row that may draw nothing (it ends without a token). Returns the rows whose only
  // allowed tokens are stop tokens (they are drawn even before min_new_tokens).
  std::vector<bool> apply_grammars(torch::Tensor& samplable, const torch::Tensor& logits32,
                                   const std::vector<Sequence*>& rows, std::vector<bool>& exhausted);
  // Moves the sequence's grammar past `token`; false (the sequence ends, its error said) if it fails.
  bool advance_grammar(Sequence& sequence, std::int64_t token);
  // Applies each row's repetition penalty to `samplable` (a copy of `logits32` first, if it is that).
  void apply_repetition_penalties(torch::Tensor& samplable, const torch::Tensor& logits32,
                                  const std::vector<Sequence*>& rows);
  // Picks each row's next token from `logits` [rows, vocab] and appends it; moves finished ones out.
  void sample_and_append(const torch::Tensor& logits, std::vector<Sequence*>& rows, std::vector<Finished>& finished);
  void admit(std::vector<Finished>& finished);
  void prefill(std::vector<Sequence*>& group, std::vector<Finished>& finished);
  void ensure_capacity(std::int64_t slots, std::int64_t columns);

  Transformer model_;
  torch::Device device_; // the model's: token ids go there, sampled ids and log-probs come back
  std::int64_t max_batch_size_, max_sequence_length_;
  KVCache cache_;
  std::vector<std::int64_t> free_slots_;
  std::deque<Sequence> waiting_;
  std::vector<Sequence> running_;
  Id next_id_ = 1;
};

} // namespace chorus::models
