"""Serving benchmark: N concurrent streaming clients over HTTP, json_schema-constrained against
unconstrained on the same prompts, in one run.

    python benchmarks/serve_bench.py --clients 8 --requests 32 --max-tokens 64
    python benchmarks/serve_bench.py --url http://127.0.0.1:8000 --model NAME   # an already running server

Without --url it starts `gramserve serve` on a free loopback port (the embedded SmolLM2) and
stops it at the end. Per mode it reports request throughput, output tokens/s, and
time-to-first-token / time-per-output-token p50 and p99 (client side, from SSE arrival times;
token counts from the final usage chunk). The unconstrained run uses ignore_eos so both modes
produce full-length outputs where the schema allows; the target is constrained throughput at
least 0.9x unconstrained.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
        "genres": {"type": "array", "items": {"enum": ["drama", "comedy", "action", "horror", "sci-fi"]},
                   "minItems": 1, "maxItems": 3},
        "rating": {"type": "number", "minimum": 0, "maximum": 10},
        "summary": {"type": "string", "maxLength": 200},
    },
    "required": ["title", "year", "genres", "rating", "summary"],
    "additionalProperties": False,
}
TOPICS = ["a heist in Venice", "robots learning to paint", "a lighthouse keeper", "a chess prodigy",
          "a haunted train", "first contact on Mars", "a baker's rivalry", "a deep-sea rescue"]


def _prompt(i: int) -> str:
    return f"Invent a movie about {TOPICS[i % len(TOPICS)]} and describe it as JSON."


async def _one(http, url, model, i, args, constrained) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": _prompt(i)}], "max_tokens": args.max_tokens,
            "temperature": 0.7, "seed": i, "stream": True, "stream_options": {"include_usage": True}}
    if constrained:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "movie", "schema": SCHEMA}}
    else:
        body["ignore_eos"] = True
    t0 = time.perf_counter()
    first = last = None
    tokens = 0
    async with http.stream("POST", url + "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
    ttft = (first or time.perf_counter()) - t0
    tpot = (last - first) / (tokens - 1) if first and tokens > 1 else None
    return {"ttft": ttft, "tpot": tpot, "tokens": tokens}


async def _run_mode(url, model, args, constrained) -> dict:
    sem = asyncio.Semaphore(args.clients)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}

    async def guarded(http, i):
        async with sem:
            return await _one(http, url, model, i, args, constrained)

    async with httpx.AsyncClient(timeout=None, headers=headers) as http:
        await _one(http, url, model, 0, args, constrained)  # warm-up: grammar compile, caches
        t0 = time.perf_counter()
        res = await asyncio.gather(*(guarded(http, i) for i in range(args.requests)))
        wall = time.perf_counter() - t0
    tokens = sum(r["tokens"] for r in res)
    ttft = [r["ttft"] for r in res]
    tpot = [r["tpot"] for r in res if r["tpot"] is not None]
    return {"mode": "json_schema" if constrained else "unconstrained", "requests": len(res), "wall_s": wall,
            "req_per_s": len(res) / wall, "output_tok_per_s": tokens / wall, "mean_output_tokens": tokens / len(res),
            "ttft_p50_s": _pct(ttft, 50), "ttft_p99_s": _pct(ttft, 99),
            "tpot_p50_s": _pct(tpot, 50), "tpot_p99_s": _pct(tpot, 99)}


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def _start_server(args) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--log-level", "warning",
           "--max-num-seqs", str(args.clients), "--served-model-name", "bench"]
    if args.model_path:
        cmd += ["--model", args.model_path]
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=None, help="a running server (default: start one)")
    ap.add_argument("--model", default="bench", help="served model name at --url")
    ap.add_argument("--model-path", default=None, help="model for the started server (default: embedded)")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    proc, url = (None, args.url) if args.url else _start_server(args)
    try:
        results = [asyncio.run(_run_mode(url, args.model, args, c)) for c in (False, True)]
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    free, cons = results
    ratio = cons["output_tok_per_s"] / free["output_tok_per_s"]
    print("| mode | req/s | output tok/s | mean out tokens | TTFT p50 / p99 (s) | TPOT p50 / p99 (s) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {r['req_per_s']:.3f} | {r['output_tok_per_s']:.1f} | {r['mean_output_tokens']:.1f} | "
              f"{r['ttft_p50_s']:.2f} / {r['ttft_p99_s']:.2f} | {r['tpot_p50_s']:.3f} / {r['tpot_p99_s']:.3f} |")
    print(f"constrained / unconstrained output tok/s: {ratio:.2f}x (target >= 0.9x)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "results": results, "ratio": ratio}, f, indent=2)


if __name__ == "__main__":
    main()
