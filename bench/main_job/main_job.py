#!/usr/bin/python3
"""The competitor of bench_main_job: the main job (examples/sft_then_gspo) as a competent PyTorch user
writes it in Python. One process; an `async def` recipe whose generations are awaited one by one and
batched by a small server into one left-padded batch with a preallocated KV cache; training with
autograd and torch.optim.AdamW. The same model, initial weights, data, hyperparameters and steps.

Usage: main_job.py WORK_FOLDER THREADS

WORK_FOLDER holds what bench_main_job wrote: model/ (config.json, model.safetensors: builtin:tiny as
chorus initialises it) and chorus/, the output folder of chorus's run of the main job: config.json
(the recipe's settings) and data/train.jsonl, data/eval.jsonl (the task it generated, one
{"prompt", "answer", "number"} a line). Prints the same EVAL line as the C++ recipe, and a STAGES
line with each stage's wall time.
"""
import asyncio
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn

# Debian has no safetensors package: the model tests' hand-written reader (float64 tensors). The
# model's layers are bench_models' Python baseline's, with the attention below.
here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(here, "../../tests/models"), os.path.join(here, "../models")]
from reference_forward import read_safetensors  # noqa: E402
from python_baseline import Attention, Decoder  # noqa: E402

# The built-in tokenizer: one token per byte, and ChatML's special tokens.
END_OF_TEXT, IM_START, IM_END, TOKENIZER_VOCAB = 256, 257, 258, 259
STOP_TOKENS = (IM_END, END_OF_TEXT)


def encode(text):
    return list(text.encode("utf-8"))


def chat_prompt(user_text):
    return [IM_START] + encode("user\n" + user_text) + [IM_END] + encode("\n") + [IM_START] + encode("assistant\n")


def chat_completion(text):
    """The tokens of an assistant turn after the generation prompt, as the chat template renders it."""
    return encode(text) + [IM_END] + encode("\n")


def decode(tokens):
    return bytes(t for t in tokens if t < 256).decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# The model: Qwen2 (grouped-query attention with biases, RoPE, RMSNorm, SwiGLU, tied embeddings).

class PreallocatedAttention(Attention):
    """Attention with a KV cache preallocated for the whole generation (python_baseline's grows it)."""

    def forward(self, x, cos, sin, mask, cache, start):
        q, k, v = self.project(x, cos, sin)
        if cache is not None:  # preallocated: write this block's keys and values, attend to all so far
            cache[0][:, :, start:start + k.shape[2]] = k
            cache[1][:, :, start:start + k.shape[2]] = v
            k, v = cache[0][:, :, :start + k.shape[2]], cache[1][:, :, :start + k.shape[2]]
        return self.attend(q, k, v, mask)


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        assert c["model_type"] == "qwen2" and c.get("tie_word_embeddings"), "the built-in tiny model is expected"
        self.config = c
        self.model = Decoder(c, PreallocatedAttention)
        d = c["head_dim"]
        inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2).float() / d))
        freqs = torch.outer(torch.arange(c["max_position_embeddings"]).float(), inv_freq)
        emb = torch.cat((freqs, freqs), -1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, ids, positions, mask, caches=None, start=0):
        """Logits of `ids` [B, T] at `positions` [B, T]; `mask` is added to the attention scores."""
        x = self.model.embed_tokens(ids)
        cos, sin = self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, mask, None if caches is None else caches[i], start)
        return self.model.norm(x) @ self.model.embed_tokens.weight.T


def load_model(folder):
    config = json.load(open(f"{folder}/config.json"))
    model = Model(config)
    state = {name: t.to(torch.float32) for name, t in read_safetensors(f"{folder}/model.safetensors").items()}
    model.load_state_dict(state, strict=False)  # no lm_head: the embeddings are tied
    return model


# ---------------------------------------------------------------------------------------------
# Generation: an asyncio server that batches every request waiting into one left-padded batch.

