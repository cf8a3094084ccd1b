// Continuous batching. Slots hold their sequence from cache column 0 without padding, so a sequence's
// column is its position; a prefill right-pads the admitted prompts to one length (causal attention
// never lets a real token see the padding after it) and copies their keys and values into their slots.
#include "models/batcher.hpp"

#include "models/sampling.hpp"
#include "models/training.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace chorus::models {

namespace {

torch::Tensor int64_tensor(const std::vector<std::int64_t>& values, torch::Device device) {
  auto host = torch::tensor(values, torch::kInt64);
  return device.is_cpu() ? host : host.to(device, /*non_blocking=*/false);
}

} // namespace

ContinuousBatcher::ContinuousBatcher(Transformer model, std::int64_t max_batch_size, std::int64_t max_sequence_length)
  : model_(std::move(model)), device_(model_->device()), max_batch_size_(max_batch_size),
    max_sequence_length_(max_sequence_length) {
  if (max_batch_size < 1 || max_sequence_length < 2)
    throw std::invalid_argument("ContinuousBatcher: max_batch_size must be >= 1 and max_sequence_length >= 2");
  max_sequence_length_ = std::min(max_sequence_length_, model_->config().max_position_embeddings);
}

ContinuousBatcher::Id ContinuousBatcher::add(SequenceRequest request) {
  const auto& prompt = request.prompt;
  if (prompt.empty())
    throw std::invalid_argument("generate: empty prompt");
  check_token_ids(prompt, model_->config().vocab_size, "generate");
  const auto& options = request.options;
  for (const auto& [token, bias] : options.logit_bias) {
    if (token < 0 || token >= model_->config().vocab_size)
      throw std::invalid_argument("generate: logit_bias names token id " + std::to_string(token)
                                  + ", outside the vocabulary [0, " + std::to_string(model_->config().vocab_size)
                                  + ")");
    if (!std::isfinite(bias))
      throw std::invalid_argument("generate: the logit_bias of token " + std::to_string(token)
                                  + " must be a finite number");
  }
  if (!std::isfinite(options.presence_penalty) || !std::isfinite(options.frequency_penalty))
    throw std::invalid_argument("generate: presence_penalty and frequency_penalty must be finite numbers");
  if (!(options.repetition_penalty > 0) || !std::isfinite(options.repetition_penalty))
    throw std::invalid_argument("generate: repetition_penalty must be a positive number, got "
                                + std::to_string(options.repetition_penalty));
  if (options.top_logprobs < 0)
    throw std::invalid_argument("generate: top_logprobs must be >= 0, got " + std::to_string(options.top_logprobs));
  auto total = static_cast<std::int64_t>(prompt.size()) + std::max<std::int64_t>(request.options.max_new_tokens, 0);
  if (total > max_sequence_length_)
    throw std::invalid_argument("generate: prompt of " + std::to_string(prompt.size()) + " tokens plus "
                                + std::to_string(request.options.max_new_tokens) + " new tokens exceeds the "
                                + std::to_string(max_sequence_length_) + " positions a sequence may use");
  auto generator = at::detail::createCPUGenerator(request.options.seed);
  Sequence sequence{next_id_++, std::move(request), {}, std::move(generator)};
  if (const auto& grammar = sequence.request.options.grammar)
    sequence.grammar.emplace(grammar->start());
  auto id = sequence.id;
  waiting_.push_back(std::move(sequence));
  return id;
}

bool ContinuousBatcher::cancel(Id id) {
  auto waiting = std::find_if(waiting_.begin(), waiting_.end(), [id](const Sequence& s) { return s.id == id; });
  if (waiting != waiting_.end()) {
    waiting_.erase(waiting);
    return true;
  }
  auto running = std::find_if(running_.begin(), running_.end(), [id](const Sequence& s) { return s.id == id; });
  if (running == running_.end())
    return false;
  free_slots_.push_back(running->slot); // the slot's stale keys are overwritten when it is reused
  running_.erase(running);
  return true;
}

void ContinuousBatcher::clear() {
  waiting_.clear();
  running_.clear();
  cache_ = KVCache{};
  free_slots_.clear();
}

