"""A/B the fused Triton sampling kernel against a saved copy of kernels/sampling.py, on a GPU.

    python benchmarks/sampling_gpu_ab.py --baseline OLD_sampling.py [--variants 1024x4,2048x8]

For each case (batch, vocabulary, mode: greedy, temperature, masked_top_p as in
benchmarks/kernels_gpu.py) it times the baseline module's `sample_triton` (block 1024, 4 warps)
and the current one at each variant BLOCKxWARPS with CUDA events (median of 30 after a warm-up),
checks that the current tokens equal the baseline's, and prints one table row per case.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import torch
from kernels_gpu import Case, bench_ms, sampling_inputs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--variants", default="1024x4,1024x8,2048x8,2048x16,4096x16")
    ap.add_argument("--batches", default="1,16,64,256")
    ap.add_argument("--vocabs", default="128256,151936")
    ap.add_argument("--modes", default="greedy,temperature,masked_top_p")
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("sampling_base", args.baseline)
    base = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(base)
    from kernels import sampling

    variants = [tuple(int(x) for x in v.split("x")) for v in args.variants.split(",")]
    print(f"device: {torch.cuda.get_device_name()}")
    print(f"{'batch':>5s} {'vocab':>7s} {'mode':13s} {'base ms':>8s} " + " ".join(f"{b}x{w:>2d} ms".rjust(11) for b, w in variants) + "  same tokens")
    for v in map(int, args.vocabs.split(",")):
        for b in map(int, args.batches.split(",")):
            for mode in args.modes.split(","):
                logits, t, _ = sampling_inputs(Case("sampling", b, v, mode))
                t.positions = torch.arange(b, device="cuda") * 7 + 1
                ref = base.sample_triton(logits, t).token_ids
                ms0 = bench_ms(lambda: base.sample_triton(logits, t), iters=30)
                cells, same = [], True
                for blk, nw in variants:
                    got = sampling.sample_triton(logits, t, block=blk, num_warps=nw).token_ids
                    same &= bool(torch.equal(got, ref))
                    cells.append(bench_ms(lambda: sampling.sample_triton(logits, t, block=blk, num_warps=nw), iters=30))
                print(f"{b:5d} {v:7d} {mode:13s} {ms0:8.3f} " + " ".join(f"{c:11.3f}" for c in cells) + f"  {same}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
