"""prepare_native: normalize.prepare's passes in C give the automaton the Python passes give."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

from grammar import GrammarCompiler, GrammarError, ir, native
from grammar.nfa import Nfa
from grammar.normalize import prepare
from grammar.prepare_native import grammar_nfa, native_nfa
from prepare_cases import cases

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FALLBACK = {"undefined", "left_recursive", "indirect_left", "nullable_lead"}  # the Python passes'

needs_native = pytest.mark.skipif(native.load() is None, reason="no C compiler")


def outcome(fn):
    try:
        nfa = fn()
    except GrammarError as e:
        return ("error", str(e))
    return None if nfa is None else ("nfa", nfa.names, nfa.arrays())


def assert_same(a, b) -> None:
    assert a[0] == b[0]
    if a[0] == "error":
        assert a[1] == b[1]
        return
    assert a[1] == b[1]
    for x, y in zip(a[2], b[2], strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)


@needs_native
@pytest.mark.parametrize("name,grammar", cases(), ids=[n for n, _ in cases()])
def test_c_prepare_equals_python(name, grammar):
    old = outcome(lambda: Nfa(prepare(grammar), productive=True))
    new = outcome(lambda: native_nfa(grammar))
    if name in FALLBACK:
        assert new is None  # (left recursion, undefined names: the Python passes decide)
        new = outcome(lambda: grammar_nfa(grammar))
    assert new is not None
    assert_same(old, new)


@needs_native
def test_c_prepare_hoists_like_python():
    g = dict(cases())["big_automaton"]
    nfa = native_nfa(g)
    assert nfa is not None and nfa.names == list(prepare(g))
    assert any("~label" in n for n in nfa.names)
    assert any("~item" in n for n in native_nfa(dict(cases())["hoist_nested"]).names)


@needs_native
@pytest.mark.parametrize("path", sorted(p for p in glob.glob(os.path.join(ROOT, "schemas", "*.json"))
                                        if not p.endswith(".example.json")))
def test_json_schemas_take_the_c_path(path):
    from grammar.json_schema import json_schema_to_grammar

    with open(path) as f:
        g = json_schema_to_grammar(json.load(f))[0]
    new = outcome(lambda: native_nfa(g))
    assert new is not None  # no left recursion in a JSON grammar: never the Python passes
    assert_same(outcome(lambda: Nfa(prepare(g), productive=True)), new)


def test_left_recursive_lark_falls_back_and_compiles(smollm2_vocab):
    from grammar.lark_frontend import lark_to_grammar

    text = 'start: expr\nexpr: expr "+" term | term\nterm: /[0-9]+/\n'
    g = lark_to_grammar(text)
    if native.load() is not None:
        assert native_nfa(g) is None
    compiled = GrammarCompiler(smollm2_vocab).compile_lark(text)
    assert compiled.matcher().accept_bytes(b"1+22+3")
    assert not compiled.matcher().accept_bytes(b"1++")
    assert_same(outcome(lambda: Nfa(prepare(g), productive=True)), outcome(lambda: grammar_nfa(g)))


@pytest.mark.parametrize("grammar,message", [
    (ir.Grammar({"start": ir.Seq((ir.Ref("a"), ir.Ref("zz"), ir.Ref("yy"))), "a": ir.Literal(b"x")}),
     "rule 'start' refers to undefined rule(s) ['yy', 'zz']"),
    (ir.Grammar({"start": ir.Seq((ir.Literal(b"a"), ir.Ref("start")))}),
     "the grammar matches nothing (rule 'start' is unproductive)"),
    (ir.Grammar({"start": ir.Repeat(ir.Literal(b"y"), 3, 2)}), "repeat bounds min=3 > max=2"),
])
def test_errors_are_python_s(smollm2_vocab, grammar, message):
    with pytest.raises(GrammarError) as e:
        GrammarCompiler(smollm2_vocab).compile_grammar(grammar)
    assert str(e.value) == message


@needs_native
def test_deep_inlining_does_not_crash():
    """A chain of rules, each used once, inlines into one body as deep as the chain: within the
    limit it builds (the Python passes stop near 1000 levels: RecursionError), beyond it a
    GrammarError, never a C stack overflow."""
    def chain(k):
        rules = {"start": ir.Ref("r0")}
        for i in range(k):
            rules[f"r{i}"] = ir.Seq((ir.Literal(b"("), ir.Ref(f"r{i + 1}"), ir.Literal(b")")))
        rules[f"r{k}"] = ir.Literal(b"x")
        return ir.Grammar(rules)

    nfa = native_nfa(chain(3000))
    assert nfa is not None and nfa.names == ["start"] and nfa.n == 2 + 2 * 3000
    with pytest.raises(GrammarError, match="nests too deeply"):
        native_nfa(chain(30000))  # (gs_nfa_build recurses: past PREP_MAX_DEPTH levels, refused)


@needs_native
def test_prepare_handles_are_freed(smollm2_vocab):
    lib = native.load()
    base = lib.gs_live_preps()
    compiler = GrammarCompiler(smollm2_vocab)
    for _, g in cases():
        try:
            compiler.compile_grammar(g)
        except GrammarError:
            pass
    assert lib.gs_live_preps() == base


@needs_native
def test_random_grammars_equal_python():
    import random

    from prepare_cases import random_grammar

    rng = random.Random(1)
    native_runs = 0
    for _ in range(300):
        g = random_grammar(rng, rng.randrange(1, 9), rng.randrange(1, 6))
        new = outcome(lambda: native_nfa(g))
        if new is None:
            continue
        native_runs += 1
        assert_same(outcome(lambda: Nfa(prepare(g), productive=True)), new)
    assert native_runs > 150
