// DPO on a JSONL file of preferences ({"prompt", "chosen", "rejected"}):
//
//   ./build/recipes/dpo/dpo --config examples/configs/dpo.json
#include <chorus/chorus.hpp>
using namespace chorus;

struct DpoConfig {
  // Preference pairs, one JSON object a line: {"prompt": ..., "chosen": ..., "rejected": ...}.
  Dataset<Preference> dataset;
  // The model to train; its weights at the start are DPO's frozen reference.
  ModelRef model;
  // The peak learning rate.
  double lr = 1e-6;
  // DPO's beta: the inverse temperature of the implicit reward (higher stays closer to the reference).
  double beta = 0.1;
  // The loss of a pair's margin: sigmoid (DPO), hinge (SLiC) or ipo (IPO).
  std::string loss_type = "sigmoid";
  // Passes over the pairs.
  int epochs = 1;
  // Pairs per optimizer step.
  int samples_per_batch = 32;
  // Seeds sampling and the order of the data: the same seed, the same run.
  std::uint64_t seed = 0;
  // Where the models run: cpu, or cuda / cuda:N with a CUDA build of LibTorch (docs/gpu.md).
  std::string device = "cpu";
  // Recompute each layer in the backward pass instead of keeping its activations: less memory for
  // long sequences and big batches, one more forward pass of compute (docs/models.md).
  bool gradient_checkpointing = false;
  // LoRA adapters trained instead of every weight: lora.r > 0 (e.g. --set lora.r=16); 0: full fine-tuning.
  LoraOptions lora;
};
CHORUS_CONFIG(DpoConfig, dataset, model, lr, beta, loss_type, epochs, samples_per_batch, seed, device,
              gradient_checkpointing, lora)

Task<void> dpo(DpoConfig config, RecipeContext& ctx) {
  auto builder = co_await config.model.to_builder(
    ctx, {.device = config.device, .gradient_checkpointing = config.gradient_checkpointing, .adapter = config.lora});
  auto model = co_await builder.spawn_train("dpo", {.keep_reference = true});
  auto preferences = co_await config.dataset.load(ctx);
  auto result = co_await DPO({.dataset = preferences,
                              .model = model,
                              .logger = ctx.logger(),
                              .lr = config.lr,
                              .beta = config.beta,
                              .loss_type = config.loss_type,
                              .epochs = config.epochs,
                              .samples_per_batch = config.samples_per_batch,
                              .seed = config.seed})
                  .run();
  ctx.log().info("DPO: {} steps, last loss {:.4f}, reward accuracy {:.2f}", result.steps, result.loss,
                 result.reward_accuracy);
  co_await model.save("dpo-final", ctx);
}
CHORUS_RECIPE_MAIN(dpo)
