"""compile_json_schema with the C prepare against the Python passes, alternated per schema in one
process (the machine's load drifts alike for both): CPU ms p50 / p90 and the ratios.

    python benchmarks/prepare_paired.py [subset]   (default Github_ultra: MaskBench's schemas)
"""
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from grammar_bench import load_vocab  # noqa: E402
from maskbench_coverage import load_subset  # noqa: E402

import grammar.json_schema  # noqa: E402,F401  (imported now: no compile pays the import)
from grammar import GrammarCompiler, GrammarError  # noqa: E402
from grammar import prepare_native as pn  # noqa: E402

vocab = load_vocab()
rows = load_subset(sys.argv[1] if len(sys.argv) > 1 else "Github_ultra")
orig = pn.native_nfa
old, new = [], []
for rep in range(2):
    for sid, schema, _ in rows:
        ts = {}
        for mode in (('py', 'c') if rep == 0 else ('c', 'py')):
            pn.native_nfa = orig if mode == 'c' else (lambda g: None)
            gc.collect()
            t0 = time.process_time()
            try:
                GrammarCompiler(vocab).compile_json_schema(schema)
            except (GrammarError, RecursionError):
                ts = None
                break
            ts[mode] = time.process_time() - t0
        pn.native_nfa = orig
        if ts:
            old.append(ts['py']); new.append(ts['c'])


def p(v, q):
    v = sorted(v)
    return v[int(len(v) * q)] * 1e3


print(f"n={len(old)} python prepare: p50={p(old,.5):.1f} p90={p(old,.9):.1f} ms; C prepare: p50={p(new,.5):.1f} p90={p(new,.9):.1f} ms; "
      f"sum ratio {sum(new)/sum(old):.2f}; median per-schema ratio {sorted(n/o for n, o in zip(new, old))[len(old)//2]:.2f}")
