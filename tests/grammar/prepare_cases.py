"""IR grammars that exercise normalize.prepare's passes (read by test_prepare_native and by
benchmarks/prepare_crosscheck.py): each (name, ir.Grammar)."""
from __future__ import annotations

from grammar import ir


def cases() -> list[tuple[str, ir.Grammar]]:
    L, R, S, A, P, C = ir.Literal, ir.Ref, ir.Seq, ir.Alt, ir.Repeat, ir.CharClass
    digit = C(((48, 57),))
    big = S(tuple(L(bytes([97 + i])) for i in range(10)))
    out = [
        ("literal", ir.Grammar({"start": L(b"abc")})),
        ("chain", ir.Grammar({"start": S((R("a"), R("b"))), "a": L(b"x"), "b": S((R("a"), L(b"y")))})),
        ("recursive", ir.Grammar({"start": R("v"), "v": A((L(b"1"), S((L(b"["), R("v"), L(b"]")))))})),
        ("mutual", ir.Grammar({"start": R("a"), "a": A((L(b"x"), S((L(b"("), R("b"), L(b")"))))),
                               "b": A((L(b"y"), S((L(b"{"), R("a"), L(b"}")))))})),
        ("undefined", ir.Grammar({"start": S((R("a"), R("zz"), R("yy"))), "a": L(b"x")})),
        ("unproductive_start", ir.Grammar({"start": S((L(b"a"), R("start")))})),
        ("unproductive_rule", ir.Grammar({"start": A((L(b"a"), R("b"))), "b": S((L(b"b"), R("b")))})),
        ("left_recursive", ir.Grammar({"start": A((S((R("start"), L(b"+"), digit)), digit))})),
        ("indirect_left", ir.Grammar({"start": A((S((R("b"), L(b"x"))), L(b"y"))), "b": S((R("start"), L(b"z")))})),
        ("bad_bounds", ir.Grammar({"start": S((L(b"x"), P(L(b"y"), 3, 2)))})),
        ("regex", ir.Grammar({"start": S((ir.Regex("[ab]+c{2,5}"), ir.Regex("[ab]+c{2,5}")))})),
        ("hoist_repeat", ir.Grammar({"start": S((L(b"<"), P(big, 0, 100), L(b">")))})),
        ("hoist_nested", ir.Grammar({"start": P(S((big, P(A((big, digit)), 1, 80))), 0, 70)})),
        ("frames", ir.Grammar({"start": S((R("ws"), L(b"a"), R("ws"), L(b"b"), R("ws"))),
                               "ws": P(C(((32, 32),)), 0, 4)}, frames=frozenset({"ws"}))),
        ("empty_alt", ir.Grammar({"start": A((L(b"a"), A(())))})),
        ("bytes", ir.Grammar({"start": P(ir.ByteClass(((0, 10), (200, 255))), 1, 3)})),
        ("automaton", ir.Grammar({"start": ir.Automaton(0, frozenset({2}), (
            (0, big, 1), (1, digit, 2), (0, L(b"q"), 2), (2, big, 2)))})),
        ("big_automaton", ir.Grammar({"start": S((R("k"), ir.Automaton(0, frozenset({3, 1}), tuple(
            (q, S((big, R("k"))) if q % 2 else big, q + 1) for q in range(3)) + tuple(
            (q, big, q) for q in range(4)) * 20))), "k": A((L(b"k"), S((L(b"("), R("k"), L(b")")))))})),
        ("shared_heavy", ir.Grammar({"start": S((R("x"),) * 40), "x": S((R("y"),) * 40),
                                    "y": A((L(b"a"), L(b"b")))})),
        ("nullable_lead", ir.Grammar({"start": S((R("n"), R("start"), L(b"x"))) , "n": P(L(b"a"), 0, 1)})),
    ]
    deep = L(b"z")
    for _ in range(300):
        deep = S((L(b"("), deep, L(b")")))
    out.append(("deep", ir.Grammar({"start": deep})))
    chain = {"start": R("r0")}
    for i in range(200):
        chain[f"r{i}"] = S((L(b"<"), R(f"r{i + 1}"), L(b">")))
    chain["r200"] = L(b"end")
    out.append(("rule_chain", ir.Grammar(chain)))
    return out
