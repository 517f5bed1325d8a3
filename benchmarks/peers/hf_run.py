"""HF transformers `generate` worker for benchmarks/throughput.py (the naive baseline).

Runs in the main venv, in its own process. Reads a spec JSON, prints one line `RESULT {json}`.
    spec = {"prompts": [[token ids], ...], "max_tokens": 128, "dtype": "float32",
            "batch_size": 1 | 8 | 32, "threads": 2, "model_dir": "peers/smollm2-hf" or null}
batch_size 1 is one request at a time; larger sizes are padded static batches in request order
(left padding, attention mask), the way a naive server batches. Greedy, and
min_new_tokens == max_new_tokens so every request yields exactly max_tokens tokens (ignore_eos).
"""
from __future__ import annotations

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def load_model(spec: dict):
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, spec.get("dtype") or "float32")
    model_dir = spec.get("model_dir")
    if model_dir and os.path.exists(os.path.join(model_dir, "model.safetensors")):
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    else:  # dequantize the GGUF directly (slower load, same weights)
        sys.path.insert(0, HERE)
        from export_hf import find_gguf

        folder, name = os.path.split(find_gguf())
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=dtype)
    return model.eval()


def generate_batch(model, batch: list[list[int]], max_tokens: int, pad_id: int) -> list[list[int]]:
    """Greedy-generate exactly max_tokens for each prompt of one left-padded static batch."""
    import torch

    width = max(len(p) for p in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # [B, width]
    mask = torch.zeros((len(batch), width), dtype=torch.long)  # [B, width], 1 = real token
    for i, p in enumerate(batch):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_tokens,
            min_new_tokens=max_tokens, pad_token_id=pad_id,
        )  # [B, width + max_tokens]
    return out[:, width:].tolist()


def run(spec: dict) -> dict:
    import torch

    torch.set_num_threads(int(spec.get("threads", 2)))
    t0 = time.perf_counter()
    model = load_model(spec)
    load_s = time.perf_counter() - t0
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    prompts, max_tokens, bs = spec["prompts"], int(spec["max_tokens"]), int(spec["batch_size"])
    generate_batch(model, [prompts[0][:16]], 4, pad_id)  # warm-up: first-call allocations
    outputs: list[list[int]] = []
    t0 = time.perf_counter()
    for start in range(0, len(prompts), bs):
        outputs += generate_batch(model, prompts[start:start + bs], max_tokens, pad_id)
    elapsed = time.perf_counter() - t0
    return {
        "elapsed_s": elapsed, "load_s": load_s, "n_requests": len(prompts),
        "output_tokens": sum(len(o) for o in outputs),
        "exact_lengths": all(len(o) == max_tokens for o in outputs),
        "first_output": outputs[0][:32], "dtype": str(model.dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print("RESULT " + json.dumps(run(json.load(f))), flush=True)
