// Gradient checkpointing as a custom autograd function whose inputs are the block's input and the
// parameters it reads, so that its backward pass hands autograd their gradients (and the parameters'
// own accumulate as after any backward pass), even when the input itself needs none (LoRA: the
// embeddings are frozen).
#include "models/checkpointing.hpp"

#include <mutex>

namespace chorus::models {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the backward pass needs besides the saved tensors: the block and the generator state it ran from.
struct Recompute : torch::CustomClassHolder {
  CheckpointedBlock block;
  at::Generator generator; // the default generator of the input's device: what dropout draws from
  torch::Tensor generator_state;
};

torch::Tensor generator_state(at::Generator& generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_generator_state(at::Generator& generator, const torch::Tensor& state) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

// Runs the block on `input` with autograd recording.
std::vector<torch::Tensor> run_recording(const Recompute& recompute, const torch::Tensor& input) {
  torch::AutoGradMode recording(true);
  auto outputs = recompute.block(input);
  if (outputs.empty())
    throw std::logic_error("a checkpointed block returned no outputs");
  return outputs;
}

class Checkpoint : public torch::autograd::Function<Checkpoint> {
public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, at::TensorList parameters,
                               c10::intrusive_ptr<Recompute> recompute) {
    recompute->generator_state = generator_state(recompute->generator);
    variable_list outputs;
    for (const auto& output : run_recording(*recompute, x.detach())) // the graph goes with them
      outputs.push_back(output.detach());
    variable_list saved{x};
    saved.insert(saved.end(), parameters.begin(), parameters.end());
    ctx->save_for_backward(saved);
    ctx->set_materialize_grads(false); // an output nothing used stays without a gradient, not zeros
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(std::move(recompute));
    ctx->saved_data["outputs"] = static_cast<std::int64_t>(outputs.size());
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list output_grads) {
    auto saved = ctx->get_saved_variables();
    auto recompute = c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    const auto& x = saved.front();
    auto input = x.detach().requires_grad_(x.requires_grad());

    // The same draws as the first run, and the generator left as it was found: other users of it
    // (this thread's next dropout) go on as if nothing had run.
    auto current = generator_state(recompute->generator);
    set_generator_state(recompute->generator, recompute->generator_state);
    std::vector<torch::Tensor> outputs;
    try {
      outputs = run_recording(*recompute, input);
    } catch (...) {
      set_generator_state(recompute->generator, current);
      throw;
    }
    set_generator_state(recompute->generator, current);
    if (static_cast<std::int64_t>(outputs.size()) != ctx->saved_data["outputs"].toInt())
      throw std::logic_error("a checkpointed block returned another number of outputs when recomputed");

    variable_list roots, root_grads;
    for (std::size_t i = 0; i < outputs.size(); ++i)
      if (outputs[i].requires_grad() && output_grads[i].defined()) {
        roots.push_back(outputs[i]);
        root_grads.push_back(output_grads[i]);
      }
    variable_list wanted;
    if (x.requires_grad())
      wanted.push_back(input);
    wanted.insert(wanted.end(), saved.begin() + 1, saved.end());
    // One gradient per forward input: x, each parameter, and none for the recompute capsule.
    variable_list grads(saved.size() + 1);
    if (roots.empty() || wanted.empty())
      return grads;
    auto found = torch::autograd::grad(roots, wanted, root_grads, /*retain_graph=*/false, /*create_graph=*/false,
                                       /*allow_unused=*/true);
    std::size_t next = 0;
    if (x.requires_grad())
      grads[0] = found[next++];
    for (std::size_t i = 1; i < saved.size(); ++i)
      grads[i] = found[next++];
    return grads;
  }
};

} // namespace

std::vector<torch::Tensor> checkpointed(const CheckpointedBlock& block, const torch::Tensor& x,
                                        const std::vector<torch::Tensor>& parameters) {
  auto recompute = c10::make_intrusive<Recompute>();
  recompute->block = block;
  recompute->generator = at::globalContext().defaultGenerator(x.device());
  return Checkpoint::apply(x, at::TensorList(parameters), std::move(recompute));
}

} // namespace chorus::models
