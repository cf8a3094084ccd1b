// Choosing the next token of each sequence in a batch: greedy rows share one argmax, sampled rows
// share one softmax, and each sampled row draws with one uniform number from its own generator (so a
// sequence's tokens depend on its seed only, whatever else is in the batch). Drawing row by row with
// LibTorch's multinomial cost five ops and a vocabulary's worth of random numbers per row and step: at
// 64 sequences that was as long as the model's forward pass.
#pragma once

#include "models/generation.hpp"

#include <torch/torch.h>

#include <vector>

namespace chorus::models {

/// One token per row of `logits` [rows, vocab] (fp32): the argmax where the row's temperature is
/// <= 0, else a draw from softmax(logits / temperature) limited to top_k tokens and to the top_p
/// nucleus, with the row's generator. `options` and `generators` hold one entry per row.
std::vector<std::int64_t> sample_tokens(const torch::Tensor& logits, const std::vector<const SamplingOptions*>& options,
                                        const std::vector<at::Generator*>& generators);

/// A draw from `probabilities` (n values adding up to about 1; zeros are never drawn) by inverting
/// their cumulative sum at one uniform number from `generator`.
std::int64_t draw_token(const float* probabilities, std::int64_t n, at::Generator& generator);

/// The same draw for every row of `probabilities` [rows, vocab] at once, where they are (a GPU): one
/// uniform number per row from its generator, the inversion as a cumulative sum and a search in
/// float64, and only the chosen ids copied back. On a CPU it chooses what draw_token chooses.
std::vector<std::int64_t> draw_tokens(const torch::Tensor& probabilities,
                                      const std::vector<at::Generator*>& generators);

} // namespace chorus::models
