"""Mask exactness: the fast mask equals the brute-force mask {t : is_prefix(output + t)}.

Exhaustive over a small vocabulary (every state met along many random walks), then on random
reachable states with the full SmolLM2 vocabulary.
"""
import json

import pytest

from grammar import GrammarCompiler, Vocabulary, ir
from grammar.json_object import json_object_grammar
from grammar.regex import parse_regex

from grammar_helpers import random_walk_check

SMALL = [b"a", b"b", b"c", b"ab", b"ba", b"abc", b"x", b"[", b"]", b"[]", b"][", b"]]", b"[[",
         b"]]]]]]", b"[[[[[[", b",", b", ", b"{", b"}", b"{}", b'"', b'":', b'",', b"1", b"12",
         b"-", b".", b"0", b"e", b"true", b"null", b" ", b"\n", b"  ", b"\xc3", b"\xa9", b"\xc3\xa9",
         b"yes", b"no", b"y", b"n", b"ye", b"es", b"}}", b"}]", b"]}", b'"a"', b"e1",
         b"<eos>", b"<special>"]
SMALL_VOCAB = Vocabulary(SMALL, eos_token_ids=[len(SMALL) - 2], special_token_ids=[len(SMALL) - 1])

NESTED = ir.Grammar({"start": ir.Alt((ir.Literal(b"x"), ir.Seq((
    ir.Literal(b"["), ir.Repeat(ir.Seq((ir.Ref("start"), ir.Repeat(ir.Literal(b","), 0, 1))), 0, None),
    ir.Literal(b"]")))))})
BALANCED = ir.Grammar({  # two mutually recursive rules, deeper than the first cache level
    "start": ir.Repeat(ir.Ref("a"), 1, None),
    "a": ir.Alt((ir.Literal(b"ab"), ir.Seq((ir.Literal(b"["), ir.Ref("b"), ir.Literal(b"]"))))),
    "b": ir.Alt((ir.Literal(b"c"), ir.Seq((ir.Literal(b"["), ir.Ref("start"), ir.Literal(b"]"))))),
})
LEFTREC = ir.Grammar({"start": ir.Alt((ir.Seq((ir.Ref("start"), ir.Literal(b","), ir.Ref("t"))),
                                       ir.Ref("t"))),
                      "t": ir.Alt((ir.Literal(b"1"), ir.Seq((ir.Literal(b"["), ir.Ref("start"),
                                                             ir.Literal(b"]")))))})

GRAMMARS = {
    "regex": ir.Grammar({"start": parse_regex(r"(ab|ba)*c?[xé]{0,3}")}),
    "choice": ir.Grammar({"start": ir.Alt((ir.Literal(b"yes"), ir.Literal(b"no"), ir.Literal(b"y")))}),
    "nested": NESTED,
    "balanced": BALANCED,
    "leftrec": LEFTREC,
    "json_object": json_object_grammar(ws_max=2),
    "number": ir.Grammar({"start": parse_regex(r"-?(0|[1-9][0-9]{0,3})(\.[0-9]{1,2})?(e[0-9])?")}),
}


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_small_vocab_exhaustive(name):
    compiled = GrammarCompiler(SMALL_VOCAB).compile_grammar(GRAMMARS[name])
    for seed in range(12):
        random_walk_check(compiled, GRAMMARS[name], steps=25, seed=seed)


def test_token_pushing_past_the_first_level_from_a_shallow_state():
    """A token that nests deeper than the first cache level and comes back out: from the start
    (depth 1) its walk is cut at k frames, pops past the cut and reads on.  The deeper levels
    must decide it (a shortcut once skipped them whenever the state itself was shallow)."""
    deep = b"[" * 6 + b"x" + b"]" * 6
    vocab = Vocabulary(SMALL + [deep, b"[" * 5 + b"x" + b"]" * 6])
    from grammar import allocate_bitmask
    from grammar_helpers import allowed_ids, brute_mask
    from grammar.reference import Recognizer
    compiled = GrammarCompiler(vocab).compile_grammar(NESTED)
    row = allocate_bitmask(1, vocab.size)[0]
    compiled.matcher().fill_bitmask(row)
    got = allowed_ids(row, vocab.size)
    assert got == brute_mask(Recognizer(NESTED), b"", vocab)
    assert vocab.size - 2 in got and vocab.size - 1 not in got  # balanced in, one "]" too many out


