"""Steady-state cost of JSON-Schema constraints: the same 32 requests free and constrained, interleaved, in one process
(grammar compiled first). Prints elapsed seconds per round and the ratio. Usage: python benchmarks/structured_steady.py

The constrained requests carry throughput.BENCH_SCHEMA without closing (close_before_limit=False), as its gramserve-json
column does: its shortest completion never fits in 128 tokens, so with closing on every token would be the closing text."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import BENCH_SCHEMA
from engine import LLM, SamplingParams, StructuredOutputsParams
llm = LLM(progress=False)
prompts = [{"prompt_token_ids": list(range(1000 + i, 1100 + i))} for i in range(32)]
so = StructuredOutputsParams(json=BENCH_SCHEMA, close_before_limit=False)
llm.engine.structured.compile(so)
res = {"free": [], "json": []}
for rnd in range(2):
    for kind in ("free", "json"):
        p = SamplingParams(temperature=0, max_tokens=128, ignore_eos=True, structured_outputs=so if kind == "json" else None)
        t0 = time.perf_counter()
        outs = llm.generate(prompts, p, use_tqdm=False)
        res[kind].append(time.perf_counter() - t0)
print(res, "ratio json/free elapsed", min(res["json"]) / min(res["free"]))
