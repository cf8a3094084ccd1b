#!/usr/bin/python3
"""An independent reference forward pass of a Llama / Qwen2 / Qwen3 / Mistral / Gemma 2 and 3 / OLMo 2 and 3 /
SmolLM3 / Granite 3 / Phi-3 model folder, or of a mixture of experts (Qwen2-MoE / Qwen3-MoE / Mixtral /
OLMoE), in plain PyTorch.

Usage: reference_forward.py MODEL_FOLDER TOKENS_JSON OUT_SAFETENSORS [ADAPTER_FOLDER]

Reads config.json and model.safetensors (parsed here by hand: Debian has no safetensors package),
runs the Hugging Face formulation of the model on the token ids of TOKENS_JSON ([[ids...], ...], all
rows the same length) in float64, and writes the logits as float32 tensor "logits" to OUT_SAFETENSORS;
for a ...ForSequenceClassification folder, the score head's output at every position as "scores"
[batch, time] instead (a sequence's score is the one at its last token).
With ADAPTER_FOLDER (PEFT's LoRA format: adapter_config.json, adapter_model.safetensors) the
adapter is merged into the base weights by hand first: W += s B A, s = lora_alpha / r (or
lora_alpha / sqrt(r) with use_rslora), for each "base_model.model.<module>.lora_A.weight".
Written from the published architecture, not from chorus's code, so the two can disagree.
"""
import json
import math
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = bytearray(data[begin:end])
        t = torch.frombuffer(raw, dtype=DTYPES[entry["dtype"]]) if raw else torch.empty(0, dtype=DTYPES[entry["dtype"]])
        tensors[name] = t.reshape(entry["shape"]).to(torch.float64)
    return tensors


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in chunks:
            f.write(b)


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def gemma_rms_norm(x, w, eps):
    """Gemma's RMSNorm scales by 1 + w (its weights are stored as offsets from one)."""
    return (1.0 + w) * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def sliding_layers(cfg):
    """Per layer: whether it attends within the sliding window (Gemma 3: layer_types, or all but every
    sliding_window_pattern-th layer; Mistral 7B v0.1: all layers when sliding_window is set)."""
    n = cfg["num_hidden_layers"]
    if cfg["model_type"] in ("gemma2", "gemma3_text"):
        if cfg.get("layer_types"):
            return [t == "sliding_attention" for t in cfg["layer_types"]]
        pattern = cfg.get("sliding_window_pattern", 2 if cfg["model_type"] == "gemma2" else 6)
        return [(i + 1) % pattern != 0 for i in range(n)]
    if cfg["model_type"] == "olmo3":  # three layers of every four, unless layer_types says otherwise
        if cfg.get("layer_types"):
            return [t == "sliding_attention" for t in cfg["layer_types"]]
        return [(i + 1) % 4 != 0 for i in range(n)]
    return [bool(cfg.get("sliding_window")) and cfg["model_type"] in ("mistral", "phi3", "mixtral")] * n


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_frequencies(cfg, D, T=0):
    """inv_freq and the cos/sin multiplier: plain RoPE, or the rope_scaling kinds (linear, llama3, yarn,
    longrope) as their papers and Meta's / Microsoft's / transformers' reference implementations define
    them. D: the rotated dimensions; T: the sequence's length (LongRoPE's factors depend on it)."""
    theta = cfg["rope_theta"]
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq, 1.0
    if kind in ("longrope", "su"):
        # Phi-3.5 / Phi-4 mini: a divisor per frequency, the long ones past the pre-training context,
        # and the attention scale sqrt(1 + ln(s) / ln(context)) with s = max positions / context.
        old = cfg.get("original_max_position_embeddings") or cfg["max_position_embeddings"]
        divisors = scaling["long_factor"] if T > old else scaling["short_factor"]
        inv = 1.0 / (torch.tensor(divisors, dtype=torch.float64) * theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
        s = scaling.get("factor") or cfg["max_position_embeddings"] / old
        attention = scaling.get("attention_factor") or (math.sqrt(1 + math.log(s) / math.log(old)) if s > 1 else 1.0)
        return inv, attention
    factor = scaling["factor"]
    if kind == "linear":
        return inv_freq / factor, 1.0
    if kind == "llama3":
        # Meta's apply_scaling: per frequency, by its wavelength against the old context.
        old = scaling["original_max_position_embeddings"]
        lo, hi = scaling["low_freq_factor"], scaling["high_freq_factor"]
        out = []
        for f in inv_freq.tolist():
            wavelen = 2 * math.pi / f
            if wavelen < old / hi:
                out.append(f)
            elif wavelen > old / lo:
                out.append(f / factor)
            else:
                smooth = (old / wavelen - lo) / (hi - lo)
                out.append((1 - smooth) * f / factor + smooth * f)
        return torch.tensor(out, dtype=torch.float64), 1.0
    if kind == "yarn":
        old = scaling.get("original_max_position_embeddings") or cfg["max_position_embeddings"]
        fast, slow = scaling.get("beta_fast") or 32, scaling.get("beta_slow") or 1

        def dim_of(rotations):  # the dimension that turns `rotations` times over the old context
            return D * math.log(old / (rotations * 2 * math.pi)) / (2 * math.log(theta))

        low, high = dim_of(fast), dim_of(slow)
        if scaling.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, D - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(D // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
        inv = inv_freq / factor * ramp + inv_freq * (1 - ramp)
        attention = scaling.get("attention_factor") or (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)
        return inv, attention
    raise SystemExit(f"reference_forward.py: rope type {kind} not written here")


def gated_mlp(w, prefix, h, gemma=False, names=("gate_proj", "up_proj", "down_proj")):
    gate = h @ w[prefix + names[0] + ".weight"].T
    up = h @ w[prefix + names[1] + ".weight"].T
    act = torch.nn.functional.gelu(gate, approximate="tanh") if gemma else torch.nn.functional.silu(gate)
    return (act * up) @ w[prefix + names[2] + ".weight"].T


def sparse(cfg, i):
    """Whether layer i's MLP is a mixture of experts: every layer of Mixtral and OLMoE; Qwen's layers
    on the decoder_sparse_step that mlp_only_layers does not list."""
    kind = cfg["model_type"]
    if kind in ("mixtral", "olmoe"):
        return True
    if kind not in ("qwen2_moe", "qwen3_moe"):
        return False
    return i not in (cfg.get("mlp_only_layers") or []) and (i + 1) % cfg.get("decoder_sparse_step", 1) == 0


def mixture_of_experts(cfg, w, p, h):
    """Every expert run on every token, its output weighted by the token's routing weight for it (zero
    where the expert is not among the token's top k): the same sum as routing, computed densely."""
    mixtral = cfg["model_type"] == "mixtral"
    prefix = p + ("block_sparse_moe." if mixtral else "mlp.")
    names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")
    experts = cfg["num_local_experts"] if mixtral else cfg["num_experts"]
    probs = torch.softmax(h @ w[prefix + "gate.weight"].T, dim=-1)
    top, chosen = probs.topk(cfg["num_experts_per_tok"], dim=-1)
    if mixtral or cfg.get("norm_topk_prob"):
        top = top / top.sum(-1, keepdim=True)
    out = torch.zeros_like(h)
    for e in range(experts):
        weight = (top * (chosen == e)).sum(-1, keepdim=True)
        out = out + weight * gated_mlp(w, prefix + f"experts.{e}.", h, names=names)
    if cfg["model_type"] == "qwen2_moe":  # the shared expert, gated by a sigmoid
        out = out + torch.sigmoid(h @ w[prefix + "shared_expert_gate.weight"].T) * gated_mlp(w, prefix + "shared_expert.", h)
    return out


def merge_adapter(w, adapter_folder):
    """PEFT's merge: W += s B A, with a module's own rank and alpha where rank_pattern / alpha_pattern
    name it (matched as PEFT does: the module's name ends with the key)."""
    acfg = json.load(open(f"{adapter_folder}/adapter_config.json"))
    a = read_safetensors(f"{adapter_folder}/adapter_model.safetensors")
    prefix = "base_model.model."
    for name in a:
        if not name.endswith(".lora_A.weight"):
            continue
        module = name[len(prefix):-len(".lora_A.weight")]
        r, alpha = acfg["r"], acfg["lora_alpha"]
        for key, value in (acfg.get("rank_pattern") or {}).items():
            if module == key or module.endswith("." + key):
                r = value
        for key, value in (acfg.get("alpha_pattern") or {}).items():
            if module == key or module.endswith("." + key):
                alpha = value
        scale = alpha / (math.sqrt(r) if acfg.get("use_rslora") else r)
        w[module + ".weight"] = w[module + ".weight"] + scale * (a[prefix + module + ".lora_B.weight"] @ a[name])


def main():
    folder, tokens_path, out_path = sys.argv[1:4]
    cfg = json.load(open(f"{folder}/config.json"))
    w = read_safetensors(f"{folder}/model.safetensors")
    if len(sys.argv) > 4:
        merge_adapter(w, sys.argv[4])
    ids = torch.tensor(json.load(open(tokens_path)), dtype=torch.long)
    B, T = ids.shape
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    gemma = cfg["model_type"] in ("gemma2", "gemma3_text")
    qk_norm = cfg["model_type"] in ("qwen3", "qwen3_moe", "gemma3_text")
    olmo = cfg["model_type"] in ("olmo2", "olmo3")
    across_heads = olmo or cfg["model_type"] == "olmoe"  # q_norm / k_norm over all heads at once
    if cfg["model_type"] == "qwen2_moe":
        bias = True
    attn_cap, final_cap = cfg.get("attn_logit_softcapping"), cfg.get("final_logit_softcapping")  # Gemma 2
    norm = gemma_rms_norm if gemma else rms_norm
    scale = cfg["query_pre_attn_scalar"] ** -0.5 if gemma else D ** -0.5
    granite = cfg["model_type"] == "granite"  # four multipliers, 1 in the other families
    residual = cfg["residual_multiplier"] if granite else 1.0
    if granite:
        scale = cfg["attention_multiplier"]
    phi3 = cfg["model_type"] == "phi3"  # q, k, v stored as one matrix, gate and up as another
    R = int(D * cfg.get("partial_rotary_factor", 1.0)) if phi3 else D  # the rotated part of each head

    x = w["model.embed_tokens.weight"][ids]
    if gemma:  # Gemma scales its embeddings by sqrt(hidden_size)
        x = x * math.sqrt(cfg["hidden_size"])
    if granite:
        x = x * cfg["embedding_multiplier"]

    def rotation(rope_cfg):
        inv_freq, attention_factor = rope_frequencies(rope_cfg, R, T)
        freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos() * attention_factor, emb.sin() * attention_factor

    rotations = {False: rotation(cfg)}
    # Gemma 3's sliding layers turn by their own base, unscaled.
    local_base = cfg.get("rope_local_base_freq")
    if cfg["model_type"] == "olmo3":  # OLMo 3 scales the full-attention layers' rotation only
        local_base = cfg["rope_theta"]
    rotations[True] = rotation({"rope_theta": local_base}) if local_base else rotations[False]
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    window = cfg.get("sliding_window") or T
    too_far = torch.ones(T, T, dtype=torch.bool).tril(-window)  # key j with i - j >= window
    windowed = causal.masked_fill(too_far, float("-inf"))
    sliding = sliding_layers(cfg)
    # SmolLM3: no_rope_layers[i] is 1 where layer i rotates, 0 where it does not (every 4th by default).
    rotates = cfg.get("no_rope_layers") or [1] * cfg["num_hidden_layers"]

    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        cos, sin = rotations[sliding[i]]
        h = x if olmo else norm(x, w[p + "input_layernorm.weight"], eps)  # OLMo: no norm before

        def proj(name, heads):
            if phi3:  # qkv_proj holds q's rows, then k's, then v's
                qkv = w[p + "self_attn.qkv_proj.weight"]
                rows = {"q_proj": (0, H * D), "k_proj": (H * D, KV * D), "v_proj": (H * D + KV * D, KV * D)}[name]
                y = h @ qkv[rows[0]:rows[0] + rows[1]].T
                return y.view(B, T, heads, D).transpose(1, 2)
            y = h @ w[p + f"self_attn.{name}.weight"].T
            if bias:
                y = y + w[p + f"self_attn.{name}.bias"]
            if across_heads and name != "v_proj":  # OLMo: RMSNorm over all heads at once, before the rotation
                y = norm(y, w[p + f"self_attn.{name[0]}_norm.weight"], eps)
            return y.view(B, T, heads, D).transpose(1, 2)

        q, k, v = proj("q_proj", H), proj("k_proj", KV), proj("v_proj", KV)
        if qk_norm:  # Qwen3, Gemma 3: RMSNorm over each head's vector, before the rotation
            q = norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = norm(k, w[p + "self_attn.k_norm.weight"], eps)
        if rotates[i]:  # the first R dimensions of each head turn; the rest pass (Phi-4 mini: R = 3/4 D)
            q = torch.cat((q[..., :R] * cos + rotate_half(q[..., :R]) * sin, q[..., R:]), dim=-1)
            k = torch.cat((k[..., :R] * cos + rotate_half(k[..., :R]) * sin, k[..., R:]), dim=-1)
        k = k[:, :, None].expand(B, KV, H // KV, T, D).reshape(B, H, T, D)
        v = v[:, :, None].expand(B, KV, H // KV, T, D).reshape(B, H, T, D)
        scores = q @ k.transpose(-1, -2) * scale
        if attn_cap:
            scores = attn_cap * torch.tanh(scores / attn_cap)
        att = torch.softmax(scores + (windowed if sliding[i] else causal), dim=-1)
        out = (att @ v).transpose(1, 2).reshape(B, T, H * D) @ w[p + "self_attn.o_proj.weight"].T
        if gemma:  # a norm on the attention's output, and around the MLP
            x = x + norm(out, w[p + "post_attention_layernorm.weight"], eps)
            h = norm(x, w[p + "pre_feedforward_layernorm.weight"], eps)
        elif olmo:  # a norm on the attention's output; the MLP reads the sum as it is
            x = x + norm(out, w[p + "post_attention_layernorm.weight"], eps)
            h = x
        else:
            x = x + out * residual
            h = norm(x, w[p + "post_attention_layernorm.weight"], eps)
        if phi3:  # gate_up_proj: the gate's rows, then up's
            gate, up = (h @ w[p + "mlp.gate_up_proj.weight"].T).chunk(2, dim=-1)
            mlp = (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
        elif sparse(cfg, i):
            mlp = mixture_of_experts(cfg, w, p, h)
        else:
            mlp = gated_mlp(w, p + "mlp.", h, gemma)
        x = x + (norm(mlp, w[p + "post_feedforward_layernorm.weight"], eps) if gemma or olmo else mlp * residual)

    x = norm(x, w["model.norm.weight"], eps)
    if any(a.endswith("ForSequenceClassification") for a in cfg.get("architectures", [])):
        write_safetensors(out_path, {"scores": (x @ w["score.weight"].T)[..., 0].to(torch.float32)})
        return
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    logits = x @ head.T
    if final_cap:
        logits = final_cap * torch.tanh(logits / final_cap)
    if granite:
        logits = logits / cfg["logits_scaling"]
    write_safetensors(out_path, {"logits": logits.to(torch.float32)})


if __name__ == "__main__":
    main()
