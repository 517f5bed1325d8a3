"""A/B one CPU kernel of the engine against its torch reference, in one process.

    python benchmarks/kernel_ab.py --kernel pack_linear [--requests 64] [--rounds 2]

Each round builds a fresh `engine.LLM` with the kernel entry point rebound to
`kernels.reference` ("off") and one with the backend's own ("on"), runs the benchmark prompts
(benchmarks/peers/prompts.py, 128 greedy tokens each, EOS ignored) and prints output tokens/s per
round plus whether the greedy outputs were identical. The decoder looks kernels up at call time,
so rebinding the module attribute is enough; `pack_linear` is read once, when the runner packs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(HERE, "peers")]
KERNELS = ("pack_linear", "add_rms_norm", "rope_write_kv", "silu_mul")


def run_once(prompts: list[list[int]], max_tokens: int) -> tuple[float, list[list[int]]]:
    from engine import LLM, SamplingParams

    llm = LLM(model=None, progress=False)
    llm.generate([{"prompt_token_ids": prompts[0][:16]}],
                 SamplingParams(temperature=0, max_tokens=4, ignore_eos=True), use_tqdm=False)
    params = SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True)
    t0 = time.perf_counter()
    outs = llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
    elapsed = time.perf_counter() - t0
    tokens = [list(o.outputs[0].token_ids) for o in outs]
    return sum(map(len, tokens)) / elapsed, tokens


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", required=True, choices=KERNELS)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    import kernels
    from kernels import reference
    from prompts import benchmark_prompts

    prompts = benchmark_prompts(64, 0)[: args.requests]
    own, ref = getattr(kernels, args.kernel), getattr(reference, args.kernel)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    outputs = {}
    for rnd in range(args.rounds):
        for mode in ("off", "on"):
            setattr(kernels, args.kernel, ref if mode == "off" else own)
            rate, outputs[mode] = run_once(prompts, args.max_tokens)
            rates[mode].append(rate)
            print(f"round {rnd + 1} {args.kernel} {mode}: {rate:.1f} output tok/s", flush=True)
    setattr(kernels, args.kernel, own)
    same = sum(a == b for a, b in zip(outputs["off"], outputs["on"]))
    print(f"median off {statistics.median(rates['off']):.1f}, on {statistics.median(rates['on']):.1f} tok/s; "
          f"greedy outputs identical for {same}/{len(prompts)} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