void ContinuousBatcher::ensure_capacity(std::int64_t slots, std::int64_t columns) {
  // The cache grows to what the running sequences need, doubling in either dimension so that copies
  // stay rare: max_batch_size and max_sequence_length are limits, not allocations.
  std::int64_t have_slots = cache_.keys.empty() ? 0 : cache_.keys.front().size(0);
  std::int64_t have_columns = cache_.capacity();
  if (slots <= have_slots && columns <= have_columns)
    return;
  auto new_slots = std::min(max_batch_size_, std::max({slots, 2 * have_slots, std::int64_t{8}}));
  auto new_columns = std::min(max_sequence_length_, std::max({columns, 2 * have_columns, std::int64_t{256}}));
  if (slots <= have_slots)
    new_slots = have_slots;
  if (columns <= have_columns)
    new_columns = have_columns;
  auto grown = model_->make_cache(new_slots, new_columns);
  for (std::size_t layer = 0; layer < cache_.keys.size(); ++layer) {
    grown.keys[layer].narrow(0, 0, have_slots).narrow(2, 0, have_columns).copy_(cache_.keys[layer]);
    grown.values[layer].narrow(0, 0, have_slots).narrow(2, 0, have_columns).copy_(cache_.values[layer]);
  }
  cache_ = std::move(grown);
  for (auto slot = new_slots - 1; slot >= have_slots; --slot)
    free_slots_.push_back(slot);
}

bool ContinuousBatcher::append(Sequence& sequence, std::int64_t token, float logprob) {
  auto& result = sequence.result;
  const auto& options = sequence.request.options;
  result.tokens.push_back(token);
  result.logprobs.push_back(logprob);
  sequence.pending = token;
  bool stop =
    std::find(options.stop_token_ids.begin(), options.stop_token_ids.end(), token) != options.stop_token_ids.end();
  // The stop check runs on every token (a stream's text goes out there) but ends the sequence only
  // from min_new_tokens on.
  if (!stop && sequence.request.should_stop)
    stop =
      sequence.request.should_stop(result) && static_cast<std::int64_t>(result.tokens.size()) >= options.min_new_tokens;
  if (stop || static_cast<std::int64_t>(result.tokens.size()) >= options.max_new_tokens) {
    result.finish = stop ? FinishReason::stop : FinishReason::length;
    return true;
  }
  return false;
}

void ContinuousBatcher::apply_repetition_penalties(torch::Tensor& samplable, const torch::Tensor& logits32,
                                                   const std::vector<Sequence*>& rows) {
  std::vector<std::int64_t> penalised_rows, penalised_ids;
  std::vector<float> penalties;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto& row = *rows[i];
    auto penalty = row.request.options.repetition_penalty;
    if (penalty == 1.0)
      continue;
    // Kept across steps: each step adds the tokens generated since, not the whole prompt again.
    if (row.seen_tokens == 0 && row.seen.empty())
      row.seen.insert(row.request.prompt.begin(), row.request.prompt.end());
    for (; row.seen_tokens < row.result.tokens.size(); ++row.seen_tokens)
      row.seen.insert(row.result.tokens[row.seen_tokens]);
    for (auto id : row.seen) {
      penalised_rows.push_back(static_cast<std::int64_t>(i));
      penalised_ids.push_back(id);
      penalties.push_back(static_cast<float>(penalty));
    }
  }
  if (penalties.empty())
    return;
  if (samplable.is_same(logits32))
    samplable = logits32.clone();
  auto index = std::vector<torch::indexing::TensorIndex>{int64_tensor(penalised_rows, device_),
                                                         int64_tensor(penalised_ids, device_)};
  auto values = samplable.index(index);
  auto penalty = torch::tensor(penalties, torch::kFloat32).to(device_);
  samplable.index_put_(index, torch::where(values > 0, values / penalty, values * penalty));
}

