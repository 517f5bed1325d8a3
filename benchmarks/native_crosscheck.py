"""The C automaton against the Python one on MaskBench: every mask along valid instances.

    python benchmarks/native_crosscheck.py [--per-subset 4] [--max-tokens 40] [--seconds 420]

For each sampled schema (`maskbench_masks.cases`: the same seeded sample, first valid instance in
compact form), the schema is compiled twice, with the C core and with the Python reference
automaton (pda.py, `native.load` disabled), and both matchers fill the mask before every token
of the instance; any difference is printed with the first differing tokens.  The C scan's
shortcuts (plain tokens by length, plain-closed configurations, chains, big subtrees) must give
exactly the Python walk's masks.  Slower than the test suite's random paths (the Python walk
inside a string takes tens of ms), so it is a tool, not a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grammar_bench as gb  # noqa: E402
from maskbench_coverage import SUBSETS  # noqa: E402
from maskbench_masks import cases  # noqa: E402

from grammar import GrammarCompiler, GrammarError, allocate_bitmask, native  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-subset", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=420.0, help="stop starting new schemas after this")
    args = ap.parse_args()
    import grammar.json_schema  # noqa: F401
    vocab = gb.load_vocab()
    row_c, row_py = allocate_bitmask(2, vocab.size)
    load = native.load
    deadline = time.time() + args.seconds
    schemas = fills = mismatches = 0
    for name in SUBSETS:
        for sid, schema, ids in cases(vocab, name, args.per_subset, args.max_tokens):
            if time.time() > deadline:
                break
            try:
                fast = GrammarCompiler(vocab).compile_json_schema(schema)
                native.load = lambda: None  # CompiledGrammar asks it whether to use the C core
                slow = GrammarCompiler(vocab).compile_json_schema(schema)
            except (GrammarError, RecursionError):
                continue
            finally:
                native.load = load
            if fast.core is None:
                sys.exit("the C core is not available here")
            schemas += 1
            mc, mp = fast.matcher(), slow.matcher()
            for t in ids:
                mc.fill_bitmask(row_c)
                mp.fill_bitmask(row_py)
                fills += 1
                if not np.array_equal(row_c, row_py):
                    mismatches += 1
                    diff = np.flatnonzero(np.unpackbits((row_c ^ row_py).view(np.uint8), bitorder="little"))
                    print(f"MISMATCH {name}/{sid} at fill {fills}: {[vocab.tokens[x] for x in diff[:10]]}")
                    break
                if not (mc.accept_token(t) and mp.accept_token(t)):
                    break
    print(f"schemas {schemas}, fills compared {fills}, mismatches {mismatches}")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
