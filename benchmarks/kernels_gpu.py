"""GPU kernel benchmark: achieved memory bandwidth of the Triton kernels against the card's
measured copy bandwidth, each next to the torch eager equivalent (the kernels.reference ops).

    python benchmarks/kernels_gpu.py [--quick] [--what sampling,attention] [--out FILE.json] [--dry-run]

Bytes counted (the minimum traffic of the op, so "achieved GB/s" is comparable to a copy):
  sampling   B * V_model * 4 (the float32 logits row read once) + bitmask words when masked
  attention  sum over sequences of 2 * context * Hkv * D * elem (K and V read once) + q and out
Copy bandwidth: a device-to-device clone of a 1 GiB tensor (read + write counted), the best of 20.
The script needs CUDA; without it, --dry-run prints the plan and any other run exits with status 2.
Record results in benchmarks/RESULTS.md with the card's name (torch.cuda.get_device_name()).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch

BATCHES = (1, 4, 16, 64, 256)
VOCABS = (32_000, 128_256, 151_936)  # Llama-2, Llama-3, Qwen2 model vocabularies
CONTEXTS = (1024, 2048, 4096, 8192, 16384, 32768)
SAMPLING_MODES = ("greedy", "masked_greedy", "temperature", "masked_temperature", "top_p", "masked_top_p")
# masked_*: a grammar bitmask on every row (random words: about half the vocabulary allowed); the
# pairs with and without it give the cost of the constraint inside the fused kernel


@dataclass(frozen=True)
class Case:
    kind: str  # "sampling" or "attention"
    batch: int
    size: int  # vocabulary (sampling) or context length (attention)
    mode: str  # sampling mode, or the attention dtype


@dataclass
class Result:
    case: Case
    bytes: int
    triton_ms: float
    torch_ms: float
    triton_gbs: float
    torch_gbs: float
    copy_fraction: float  # triton GB/s / copy GB/s


def plan(what: set[str], quick: bool) -> list[Case]:
    batches = (1, 64) if quick else BATCHES
    cases: list[Case] = []
    if "sampling" in what:
        for v in VOCABS[-1:] if quick else VOCABS:
            for b in batches:
                cases += [Case("sampling", b, v, m) for m in SAMPLING_MODES]
    if "attention" in what:
        for ctx in (1024, 32768) if quick else CONTEXTS:
            for b in (1, 16) if quick else (1, 8, 32, 64):
                if b * ctx <= 64 * 16384:  # keep the cache under ~8 GiB
                    cases.append(Case("attention", b, ctx, "bfloat16"))
    return cases


def bench_ms(fn, iters: int = 20) -> float:
    """Median time of fn() in ms with CUDA events, after a warm-up call (compilation)."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def copy_bandwidth_gbs() -> float:
    x = torch.empty(1 << 28, dtype=torch.float32, device="cuda")  # 1 GiB
    ms = min(bench_ms(lambda: x.clone(), iters=5) for _ in range(4))
    return 2 * x.numel() * 4 / ms / 1e6


