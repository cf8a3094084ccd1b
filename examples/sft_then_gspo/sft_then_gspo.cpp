// The main job: the README's two-stage recipe on the built-in tiny model and a task it generates
// itself (even_number_task.hpp). SFT on a few hundred right demonstrations teaches the JSON answer
// format and part of the rule; GSPO then teaches the rest from a reward for being right. A held-out
// evaluation before training, after SFT and after GSPO shows what each stage did:
//
//   ./build/examples/sft_then_gspo/sft_then_gspo                 # results on stdout, logs on stderr
//   ./build/examples/sft_then_gspo/sft_then_gspo --set grader=judge        # the seed's judge, trained first
//
// With grader=judge the recipe grades as the seed's does: a BinaryJudgeGrader on a judge model,
// combined with the JSON format check. With judge_model builtin:tiny a first stage makes the built-in
// model that judge (SFT on verdicts the task's rule gives, in the grader's own prompt format); a
// folder (e.g. the judge-model a previous run saved) is used as it is.
#include <chorus/chorus.hpp>

#include "even_number_task.hpp"
#include "report.hpp"

#include <cstdio>
#include <set>

using namespace chorus;

struct SftThenGspoConfig {
  // The model to train: builtin:tiny (trained from scratch here) or a Hugging Face model folder.
  ModelRef model;
  // Seeds the generated task, sampling and the order of the data.
  std::uint64_t seed = 1;
  // Training prompts of the task ("Is 347 even? JSON please.").
  int train_prompts = 2000;
  // Demonstrations for SFT: the first ones of the training prompts, answered right.
  int demonstrations = 500;
  // Held-out prompts, evaluated greedily before training, after SFT and after GSPO.
  int eval_prompts = 200;
  // SFT's peak learning rate.
  double sft_learning_rate = 1e-3;
  // Passes over the demonstrations.
  int sft_epochs = 2;
  // Demonstrations per SFT optimizer step.
  int sft_batch_size = 16;
  // GSPO's learning rate.
  double gspo_learning_rate = 2e-4;
  // GSPO steps to take.
  int gspo_max_steps = 80;
  // Completions per GSPO step.
  int gspo_batch_size = 128;
  // The group size: completions sampled per prompt.
  int completions_per_sample = 8;
  // GSPO's sampling temperature.
  double temperature = 1.0;
  // Weight of the KL penalty to the model after SFT.
  double kl_beta = 0.02;
  // GSPO's sequence-ratio clip range below 1 (and above, unless clip_range_high is set).
  double clip_range = 0.2;
  // GSPO's clip range above 1 (< 0: clip_range).
  double clip_range_high = -1.0;
  // 1 overlaps generation for step k+1 with training on step k: 1.4x faster GSPO here, and it
  // learned as well on every seed measured (docs/overlap.md). 0 runs the steps one after another,
  // number for number like the sequential loop (the resume and cluster tests use it).
  int max_staleness = 1;
  // "programmatic" (format + correctness) or "judge" (a BinaryJudgeGrader on judge_model, with the
  // format check).
  std::string grader = "programmatic";
  // The judge's model, with grader "judge": builtin:tiny is first trained into the task's judge; a
  // folder is used as it is.
  ModelRef judge_model;
  // Verdicts the built-in judge is trained on (responses right, wrong or malformed, judged by the rule).
  int judge_demonstrations = 4000;
  // The judge's SFT learning rate.
  double judge_learning_rate = 2e-3;
  // Passes over the judge's verdicts. The judge learns to read the number late, if at all: on the
  // default seed 250 steps left it at chance and 500 (two passes over 4,000) made it right on every
  // held-out verdict; on seed 7 it was still at chance after 500 (README).
  int judge_epochs = 2;
  // The node of the cluster file (--cluster FILE) that runs the policy's replica; empty: this process.
  std::string policy_node;
  // The node that runs the trainer; empty: this process.
  std::string trainer_node;
  // The node that runs the judge; empty: this process.
  std::string judge_node;
  // Intra-op threads of each model actor; 0: the cores go to the actors working at the moment.
  // Fixed threads make runs comparable number for number wherever the actors are placed.
  int threads = 0;
  // Where the models run: cpu, or cuda / cuda:N with a CUDA build of LibTorch (docs/gpu.md).
  std::string device = "cpu";
  // Recompute each layer in the backward pass instead of keeping its activations: less memory for
  // long sequences and big batches, one more forward pass of compute (docs/models.md).
  bool gradient_checkpointing = false;
  // LoRA adapters on the policy instead of training every weight: lora.r > 0 (--set lora.r=16). The
  // built-in model is random, not pretrained: with its embeddings and norms frozen no adapter can make
  // it confident (its logits stay within about 5 of each other), so they train beside the adapters.
  LoraOptions lora{.modules_to_save = {"norm", "embed_tokens"}};
};
CHORUS_CONFIG(SftThenGspoConfig, model, seed, train_prompts, demonstrations, eval_prompts, sft_learning_rate,
              sft_epochs, sft_batch_size, gspo_learning_rate, gspo_max_steps, gspo_batch_size, completions_per_sample,
              temperature, kl_beta, clip_range, clip_range_high, max_staleness, grader, judge_model,
              judge_demonstrations, judge_learning_rate, judge_epochs, policy_node, trainer_node, judge_node, threads,
              device, gradient_checkpointing, lora)

