"""Hugging Face transformers on the same model folder and the same work as bench_gpu: greedy
generation with the KV cache at each batch size, and AdamW training steps. Prints one JSON object.
Run by bench_gpu on the GPU machine (its image has transformers):
    python3 hf_competitor.py FOLDER --prompt-tokens 32 --new-tokens 128 --batches 1 64 \
        --train-batch 8 --train-tokens 512 --train-steps 5
"""
import argparse
import json
import time

import torch
from transformers import Qwen2ForCausalLM


def timed(fn, repeats):
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-tokens", type=int, default=512)
    parser.add_argument("--train-steps", type=int, default=5)
    args = parser.parse_args()

    device = torch.device("cuda")
    model = Qwen2ForCausalLM.from_pretrained(args.folder, torch_dtype=torch.bfloat16).to(device)
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    result = {"generate": {}}

    model.eval()
    for batch in args.batches:
        prompts = torch.randint(vocab, (batch, args.prompt_tokens), generator=generator).to(device)
        attention = torch.ones_like(prompts)

        def generate():
            with torch.inference_mode():
                out = model.generate(prompts, attention_mask=attention, do_sample=False,
                                     max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                     eos_token_id=None, pad_token_id=0)
            assert out.shape[1] == args.prompt_tokens + args.new_tokens

        generate()  # warm-up: kernels, cache allocation
        seconds = timed(generate, 2)
        result["generate"][str(batch)] = batch * args.new_tokens / seconds

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    tokens = torch.randint(vocab, (args.train_batch, args.train_tokens), generator=generator).to(device)

    def step():
        loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    step()
    seconds = timed(step, args.train_steps)
    result["train_tokens_per_s"] = args.train_batch * args.train_tokens / seconds
    result["parameters"] = sum(p.numel() for p in model.parameters())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
