// Gradient checkpointing (activation recomputation): a block keeps only its input for the backward
// pass and runs again there, so a training pass holds the activations of one decoder layer at a time
// instead of every layer's, for one more forward pass of compute.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace chorus::models {

/// What a checkpointed block computes from its input: one or more outputs, the same number each time.
using CheckpointedBlock = std::function<std::vector<torch::Tensor>(const torch::Tensor& input)>;

/// `block`(x) as autograd sees it, keeping only `x` for the backward pass. The block runs now with
/// autograd recording (so it computes exactly as in any training pass: LoRA's dropout, the unfused
/// weights), its graph freed at once; in the backward pass it runs again from the same state of the
/// device's random generator (dropout draws the same masks, unless another thread draws from that
/// generator in between: two models training with LoRA dropout at once in one process), and the
/// gradients of its outputs reach
/// `x` and `parameters`: every tensor the block reads that requires gradients (those it does not
/// use get none). Outputs that do not depend on them come back without gradients.
std::vector<torch::Tensor> checkpointed(const CheckpointedBlock& block, const torch::Tensor& x,
                                        const std::vector<torch::Tensor>& parameters);

} // namespace chorus::models