@torch.no_grad()
def generate_batch(model, prompts, max_new, greedy):
    """Completions of `prompts` (lists of ids): tokens (the stop token included) and their log-probs."""
    B, P = len(prompts), max(len(p) for p in prompts)
    ids = torch.zeros(B, P, dtype=torch.long)
    valid = torch.zeros(B, P + max_new, dtype=torch.bool)
    for b, p in enumerate(prompts):
        ids[b, P - len(p):] = torch.tensor(p)
        valid[b, P - len(p):] = True
    lengths = torch.tensor([len(p) for p in prompts])
    positions = (torch.arange(P)[None] - (P - lengths)[:, None]).clamp_min(0)
    c = model.config
    caches = [(torch.zeros(B, c["num_key_value_heads"], P + max_new, c["head_dim"]),
               torch.zeros(B, c["num_key_value_heads"], P + max_new, c["head_dim"])) for _ in model.model.layers]
    # Causal over the valid (unpadded) keys; each position sees itself, so padded rows stay finite.
    allowed = torch.ones(P, P, dtype=torch.bool).tril()[None] & valid[:, None, :P]
    allowed |= torch.eye(P, dtype=torch.bool)[None]
    mask = torch.zeros(B, 1, P, P).masked_fill(~allowed[:, None], float("-inf"))
    logits = model(ids, positions, mask, caches, 0)[:, -1]
    tokens, logprobs = [[] for _ in prompts], [[] for _ in prompts]
    finished = torch.zeros(B, dtype=torch.bool)
    for step in range(max_new):
        all_logprobs = torch.log_softmax(logits, -1)
        if greedy:
            chosen = logits[:, :TOKENIZER_VOCAB].argmax(-1)
        else:
            chosen = torch.multinomial(torch.softmax(logits[:, :TOKENIZER_VOCAB], -1), 1).squeeze(1)
        chosen_logprobs = all_logprobs.gather(1, chosen[:, None]).squeeze(1)
        for b in range(B):
            if not finished[b]:
                tokens[b].append(int(chosen[b]))
                logprobs[b].append(float(chosen_logprobs[b]))
        finished |= (chosen == IM_END) | (chosen == END_OF_TEXT)
        if bool(finished.all()) or step == max_new - 1:
            break
        column = P + step
        step_mask = torch.zeros(B, 1, 1, column + 1).masked_fill(~valid[:, None, None, :column + 1], float("-inf"))
        logits = model(chosen[:, None], (lengths + step)[:, None], step_mask, caches, column)[:, -1]
    return tokens, logprobs


class Policy:
    """`await policy.generate(prompt)` from any coroutine; the server batches what is waiting."""

    def __init__(self, model, max_batch):
        self.model, self.max_batch = model, max_batch
        self.waiting = []
        self.wake = asyncio.Event()

    async def generate(self, prompt, max_new, greedy):
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((prompt, max_new, greedy, future))
        self.wake.set()
        return await future

    async def serve(self):
        while True:
            await self.wake.wait()
            await asyncio.sleep(0)  # let every coroutine that is about to ask ask first
            self.wake.clear()
            while self.waiting:
                batch, self.waiting = self.waiting[:self.max_batch], self.waiting[self.max_batch:]
                max_new, greedy = batch[0][1], batch[0][2]
                tokens, logprobs = generate_batch(self.model, [r[0] for r in batch], max_new, greedy)
                for request, t, lp in zip(batch, tokens, logprobs):
                    request[3].set_result((t, lp))
                await asyncio.sleep(0)


# ---------------------------------------------------------------------------------------------
# The task's grading and evaluation.

def parse_answer(text):
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def format_score(text):
    value = parse_answer(text)
    return 1.0 if value is not None and value.get("answer") in ("yes", "no") and isinstance(value["answer"], str) else 0.0


def correct(text, answer):
    value = parse_answer(text)
    return 1.0 if value is not None and value.get("answer") == answer else 0.0


async def evaluate(policy, prompts):
    outputs = await asyncio.gather(*[policy.generate(chat_prompt(p["prompt"]), 24, greedy=True) for p in prompts])
    texts = [decode(tokens) for tokens, _ in outputs]
    fmt = sum(format_score(t) for t in texts) / len(prompts)
    acc = sum(correct(t, p["answer"]) for t, p in zip(texts, prompts)) / len(prompts)
    return fmt, acc


