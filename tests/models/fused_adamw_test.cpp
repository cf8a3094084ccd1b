// FusedAdamW against LibTorch's AdamW: same parameters after several steps, same state, and a
// checkpoint of one resumes in the other.
#include "models/fused_adamw.hpp"

#include <gtest/gtest.h>

#include <sstream>

using namespace chorus::models;

namespace {

struct Parameters {
  torch::Tensor matrix, bias, half; // the last in bf16: not fused, LibTorch's arithmetic
};

Parameters make_parameters() {
  torch::manual_seed(7);
  return {torch::randn({33, 17}).requires_grad_(true), torch::randn({17}).requires_grad_(true),
          torch::randn({9}).to(torch::kBFloat16).requires_grad_(true)};
}

template <class Optimizer>
std::unique_ptr<Optimizer> make_optimizer(const Parameters& p) {
  auto options = [](double decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
      torch::optim::AdamWOptions(3e-2).betas({0.8, 0.95}).eps(1e-6).weight_decay(decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{p.matrix}, options(0.1));
  groups.emplace_back(std::vector<torch::Tensor>{p.bias, p.half}, options(0.0));
  return std::make_unique<Optimizer>(groups, torch::optim::AdamWOptions(3e-2));
}

// A few steps of a fixed loss; the bias has no gradient on the second step (it is skipped then).
template <class Optimizer>
void take_steps(Parameters& p, Optimizer& optimizer, int steps, int first = 0) {
  for (int step = first; step < first + steps; ++step) {
    optimizer.zero_grad();
    auto loss =
      (p.matrix * p.matrix.sin()).sum() + (p.half.to(torch::kFloat32).pow(3)).sum() + (p.bias * p.bias.cos()).sum();
    loss.backward();
    if (step == 1)
      p.bias.mutable_grad() = torch::Tensor();
    optimizer.step();
  }
}

void expect_same(const Parameters& a, const Parameters& b) {
  EXPECT_TRUE(torch::allclose(a.matrix, b.matrix, 1e-5, 1e-6)) << (a.matrix - b.matrix).abs().max();
  EXPECT_TRUE(torch::allclose(a.bias, b.bias, 1e-5, 1e-6)) << (a.bias - b.bias).abs().max();
  EXPECT_TRUE(torch::equal(a.half, b.half));
}

TEST(FusedAdamW, TakesLibTorchsSteps) {
  auto fused_params = make_parameters(), reference_params = make_parameters();
  auto fused = make_optimizer<FusedAdamW>(fused_params);
  auto reference = make_optimizer<torch::optim::AdamW>(reference_params);
  take_steps(fused_params, *fused, 5);
  take_steps(reference_params, *reference, 5);
  expect_same(fused_params, reference_params);
  // The parameters moved (a no-op step would pass the comparison too).
  EXPECT_GT((fused_params.matrix - make_parameters().matrix).abs().max().item<float>(), 0.05);
  // The same state: step counts (the bias skipped one step) and moments.
  ASSERT_EQ(fused->state().size(), 3u);
  auto state_of = [](torch::optim::Optimizer& optimizer, const torch::Tensor& p) -> torch::optim::AdamWParamState& {
    return static_cast<torch::optim::AdamWParamState&>(*optimizer.state().at(optimizer_state_key(p)));
  };
  std::vector<std::int64_t> steps;
  for (const auto& p : {fused_params.matrix, fused_params.bias, fused_params.half})
    steps.push_back(state_of(*fused, p).step());
  EXPECT_EQ(steps, (std::vector<std::int64_t>{5, 4, 5}));
  auto& f = state_of(*fused, fused_params.matrix);
  auto& r = state_of(*reference, reference_params.matrix);
  EXPECT_TRUE(torch::allclose(f.exp_avg(), r.exp_avg(), 1e-5, 1e-7));
  EXPECT_TRUE(torch::allclose(f.exp_avg_sq(), r.exp_avg_sq(), 1e-5, 1e-8));
}

TEST(FusedAdamW, ResumesFromACheckpointOfLibTorchsAdamW) {
  auto fused_params = make_parameters(), reference_params = make_parameters();
  auto reference = make_optimizer<torch::optim::AdamW>(reference_params);
  take_steps(reference_params, *reference, 3);
  // Hand the parameters and the optimizer state over, as a restored trainer does.
  {
    torch::NoGradGuard no_grad;
    fused_params.matrix.copy_(reference_params.matrix);
    fused_params.bias.copy_(reference_params.bias);
    fused_params.half.copy_(reference_params.half);
  }
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    reference->save(archive);
    archive.save_to(buffer);
  }
  auto fused = make_optimizer<FusedAdamW>(fused_params);
  torch::serialize::InputArchive archive;
  archive.load_from(buffer);
  fused->load(archive);
  take_steps(fused_params, *fused, 2, 3);
  take_steps(reference_params, *reference, 2, 3);
  expect_same(fused_params, reference_params);
}

} // namespace

namespace {

// A step changes the parameters' version counters, as LibTorch's in-place ops do: caches of values
// derived from parameters (the transformer's fused q/k/v weight) rely on them.
TEST(FusedAdamW, AStepBumpsTheParametersVersions) {
  auto p = make_parameters();
  auto optimizer = make_optimizer<FusedAdamW>(p);
  auto before = p.matrix._version();
  take_steps(p, *optimizer, 1);
  EXPECT_GT(p.matrix._version(), before);
}

} // namespace
