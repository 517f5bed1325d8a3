"""Cold mask fills of gramserve alone on the MaskBench sample of maskbench_masks.py, for A/B runs.

    python benchmarks/mask_fills.py [--per-subset 20]

The same cases as `maskbench_masks.py` (ten JSONSchemaBench subsets, `random.Random(0)` sample,
first valid instance in compact form, at most 256 tokens): each schema is compiled (not timed),
then every token's `fill_bitmask` is timed on the first (cold) pass and the grammar is dropped
before the next schema, as a server does with a grammar leaving its cache.  Prints the number of
fills, mean / p50 / p99 in us and the minor page faults per fill.  Alternate it between two
checkouts (`cd <worktree> && python benchmarks/mask_fills.py`) to compare versions on this noisy
machine.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grammar_bench as gb  # noqa: E402
from maskbench_coverage import SUBSETS  # noqa: E402
from maskbench_masks import cases  # noqa: E402

from grammar import GrammarCompiler, GrammarError, allocate_bitmask  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-subset", type=int, default=20)
    args = ap.parse_args()
    vocab = gb.load_vocab()
    import grammar.json_schema  # noqa: F401
    row = allocate_bitmask(1, vocab.size)[0]
    times, faults = [], 0
    for name in SUBSETS:
        for _sid, schema, ids in cases(vocab, name, args.per_subset, 256):
            try:
                g = GrammarCompiler(vocab).compile_json_schema(schema)
            except (GrammarError, RecursionError):
                continue
            m = g.matcher()
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for t in ids:
                t0 = time.perf_counter()
                m.fill_bitmask(row)
                times.append(time.perf_counter() - t0)
                if not m.accept_token(t):
                    break
            faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
            del g, m
    us = np.asarray(times) * 1e6
    print(f"fills {len(us)} mean {us.mean():.1f} p50 {np.median(us):.1f} p99 {np.percentile(us, 99):.1f} us"
          f"  page faults/fill {faults / len(us):.1f}")


if __name__ == "__main__":
    main()
