"""benchmarks/throughput.py's structured columns measure what they say (RESULTS.md, tenth session):
the gramserve-json column's schema cannot be finished by closing within 128 tokens (close_before_limit
counts a byte per token left), which is why that column runs without closing; the closing column's
schema can be finished within a few dozen bytes, so closing acts only near the limit."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _throughput():
    saved = list(sys.path)  # (throughput.py puts benchmarks/ and benchmarks/peers/ in front)
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import throughput
    finally:
        sys.path[:] = saved
    return throughput


def test_structured_columns_schemas_and_paired_ratios(smollm2_vocab):
    from grammar import GrammarCompiler

    t = _throughput()
    compiler = GrammarCompiler(smollm2_vocab)
    bench = compiler.compile_json_schema(t.BENCH_SCHEMA).matcher().shortest_completion()
    closing = compiler.compile_json_schema(t.CLOSING_SCHEMA).matcher().shortest_completion()
    assert len(bench) > 128  # with closing on, every row of the column would be forced to close
    assert t.ENGINES["gramserve-json"][3] == {"json_schema": t.BENCH_SCHEMA, "close_before_limit": False}
    assert len(closing) + 1 + 64 < 128  # CLOSE_MARGIN: closing starts well after the first token
    assert t.ENGINES["gramserve-json-close"][3]["close_before_limit"] is True
    runs = {"gramserve": [{"tok_per_s": 100.0}, {"error": "timed out"}, {"tok_per_s": 50.0}],
            "gramserve-json": [{"tok_per_s": 97.0}, {"tok_per_s": 1.0}, {"tok_per_s": 49.0}]}
    assert t.paired_ratios(runs, "gramserve-json") == [0.97, 0.98]  # a failed round pairs with nothing