# ---------------------------------------------------------------------------------------------
# Training.

def sequence_batch(samples):
    """Right-padded prompt + completion tokens: inputs, targets and the completion tokens' mask."""
    T = max(len(p) + len(c) for p, c in samples)
    tokens = torch.zeros(len(samples), T, dtype=torch.long)
    mask = torch.zeros(len(samples), T - 1)
    for b, (p, c) in enumerate(samples):
        tokens[b, :len(p) + len(c)] = torch.tensor(p + c)
        mask[b, len(p) - 1:len(p) + len(c) - 1] = 1.0
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    positions = torch.arange(T - 1)[None].expand(len(samples), T - 1)
    causal = torch.full((T - 1, T - 1), float("-inf")).triu(1)
    return inputs, positions, causal, targets, mask


def token_logprobs(model, inputs, positions, causal, targets):
    return torch.log_softmax(model(inputs, positions, causal), -1).gather(2, targets[..., None]).squeeze(-1)


def make_adamw(model, lr, weight_decay):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.999), eps=1e-8)


def set_lr(optimizer, lr, weight_decay):
    optimizer.param_groups[0]["lr"] = optimizer.param_groups[1]["lr"] = lr
    optimizer.param_groups[0]["weight_decay"] = weight_decay


def cosine_lr(step, base, warmup, total):
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


def optimizer_step(model, optimizer, max_grad_norm):
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def sft(model, optimizer, demonstrations, cfg):
    batch_size, epochs = cfg["sft_batch_size"], cfg["sft_epochs"]
    total = math.ceil(len(demonstrations) / batch_size) * epochs
    step = 0
    for epoch in range(epochs):
        order = demonstrations[:]
        random.Random(cfg["seed"] + epoch).shuffle(order)
        for begin in range(0, len(order), batch_size):
            set_lr(optimizer, cosine_lr(step, cfg["sft_learning_rate"], 10, total), 0.01)
            inputs, positions, causal, targets, mask = sequence_batch(order[begin:begin + batch_size])
            logprobs = token_logprobs(model, inputs, positions, causal, targets)
            loss = -(logprobs * mask).sum() / mask.sum()
            loss.backward()
            optimizer_step(model, optimizer, 1.0)
            step += 1
            if step % 16 == 0:
                print(f"sft step {step}/{total}: loss {loss.item():.4f}", file=sys.stderr, flush=True)


def gspo_loss(model, reference, samples, cfg):
    """GSPO's clipped sequence-ratio objective plus the KL penalty to the reference, for one micro-batch."""
    inputs, positions, causal, targets, mask = sequence_batch([(s["prompt"], s["tokens"]) for s in samples])
    logprobs = token_logprobs(model, inputs, positions, causal, targets)
    old = torch.zeros_like(logprobs)
    for b, s in enumerate(samples):
        start = len(s["prompt"]) - 1
        old[b, start:start + len(s["tokens"])] = torch.tensor(s["logprobs"])
    advantages = torch.tensor([s["advantage"] for s in samples])
    lengths = mask.sum(1).clamp_min(1.0)
    ratio = (((logprobs - old) * mask).sum(1) / lengths).exp()
    clip = cfg["clip_range"]
    objective = torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    with torch.no_grad():
        reference_logprobs = token_logprobs(reference, inputs, positions, causal, targets)
    delta = reference_logprobs - logprobs
    kl = ((delta.exp() - delta - 1.0) * mask).sum() / mask.sum()
    return -objective.mean() + cfg["kl_beta"] * kl


def group_advantages(rewards):
    if all(r == rewards[0] for r in rewards):
        return [0.0] * len(rewards)
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))
    return [(r - mean) / (std + 1e-6) for r in rewards]