// The built-in model trained into the task's judge: SFT on the rule's verdicts of responses to
// prompts about numbers that are not held out, in BinaryJudgeGrader's exact prompt format. Returns
// the folder it is saved in.
Task<std::string> train_judge(const SftThenGspoConfig& config, const std::set<int>& held_out, RecipeContext& ctx) {
  auto prompts = even_number::prompts(config.judge_demonstrations, config.seed + 2, held_out);
  auto examples =
    binary_judge_demonstrations(even_number::judge_options({}), even_number::verdicts(prompts, config.seed + 3));
  auto builder = co_await config.judge_model.to_builder(ctx,
                                                        {.kv_cache_len = 1024,
                                                         .device = config.device,
                                                         .gradient_checkpointing = config.gradient_checkpointing,
                                                         .threads = config.threads,
                                                         .seed = config.seed + 4});
  auto judge = co_await builder.spawn_train("judge_training", {.max_batch_size = 16, .keep_reference = false});
  co_await SFT({.dataset = examples,
                .model = judge,
                .logger = ctx.logger(),
                .lr = config.judge_learning_rate,
                .epochs = config.judge_epochs,
                .samples_per_batch = 16,
                .samples_per_mini_batch = 16,
                .max_grad_norm = 1.0,
                .weight_decay = 0.01,
                .warmup_steps = 10,
                .seed = config.seed,
                .stage = "judge_sft"})
    .run();
  co_return co_await judge.save("judge-model", ctx);
}

// The GSPO stage's grader: the task's reward, or the seed's judge combined with the format check.
Task<Grader> make_grader(const SftThenGspoConfig& config, const std::vector<Prompt>& eval,
                         const std::set<int>& held_out, RecipeContext& ctx, StageTimes& times) {
  if (config.grader == "programmatic")
    co_return even_number::reward();
  auto folder = config.judge_model.reference;
  if (folder == "builtin:tiny") {
    folder = co_await train_judge(config, held_out, ctx);
    times.lap("judge_sft");
  }
  auto builder = co_await ModelRef{folder}.to_builder(
    ctx, {.kv_cache_len = 1024, .device = config.device, .threads = config.threads, .node = config.judge_node});
  auto judge = co_await builder.spawn_inference("judge", {.max_batch_size = 128});
  auto held_out_grader = even_number::judge_options(judge);
  held_out_grader.cache = false;
  auto accuracy = co_await measure_judge(BinaryJudgeGrader(held_out_grader),
                                         even_number::verdicts(eval, config.seed + 5), folder, ctx);
  times.lap("judge_eval");
  std::printf("JUDGE accuracy=%.3f verdicts=%zu\n", accuracy, eval.size());
  auto format = JsonGrader({.grader_key = "format", .schema = even_number::answer_schema()});
  // Equal weights: with the judge at 0.8 GSPO found answers the judge passes and the format check fails
  // ('{"answer"ano"}': the judge never saw such near-misses) and drove the format to 0. At 0.5 such an
  // answer earns no more than a well-formed wrong one.
  co_return CombinedGrader({.grader_key = "reward",
                            .graders = {BinaryJudgeGrader(even_number::judge_options(judge)), format},
                            .weights = {0.5, 0.5}});
}