def test_deep_nesting_uses_every_level():
    """40 levels of nesting: masks go through all cache levels and the exact fallback."""
    compiled = GrammarCompiler(SMALL_VOCAB).compile_grammar(NESTED)
    m = compiled.matcher()
    assert m.accept_bytes(b"[" * 70 + b"x")
    from grammar_helpers import allowed_ids, brute_mask
    from grammar import allocate_bitmask
    from grammar.reference import Recognizer
    row = allocate_bitmask(1, SMALL_VOCAB.size)[0]
    rec = Recognizer(NESTED)
    out = b"[" * 70 + b"x"
    for tok in [b"]]]]]]"] * 11 + [b"]"] * 4:
        m.fill_bitmask(row)
        assert allowed_ids(row, SMALL_VOCAB.size) == brute_mask(rec, out, SMALL_VOCAB), out
        assert m.accept_token(SMALL.index(tok))
        out += tok
    assert m.can_terminate()


SMOL_CASES = {
    "regex": ir.Grammar({"start": parse_regex(r"[A-Z][a-z]{1,8}( [A-Z][a-z]{1,8}){0,2}, \d{1,3}")}),
    "choice": ir.Grammar({"start": ir.Alt(tuple(ir.Literal(s.encode()) for s in
                                                ["positive", "negative", "neutral", "pos"]))}),
    "nested": NESTED,
    "json_object": json_object_grammar(),
}


@pytest.mark.parametrize("name", sorted(SMOL_CASES))
def test_smollm2_random_states(name, smollm2_vocab):
    compiled = GrammarCompiler(smollm2_vocab).compile_grammar(SMOL_CASES[name])
    steps = 4 if name == "json_object" else 7  # brute force inside a JSON string walks the whole trie
    random_walk_check(compiled, SMOL_CASES[name], steps=steps, seed=1, check_every=3)


def test_smollm2_json_valid_instance(smollm2_vocab):
    """Along a real JSON document (greedy tokenization), brute force agrees at sampled states."""
    from grammar.reference import Recognizer
    from grammar import allocate_bitmask
    from grammar_helpers import allowed_ids, brute_mask
    grammar = json_object_grammar()
    compiled = GrammarCompiler(smollm2_vocab).compile_grammar(grammar)
    text = json.dumps({"name": "Zoë", "n": [1, -2.5e3, {"deep": [[True], None]}]}, indent=2)
    lookup = {t: i for i, t in enumerate(smollm2_vocab.tokens)
              if i not in set(smollm2_vocab.special_token_ids)}
    data, ids = text.encode(), []
    while data:
        n = max(k for k in range(1, 20) if data[:k] in lookup)
        ids.append(lookup[data[:n]])
        data = data[n:]
    m, rec, out = compiled.matcher(), Recognizer(grammar), b""
    row = allocate_bitmask(1, smollm2_vocab.size)[0]
    for step, tok in enumerate(ids):
        m.fill_bitmask(row)
        fast = allowed_ids(row, smollm2_vocab.size)
        assert tok in fast
        if step in (1, 24, 41):  # after '{', in a number, 4 levels deep (never in a string: slow)
            assert fast == brute_mask(rec, out, smollm2_vocab), out
        assert m.accept_token(tok)
        out += smollm2_vocab.tokens[tok]
    assert m.can_terminate()


def test_smollm2_json_schema_states(smollm2_vocab):
    """A JSON Schema through the other front end: brute force agrees at sampled states."""
    pytest.importorskip("grammar.json_schema")
    from grammar.json_schema import json_schema_to_grammar
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                               "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
                                               "n": {"type": "integer"}},
              "required": ["name"], "additionalProperties": False}
    grammar, _ = json_schema_to_grammar(schema)
    compiled = GrammarCompiler(smollm2_vocab).compile_json_schema(schema)
    random_walk_check(compiled, grammar, steps=7, seed=3, check_every=3)