void ContinuousBatcher::sample_and_append(const torch::Tensor& logits, std::vector<Sequence*>& rows,
                                          std::vector<Finished>& finished) {
  auto logits32 = logits.to(torch::kFloat32);
  // Padding ids past a row's limit are never drawn (log-probs below still use the full logits): one
  // mask over the batch, not an op per row.
  const auto vocab = logits32.size(1);
  std::vector<std::int64_t> limits;
  bool limited = false;
  for (auto* row : rows) {
    auto limit = row->request.options.sample_below;
    limits.push_back(limit > 0 && limit < vocab ? limit : vocab);
    limited = limited || limits.back() < vocab;
  }
  torch::Tensor beyond; // [rows, vocab]: true past a row's limit
  auto samplable = logits32;
  if (limited) {
    beyond = torch::arange(vocab, torch::TensorOptions(torch::kInt64).device(device_)).unsqueeze(0)
      >= int64_tensor(limits, device_).unsqueeze(1);
    samplable = logits32.masked_fill(beyond, -std::numeric_limits<float>::infinity());
  }
  apply_repetition_penalties(samplable, logits32, rows);
  // Penalties and biases move what is drawn (the log-probs below stay the model's): one scattered
  // add over the batch for the (row, token) pairs they touch.
  std::vector<std::int64_t> shifted_rows, shifted_ids;
  std::vector<float> shifts;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& options = rows[i]->request.options;
    auto add = [&](std::int64_t id, double shift) {
      shifted_rows.push_back(static_cast<std::int64_t>(i));
      shifted_ids.push_back(id);
      shifts.push_back(static_cast<float>(shift));
    };
    if (options.presence_penalty != 0.0 || options.frequency_penalty != 0.0) {
      std::unordered_map<std::int64_t, std::int64_t> counts;
      for (auto token : rows[i]->result.tokens)
        ++counts[token];
      for (const auto& [token, count] : counts)
        add(token, -(options.presence_penalty + options.frequency_penalty * static_cast<double>(count)));
    }
    for (const auto& [token, bias] : options.logit_bias)
      add(token, bias);
  }
  if (!shifts.empty()) {
    if (samplable.is_same(logits32))
      samplable = logits32.clone();
    samplable.index_put_({int64_tensor(shifted_rows, device_), int64_tensor(shifted_ids, device_)},
                         torch::tensor(shifts, torch::kFloat32).to(device_), /*accumulate=*/true);
  }
  std::vector<bool> exhausted;
  auto only_stops = apply_grammars(samplable, logits32, rows, exhausted);
  // Rows short of their min_new_tokens cannot draw a stop token yet (unless their grammar is done).
  std::vector<std::int64_t> held_rows, held_ids;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& options = rows[i]->request.options;
    if (static_cast<std::int64_t>(rows[i]->result.tokens.size()) >= options.min_new_tokens || only_stops[i])
      continue;
    for (auto id : options.stop_token_ids)
      if (id >= 0 && id < vocab) {
        held_rows.push_back(static_cast<std::int64_t>(i));
        held_ids.push_back(id);
      }
  }
  if (!held_rows.empty()) {
    if (samplable.is_same(logits32))
      samplable = logits32.clone();
    samplable.index_put_({int64_tensor(held_rows, device_), int64_tensor(held_ids, device_)},
                         torch::tensor(-std::numeric_limits<float>::infinity(), samplable.options()));
  }
  std::vector<const SamplingOptions*> options;
  std::vector<at::Generator*> generators;
  std::int64_t most_alternatives = 0;
  for (auto* row : rows) {
    options.push_back(&row->request.options);
    generators.push_back(&row->generator);
    most_alternatives = std::max(most_alternatives, row->request.options.top_logprobs);
  }
  auto chosen = sample_tokens(samplable, options, generators);
  auto chosen_tensor = int64_tensor(chosen, device_);
  auto logprobs = token_logprobs(logits32.unsqueeze(1), chosen_tensor.unsqueeze(1)).squeeze(1).to(torch::kCPU);
  auto logprob_values = logprobs.accessor<float, 1>();
  // The most likely tokens of the model's distribution (padding ids left out), for the rows that ask.
  torch::Tensor top_values, top_ids;
  if (most_alternatives > 0) {
    auto distribution = torch::log_softmax(logits32, -1);
    if (limited)
      distribution = distribution.masked_fill(beyond, -std::numeric_limits<float>::infinity());
    auto top = distribution.topk(std::min(most_alternatives, vocab), -1);
    top_values = std::get<0>(top).to(torch::kCPU);
    top_ids = std::get<1>(top).to(torch::kCPU);
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto row = static_cast<std::int64_t>(i);
    if (auto wanted = std::min(rows[i]->request.options.top_logprobs, std::min(limits[i], most_alternatives));
        wanted > 0 && !exhausted[i]) {
      auto values = top_values.accessor<float, 2>();
      auto ids = top_ids.accessor<std::int64_t, 2>();
      auto& alternatives = rows[i]->result.top_logprobs.emplace_back();
      for (std::int64_t k = 0; k < wanted; ++k)
        alternatives.emplace_back(ids[row][k], values[row][k]);
    }
    bool done = exhausted[i];
    if (done)
      rows[i]->result.finish = FinishReason::stop; // its grammar allows nothing more, not even a stop token
    else
      done = append(*rows[i], chosen[i], logprob_values[row]);
    if (!done && rows[i]->grammar)
      done = !advance_grammar(*rows[i], chosen[i]);
    if (done) {
      finished.push_back({rows[i]->id, std::move(rows[i]->result)});
      free_slots_.push_back(rows[i]->slot);
      rows[i]->slot = -1; // marks it for removal
    }
  }
}

