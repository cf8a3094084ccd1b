#!/usr/bin/python3
"""The competitor of bench_models: the same model written as the usual PyTorch Python code.

Usage: python_baseline.py MODEL_FOLDER THREADS

Loads the folder bench_models wrote (config.json, model.safetensors, read by hand), then times:
  - greedy generation at batch 1 and batch 32, with the KV cache grown by torch.cat, as common
    Python generation loops do;
  - one training step (forward, backward, AdamW) on a fixed batch, then the same with gradient
    checkpointing (torch.utils.checkpoint around each layer, as transformers'
    gradient_checkpointing_enable() does).
The shapes come from a JSON line on stdin; the timings go to stdout as one JSON line.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

# The hand-written safetensors reader of the model tests' PyTorch reference: Debian has no
# safetensors package. It returns float64 tensors; load_state_dict converts them to float32.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/models"))
from reference_forward import read_safetensors  # noqa: E402


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.kv, self.d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        bias = c["model_type"] == "qwen2" or c.get("attention_bias", False)
        hid = c["hidden_size"]
        self.q_proj = nn.Linear(hid, self.h * self.d, bias=bias)
        self.k_proj = nn.Linear(hid, self.kv * self.d, bias=bias)
        self.v_proj = nn.Linear(hid, self.kv * self.d, bias=bias)
        self.o_proj = nn.Linear(self.h * self.d, hid, bias=False)

    def project(self, x, cos, sin):
        """q, k and v of `x` [B, T, hidden], heads first, q and k turned by the rotary embedding."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.h, self.d).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kv, self.d).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kv, self.d).transpose(1, 2)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin, v

    def attend(self, q, k, v, mask):
        B, T = q.shape[0], q.shape[2]
        rep = self.h // self.kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.d)
        if mask is not None:
            att = att + mask
        att = att.softmax(-1)
        return self.o_proj((att @ v).transpose(1, 2).reshape(B, T, self.h * self.d))

    def forward(self, x, cos, sin, mask, cache=None):
        q, k, v = self.project(x, cos, sin)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        return self.attend(q, k, v, mask)


class Layer(nn.Module):
    def __init__(self, c, attention=None):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = (attention or Attention)(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = Mlp(c)

    def forward(self, x, *attention_args):
        x = x + self.self_attn(self.input_layernorm(x), *attention_args)
        return x + self.mlp(self.post_attention_layernorm(x))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c["hidden_size"], c["intermediate_size"], bias=False)
        self.up_proj = nn.Linear(c["hidden_size"], c["intermediate_size"], bias=False)
        self.down_proj = nn.Linear(c["intermediate_size"], c["hidden_size"], bias=False)

    def forward(self, h):
        return self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Decoder(nn.Module):
    def __init__(self, c, attention=None):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c, attention) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = Decoder(c)
        self.tied = c.get("tie_word_embeddings", False)
        if not self.tied:
            self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        d = c["head_dim"]
        self.register_buffer("inv_freq", 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2).float() / d)),
                             persistent=False)
        self.checkpointing = False


    def forward(self, ids, start=0, caches=None):
        B, T = ids.shape
        x = self.model.embed_tokens(ids)
        pos = torch.arange(start, start + T)
        freqs = torch.outer(pos.float(), self.inv_freq)
        emb = torch.cat((freqs, freqs), -1)
        cos, sin = emb.cos(), emb.sin()
        mask = None
        if T > 1:
            mask = torch.full((T, T), float("-inf")).triu(1)
        for i, layer in enumerate(self.model.layers):
            if self.checkpointing and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, mask, None, use_reentrant=False)
            else:
                x = layer(x, cos, sin, mask, None if caches is None else caches[i])
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        return x @ head.T


def time_generation(model, batch, prompt_len, new_tokens, vocab, repeats):
    torch.manual_seed(0)
    ids = torch.randint(vocab, (batch, prompt_len))
    best = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            caches = [{} for _ in model.model.layers]
            logits = model(ids, 0, caches)[:, -1]
            pos = prompt_len
            for _ in range(new_tokens):
                nxt = logits.argmax(-1, keepdim=True)
                if _ == new_tokens - 1:
                    break
                logits = model(nxt, pos, caches)[:, -1]
                pos += 1
        best.append(time.perf_counter() - start)
    best.sort()
    return batch * new_tokens / best[len(best) // 2]


def time_training(model, batch, seq, vocab, steps):
    torch.manual_seed(1)
    ids = torch.randint(vocab, (batch, seq + 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    times = sorted(times[1:])  # the first step allocates the optimizer state
    return batch * seq / times[len(times) // 2]


def main():
    folder, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    shapes = json.loads(sys.stdin.readline())
    c = json.load(open(f"{folder}/config.json"))
    model = Model(c)
    model.load_state_dict(read_safetensors(f"{folder}/model.safetensors"))
    out = {}
    for batch in shapes["generate_batches"]:
        out[f"generate_{batch}"] = time_generation(model, batch, shapes["prompt_len"], shapes["new_tokens"],
                                                   c["vocab_size"], shapes["repeats"])
    out["train"] = time_training(model, shapes["train_batch"], shapes["train_seq"], c["vocab_size"], shapes["train_steps"])
    model.checkpointing = True
    out["train_checkpointed"] = time_training(model, shapes["train_batch"], shapes["train_seq"], c["vocab_size"],
                                              shapes["train_steps"])
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
