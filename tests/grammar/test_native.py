"""The C automaton (grammar/pda_core.c) gives exactly the Python automaton's masks, successors,
steps and budget walks."""
import json
import os
import random
import shutil

import numpy as np
import pytest

from grammar import GrammarCompiler, Vocabulary, allocate_bitmask, native
from grammar_helpers import ir_nodes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_native_walker_builds_where_a_c_compiler_exists():
    if os.environ.get("GRAMSERVE_NATIVE") == "0" or not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("native walk disabled or no C compiler")
    assert native.load() is not None


def _specs():
    with open(os.path.join(ROOT, "schemas", "invoice.json")) as f:
        invoice = json.load(f)
    with open(os.path.join(ROOT, "schemas", "sql_select.lark")) as f:
        sql = f.read()
    # strings: counted (the walk takes plain tokens by length along a chain of configurations
    # that ends at maxLength; minLength makes the first lengths unable to close), unbounded, a
    # pattern (plain bytes step apart: no plain chain), and deep enough to be cut at the first level
    strings = {"type": "object", "required": ["a", "b", "c", "d"], "additionalProperties": False,
               "properties": {"a": {"type": "string", "minLength": 3, "maxLength": 9},
                              "b": {"type": "string", "maxLength": 40},
                              "c": {"type": "string", "pattern": "^[a-z]+-[0-9]$"},
                              "d": {"type": "array", "items": {"type": "array", "items": {
                                  "type": "array", "items": {"type": "string", "maxLength": 5}}}}}}
    # patterns whose plain bytes step apart but never to a dead end (every plain token is taken
    # without walking it): unanchored (a state loops on all of them), and anchored but closed
    patterns = {"type": "object", "required": ["p", "q"],  # (other keys allowed: free key names)
                "properties": {"p": {"type": "string", "pattern": "[0-9a-f]{4}-x"},
                               "q": {"type": "string", "pattern": "^([^a]|a.)*$"},
                               "r": {"type": "string"}}}
    return [("schema", invoice), ("lark", sql), ("json_object", None),
            ("regex", r"[a-z]+@[a-z]+\.(com|org)"), ("schema", strings), ("schema", patterns),
            ("schema", _open_keys())]


# an open object's key: a declared name or any other string (the complement of the names' trie,
# whose every node steps each plain byte to a child or to the any-string loop: plain-immortal)
_KEY_NAMES = ["annotations", "clusterName", "creationTimestamp", "deletionGracePeriodSeconds",
              "deletionTimestamp", "finalizers", "generateName", "generation", "labels", "managedFields",
              "name", "namespace", "ownerReferences", "resourceVersion", "selfLink", "uid"]


def _open_keys():
    return {"type": "object", "properties": {n: {"type": "string"} for n in _KEY_NAMES}}


@pytest.mark.parametrize("kind,spec", _specs(),
                         ids=["invoice", "sql", "json_object", "regex", "strings", "patterns", "keys"])
def test_native_and_python_automata_agree_on_random_paths(smollm2_vocab, kind, spec, monkeypatch):
    if native.load() is None:
        pytest.skip("native automaton unavailable here")
    grammars = []
    for use_native in (True, False):
        if not use_native:  # CompiledGrammar asks native.load() whether to use the C core
            monkeypatch.setattr(native, "load", lambda: None)
        c = GrammarCompiler(smollm2_vocab)
        g = {"schema": lambda: c.compile_json_schema(spec), "lark": lambda: c.compile_lark(spec),
             "json_object": c.compile_json_object, "regex": lambda: c.compile_regex(spec)}[kind]()
        grammars.append(g)
    fast, slow = grammars
    assert fast.core is not None and slow.core is None
    row_a, row_b = allocate_bitmask(2, smollm2_vocab.size)
    for seed in range(3):
        rng = random.Random(seed)
        ma, mb = fast.matcher(), slow.matcher()
        for _ in range(40):
            ma.fill_bitmask(row_a)
            mb.fill_bitmask(row_b)
            assert np.array_equal(row_a, row_b)
            allowed = np.flatnonzero(np.unpackbits(row_a.view(np.uint8), bitorder="little"))
            allowed = [t for t in allowed.tolist() if t not in smollm2_vocab.eos_token_ids]
            if not allowed:
                break
            tok = rng.choice(allowed)
            for budget in (0, 3, 12):  # the closing-path walks (token_end_states) agree too
                wa, wb = fast.budget_mask(ma.config, budget), slow.budget_mask(mb.config, budget)
                assert (wa is None) == (wb is None) and (wa is None or np.array_equal(wa, wb))
            assert ma.accept_token(tok) and mb.accept_token(tok)
            # the first level's masks and successor counts of the state's stacks agree too
            # (configuration ids differ between the two automata: compare as multisets)
            assert _level_masks(fast, ma.config) == _level_masks(slow, mb.config)