bool ContinuousBatcher::advance_grammar(Sequence& sequence, std::int64_t token) {
  try {
    if (sequence.request.options.grammar->advance(*sequence.grammar, token))
      return true;
    sequence.result.error = "guided decoding drew token " + std::to_string(token) + ", which its grammar refuses";
  } catch (const std::exception& error) {
    sequence.result.error = std::string("guided decoding: ") + error.what();
  }
  sequence.result.finish = FinishReason::stop;
  return false;
}

std::vector<bool> ContinuousBatcher::apply_grammars(torch::Tensor& samplable, const torch::Tensor& logits32,
                                                    const std::vector<Sequence*>& rows, std::vector<bool>& exhausted) {
  std::vector<bool> only_stops(rows.size(), false);
  exhausted.assign(rows.size(), false);
  std::vector<std::int64_t> guided; // the rows with a grammar: only they get a mask
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (rows[i]->grammar)
      guided.push_back(static_cast<std::int64_t>(i));
  if (guided.empty())
    return only_stops;
  const auto vocab = logits32.size(1);
  auto banned = torch::zeros({static_cast<std::int64_t>(guided.size()), vocab}, torch::kBool);
  auto* data = banned.data_ptr<bool>();
  for (std::size_t k = 0; k < guided.size(); ++k) {
    const auto i = static_cast<std::size_t>(guided[k]);
    const auto& options = rows[i]->request.options;
    const auto& state = *rows[i]->grammar;
    bool* row = data + static_cast<std::int64_t>(k) * vocab;
    std::shared_ptr<const TokenMask> mask;
    try {
      mask = options.grammar->allowed(state);
    } catch (const std::exception& error) { // this row's grammar only: the others carry on
      rows[i]->result.error = std::string("guided decoding: ") + error.what();
      exhausted[i] = true;
      continue; // what it draws is dropped
    }
    const auto known = std::min(vocab, options.grammar->vocabulary().size());
    bool any_text = false;
    for (std::int64_t token = 0; token < vocab; ++token) {
      bool allowed = token < known && allows(*mask, token);
      row[token] = !allowed;
      any_text = any_text || allowed;
    }
    // A stop token where the sentence may end.
    bool any_stop = false;
    if (state.accepting())
      for (auto id : options.stop_token_ids)
        if (id >= 0 && id < vocab) {
          row[id] = false;
          any_stop = true;
        }
    only_stops[i] = !any_text;
    exhausted[i] = !any_text && !any_stop;
    if (exhausted[i] && !state.accepting()) // a vocabulary that cannot spell what the grammar needs next
      rows[i]->result.error = "guided decoding: no token of the vocabulary continues the grammar here";
    if (exhausted[i])
      std::fill(row, row + vocab, false); // what it draws is dropped
  }
  auto index = int64_tensor(guided, device_);
  samplable = samplable.index_copy(
    0, index,
    samplable.index_select(0, index).masked_fill(banned.to(device_), -std::numeric_limits<float>::infinity()));
  return only_stops;
}

