"""MaskBench coverage of the JSON Schema front end: compile each schema, check its instances.

    python benchmarks/maskbench_coverage.py [--sample N] [--subset NAME ...] [--non-strict]

For every MaskBench schema (shared/data/jsonschemabench) we compile the grammar (strict mode
by default) and feed each test instance, in the compact and the default `json.dumps` forms,
byte by byte through a matcher (`accept_bytes`, then `can_terminate`). A valid instance passes
when both forms are accepted; an invalid one when both are rejected. A schema that does not
compile (GrammarError, or over the time limit) fails all its valid instances and rejects all
its invalid ones. Prints one line per subset: schemas compiled, valid passed / valid, invalid
accepted (must be 0 in strict mode).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import signal
import sys
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.environ.get("JSONSCHEMABENCH", "/work/shared/data/jsonschemabench")
SUBSETS = ("Github_trivial", "Github_easy", "Github_medium", "Github_hard", "Github_ultra", "Glaiveai2K",
           "Kubernetes", "Snowplow", "WashingtonPost", "JsonSchemaStore")
EXTRAS = ("BFCL", "JME", "MCPspec", "Handwritten", "Synthesized")


def load_subset(name: str) -> list[tuple[str, object, list[dict]]]:
    """[(id, schema, tests)] of one MaskBench subset (paper subsets or extras)."""
    if name in EXTRAS:
        with gzip.open(os.path.join(DATA, "maskbench", f"extra_{name}.jsonl.gz"), "rt") as f:
            rows = [json.loads(line) for line in f]
        return [(r["id"], r["schema"], r["tests"]) for r in rows if r["tests"]]
    schemas = {}
    with open(os.path.join(DATA, "schemas", f"{name}.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            schemas[row["id"]] = row["schema"]
    with gzip.open(os.path.join(DATA, "maskbench", f"tests_{name}.jsonl.gz"), "rt") as f:
        rows = [json.loads(line) for line in f]
    return [(r["id"], schemas[r["id"]], r["tests"]) for r in rows if r["tests"] and r["id"] in schemas]


class _Timeout(Exception):
    pass


def _alarm(*_):
    raise _Timeout()


def check_schema(compiler, schema, tests, *, strict: bool = True, timeout_s: int = 20,
                 compile_times: list | None = None) -> Counter:
    """Counter with compiled, error, timeout, valid_ok, valid_rej, invalid_rej, invalid_acc.

    compile_times, when given, gets the CPU seconds of each successful compile appended
    (compiling is single-threaded Python: on a quiet machine that is its wall time)."""
    from grammar import GrammarError

    out: Counter = Counter()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        t0 = time.process_time()  # CPU seconds: steadier than wall time on a shared machine
        grammar = compiler.compile_json_schema(schema, strict=strict)
        if compile_times is not None:
            compile_times.append(time.process_time() - t0)
        out["compiled"] += 1
        for t in tests:
            ok = True
            for text in (json.dumps(t["data"]), json.dumps(t["data"], separators=(",", ":"))):
                m = grammar.matcher()
                ok = ok and m.accept_bytes(text.encode()) and m.can_terminate()
            key = ("valid_ok" if ok else "valid_rej") if t["valid"] else ("invalid_acc" if ok else "invalid_rej")
            out[key] += 1
    except (GrammarError, _Timeout, RecursionError) as e:
        out["timeout" if isinstance(e, _Timeout) else "error"] += 1
        out.pop("compiled", None)
        out["valid_rej"] += sum(t["valid"] for t in tests)
        out["invalid_rej"] += sum(not t["valid"] for t in tests)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return out


class LlgCompiler:
    """llguidance (benchmark-only peer) behind the same compile_json_schema/matcher interface,
    over a 256-byte vocabulary plus EOS, with flexible whitespace (both instance forms valid)."""

    def __init__(self):
        import llguidance

        class _Tok:
            eos_token_id, bos_token_id = 256, None
            tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]
            special_token_ids = [256]

            def __call__(self, data: bytes) -> list[int]:
                return list(data)

        self.llg = llguidance
        self.tok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Tok()))

    def compile_json_schema(self, schema, strict: bool = True):
        from grammar import GrammarError

        M = self.llg.LLMatcher
        grammar = M.grammar_from_json_schema(schema, overrides={"whitespace_flexible": True})
        try:
            matcher = M(self.tok, grammar)
        except ValueError as e:
            raise GrammarError(str(e)[:200]) from None
        if matcher.is_error():
            raise GrammarError(matcher.get_error()[:200])
        return _LlgGrammar(matcher)


class _LlgGrammar:
    def __init__(self, matcher):
        self._m = matcher

    def matcher(self):
        return _LlgMatcher(self._m.deep_copy())


class _LlgMatcher:
    def __init__(self, m):
        self.m = m

    def accept_bytes(self, data: bytes) -> bool:
        return self.m.consume_tokens(list(data)) and not self.m.is_error()

    def can_terminate(self) -> bool:
        return self.m.is_accepting()


def byte_compiler():
    """A GrammarCompiler over a 256-token byte vocabulary (instance checks need no tokenizer)."""
    from grammar import GrammarCompiler, Vocabulary

    return GrammarCompiler(Vocabulary([bytes([i]) for i in range(256)]), cache_size=4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=0, help="schemas per subset (0: all)")
    ap.add_argument("--subset", nargs="*", default=list(SUBSETS + EXTRAS))
    ap.add_argument("--non-strict", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--engine", choices=("gramserve", "llguidance"), default="gramserve")
    args = ap.parse_args()
    import grammar.json_schema  # noqa: F401  (imported now: no compile time pays the import)

    compiler = byte_compiler() if args.engine == "gramserve" else LlgCompiler()
    print(f"engine: {args.engine}", flush=True)
    total: Counter = Counter()
    all_times: list[float] = []
    for name in args.subset:
        rows = load_subset(name)
        if args.sample:
            rows = random.Random(0).sample(rows, min(args.sample, len(rows)))
        sub: Counter = Counter()
        times: list[float] = []
        t0 = time.time()
        for sid, schema, tests in rows:
            got = check_schema(compiler, schema, tests, strict=not args.non_strict,
                               compile_times=times)
            if args.verbose and got["invalid_acc"]:
                print("  INVALID ACCEPTED", name, sid, flush=True)
            sub += got
        total += sub
        all_times += times
        _report(name, len(rows), sub, time.time() - t0, times)
    _report("TOTAL", None, total, 0.0, all_times)


def _report(name: str, n: int | None, c: Counter, secs: float, times: list[float]) -> None:
    valid = c["valid_ok"] + c["valid_rej"]
    ms = sorted(t * 1e3 for t in times) or [0.0]
    pct = (f"compile ms p50={ms[len(ms) // 2]:.1f} p90={ms[int(len(ms) * 0.9)]:.1f} "
           f"max={ms[-1]:.0f}")
    print(f"{name:16s} schemas={n if n is not None else '-':>5} compiled={c['compiled']:5d} "
          f"errors={c['error']:4d} timeouts={c['timeout']:3d} valid_pass={c['valid_ok']}/{valid} "
          f"({100 * c['valid_ok'] / max(valid, 1):.1f}%) invalid_accepted={c['invalid_acc']} "
          f"invalid_rejected={c['invalid_rej']} {pct} [{secs:.0f}s]", flush=True)


if __name__ == "__main__":
    main()
