"""A slow, obviously-correct recognizer over the IR, at the byte level: the test oracle.

The IR is lowered to a plain BNF whose terminals are byte ranges (a CharClass becomes the UTF-8
byte sequences of its code points), unproductive productions are pruned, and an Earley
recognizer (with the Aycock-Horspool nullable fix) runs over the bytes.  Because every remaining
symbol is productive, a non-empty Earley set means the bytes read so far extend to a sentence:
that is exactly `is_prefix`.

    accepts(g, b'{"a": 1}')   # the whole input is a sentence
    is_prefix(g, b'{"a": ')   # the input can be extended to a sentence
    viable_tokens(g, prefix, tokens)  # {i : is_prefix(prefix + tokens[i])}, sharing work by a trie
"""
from __future__ import annotations

from . import ir
from .regex import parse_regex
from .utf8 import normalize_ranges, utf8_sequences

START = "<start>"


class _Bnf:
    """prods[nt] = list of symbol tuples; a symbol is a nonterminal (str) or a byte range (lo, hi)."""

    def __init__(self, grammar: ir.Grammar):
        self.prods: dict[str, list[tuple]] = {}
        self.fresh = 0
        for name, node in grammar.rules.items():
            self.prods["r:" + name] = [self.lower(node)]
        self.prods[START] = [("r:" + grammar.start,)]
        self.prune()
        self.nullable = self.nullables()

    def new(self, alternatives: list[tuple]) -> str:
        self.fresh += 1
        name = f"#{self.fresh}"
        self.prods[name] = alternatives
        return name

    def lower(self, node) -> tuple:
        if isinstance(node, ir.Literal):
            return tuple((b, b) for b in node.value)
        if isinstance(node, ir.ByteClass):
            return (self.new([((lo, hi),) for lo, hi in node.ranges]),)
        if isinstance(node, ir.CharClass):
            seqs = [s for lo, hi in normalize_ranges(node.ranges, node.negated)
                    for s in utf8_sequences(lo, hi)]
            return (self.new(seqs),)
        if isinstance(node, ir.Seq):
            return tuple(sym for it in node.items for sym in self.lower(it))
        if isinstance(node, ir.Alt):
            return (self.new([self.lower(it) for it in node.items]),)
        if isinstance(node, ir.Ref):
            return ("r:" + node.name,)
        if isinstance(node, ir.Regex):
            return self.lower(parse_regex(node.pattern))
        if isinstance(node, ir.Automaton):  # one nonterminal per state: q -> label r | () if final
            names = {q: self.new([]) for q in {node.start, *node.finals} | {x for q, _, r in node.edges for x in (q, r)}}
            for q, label, r in node.edges:
                self.prods[names[q]].append(self.lower(label) + (names[r],))
            for q in node.finals:
                self.prods[names[q]].append(())
            return (names[node.start],)
        if isinstance(node, ir.Repeat):
            body = self.lower(node.item)
            if node.max is None:
                tail = self.new([()])
                self.prods[tail].append(body + (tail,))
            else:
                tail = self.new([()])
                for _ in range(node.max - node.min):
                    tail = self.new([(), body + (tail,)])
            return body * node.min + (tail,)
        raise TypeError(f"not an IR node: {node!r}")

    def prune(self) -> None:
        productive: set[str] = set()
        changed = True
        while changed:
            changed = False
            for nt, alts in self.prods.items():
                if nt not in productive and any(
                        all(isinstance(s, tuple) or s in productive for s in alt) for alt in alts):
                    productive.add(nt)
                    changed = True
        self.prods = {nt: [a for a in alts if all(isinstance(s, tuple) or s in productive
                                                 for s in a)]
                      for nt, alts in self.prods.items() if nt in productive}

    def nullables(self) -> set[str]:
        null: set[str] = set()
        changed = True
        while changed:
            changed = False
            for nt, alts in self.prods.items():
                if nt not in null and any(all(s in null for s in alt) for alt in alts):
                    null.add(nt)
                    changed = True
        return null


class Recognizer:
    """Earley sets over bytes; `feed` returns a new recognizer (the old one stays usable)."""

    def __init__(self, grammar: ir.Grammar, _bnf: _Bnf | None = None, _sets=None):
        self.bnf = _bnf or _Bnf(grammar)
        if _sets is None:
            first = [(START, i, 0, 0) for i in range(len(self.bnf.prods.get(START, [])))]
            _sets = [self._close(first, 0, [])]
        self.sets = _sets

    def _close(self, items: list, pos: int, sets: list) -> list:
        prods, null = self.bnf.prods, self.bnf.nullable
        seen, order = set(items), list(items)
        k = 0
        while k < len(order):
            nt, alt, dot, origin = order[k]
            k += 1
            rhs = prods[nt][alt]
            new = []
            if dot == len(rhs):  # complete: advance the items waiting on nt at origin
                src = order if origin == pos else sets[origin]
                new = [(n2, a2, d2 + 1, o2) for n2, a2, d2, o2 in list(src)
                       if d2 < len(prods[n2][a2]) and prods[n2][a2][d2] == nt]
            elif isinstance(rhs[dot], str):  # predict, and skip over a nullable symbol
                sym = rhs[dot]
                new = [(sym, i, 0, pos) for i in range(len(prods[sym]))]
                if sym in null:
                    new.append((nt, alt, dot + 1, origin))
            for it in new:
                if it not in seen:
                    seen.add(it)
                    order.append(it)
        return order

    def feed(self, data: bytes) -> "Recognizer":
        sets = list(self.sets)
        prods = self.bnf.prods
        for byte in data:
            cur = sets[-1]
            scanned = []
            for nt, alt, dot, origin in cur:
                rhs = prods[nt][alt]
                if dot < len(rhs) and isinstance(rhs[dot], tuple) and rhs[dot][0] <= byte <= rhs[dot][1]:
                    scanned.append((nt, alt, dot + 1, origin))
            sets.append(self._close(scanned, len(sets), sets))
            if not sets[-1]:
                break
        return Recognizer(None, self.bnf, sets)

    def alive(self) -> bool:
        return bool(self.sets[-1])

    def complete(self) -> bool:
        return any(nt == START and dot == 1 and origin == 0 for nt, _, dot, origin in self.sets[-1])


def accepts(grammar: ir.Grammar, data: bytes) -> bool:
    """True iff `data` is a sentence of the grammar."""
    return Recognizer(grammar).feed(data).complete()


def is_prefix(grammar: ir.Grammar, data: bytes) -> bool:
    """True iff `data` can be extended to a sentence of the grammar."""
    return Recognizer(grammar).feed(data).alive()


def viable_tokens(grammar_or_rec, prefix: bytes, tokens: list[bytes]) -> set[int]:
    """{i : is_prefix(prefix + tokens[i])}; empty tokens are excluded.  Walks a token trie."""
    rec = grammar_or_rec if isinstance(grammar_or_rec, Recognizer) else Recognizer(grammar_or_rec)
    root: dict = {}
    for i, tok in enumerate(tokens):
        if not tok:
            continue
        node = root
        for b in tok:
            node = node.setdefault(b, {})
        node.setdefault(None, []).append(i)
    out: set[int] = set()
    stack = [(rec.feed(prefix), root)]
    while stack:
        r, node = stack.pop()
        if not r.alive():
            continue
        for b, child in node.items():
            if b is None:
                out.update(child)
                continue
            nxt = r.feed(bytes([b]))
            if nxt.alive():
                stack.append((nxt, child))
    return out
