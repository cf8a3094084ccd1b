// Attention masks: which keys each query may attend to, as booleans (true: attended) or as the
// additive masks softmax takes (0 attended, -inf not), for prefill blocks, sliding windows and
// decode steps over a cache's slots.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace chorus::models {

/// Which cache columns each row of a block of `time` new tokens starting at column `start` may
/// attend to: valid earlier columns (`key_valid` [batch, capacity]) and block columns up to its own;
/// [batch, time, start + time] (bool). A row with nothing to attend to (padding) attends to its own
/// column, so softmax stays finite.
torch::Tensor block_mask(const torch::Tensor& key_valid, std::int64_t time, std::int64_t start);

/// Which of `keys` cache columns the `time` tokens at columns [start, start + time) see through a
/// sliding window: column j from row i when (start + i) - j < window; [time, keys] (bool). A slot holds
/// its sequence from column 0 without gaps, so columns are positions.
torch::Tensor within_window(std::int64_t time, std::int64_t keys, std::int64_t start, std::int64_t window,
                            torch::Device device);

/// The additive mask [batch, 1, time, keys] of `allowed` [batch, time, keys].
torch::Tensor additive_mask(const torch::Tensor& allowed, torch::ScalarType dtype);

/// The additive mask [n, 1, 1, longest] of a decode step that gathers its sequences' cache slots:
/// sequence i reads columns [0, columns[i]] (-inf beyond), longest = max(columns) + 1.
torch::Tensor decode_mask(const torch::Tensor& columns, torch::ScalarType dtype);

/// `mask` (decode_mask of `columns`) for a sliding-window layer: columns `window` or more before a
/// sequence's own are -inf too.
torch::Tensor window_mask(const torch::Tensor& mask, const torch::Tensor& columns, std::int64_t window);

} // namespace chorus::models