Task<void> sft_then_gspo(SftThenGspoConfig config, RecipeContext& ctx) {
  // Checked before any training: a bad value should not cost a run.
  if (config.grader != "programmatic" && config.grader != "judge")
    throw ConfigError("grader must be programmatic or judge, got '" + config.grader + "'");
  if (config.eval_prompts < 1 || config.eval_prompts > 500)
    throw ConfigError("eval_prompts must be between 1 and 500 (the held-out numbers come from 10..999)");
  if (config.train_prompts < 1 || config.demonstrations < 1 || config.demonstrations > config.train_prompts)
    throw ConfigError("train_prompts must be at least 1, demonstrations between 1 and train_prompts");
  // The evaluation's numbers are held out: training never sees them.
  auto eval = even_number::prompts(config.eval_prompts, config.seed + 1, {}, /*distinct=*/true);
  std::set<int> held_out;
  for (const auto& prompt : eval)
    held_out.insert(prompt.metadata["number"].get<int>());
  auto train = even_number::prompts(config.train_prompts, config.seed, held_out);
  auto demonstrations = even_number::demonstrations(train, static_cast<std::size_t>(config.demonstrations));
  // The task as generated, for a look at it (and for bench_main_job's Python version of this recipe).
  even_number::write_jsonl(ctx.output_dir() / "data" / "train.jsonl", train);
  even_number::write_jsonl(ctx.output_dir() / "data" / "eval.jsonl", eval);
  StageTimes times;

  auto builder = co_await config.model.to_builder(ctx,
                                                  {.kv_cache_len = 256,
                                                   .device = config.device,
                                                   .gradient_checkpointing = config.gradient_checkpointing,
                                                   .threads = config.threads,
                                                   .node = config.policy_node,
                                                   .trainer_node = config.trainer_node,
                                                   .adapter = config.lora});
  auto model = co_await builder.spawn_train("policy", {.max_batch_size = 128});
  auto logger = ctx.logger();

  times.start();
  auto base = co_await even_number::evaluate(model, eval);
  times.lap("base_eval");
  ctx.log().info("untrained: format {:.2f}, accuracy {:.2f}", base.format, base.accuracy);

  co_await SFT({.dataset = demonstrations,
                .model = model,
                .logger = logger,
                .lr = config.sft_learning_rate,
                .epochs = config.sft_epochs,
                .samples_per_batch = config.sft_batch_size,
                .samples_per_mini_batch = config.sft_batch_size,
                .max_grad_norm = 1.0,
                .weight_decay = 0.01,
                .warmup_steps = 10,
                .seed = config.seed})
    .run();
  times.lap("sft");
  auto after_sft = co_await even_number::evaluate(model, eval);
  times.lap("sft_eval");
  ctx.log().info("after SFT: format {:.2f}, accuracy {:.2f}", after_sft.format, after_sft.accuracy);

  auto grader = co_await make_grader(config, eval, held_out, ctx, times);
  co_await GSPO({.dataset = train,
                 .model = model,
                 .grader = grader,
                 .logger = logger,
                 .lr = config.gspo_learning_rate,
                 .samples_per_batch = config.gspo_batch_size,
                 .samples_per_mini_batch = config.gspo_batch_size,
                 .micro_batch_size = 16,
                 .completions_per_sample = config.completions_per_sample,
                 .max_grad_norm = 1.0,
                 .clip_range = config.clip_range,
                 .clip_range_high = config.clip_range_high,
                 .kl_beta = config.kl_beta,
                 .max_num_gspo_steps = config.gspo_max_steps,
                 .max_staleness = config.max_staleness,
                 .sampling = {.temperature = config.temperature, .max_tokens = 24},
                 .seed = config.seed})
    .run();
  times.lap("gspo");
  auto after_gspo = co_await even_number::evaluate(model, eval);
  times.lap("gspo_eval");
  ctx.log().info("after GSPO: format {:.2f}, accuracy {:.2f}", after_gspo.format, after_gspo.accuracy);

  auto folder = co_await model.save("final-model", ctx);
  auto report =
    write_report(ctx.output_dir(), {{"untrained", base}, {"after SFT", after_sft}, {"after GSPO", after_gspo}});
  ctx.log().info("final model in {}, report in {}", folder, report.string());

  std::printf("held-out evaluation (%zu prompts, greedy)\n", eval.size());
  std::printf("  %-12s %8s %9s\n", "stage", "format", "accuracy");
  for (const auto& [stage, result] :
       {std::pair{"untrained", base}, {"after SFT", after_sft}, {"after GSPO", after_gspo}})
    std::printf("  %-12s %8.2f %9.2f\n", stage, result.format, result.accuracy);
  std::printf("STAGES %s\n", times.line().c_str());
  std::printf("EVAL base_acc=%.2f sft_acc=%.2f gspo_acc=%.2f base_format=%.2f sft_format=%.2f gspo_format=%.2f\n",
              base.accuracy, after_sft.accuracy, after_gspo.accuracy, base.format, after_sft.format, after_gspo.format);
  std::fflush(stdout);
}
CHORUS_RECIPE_MAIN(sft_then_gspo)