def _level_masks(g, config) -> list:
    level = g.levels[0]
    out = []
    for st in g.configs.stacks(config):
        cid = g.configs.single(level, st)
        acc, dep, any_dep = level.mask(cid)
        out.append((acc.tobytes(), dep.tobytes(), any_dep, len(level.successors[cid])))
    return sorted(out)


def test_c_tables_are_freed_with_the_grammar(smollm2_vocab):
    """A compiled grammar's C automaton (rows, DFA, cached masks: megabytes on a big schema) is
    freed when the grammar is dropped, and when the compiler's LRU evicts it."""
    lib = native.load()
    if lib is None:
        pytest.skip("native automaton unavailable here")
    import gc

    gc.collect()
    base = lib.gs_live_cores()
    compiler = GrammarCompiler(smollm2_vocab, cache_size=2)
    row = allocate_bitmask(1, smollm2_vocab.size)[0]
    for n in range(5):  # five distinct grammars through a two-entry cache
        m = compiler.compile_json_schema({"type": "object", "properties": {f"k{n}": {"type": "string"}},
                                          "required": [f"k{n}"]}).matcher()
        m.fill_bitmask(row)
        assert m.accept_token(int(np.flatnonzero(np.unpackbits(row.view(np.uint8), bitorder="little"))[0]))
        del m
    gc.collect()
    assert lib.gs_live_cores() - base == 2  # the two the cache still holds
    del compiler
    gc.collect()
    assert lib.gs_live_cores() == base


def test_a_dropped_grammar_is_freed_at_once_and_its_mask_memory_reused(smollm2_vocab, monkeypatch):
    """With the cyclic GC off, dropping the last reference to a grammar frees its C automaton
    (no reference cycle holds it until a GC pass), its mask buffers go to the pool that the next
    grammar's masks come from, and the next grammar's masks are still exact."""
    lib = native.load()
    if lib is None:
        pytest.skip("native automaton unavailable here")
    import gc

    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
              "required": ["a", "b"]}
    row = allocate_bitmask(1, smollm2_vocab.size)[0]
    gc.collect()
    base = lib.gs_live_cores()
    gc.disable()
    try:
        g = GrammarCompiler(smollm2_vocab, cache_size=0).compile_json_schema(schema)
        m = g.matcher()
        for text in ('{"a"', ': 1', "2,", ' "b": "x"}'):  # masks for a few states, cold
            m.fill_bitmask(row)
            assert m.accept_bytes(text.encode())
        assert lib.gs_live_cores() == base + 1
        pooled = lib.gs_pool_masks()
        del g, m
        assert lib.gs_live_cores() == base  # freed now, not at the next GC pass
        assert lib.gs_pool_masks() > pooled  # its masks wait for the next grammar
    finally:
        gc.enable()
    # the next grammar's masks (from the pool) are right: the same as a fresh Python automaton's
    fast = GrammarCompiler(smollm2_vocab, cache_size=0).compile_json_schema(schema)
    monkeypatch.setattr(native, "load", lambda: None)  # CompiledGrammar: no C core, Python's
    slow = GrammarCompiler(smollm2_vocab, cache_size=0).compile_json_schema(schema)
    ma, mb = fast.matcher(), slow.matcher()
    row_b = allocate_bitmask(1, smollm2_vocab.size)[0]
    for text in ('{"a"', ': 1', "2,", ' "b": "x"}'):
        ma.fill_bitmask(row)
        mb.fill_bitmask(row_b)
        assert np.array_equal(row, row_b)
        assert ma.accept_bytes(text.encode()) and mb.accept_bytes(text.encode())


