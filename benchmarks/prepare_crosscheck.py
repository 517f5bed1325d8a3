"""The C prepare (prepare_native) against the Python passes: the same NFA, names and errors.

    python benchmarks/prepare_crosscheck.py [--limit N] [--only jsonschemabench lark files tests random] [--lenient]

For every grammar of the corpora (every JSONSchemaBench subset, schemas/*.jsonl and the MaskBench
extras; every Lark grammar under $LARK_GRAMMARS that lowers; schemas/*.json and *.lark; the test
suite's IR grammars), the automaton is built twice: the reference path
`Nfa(normalize.prepare(g), productive=True)` and `prepare_native.native_nfa(g)` (None: the grammar
went to the Python passes).  Both must give the same `arrays()` element for element, the same
rule names, or the same GrammarError message.  Prints the counts (compared, identical, fell back,
differing) and each difference.
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import sys
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.environ.get("JSONSCHEMABENCH", "/work/shared/data/jsonschemabench")
LARK = os.environ.get("LARK_GRAMMARS", "/work/shared/data/lark-grammars")


def jsonschemabench():
    for path in sorted(glob.glob(os.path.join(DATA, "schemas", "*.jsonl"))):
        name = os.path.basename(path)[:-6]
        with open(path) as f:
            for row in map(json.loads, f):
                yield f"{name}/{row['id']}", ("json", row["schema"])
    for path in sorted(glob.glob(os.path.join(DATA, "maskbench", "extra_*.jsonl.gz"))):
        name = os.path.basename(path)[6:-9]
        with gzip.open(path, "rt") as f:
            for row in map(json.loads, f):
                yield f"{name}/{row['id']}", ("json", row["schema"])


def lark_files():
    for path in sorted(glob.glob(os.path.join(LARK, "**", "*.lark"), recursive=True)):
        try:
            with open(path, errors="replace") as f:
                yield os.path.relpath(path, LARK), ("lark", f.read())
        except OSError:
            continue


def repo_files():
    for path in sorted(glob.glob(os.path.join(ROOT, "schemas", "*.json"))):
        if path.endswith(".example.json"):
            continue
        with open(path) as f:
            yield os.path.relpath(path, ROOT), ("json", json.load(f))
    for path in sorted(glob.glob(os.path.join(ROOT, "schemas", "*.lark"))):
        with open(path) as f:
            yield os.path.relpath(path, ROOT), ("lark", f.read())


def test_grammars():
    """IR grammars the test suite builds (tests/grammar/prepare_cases.py)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "grammar"))
    from prepare_cases import cases

    for name, g in cases():
        yield f"tests/{name}", ("ir", g)


def random_grammars(n: int = 3000):
    """Random IR grammars (tests/grammar/prepare_cases.random_grammar), seeded."""
    import random

    sys.path.insert(0, os.path.join(ROOT, "tests", "grammar"))
    from prepare_cases import random_grammar

    rng = random.Random(0)
    for i in range(n):
        yield f"random/{i}", ("ir", random_grammar(rng, rng.randrange(1, 9), rng.randrange(1, 6)))


STRICT = True


def lower(kind, spec):
    from grammar import ir

    if kind == "json":
        from grammar.json_schema import json_schema_to_grammar

        return json_schema_to_grammar(spec, strict=STRICT)[0]
    if kind == "lark":
        from grammar.lark_frontend import lark_to_grammar

        return lark_to_grammar(spec)
    assert isinstance(spec, ir.Grammar)
    return spec


def outcome(fn):
    from grammar import GrammarError

    try:
        nfa = fn()
    except GrammarError as e:
        return ("error", str(e))
    except RecursionError:
        return ("error", "the grammar nests too deeply to compile")
    if nfa is None:
        return None
    return ("nfa", nfa.names, nfa.arrays())


def same(a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return a[1] == b[1]
    if a[1] != b[1] or len(a[2]) != len(b[2]):
        return False
    return all(x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a[2], b[2]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=["jsonschemabench", "lark", "files", "tests", "random"])
    ap.add_argument("--limit", type=int, default=0, help="grammars per source (0: all)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--lenient", action="store_true", help="JSON Schemas lowered with strict=False")
    args = ap.parse_args()
    global STRICT
    STRICT = not args.lenient
    from grammar import GrammarError, native
    from grammar.nfa import Nfa
    from grammar.normalize import prepare
    from grammar.prepare_native import native_nfa

    if native.load() is None:
        sys.exit("the native core is not available")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    sources = {"jsonschemabench": jsonschemabench, "lark": lark_files, "files": repo_files,
               "tests": test_grammars, "random": random_grammars}
    counts = dict(compared=0, identical=0, fell_back=0, differing=0, not_lowered=0)
    t_old = t_new = 0.0
    t0 = time.time()
    for src in args.only:
        k = 0
        for name, (kind, spec) in sources[src]():
            if args.limit and k >= args.limit:
                break
            k += 1
            try:
                g = lower(kind, spec)
            except (GrammarError, RecursionError, ValueError, KeyError, TypeError):
                counts["not_lowered"] += 1
                continue
            ta = time.process_time()
            old = outcome(lambda: Nfa(prepare(g), productive=True))
            tb = time.process_time()
            try:
                new = outcome(lambda: native_nfa(g))
            except Exception:
                traceback.print_exc()
                new = ("crash",)
            tc = time.process_time()
            counts["compared"] += 1
            if new is None:
                counts["fell_back"] += 1
                continue
            t_old += tb - ta
            t_new += tc - tb
            if same(old, new):
                counts["identical"] += 1
                if args.verbose:
                    print("ok", name, old[0], flush=True)
            else:
                counts["differing"] += 1
                print("DIFFERS", name, old[0], new[0], old[1] if old[0] == "error" else len(old[1]),
                      new[1] if new[0] == "error" else (len(new[1]) if new[0] == "nfa" else ""), flush=True)
        print(src, counts, f"{time.time() - t0:.0f}s", flush=True)
    print(f"prepare+Nfa on the compared, non-fallback grammars: python {t_old:.2f}s, C {t_new:.2f}s")
    print(json.dumps(counts))
    sys.exit(1 if counts["differing"] else 0)


if __name__ == "__main__":
    main()
