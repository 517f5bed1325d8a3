"""normalize.prepare: structurally equal subtrees become one object, and that changes nothing
but the work (the same rules, the same automaton up to hoisted duplicates)."""
import numpy as np

from grammar import ir
from grammar.nfa import Nfa
from grammar.normalize import _children, prepare
from grammar_helpers import ir_nodes


def _ids(rules) -> set[int]:
    seen, todo = set(), list(rules.values())
    while todo:
        n = todo.pop()
        if id(n) not in seen:
            seen.add(id(n))
            todo.extend(_children(n))
    return seen


def _unit():
    return ir.Seq((ir.Literal(b'"'), ir.Repeat(ir.Alt((ir.CharClass(((0x61, 0x7A),)), ir.Literal(b"\\n"))), 0, None),
                   ir.Literal(b'"')))


def test_equal_subtrees_are_shared_and_build_the_same_nfa():
    a, b = _unit(), _unit()  # equal, distinct objects
    assert a == b and a is not b
    grammar = ir.Grammar({"start": ir.Seq((ir.Literal(b"["), a, ir.Ref("more"), ir.Literal(b"]"))),
                          "more": ir.Alt((ir.EMPTY, ir.Seq((ir.Literal(b","), b, ir.Ref("more")))))})
    rules = prepare(grammar)
    seq = rules["start"].items[1]
    more = rules["more"].items[1].items[1]
    assert seq == a and seq is more  # one object for both copies
    # the NFA of the shared grammar is the one of a grammar that never shared anything
    unshared = {"start": ir.Seq((ir.Literal(b"["), _unit(), ir.Ref("more"), ir.Literal(b"]"))),
                "more": ir.Alt((ir.EMPTY, ir.Seq((ir.Literal(b","), _unit(), ir.Ref("more")))))}
    assert len(_ids(rules)) < len(_ids(unshared))
    for x, y in zip(Nfa(rules, productive=True).arrays(), Nfa(unshared, productive=True).arrays()):
        assert np.array_equal(x, y)


def test_regex_is_still_parsed_and_bad_bounds_still_raise():
    import pytest

    from grammar.errors import GrammarError

    rules = prepare(ir.Grammar({"start": ir.Seq((ir.Regex("[ab]+"), ir.Regex("[ab]+")))}))
    assert not any(isinstance(n, ir.Regex) for n in ir_nodes(rules["start"]))
    with pytest.raises(GrammarError, match="repeat bounds"):
        prepare(ir.Grammar({"start": ir.Seq((ir.Literal(b"x"), ir.Repeat(ir.Literal(b"y"), 3, 2)))}))