def test_a_mask_held_past_its_grammar_is_never_overwritten(smollm2_vocab):
    """Mask rows are carved from slabs that later grammars reuse; a mask array someone still
    holds after its grammar is gone keeps its slab out of reuse, so its bits never change.  The
    later grammars take their masks through grammar.mask (the path that carves slab rows:
    fill_bitmask writes the caller's row directly where the fast_fill extension is built)."""
    g = GrammarCompiler(smollm2_vocab, cache_size=0).compile_regex("[0-9]+")
    held = g.mask(g.initial)
    before = held.copy()
    del g
    for n in range(6):  # later grammars, with many masks each
        other = GrammarCompiler(smollm2_vocab, cache_size=0).compile_choice([f"w{n}{i}" for i in range(40)])
        m = other.matcher()
        row = allocate_bitmask(1, smollm2_vocab.size)[0]
        for _ in range(3):
            row[:] = other.mask(m.config)
            assert m.accept_token(int(np.flatnonzero(np.unpackbits(row.view(np.uint8), bitorder="little"))[0]))
        del other, m
    assert np.array_equal(held, before)


def test_nfa_trim_in_c_equals_python(monkeypatch):
    """A piece that matches nothing (an empty alternative inside a sequence) leaves states that
    cannot reach the end: the C trim (gs_nfa_live) drops exactly the edges the Python one does."""
    if native.load() is None:
        pytest.skip("native automaton unavailable here")
    from grammar import ir
    from grammar.nfa import Nfa
    from grammar.normalize import prepare

    body = ir.Alt((ir.Seq((ir.Literal(b"ab"), ir.Alt(()), ir.Literal(b"c"))),
                   ir.Seq((ir.Literal(b"x"), ir.Repeat(ir.Ref("digit"), 1, 3))),
                   ir.Seq((ir.Ref("digit"), ir.Alt(()))), ir.Literal(b"y")))
    rules = prepare(ir.Grammar({"start": body, "digit": ir.CharClass(((48, 57),))}))
    fast = Nfa(rules, productive=True)
    assert fast.maybe_dead
    monkeypatch.setattr(native, "load", lambda: None)
    slow = Nfa(rules, productive=True)
    for a, b in zip(fast.arrays(), slow.arrays()):
        assert np.array_equal(a, b)
    monkeypatch.setattr(Nfa, "trim", lambda self: None)
    untrimmed = Nfa(rules, productive=True)
    assert fast.arrays()[0][-1] < untrimmed.arrays()[0][-1]  # byte edges into dead states went
    monkeypatch.undo()
    g = GrammarCompiler(Vocabulary([b"a", b"b", b"x", b"1", b"y"])).compile_grammar(
        ir.Grammar({"start": body, "digit": ir.CharClass(((48, 57),))}))
    for text, ok in ((b"y", True), (b"x12", True), (b"a", False), (b"7", False)):
        m = g.matcher()
        assert (m.accept_bytes(text) and m.can_terminate()) == ok, text


def test_open_object_key_mask_does_not_walk_every_key_prefix(smollm2_vocab):
    """At an open object's first key every plain string is a live key (a declared name's prefix,
    or another name), so the plain tokens are taken at once instead of stepping the automaton
    through each of them: the fill makes few configurations (it made 319 here when only a state
    that loops on every plain byte counted; it makes 135 now, for the tokens that are not plain).
    The mask itself is checked against the Python automaton above ("keys")."""
    if native.load() is None:
        pytest.skip("native automaton unavailable here")
    g = GrammarCompiler(smollm2_vocab).compile_json_schema(_open_keys())
    m = g.matcher()
    row = allocate_bitmask(1, smollm2_vocab.size)[0]
    assert m.accept_bytes(b'{"')
    before = len(g.levels[0].configs)
    m.fill_bitmask(row)
    allowed = np.unpackbits(row.view(np.uint8), bitorder="little")[: smollm2_vocab.size].astype(bool)
    special = set(smollm2_vocab.special_token_ids)
    plain = [t for t, b in enumerate(smollm2_vocab.tokens)
             if b and t not in special and all(32 <= c < 127 and c not in b'"\\' for c in b)]
    assert allowed[plain].all()  # every plain token continues some key
    assert len(g.levels[0].configs) - before < 200