def sampling_inputs(case: Case):
    from kernels.reference import SamplingTensors

    b, v, dev = case.batch, case.size, "cuda"
    g = torch.Generator(device=dev).manual_seed(0)
    logits = torch.randn(b, v + 64, device=dev, generator=g) * 3  # model vocab padded by 64
    greedy = case.mode.endswith("greedy")
    masked = case.mode.startswith("masked")
    top_p = case.mode.endswith("top_p")
    bitmask = torch.randint(-(2**31), 2**31 - 1, (b, (v + 31) // 32), dtype=torch.int32, device=dev, generator=g)
    t = SamplingTensors(
        temperature=torch.full((b,), 0.0 if greedy else 0.8, device=dev),
        top_p=torch.full((b,), 0.9 if top_p else 1.0, device=dev),
        top_k=torch.zeros(b, dtype=torch.int32, device=dev), min_p=torch.zeros(b, device=dev),
        seeds=torch.arange(b, device=dev), positions=torch.zeros(b, dtype=torch.long, device=dev),
        repetition_penalty=torch.ones(b, device=dev), presence_penalty=torch.zeros(b, device=dev),
        frequency_penalty=torch.zeros(b, device=dev), bitmask=bitmask if masked else None,
        vocab_size=v, all_greedy=greedy, any_top_p_top_k=top_p,
    )
    nbytes = logits.numel() * 4 + (bitmask.numel() * 4 if masked else 0)
    return logits, t, nbytes


def attention_inputs(case: Case, hq: int = 32, hkv: int = 8, d: int = 128, page: int = 16):
    b, ctx, dt = case.batch, case.size, getattr(torch, case.mode)
    blocks_per_seq = (ctx + page - 1) // page
    kc = torch.randn(b * blocks_per_seq, page, hkv, d, device="cuda", dtype=dt)
    vc = torch.randn_like(kc)
    tables = torch.randperm(b * blocks_per_seq, device="cuda").view(b, blocks_per_seq).int()
    q = torch.randn(b, hq, d, device="cuda", dtype=dt)
    qsl = torch.arange(b + 1, device="cuda", dtype=torch.int32)
    lens = torch.full((b,), ctx, device="cuda", dtype=torch.int32)
    nbytes = 2 * b * ctx * hkv * d * kc.element_size() + 2 * q.numel() * q.element_size()
    return (q, kc, vc, qsl, lens, tables, d**-0.5), nbytes


def run_case(case: Case, copy_gbs: float) -> Result:
    from kernels import attention, reference, sampling

    if case.kind == "sampling":
        logits, t, nbytes = sampling_inputs(case)
        tri = bench_ms(lambda: sampling.sample_triton(logits, t))
        eager = bench_ms(lambda: reference.sample_reference(logits, t))
    else:
        args, nbytes = attention_inputs(case)
        tri = bench_ms(lambda: attention.paged_attention(*args, max_query_len=1))
        eager = bench_ms(lambda: reference.paged_attention(*args))
    gbs = lambda ms: nbytes / ms / 1e6
    return Result(case, nbytes, tri, eager, gbs(tri), gbs(eager), gbs(tri) / copy_gbs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--what", default="sampling,attention", help="comma list: sampling, attention")
    ap.add_argument("--quick", action="store_true", help="a few shapes only")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--dry-run", action="store_true", help="print the cases and exit")
    args = ap.parse_args(argv)
    what = {w.strip() for w in args.what.split(",") if w.strip()}
    if not what or what - {"sampling", "attention"}:
        ap.error(f"--what takes sampling and/or attention, got {args.what!r}")
    cases = plan(what, args.quick)
    if args.dry_run:
        for c in cases:
            print(f"{c.kind:9s} batch={c.batch:4d} size={c.size:7d} {c.mode}")
        return 0
    if not torch.cuda.is_available():
        print("kernels_gpu.py needs a CUDA device (use --dry-run to see the plan)", file=sys.stderr)
        return 2
    copy_gbs = copy_bandwidth_gbs()
    print(f"device: {torch.cuda.get_device_name()}  copy bandwidth: {copy_gbs:.0f} GB/s")
    print(f"{'kind':9s} {'batch':>5s} {'size':>7s} {'mode':18s} {'triton ms':>9s} {'GB/s':>6s} {'%copy':>6s} {'torch ms':>9s} {'GB/s':>6s}")
    results = []
    for c in cases:
        r = run_case(c, copy_gbs)
        results.append(r)
        print(f"{c.kind:9s} {c.batch:5d} {c.size:7d} {c.mode:18s} {r.triton_ms:9.3f} {r.triton_gbs:6.0f} "
              f"{100 * r.copy_fraction:5.1f}% {r.torch_ms:9.3f} {r.torch_gbs:6.0f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "copy_gbs": copy_gbs,
                       "results": [asdict(r) for r in results]}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
