// Supervised fine-tuning on a JSONL file of demonstrations, with a held-out split:
//
//   ./build/recipes/sft/sft --config examples/configs/sft.json
#include <chorus/chorus.hpp>
using namespace chorus;

struct SftConfig {
  // Demonstrations, one JSON object a line: {"prompt": ..., "completion": ...} or {"messages": [...]}.
  Dataset<Completion> dataset;
  // The model to train: builtin:tiny or the path of a Hugging Face model folder.
  ModelRef model;
  // The peak learning rate.
  double lr = 1e-5;
  // Passes over the training demonstrations.
  int epochs = 1;
  // Demonstrations per optimizer step.
  int samples_per_batch = 32;
  // Demonstrations per forward/backward pass (gradient accumulation within a step).
  int samples_per_mini_batch = 8;
  // Optimizer steps of linear learning-rate warm-up.
  int warmup_steps = 0;
  // After the warm-up: a decay to a tenth of lr along a cosine or a linear one, or constant.
  std::string lr_schedule = "cosine";
  // AdamW's decoupled weight decay.
  double weight_decay = 0.0;
  // Share of the demonstrations held out; their loss is measured after each epoch.
  double eval_fraction = 0.1;
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
CHORUS_CONFIG(SftConfig, dataset, model, lr, epochs, samples_per_batch, samples_per_mini_batch, warmup_steps,
              lr_schedule, weight_decay, eval_fraction, seed, device, gradient_checkpointing, lora)

Task<void> sft(SftConfig config, RecipeContext& ctx) {
  auto builder = co_await config.model.to_builder(
    ctx, {.device = config.device, .gradient_checkpointing = config.gradient_checkpointing, .adapter = config.lora});
  auto model = co_await builder.spawn_train("sft", {.keep_reference = false});
  auto [train, eval] = train_eval_split(co_await config.dataset.load(ctx), config.eval_fraction, config.seed);
  auto result = co_await SFT({.dataset = train,
                              .model = model,
                              .logger = ctx.logger(),
                              .lr = config.lr,
                              .epochs = config.epochs,
                              .samples_per_batch = config.samples_per_batch,
                              .samples_per_mini_batch = config.samples_per_mini_batch,
                              .weight_decay = config.weight_decay,
                              .warmup_steps = config.warmup_steps,
                              .lr_schedule = config.lr_schedule,
                              .eval_dataset = eval,
                              .seed = config.seed})
                  .run();
  ctx.log().info("SFT: {} steps, last loss {:.4f}, held-out loss {:.4f}", result.steps, result.train_loss,
                 result.eval_loss);
  co_await model.save("sft-final", ctx);
}
CHORUS_RECIPE_MAIN(sft)
