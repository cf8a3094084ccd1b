// The log-probs a trainer learns from: only the states that predict a completion token go through
// the output projection, a bounded number of rows at a time, so that a batch's logits ([tokens,
// vocab], for a 150k vocabulary the largest tensor of a training pass) never exist whole.
#pragma once

#include "models/training.hpp"
#include "models/transformer.hpp"

#include <cstdint>

namespace chorus::models {

/// log p(targets) [n] (fp32) given the final hidden states [n, hidden] that predict them. The
/// output projection and its softmax run `chunk_rows` rows at a time (0: as many as keep a chunk's
/// fp32 logits within 256 MB, at least 1024); while autograd records and there is more than one
/// chunk, each chunk's logits are computed again in the backward pass instead of kept for it
/// (models/checkpointing.hpp), so the pass holds one chunk's logits at a time.
torch::Tensor state_logprobs(Transformer& model, const torch::Tensor& states, const torch::Tensor& targets,
                             std::int64_t chunk_rows = 0);

/// log p of `batch`'s completion targets under `model`: [batch, time - 1], as batch_logprobs gives
/// them, with 0 at the prompt's targets (those are not computed; rows scored unpacked also leave 0
/// wherever completion_mask is 0): callers weigh them by completion_mask. Rows that share a prompt
/// are scored packed (models/packing.hpp).
torch::Tensor completion_logprobs(Transformer& model, const SequenceBatch& batch);

/// The same given `hidden` [batch, time, hidden], the final hidden states of the batch's rows as
/// they are (Transformer::hidden_states), for a caller that also reads them (a value head).
torch::Tensor completion_logprobs(Transformer& model, const torch::Tensor& hidden, const SequenceBatch& batch);

} // namespace chorus::models
