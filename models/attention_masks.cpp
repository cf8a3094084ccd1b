#include "models/attention_masks.hpp"

#include <limits>

namespace chorus::models {

torch::Tensor block_mask(const torch::Tensor& key_valid, std::int64_t time, std::int64_t start) {
  auto keys = start + time;
  auto options = torch::TensorOptions().dtype(torch::kBool).device(key_valid.device());
  auto within = torch::ones({time, keys}, options).tril(start); // column j <= start + i
  auto allowed = within.unsqueeze(0) & key_valid.narrow(1, 0, keys).unsqueeze(1);
  // A row with nothing to attend to (padding) attends to its own column, so softmax stays finite.
  auto own = torch::zeros({time, keys}, options);
  own.narrow(1, start, time).copy_(torch::eye(time, options));
  return allowed | own.unsqueeze(0);
}

torch::Tensor within_window(std::int64_t time, std::int64_t keys, std::int64_t start, std::int64_t window,
                            torch::Device device) {
  return torch::ones({time, keys}, torch::TensorOptions().dtype(torch::kBool).device(device)).triu(start - window + 1);
}

torch::Tensor additive_mask(const torch::Tensor& allowed, torch::ScalarType dtype) {
  return torch::zeros({allowed.size(0), 1, allowed.size(1), allowed.size(2)},
                      torch::TensorOptions().dtype(dtype).device(allowed.device()))
    .masked_fill_(allowed.logical_not().unsqueeze(1), -std::numeric_limits<float>::infinity());
}

torch::Tensor decode_mask(const torch::Tensor& columns, torch::ScalarType dtype) {
  auto lengths = columns + 1;
  auto longest = lengths.max().item<std::int64_t>(); // the one host synchronisation of a decode step
  auto n = columns.size(0);
  auto beyond = torch::arange(longest, columns.options()).unsqueeze(0) >= lengths.unsqueeze(1);
  return torch::zeros({n, 1, 1, longest}, columns.options().dtype(dtype))
    .masked_fill_(beyond.view({n, 1, 1, longest}), -std::numeric_limits<float>::infinity());
}

torch::Tensor window_mask(const torch::Tensor& mask, const torch::Tensor& columns, std::int64_t window) {
  auto longest = mask.size(-1);
  auto too_old = torch::arange(longest, columns.options()).unsqueeze(0) <= (columns - window).unsqueeze(1);
  return mask.masked_fill(too_old.view({-1, 1, 1, longest}), -std::numeric_limits<float>::infinity());
}

} // namespace chorus::models
