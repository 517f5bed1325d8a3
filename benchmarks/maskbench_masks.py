"""Per-token mask time on MaskBench schemas, side by side with the peers (the SmolLM2 vocabulary).

    python benchmarks/maskbench_masks.py [--per-subset 20] [--peers llguidance,xgrammar] [--subset ...]

For a fixed random sample of schemas per JSONSchemaBench subset (seed 0), the first valid
MaskBench instance of each (compact `json.dumps` form) is tokenized greedily with SmolLM2's
49,152-token vocabulary.  Every engine compiles the schema fresh (no cache, no warm-up) and fills
the mask before each token of the instance: the cold pass, where every automaton state is met for
the first time, as in grammar_bench.py.  A schema that some engine cannot compile, or whose
instance some engine rejects, is left out for every engine, so all engines time the same tokens.
Prints, per subset and overall: schemas timed, tokens, mask time mean / p50 / p99 (us) and compile
ms p50 for each engine.  Peers are benchmark-only extras (`pip install llguidance xgrammar`).

Each engine runs in its own process over every sampled case (`--worker`, one after the other), so
that no engine's timings carry another's cache and heap state (alternating engines schema by
schema in one process slowed gramserve's cold masks by ~25% and llguidance's less);
`--same-process` keeps the old interleaved run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grammar_bench as gb  # noqa: E402
from maskbench_coverage import SUBSETS, load_subset  # noqa: E402

from grammar import GrammarCompiler, GrammarError, allocate_bitmask  # noqa: E402


def bench_gramserve(vocab, schema, ids):
    compiled, cms = gb._timed_compile(lambda: GrammarCompiler(vocab).compile_json_schema(schema))
    row = allocate_bitmask(1, vocab.size)[0]
    return cms, gb._two_passes(compiled.matcher, lambda m: m.fill_bitmask(row),
                               lambda m, t: m.accept_token(t), ids)


ENGINES = {"gramserve": bench_gramserve,
           "llguidance": lambda vocab, schema, ids: gb.bench_llguidance(vocab, "schema", schema, ids),
           "xgrammar": lambda vocab, schema, ids: gb.bench_xgrammar(vocab, "schema", schema, ids)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-subset", type=int, default=20, help="schemas sampled per subset")
    ap.add_argument("--subset", nargs="*", default=list(SUBSETS))
    ap.add_argument("--peers", default="llguidance,xgrammar", help="comma-separated; '' for none")
    ap.add_argument("--max-tokens", type=int, default=256, help="instance tokens timed at most")
    ap.add_argument("--same-process", action="store_true", help="all engines in this process, interleaved")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # ENGINE: time it alone
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    engines = ["gramserve"] + [p for p in args.peers.split(",") if p]
    vocab = gb.load_vocab()
    import grammar.json_schema  # noqa: F401  (imported now: no compile time pays the import)
    if args.worker:
        _worker(args, vocab)
        return
    results = None if args.same_process else {e: _spawn(e, args) for e in engines}

    print(f"vocabulary: {vocab.size} tokens; engines: {', '.join(engines)}; "
          f"{args.per_subset} schemas per subset", flush=True)
    header = f"{'subset':16} {'n':>3} {'tok':>5} | " + " | ".join(
        f"{e + ' mean/p50/p99 us, compile ms':>40}" for e in engines)
    print(header)
    total = {e: ([], []) for e in engines}
    skipped: Counter = Counter()
    for name in args.subset:
        per = {e: ([], []) for e in engines}
        n = tokens = 0
        for sid, schema, ids in cases(vocab, name, args.per_subset, args.max_tokens):
            got = {}
            for e in engines:
                if results is not None:  # the engine's own process timed it
                    res = results[e][f"{name}/{sid}"]
                    if "error" in res:
                        skipped[f"{e}: {res['error']}"] += 1
                        break
                    got[e] = (res["compile_ms"], res["cold"])
                    continue
                try:
                    got[e] = _run(e, vocab, schema, ids)
                except Exception as err:  # noqa: BLE001 - a peer's own error types (and rejections)
                    skipped[f"{e}: {_why(err)}"] += 1
                    break
            if len(got) < len(engines):
                continue
            n += 1
            tokens += len(ids)
            for e, (cw, cold) in got.items():
                per[e][0].extend(cold)
                per[e][1].append(cw)
        for e in engines:
            total[e][0].extend(per[e][0])
            total[e][1].extend(per[e][1])
        print(_line(name, n, tokens, per, engines), flush=True)
    n_all = sum(1 for _ in total[engines[0]][1])
    print(_line("ALL", n_all, len(total[engines[0]][0]), total, engines))
    print(f"left out (an engine failed to compile or rejected the instance): {sum(skipped.values())}")
    for why, k in skipped.most_common(12):
        print(f"  {k:4d}  {why}")


def cases(vocab, subset: str, per_subset: int, max_tokens: int):
    """(schema id, schema, token ids) of the sampled schemas of one subset that have a valid
    instance: the first one, compact `json.dumps` form, greedily tokenized, cut at max_tokens."""
    rows = load_subset(subset)
    for sid, schema, tests in random.Random(0).sample(rows, min(per_subset, len(rows))):
        valid = [t for t in tests if t["valid"]]
        if valid:
            ids = gb.greedy_tokenize(vocab, json.dumps(valid[0]["data"], separators=(",", ":")).encode())
            yield sid, schema, ids[:max_tokens]


def _run(engine, vocab, schema, ids):
    (cw, _cc), (cold, _warm) = ENGINES[engine](vocab, schema, ids)
    return cw, cold


def _why(err: Exception) -> str:
    if isinstance(err, (GrammarError, RecursionError)):
        return type(err).__name__
    return f"{type(err).__name__}: {str(err)[:60]}"


def _worker(args, vocab) -> None:
    """Time one engine on every sampled case; write {subset/id: {compile_ms, cold} | {error}}."""
    out = {}
    for name in args.subset:
        for sid, schema, ids in cases(vocab, name, args.per_subset, args.max_tokens):
            try:
                cw, cold = _run(args.worker, vocab, schema, ids)
                out[f"{name}/{sid}"] = {"compile_ms": cw, "cold": cold}
            except Exception as err:  # noqa: BLE001 - a peer's own error types (and rejections)
                out[f"{name}/{sid}"] = {"error": _why(err)}
    with open(args.out, "w") as f:
        json.dump(out, f)


def _spawn(engine: str, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{engine}.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", engine, "--out", path,
               "--per-subset", str(args.per_subset), "--max-tokens", str(args.max_tokens), "--subset", *args.subset]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return json.load(f)


def _line(name, n, tokens, per, engines) -> str:
    cells = []
    for e in engines:
        cold, comp = per[e]
        if not cold:
            cells.append(f"{'-':>40}")
            continue
        us = np.asarray(cold) * 1e6
        cells.append(f"{us.mean():9.1f} {np.median(us):7.1f} {np.percentile(us, 99):8.1f} {np.median(comp):9.1f}     ")
    return f"{name:16} {n:3d} {tokens:5d} | " + " | ".join(cells)


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"[{time.time() - t0:.0f} s]")
