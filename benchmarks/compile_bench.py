"""Compile time of JSON Schemas: a fixed random sample of JSONSchemaBench schemas per subset.

    python benchmarks/compile_bench.py [--n 60] [--subset Github_medium Github_hard Github_ultra] [--repeat 2]

A fresh GrammarCompiler per schema (no cache), `compile_json_schema` timed in CPU seconds of this
process (`time.process_time()`: steadier than wall time on a shared machine; compiling is
single-threaded), the minimum over --repeat runs per schema; schemas rejected in strict mode
(GrammarError) are counted apart.  Prints p50 / p90 / max per subset.  The sample is
`random.Random(0).sample(schemas, n)`, the same on every run.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("JSONSCHEMABENCH", "/work/shared/data/jsonschemabench")


def load(name: str) -> list[tuple[str, dict]]:
    with open(os.path.join(DATA, "schemas", f"{name}.jsonl")) as f:
        return [(r["id"], r["schema"]) for r in map(json.loads, f)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60, help="schemas sampled per subset")
    ap.add_argument("--subset", nargs="*", default=["Github_medium", "Github_hard", "Github_ultra"])
    ap.add_argument("--repeat", type=int, default=1, help="runs per schema (the minimum is kept)")
    args = ap.parse_args()
    from grammar_bench import load_vocab

    from grammar import GrammarCompiler, GrammarError
    import grammar.json_schema  # noqa: F401  (imported now: no compile pays the import)

    vocab = load_vocab()
    for name in args.subset:
        rows = load(name)
        rows = random.Random(0).sample(rows, min(args.n, len(rows)))
        times, errors = [], 0
        for _sid, schema in rows:
            best = None
            for _ in range(args.repeat):
                compiler = GrammarCompiler(vocab)
                gc.collect()
                t0 = time.process_time()
                try:
                    compiler.compile_json_schema(schema)
                except (GrammarError, RecursionError):
                    errors += 1
                    best = None
                    break
                dt = time.process_time() - t0
                best = dt if best is None else min(best, dt)
            if best is not None:
                times.append(best * 1e3)
        ms = sorted(times) or [0.0]
        print(f"{name:14s} sampled={len(rows)} compiled={len(times)} strict-errors={errors} "
              f"p50={ms[len(ms) // 2]:.1f} p90={ms[int(len(ms) * 0.9)]:.1f} max={ms[-1]:.0f} ms (CPU)", flush=True)


if __name__ == "__main__":
    main()
