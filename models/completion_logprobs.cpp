#include "models/completion_logprobs.hpp"

#include "models/checkpointing.hpp"
#include "models/packing.hpp"

#include <algorithm>

namespace chorus::models {

namespace {

std::int64_t default_chunk_rows(std::int64_t vocab) {
  constexpr std::int64_t kChunkBytes = std::int64_t{256} << 20;
  return std::max<std::int64_t>(1024, kChunkBytes / (vocab * static_cast<std::int64_t>(sizeof(float))));
}

// The flat [n] entries of a [rows, time] `values` where `places` says, the rest 0.
torch::Tensor placed(const torch::Tensor& values, const torch::Tensor& places, std::int64_t rows, std::int64_t time) {
  return torch::zeros({rows * time}, values.options()).scatter(0, places, values).view({rows, time});
}

} // namespace

torch::Tensor state_logprobs(Transformer& model, const torch::Tensor& states, const torch::Tensor& targets,
                             std::int64_t chunk_rows) {
  if (chunk_rows <= 0)
    chunk_rows = default_chunk_rows(model->config().vocab_size);
  const auto rows = states.size(0);
  if (rows <= chunk_rows)
    return token_logprobs(model->logits(states), targets);
  std::vector<torch::Tensor> trained;
  if (auto weight = model->output_weight(); weight.requires_grad())
    trained.push_back(weight);
  const bool recording = torch::GradMode::is_enabled() && (states.requires_grad() || !trained.empty());
  auto* impl = model.get();
  std::vector<torch::Tensor> pieces;
  for (std::int64_t begin = 0; begin < rows; begin += chunk_rows) {
    auto n = std::min(chunk_rows, rows - begin);
    auto chunk = states.narrow(0, begin, n);
    auto chunk_targets = targets.narrow(0, begin, n);
    auto chunk_logprobs = [impl, chunk_targets](const torch::Tensor& x) {
      return std::vector<torch::Tensor>{token_logprobs(impl->logits(x), chunk_targets)};
    };
    pieces.push_back(recording ? checkpointed(chunk_logprobs, chunk, trained).front() : chunk_logprobs(chunk).front());
  }
  return torch::cat(pieces);
}

torch::Tensor completion_logprobs(Transformer& model, const torch::Tensor& hidden, const SequenceBatch& batch) {
  const auto rows = batch.targets.size(0), time = batch.targets.size(1);
  auto places = batch.completion_mask.reshape(-1).nonzero().squeeze(1);
  // Target (row, t) is predicted by the state at (row, t) of a row one column longer: row * (time + 1) + t.
  auto sources = places + torch::div(places, time, "floor");
  auto states = hidden.reshape({-1, hidden.size(-1)}).index_select(0, sources);
  return placed(state_logprobs(model, states, batch.targets.reshape(-1).index_select(0, places)), places, rows, time);
}

torch::Tensor completion_logprobs(Transformer& model, const SequenceBatch& batch) {
  auto packed = pack_shared_prompts(batch);
  if (!packed)
    return completion_logprobs(model, model->hidden_states(batch.tokens, batch.attention_mask), batch);
  auto device = batch.tokens.device();
  auto hidden =
    model->hidden_states(packed->tokens.to(device), packed->positions.to(device), packed->allowed.to(device));
  auto states = hidden.reshape({-1, hidden.size(-1)}).index_select(0, packed->sources.to(device));
  auto logprobs = state_logprobs(model, states, packed->targets.to(device));
  return placed(logprobs, packed->places.to(device), batch.targets.size(0), batch.targets.size(1));
}

} // namespace chorus::models