def test_nfa_build_in_c_equals_python(monkeypatch):
    """gs_nfa_build makes the Python builder's NFA state for state and edge for edge: literals,
    classes (multi-byte UTF-8, negated, empty), byte classes, bounded and unbounded repeats of a
    shared subtree, an automaton (patternProperties key regions), calls and a lark grammar."""
    if native.load() is None:
        pytest.skip("native automaton unavailable here")
    from grammar import ir
    from grammar.json_schema import json_schema_to_grammar
    from grammar.lark_frontend import lark_to_grammar
    from grammar.nfa import Nfa
    from grammar.normalize import prepare

    shared = ir.Seq((ir.Literal(b"ab"), ir.CharClass(((0x41, 0x5A), (0x400, 0x4FF), (0x1F600, 0x1F64F)))))
    handmade = ir.Grammar({"start": ir.Seq((
        ir.Repeat(shared, 2, 4), ir.Repeat(shared, 0, None), ir.Literal(b""), ir.ByteClass(((0, 9), (200, 255))),
        ir.Alt((ir.CharClass(((0x61, 0x61),), negated=True), ir.Ref("r"), ir.EMPTY, ir.CharClass(()))), ir.Ref("r"))),
        "r": ir.Alt((ir.Literal(b"x"), ir.Seq((ir.Literal(b"("), ir.Ref("r"), ir.Literal(b")")))))})
    regions = {"type": "object", "patternProperties": {"^a": {"type": "integer"}, "b$": {"type": "string"}},
               "additionalProperties": {"type": "boolean"}, "properties": {"ab": {"enum": [1, "x", None]}}}
    with open(os.path.join(ROOT, "schemas", "invoice.json")) as f:
        invoice = json.load(f)
    with open(os.path.join(ROOT, "schemas", "sql_select.lark")) as f:
        sql = lark_to_grammar(f.read())
    grammars = [handmade, json_schema_to_grammar(regions)[0], json_schema_to_grammar(invoice)[0], sql]
    for g in grammars:
        rules = prepare(g)
        fast = Nfa(rules, productive=True)
        with monkeypatch.context() as m:
            m.setattr(native, "load", lambda: None)
            slow = Nfa(rules, productive=True)
        assert (fast.n, fast.maybe_dead) == (slow.n, slow.maybe_dead)
        for a, b in zip(fast.arrays(), slow.arrays()):
            assert np.array_equal(a, b)
    assert any(isinstance(label, ir.Automaton) or isinstance(b, ir.Automaton)
               for b in prepare(grammars[1]).values() for label in ir_nodes(b))


with open(os.path.join(ROOT, "schemas", "sql_query.lark")) as _f:
    _SQL = _f.read()  # grammar_bench's lark_sql case


def test_name_subtrees_are_taken_whole_after_a_keyword(smollm2_vocab, monkeypatch):
    """Lark grammars are scannerless: after `SELECT` a column name's letters may also start the
    keywords that can follow it (`SELECT nameFROM t` is in the language), so the letters step
    apart and no configuration loops on them; but the name's own loop state outlives every letter,
    digit and `_`, so a trie subtree spelled only with those is accepted whole (the keep set)
    instead of stepping the automaton through each node: the fill makes 22 configurations (31 when
    every such subtree was walked).  The mask equals the Python automaton's."""
    if native.load() is None:
        pytest.skip("native automaton unavailable here")
    g = GrammarCompiler(smollm2_vocab).compile_lark(_SQL)
    m = g.matcher()
    assert m.accept_bytes(b"SELECT")
    row, ref = allocate_bitmask(2, smollm2_vocab.size)
    before = len(g.levels[0].configs)
    m.fill_bitmask(row)
    assert len(g.levels[0].configs) - before <= 25
    monkeypatch.setattr(native, "load", lambda: None)
    slow = GrammarCompiler(smollm2_vocab).compile_lark(_SQL)
    assert slow.core is None
    ms = slow.matcher()
    assert ms.accept_bytes(b"SELECT")
    ms.fill_bitmask(ref)
    assert np.array_equal(row, ref)
    allowed = np.unpackbits(row.view(np.uint8), bitorder="little")[: smollm2_vocab.size].astype(bool)
    tok = {b: t for t, b in enumerate(smollm2_vocab.tokens)}
    assert allowed[tok[b" name"]] and allowed[tok[b"name"]] and not allowed[tok[b"."]]