void ContinuousBatcher::admit(std::vector<Finished>& finished) {
  if (waiting_.empty() || running_.size() >= static_cast<std::size_t>(max_batch_size_))
    return;
  auto count = std::min(waiting_.size(), static_cast<std::size_t>(max_batch_size_) - running_.size());
  std::int64_t needed = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const auto& request = waiting_[i].request;
    needed = std::max(needed, static_cast<std::int64_t>(request.prompt.size()) + request.options.max_new_tokens);
  }
  ensure_capacity(static_cast<std::int64_t>(running_.size() + count), needed);

  auto first = running_.size();
  for (std::size_t i = 0; i < count; ++i) {
    auto sequence = std::move(waiting_.front());
    waiting_.pop_front();
    sequence.slot = free_slots_.back();
    free_slots_.pop_back();
    sequence.length = static_cast<std::int64_t>(sequence.request.prompt.size());
    running_.push_back(std::move(sequence));
  }
  // Prefill in groups of similar prompt lengths, each right-padded to its own longest: padding 64
  // prompts of 11 to 24 tokens to the longest spent a third of the prefill on padding.
  std::vector<Sequence*> admitted;
  for (auto i = first; i < running_.size(); ++i)
    admitted.push_back(&running_[i]);
  std::sort(admitted.begin(), admitted.end(), [](const Sequence* a, const Sequence* b) {
    return a->length != b->length ? a->length < b->length : a < b; // ties in admission order
  });
  for (std::size_t begin = 0; begin < admitted.size();) {
    auto shortest = admitted[begin]->length;
    auto end = begin + 1;
    while (end < admitted.size() && admitted[end]->length <= std::max(shortest * 5 / 4, shortest + 8))
      ++end;
    std::vector<Sequence*> group(admitted.begin() + static_cast<std::ptrdiff_t>(begin),
                                 admitted.begin() + static_cast<std::ptrdiff_t>(end));
    prefill(group, finished);
    begin = end;
  }
}

void ContinuousBatcher::prefill(std::vector<Sequence*>& group, std::vector<Finished>& finished) {
  // The group's prompts, right-padded to the longest, run in a cache of their own (causal attention
  // never lets a real token see the padding after it), then go into their slots.
  auto batch = static_cast<std::int64_t>(group.size());
  std::int64_t longest = 0;
  for (auto* sequence : group)
    longest = std::max(longest, sequence->length);
  auto tokens = torch::zeros({batch, longest}, torch::kInt64);
  auto key_valid = torch::zeros({batch, longest}, torch::kBool);
  std::vector<std::int64_t> slots, last;
  for (std::int64_t row = 0; row < batch; ++row) {
    auto* sequence = group[static_cast<std::size_t>(row)];
    tokens[row].narrow(0, 0, sequence->length).copy_(torch::tensor(sequence->request.prompt, torch::kInt64));
    key_valid[row].narrow(0, 0, sequence->length).fill_(true);
    slots.push_back(sequence->slot);
    last.push_back(sequence->length - 1);
  }
  auto positions =
    torch::arange(longest, torch::TensorOptions(torch::kInt64).device(device_)).unsqueeze(0).expand({batch, longest});
  auto block = model_->make_cache(batch, longest);
  auto logits =
    model_->forward_cached(tokens.to(device_), positions, key_valid.to(device_), block, 0, int64_tensor(last, device_));
  auto slot_tensor = int64_tensor(slots, device_);
  for (std::size_t layer = 0; layer < block.keys.size(); ++layer) {
    cache_.keys[layer].narrow(2, 0, longest).index_copy_(0, slot_tensor, block.keys[layer]);
    cache_.values[layer].narrow(2, 0, longest).index_copy_(0, slot_tensor, block.values[layer]);
  }
  sample_and_append(logits, group, finished);
}

std::vector<ContinuousBatcher::Finished> ContinuousBatcher::step(bool admit_waiting) {
  // Inference mode skips autograd bookkeeping on every op; nothing made here is trained through.
  c10::InferenceMode inference;
  std::vector<Finished> finished;
  // A sequence asking for no tokens finishes at once, without a slot, wherever it waits.
  auto no_tokens = [](const Sequence& s) { return s.request.options.max_new_tokens <= 0; };
  for (const auto& sequence : waiting_)
    if (no_tokens(sequence))
      finished.push_back({sequence.id, {}});
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), no_tokens), waiting_.end());
  if (admit_waiting)
    admit(finished);
  auto erase_finished = [&] {
    running_.erase(std::remove_if(running_.begin(), running_.end(), [](const Sequence& s) { return s.slot < 0; }),
                   running_.end());
  };
  erase_finished();
  if (running_.empty())
    return finished;

  std::vector<Sequence*> rows;
  std::vector<std::int64_t> tokens, slots, columns;
  for (auto& sequence : running_) {
    rows.push_back(&sequence);
    tokens.push_back(sequence.pending);
    slots.push_back(sequence.slot);
    columns.push_back(sequence.length);
    ++sequence.length;
  }
  auto logits =
    model_->decode(int64_tensor(tokens, device_), int64_tensor(slots, device_), int64_tensor(columns, device_), cache_);
  sample_and_append(logits, rows, finished);
  erase_finished();
  return finished;
}

} // namespace chorus::models
