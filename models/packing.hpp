// Shared-prompt packing: completions sampled from the same prompt (an RL group, a DPO pair) are
// scored in one row, the prompt once and then each completion after it. Each completion attends to
// the prompt and to its own earlier tokens only, at the positions it would have on its own, so every
// log-prob is the one its own row gives (up to rounding) while the prompt's tokens go through the
// model once per row instead of once per completion. In the main job's GSPO steps a prompt is two
// thirds of each sequence and eight completions share it: 2.7x fewer tokens through the model.
#pragma once

#include "models/training.hpp"
#include "models/transformer.hpp"

#include <optional>

namespace chorus::models {

/// The rows of a SequenceBatch packed by shared prompt.
struct PackedBatch {
  torch::Tensor tokens;    // [rows, time] int64: a prompt, then its completions one after another
  torch::Tensor positions; // [rows, time] int64: rotary positions; each completion continues its prompt
  torch::Tensor allowed;   // [rows, time, time] bool: the keys each token attends to
  torch::Tensor sources;   // [n] int64: row * time + t of the state that predicts each completion token
  torch::Tensor targets;   // [n] int64: the completion tokens, row by row of the batch
  torch::Tensor places;    // [n] int64: where each goes in the batch's [batch, time - 1] targets, flat
};

/// `batch` packed, its rows in the order their prompts first appear; nothing if no two rows share a
/// prompt (packing would save nothing). A packed row's attention costs the square of its length: a
/// row takes another completion of its prompt only while that stays within twice the completions'
/// own rows, so long completions after a short prompt are split over several rows.
std::optional<PackedBatch> pack_shared_prompts(const SequenceBatch& batch);

/// The order that puts samples with equal prompts next to each other (groups in the order their
/// prompts first appear, each group in its given order): micro-batches cut from it pack well.
std::vector<std::size_t> grouped_by_prompt(const std::vector<const std::vector<std::int64_t>*>& prompts);

} // namespace chorus::models
