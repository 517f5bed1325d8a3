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
    huge = L(b"xy")
    for _ in range(4):  # size() ~1.6e14: past C's saturation point, decided as Python decides
        huge = P(huge, 1, 3000)
    out.append(("huge_sizes", ir.Grammar({"start": S((R("a"), L(b"-"), R("a"), R("b"))), "a": huge,
                                          "b": A((L(b"b"), S((L(b"["), R("b"), R("a"), L(b"]")))))})))
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


def random_grammar(rng, n_rules: int = 6, depth: int = 4) -> ir.Grammar:
    """A random grammar over the IR (shared objects and structurally equal copies, references
    that recurse, bounded repeats big enough to hoist, automata, frames): prepare's corners."""
    names = [f"r{i}" for i in range(n_rules)]
    pool: list = []

    def node(d):
        k = rng.random()
        if pool and k < 0.12:
            return rng.choice(pool)  # the same object again
        if d == 0 or k < 0.35:
            c = rng.random()
            if c < 0.4:
                return ir.Literal(bytes(rng.choice(b"abcxyz") for _ in range(rng.choice((0, 1, 1, 2, 9)))))
            if c < 0.6:
                return ir.Ref(rng.choice(names))
            if c < 0.75:
                lo = rng.randrange(48, 120)
                return ir.CharClass(((lo, lo + rng.randrange(3)),), rng.random() < 0.1)
            if c < 0.8:
                return ir.ByteClass(((rng.randrange(200), 220),) if rng.random() < 0.9 else ())
            if c < 0.85:
                return ir.Regex(rng.choice(("[a-c]{2,40}", "(ab|cd)*e", "x?y+", "[0-9]{3}-[0-9]{4}")))
            return ir.Seq(())
        c = rng.random()
        if c < 0.35:
            out = ir.Seq(tuple(node(d - 1) for _ in range(rng.randrange(1, 4))))
        elif c < 0.6:
            out = ir.Alt(tuple(node(d - 1) for _ in range(rng.randrange(0 if rng.random() < 0.05 else 1, 4))))
        elif c < 0.85:
            lo = rng.choice((0, 0, 1, 2))
            hi = rng.choice((None, lo, lo + 1, lo + 3, 60, 200))
            out = ir.Repeat(node(d - 1), lo, hi)
        else:
            m = rng.randrange(2, 5)
            edges = tuple((rng.randrange(m), node(d - 1) if rng.random() < 0.5 else ir.Literal(b"q" * 9),
                           rng.randrange(m)) for _ in range(rng.randrange(1, 2 * m + 12)))
            out = ir.Automaton(0, frozenset(rng.sample(range(m), rng.randrange(1, m))), edges)
        if rng.random() < 0.3:
            pool.append(out)
        if rng.random() < 0.1:  # a structurally equal copy (a new object)
            out = type(out)(*(getattr(out, f) for f in out.__dataclass_fields__))
        return out

    rules = {name: node(depth) for name in names}
    frames = frozenset(n for n in names if rng.random() < 0.15)
    return ir.Grammar(rules, start=names[0], frames=frames)
