"""llama.cpp worker (llama-cpp-python 0.3.36, the same Q4_1 GGUF) for benchmarks/throughput.py.

Runs in peers/llamacpp-venv (stdlib + llama_cpp only). Reads a spec JSON, prints `RESULT {json}`.
    spec = {"prompts": [[token ids], ...], "max_tokens": 128, "threads": 2, "gguf": path}
Single stream: one request at a time (what its server does: one global lock). Greedy, and EOS
is ignored by driving `Llama.generate` (which never stops by itself) for exactly max_tokens.
"""
from __future__ import annotations

import json
import sys
import time


def generate_one(llm, prompt: list[int], max_tokens: int) -> list[int]:
    llm.reset()  # no KV reuse between requests: each request reads its whole prompt
    out: list[int] = []
    for tok in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
        out.append(int(tok))
        if len(out) == max_tokens:
            break
    return out


def run(spec: dict) -> dict:
    from llama_cpp import Llama, __version__

    prompts, max_tokens = spec["prompts"], int(spec["max_tokens"])
    threads = int(spec.get("threads", 2))
    t0 = time.perf_counter()
    llm = Llama(
        model_path=spec["gguf"], n_ctx=max(len(p) for p in prompts) + max_tokens + 16,
        n_threads=threads, n_threads_batch=threads, n_batch=512, seed=0, verbose=False,
    )
    load_s = time.perf_counter() - t0
    generate_one(llm, prompts[0][:16], 4)  # warm-up
    t0 = time.perf_counter()
    outputs = [generate_one(llm, p, max_tokens) for p in prompts]
    elapsed = time.perf_counter() - t0
    return {
        "elapsed_s": elapsed, "load_s": load_s, "n_requests": len(prompts),
        "output_tokens": sum(len(o) for o in outputs),
        "exact_lengths": all(len(o) == max_tokens for o in outputs),
        "first_output": outputs[0][:32], "dtype": "q4_1", "threads": threads,
        "version": __version__,
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print("RESULT " + json.dumps(run(json.load(f))), flush=True)