async def gspo(model, optimizer, policy, train, cfg, times):
    reference = Model(model.config)
    reference.load_state_dict(model.state_dict())
    reference.requires_grad_(False)
    group, per_step = cfg["completions_per_sample"], cfg["gspo_batch_size"] // cfg["completions_per_sample"]
    order, position, epoch = [], 0, 0
    for step in range(1, cfg["gspo_max_steps"] + 1):
        start = time.perf_counter()
        prompts = []
        while len(prompts) < per_step:
            if position == len(order):
                order = train[:]
                random.Random(cfg["seed"] + epoch).shuffle(order)
                position, epoch = 0, epoch + 1
            prompts.append(order[position])
            position += 1
        outputs = await asyncio.gather(*[policy.generate(chat_prompt(p["prompt"]), 24, greedy=False)
                                         for p in prompts for _ in range(group)])
        samples, rewards = [], []
        for i, (tokens, logprobs) in enumerate(outputs):
            prompt = prompts[i // group]
            text = decode(tokens)
            rewards.append(0.2 * format_score(text) + 0.8 * correct(text, prompt["answer"]))
            samples.append({"prompt": chat_prompt(prompt["prompt"]), "tokens": tokens, "logprobs": logprobs})
        for g in range(per_step):
            for k, a in enumerate(group_advantages(rewards[g * group:(g + 1) * group])):
                samples[g * group + k]["advantage"] = a
        generated = time.perf_counter()
        times["gspo_generation"] += generated - start

        random.Random(cfg["seed"] + step).shuffle(samples)
        set_lr(optimizer, cfg["gspo_learning_rate"], 0.0)
        micro = 16
        for begin in range(0, len(samples), micro):
            part = samples[begin:begin + micro]
            (gspo_loss(model, reference, part, cfg) * (len(part) / len(samples))).backward()
        optimizer_step(model, optimizer, 1.0)
        times["gspo_training"] += time.perf_counter() - generated
        if step % 10 == 0:
            print(f"gspo step {step}: reward {sum(rewards) / len(rewards):.3f}", file=sys.stderr, flush=True)


async def recipe(folder, cfg):
    torch.manual_seed(cfg["seed"])
    model = load_model(f"{folder}/model")
    train = [json.loads(line) for line in open(f"{folder}/chorus/data/train.jsonl")]
    held_out = [json.loads(line) for line in open(f"{folder}/chorus/data/eval.jsonl")]
    demonstrations = [(chat_prompt(p["prompt"]), chat_completion(json.dumps({"answer": p["answer"]},
                                                                            separators=(",", ":"))))
                      for p in train[:cfg["demonstrations"]]]
    policy = Policy(model, max_batch=128)
    server = asyncio.create_task(policy.serve())
    optimizer = make_adamw(model, cfg["sft_learning_rate"], 0.01)
    times = {"gspo_generation": 0.0, "gspo_training": 0.0}
    results = {}

    def timed(name, began):
        times[name] = time.perf_counter() - began

    began = time.perf_counter()
    results["base"] = await evaluate(policy, held_out)
    timed("base_eval", began)
    began = time.perf_counter()
    sft(model, optimizer, demonstrations, cfg)
    timed("sft", began)
    began = time.perf_counter()
    results["sft"] = await evaluate(policy, held_out)
    timed("sft_eval", began)
    began = time.perf_counter()
    await gspo(model, optimizer, policy, train, cfg, times)
    timed("gspo", began)
    began = time.perf_counter()
    results["gspo"] = await evaluate(policy, held_out)
    timed("gspo_eval", began)
    server.cancel()

    (bf, ba), (sf, sa), (gf, ga) = results["base"], results["sft"], results["gspo"]
    print(f"EVAL base_acc={ba:.2f} sft_acc={sa:.2f} gspo_acc={ga:.2f} base_format={bf:.2f} sft_format={sf:.2f} "
          f"gspo_format={gf:.2f}")
    print("STAGES " + " ".join(f"{name}={seconds:.1f}" for name, seconds in times.items()), flush=True)


def main():
    folder, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    cfg = json.load(open(f"{folder}/chorus/config.json"))
    if cfg["model"] != "builtin:tiny" or cfg["grader"] != "programmatic":
        sys.exit("main_job.py: only the main job's builtin:tiny model and programmatic grader are written here")
    if cfg["clip_range_high"] >= 0 and cfg["clip_range_high"] != cfg["clip_range"]:
        sys.exit("main_job.py: clip_range_high is not written here")
    asyncio.run(recipe(folder, cfg))


if __name__ == "__main__":
    main()
