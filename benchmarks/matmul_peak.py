"""Measured GEMM peak of this CPU (torch, fixed thread count) and the model's FLOPs per token:
the roofline against which benchmarks/throughput.py reports achieved model FLOP/s.

    python benchmarks/matmul_peak.py [--threads 2] [--quick] [--out benchmarks/_work/matmul_peak.json]

FLOP accounting (multiply-add = 2 FLOPs), for a Llama decoder with hidden d, intermediate f,
L layers, H query heads and KV heads Hkv of size hd, vocabulary V (embedding lookup is free):
    matmul params per token P = L * (d*H*hd + 2*d*Hkv*hd + H*hd*d + 3*d*f)     (q, k+v, o, mlp)
    a token at position t (0-based) costs 2*P + 4*L*H*hd*(t+1)                  (QK^T and PV)
    each sampled token also costs 2*d*V for the LM head (prefill skips it except the last row).
A request with prompt length n and m output tokens feeds n + m - 1 tokens and samples m.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "_work", "matmul_peak.json")


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @property
    def matmul_params(self) -> int:
        d, hd = self.hidden, self.head_dim
        attn = d * self.heads * hd + 2 * d * self.kv_heads * hd + self.heads * hd * d
        return self.layers * (attn + 3 * d * self.intermediate)


def smollm2_shape() -> ModelShape:
    """Read the embedded SmolLM2 GGUF's metadata (no weights are loaded)."""
    import gguf

    sys.path.insert(0, os.path.join(HERE, "peers"))
    from export_hf import find_gguf

    reader = gguf.GGUFReader(find_gguf())
    arch = str(bytes(reader.fields["general.architecture"].parts[-1]), "utf-8")

    def meta(key: str) -> int:
        return int(reader.fields[f"{arch}.{key}"].parts[-1][0])

    d, heads = meta("embedding_length"), meta("attention.head_count")
    return ModelShape(
        hidden=d, intermediate=meta("feed_forward_length"), layers=meta("block_count"), heads=heads,
        kv_heads=meta("attention.head_count_kv"), head_dim=d // heads,
        vocab=len(reader.fields["tokenizer.ggml.tokens"].data),
    )


def request_flops(prompt_len: int, n_out: int, s: ModelShape) -> int:
    """Useful FLOPs of one request: every fed token through the body, attention over its causal
    prefix, and the LM head once per sampled token."""
    fed = prompt_len + n_out - 1  # the last sampled token is never fed back
    attn = 4 * s.layers * s.heads * s.head_dim * (fed * (fed + 1) // 2)  # sum over t of (t+1)
    return 2 * s.matmul_params * fed + attn + 2 * s.hidden * s.vocab * n_out


def measure_linear(m: int, k: int, n: int, dtype: str, min_time: float, packed: bool = False) -> float:
    """Best FLOP/s of y[m,n] = x[m,k] @ w[n,k]^T: torch.nn.functional.linear (MKL), or with
    `packed` the engine's CPU path (kernels.cpu_linear: oneDNN over a weight packed once)."""
    import torch

    dt = getattr(torch, dtype)
    x = torch.randn(m, k).to(dt)  # [m, k]
    w = torch.randn(n, k).to(dt)  # [n, k]
    if packed:
        sys.path.insert(0, os.path.dirname(HERE))
        from kernels import cpu_linear

        w = cpu_linear.pack(w)
        linear = cpu_linear.linear
    else:
        linear = torch.nn.functional.linear
    linear(x, w)  # warm-up (packing, thread pool)
    best, spent, reps = float("inf"), 0.0, 0
    while spent < min_time or reps < 3:
        t0 = time.perf_counter()
        linear(x, w)  # [m, n]
        dt_s = time.perf_counter() - t0
        best, spent, reps = min(best, dt_s), spent + dt_s, reps + 1
    return 2.0 * m * k * n / best


def shapes(s: ModelShape, quick: bool) -> list[tuple[str, int, int, int]]:
    out = [("square", 1024, 1024, 1024)] if quick else [("square", n, n, n) for n in (1024, 2048)]
    for m in ((32, 256) if quick else (1, 8, 32, 128, 256, 512)):
        out += [
            (f"mlp_up m={m}", m, s.hidden, s.intermediate),
            (f"mlp_down m={m}", m, s.intermediate, s.hidden),
            (f"lm_head m={m}", m, s.hidden, s.vocab),
        ]
    return out


def nominal_fp32_gflops(threads: int) -> float | None:
    """Paper peak for AVX2 + FMA: 2 FMA pipes x 8 fp32 lanes x 2 FLOPs per cycle per core, at the
    clock /proc/cpuinfo reports (boost clocks may exceed it). Context only; never the roofline."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = next(float(line.split(":")[1]) for line in f if line.startswith("cpu MHz"))
    except (OSError, StopIteration, ValueError):
        return None
    return threads * mhz * 1e-3 * 32


def measure(threads: int = 2, quick: bool = False) -> dict:
    import torch

    torch.set_num_threads(threads)
    s = smollm2_shape()
    rows = []
    # "float32-packed": the engine's own CPU matmul (oneDNN, weight packed at load); the roofline is
    # the best of every way measured, so the engine is never scored against a slower GEMM than its own
    for dtype in ("float32", "float32-packed", "bfloat16"):
        for name, m, k, n in shapes(s, quick):
            gflops = measure_linear(m, k, n, dtype.split("-")[0], 0.1 if quick else 0.4,
                                    packed=dtype.endswith("packed")) / 1e9
            rows.append({"dtype": dtype, "shape": name, "m": m, "k": k, "n": n, "gflops": gflops})
    peak = {dt: max(r["gflops"] for r in rows if r["dtype"].startswith(dt)) for dt in ("float32", "bfloat16")}
    return {
        "threads": threads, "torch": torch.__version__, "quick": quick, "rows": rows,
        "peak_gflops": peak, "nominal_fp32_gflops": nominal_fp32_gflops(threads), "model": asdict(s), "matmul_params": s.matmul_params,
        "flops_per_decode_token_ctx0": 2 * s.matmul_params + 2 * s.hidden * s.vocab,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def load_or_measure(path: str = DEFAULT_OUT, threads: int = 2) -> dict:
    """Cached result if one exists for this thread count, else a quick measurement (~15 s)."""
    if os.path.exists(path):
        with open(path) as f:
            res = json.load(f)
        if res.get("threads") == threads:
            return res
    res = measure(threads, quick=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="CPU GEMM peak and model FLOPs per token")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    res = measure(args.threads, args.quick)
    for r in res["rows"]:
        print(f"{r['dtype']:>9} {r['shape']:>18} [{r['m']}x{r['k']}]x[{r['k']}x{r['n']}]  "
              f"{r['gflops']:7.1f} GFLOP/s")
    print(f"peak (best measured): {res['peak_gflops']}  GFLOP/s at {res['threads']} threads; "
          f"nominal AVX2 fp32 peak {res['nominal_fp32_gflops']} GFLOP/s")
    print(f"model: {res['model']}  matmul params/token {res['matmul_params'] / 1e6:.1f}M, "
          f"{res['flops_per_decode_token_ctx0'] / 1e6:.0f} MFLOP per sampled token before attention")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
