"""Shortest completions and budget masks (grammar/shortest.py, CompiledGrammar.budget_mask)."""
import glob
import json
import os
import random

import pytest

from grammar import GrammarCompiler, Vocabulary, allocate_bitmask
from grammar_helpers import allowed_ids

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMAS = sorted(p for p in glob.glob(os.path.join(ROOT, "schemas", "*.json")) if "example" not in p)


@pytest.fixture(scope="module")
def byte_vocab():
    return Vocabulary([bytes([i]) for i in range(256)])


@pytest.mark.parametrize("path", SCHEMAS, ids=[os.path.basename(p)[:-5] for p in SCHEMAS])
def test_shortest_completion_finishes_the_output_from_any_prefix(byte_vocab, path):
    with open(path) as f:
        grammar = GrammarCompiler(byte_vocab).compile_json_schema(json.load(f))
    with open(path.replace(".json", ".example.json")) as f:
        example = json.dumps(json.load(f), indent=2).encode()
    for cut in sorted({0, len(example)} | set(random.Random(0).sample(range(len(example)), 12))):
        m = grammar.matcher()
        assert m.accept_bytes(example[:cut])
        rest = m.shortest_completion()
        assert m.accept_bytes(rest) and m.can_terminate(), (example[:cut], rest)
        if cut == len(example):
            assert rest == b""


def test_budget_mask_keeps_exactly_the_tokens_that_can_still_finish(smollm2_vocab):
    with open(os.path.join(ROOT, "schemas", "invoice.json")) as f:
        grammar = GrammarCompiler(smollm2_vocab).compile_json_schema(json.load(f))
    vocab, rng = smollm2_vocab, random.Random(3)
    row = allocate_bitmask(1, vocab.size)[0]
    m = grammar.matcher()
    for _ in range(30):
        need = len(m.shortest_completion())
        for budget in (need, need + 5):
            words = grammar.budget_mask(m.config, budget)
            m.fill_bitmask(row)
            if words is None:  # every allowed token leaves room: check that on a sample
                words = row.copy()
            full, some = allowed_ids(row, vocab.size), allowed_ids(words, vocab.size)
            assert some and some <= full  # never wider than the grammar; never stuck
            for t in rng.sample(sorted(some), min(6, len(some))):
                if t in vocab.eos_token_ids:
                    assert m.can_terminate()
                    continue
                probe = grammar.matcher()
                probe._history = [m.config]
                assert probe.accept_token(t)
                assert len(probe.shortest_completion()) <= budget
        m.fill_bitmask(row)
        choices = [t for t in allowed_ids(row, vocab.size) if t not in vocab.eos_token_ids]
        assert m.accept_token(rng.choice(choices))


@pytest.mark.parametrize("prefix", [b'{"dimensions": {"radius": 1, "x":["a", ""',
                                    b'{"dimensions": {"radius": 1, "x":[[["a", "b",""'])
def test_budget_mask_is_sound_where_tokens_push_past_the_cache_window(prefix):
    """Every token a budget mask allows can still finish within the budget, checked token by token
    on a small vocabulary whose tokens open several frames at once (deeper than the 4-frame
    level: the room of such a token once counted none of the frames it pushed out of sight)."""
    schema = {"type": "object", "required": ["dimensions", "shape"], "properties": {
        "dimensions": {"type": "object", "required": ["radius"], "properties": {"radius": {"type": "number"}}},
        "shape": {"type": "string"}}}
    tokens = [bytes([b]) for b in range(32, 127)] + [b',"', b'""', b'", "', b'"]}', b'[["', b'",""', b'{"a":[["',
                                                      b'"x":[[["', b'],"', b'"]},"', b"<eos>"]
    vocab = Vocabulary(tokens, eos_token_ids=[len(tokens) - 1])
    grammar = GrammarCompiler(vocab).compile_json_schema(schema)
    m = grammar.matcher()
    assert m.accept_bytes(prefix)
    row = allocate_bitmask(1, vocab.size)[0]
    for step in range(12):
        need = len(m.shortest_completion())
        for budget in range(need, need + 6):
            words = grammar.budget_mask(m.config, budget)
            if words is None:
                continue
            for t in allowed_ids(words, vocab.size):
                if t in vocab.eos_token_ids:
                    continue
                probe = grammar.matcher()
                probe._history = [m.config]
                assert probe.accept_token(t)
                assert len(probe.shortest_completion()) <= budget, (budget, tokens[t])
        m.fill_bitmask(row)
        choices = [t for t in allowed_ids(row, vocab.size) if t not in vocab.eos_token_ids]
        assert m.accept_token(random.Random(step).choice(choices))


def test_budget_mask_with_no_room_allows_only_eos_at_the_end(smollm2_vocab):
    grammar = GrammarCompiler(smollm2_vocab).compile_regex(r"ab(c|dddd)")
    m = grammar.matcher()
    assert m.accept_bytes(b"ab")
    words = grammar.budget_mask(m.config, 1)  # "c" fits, "dddd" does not
    ids = allowed_ids(words, smollm2_vocab.size)
    assert ids and all(smollm2_vocab.tokens[t] == b"c" for t in ids)
    assert m.accept_bytes(b"c")
    assert grammar.budget_mask(m.config, 0) is None  # only EOS is allowed anyway
    row = allocate_bitmask(1, smollm2_vocab.size)[0]
    m.fill_bitmask(row)
    assert allowed_ids(row, smollm2_vocab.size) == set(smollm2_vocab.eos_token_ids)
    start = allowed_ids(grammar.budget_mask(grammar.matcher().config, 1), smollm2_vocab.size)
    assert start and all(smollm2_vocab.tokens[t].startswith(b"ab") for t in start)  # "a" leaves 2
    assert grammar.budget_mask(grammar.matcher().config, 100) is None  # room for anything
