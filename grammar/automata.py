"""Finite automata over Unicode characters: what a regex IR cannot say by itself.

JSON Schema combines regular constraints on the same string: `pattern` with `minLength` /
`maxLength` or with `format` (intersections), and `patternProperties` next to
`additionalProperties`, whose keys are the strings matching none of the patterns (a complement).
Both are closed operations on finite automata, not on regex syntax, so a regex IR (decoded
characters: Literal, CharClass, Seq, Alt, Repeat; see regex.py) goes through

    CharNfa.from_ir  ->  Dfa.from_nfa (subset construction over code-point ranges)
                     ->  intersect / complement / with_length (products, flipped finals)
                     ->  Dfa.to_ir: an `ir.Automaton` (one NFA state per DFA state, see nfa.py)

Labels are inclusive code-point ranges; surrogates are never characters (utf8.py).  Every
construction is bounded (MAX_STATES): past it the caller gets None and reports the constraint
as one it cannot enforce, like before.
"""
from __future__ import annotations

from bisect import bisect_right

from . import ir
from .utf8 import MAX_CP, normalize_ranges

MAX_STATES = 12000  # DFA states, products included (~1 s of Python at the top)
ALL = tuple(normalize_ranges([(0, MAX_CP)]))  # every Unicode scalar value


class TooLarge(Exception):
    pass


class CharNfa:
    """States 0..n-1; edges (src, ranges, dst); epsilon edges; one start; final states."""

    def __init__(self):
        self.edges: list[list[tuple[tuple, int]]] = []
        self.eps: list[list[int]] = []
        self.finals: set[int] = set()
        self.start = self.new()

    def new(self) -> int:
        self.edges.append([])
        self.eps.append([])
        if len(self.eps) > 20 * MAX_STATES:
            raise TooLarge
        return len(self.eps) - 1

    @classmethod
    def from_ir(cls, node: ir.Node) -> "CharNfa":
        nfa = cls()
        end = nfa.new()
        nfa.finals.add(end)
        nfa._build(node, nfa.start, end)
        return nfa

    def _build(self, node, s: int, e: int) -> None:
        if isinstance(node, ir.CharClass):
            ranges = tuple(normalize_ranges(node.ranges, node.negated))
            if ranges:
                self.edges[s].append((ranges, e))
        elif isinstance(node, ir.Literal):
            chars = node.value.decode("utf-8")
            cur = s
            for k, ch in enumerate(chars):
                nxt = e if k == len(chars) - 1 else self.new()
                self.edges[cur].append((((ord(ch), ord(ch)),), nxt))
                cur = nxt
            if not chars:
                self.eps[s].append(e)
        elif isinstance(node, ir.Seq):
            cur = s
            for k, item in enumerate(node.items):
                nxt = e if k == len(node.items) - 1 else self.new()
                self._build(item, cur, nxt)
                cur = nxt
            if not node.items:
                self.eps[s].append(e)
        elif isinstance(node, ir.Alt):
            for item in node.items:  # Alt(()) adds nothing: matches nothing
                a, b = self.new(), self.new()
                self.eps[s].append(a)
                self._build(item, a, b)
                self.eps[b].append(e)
        elif isinstance(node, ir.Repeat):
            cur = s
            for _ in range(node.min):
                nxt = self.new()
                self._build(node.item, cur, nxt)
                cur = nxt
            if node.max is None:
                head, tail = self.new(), self.new()
                self.eps[cur].append(head)
                self._build(node.item, head, tail)
                self.eps[tail].append(head)
                self.eps[head].append(e)
            else:
                for _ in range(node.max - node.min):
                    self.eps[cur].append(e)
                    nxt = self.new()
                    self._build(node.item, cur, nxt)
                    cur = nxt
                self.eps[cur].append(e)
        else:
            raise TypeError(f"not a regex IR node: {node!r}")

    def closure(self, states) -> frozenset:
        seen, todo = set(states), list(states)
        while todo:
            for t in self.eps[todo.pop()]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return frozenset(seen)

    def universal(self) -> frozenset:
        """States from which every string is accepted, found the cheap way: a state u whose
        closure holds a final state and that reads every character back into a set holding u
        (one edge over all of ALL: a pattern's trailing `.*` once its match is complete)."""
        out = set()
        for u, edges in enumerate(self.edges):
            loops = [t for ranges, t in edges if ranges == ALL]
            if loops and not self.finals.isdisjoint(self.closure((u,))) and \
                    any(u in self.closure((t,)) for t in loops):
                out.add(u)
        return frozenset(out)


def _split(edges) -> list[tuple[int, int, frozenset]]:
    """[(ranges, target)] -> disjoint (lo, hi, targets) covering the labelled code points."""
    cuts = sorted({x for ranges, _ in edges for lo, hi in ranges for x in (lo, hi + 1)})
    if not cuts:
        return []
    cover: list[set] = [set() for _ in cuts]  # cover[i]: targets on [cuts[i], cuts[i + 1])
    for ranges, t in edges:
        for lo, hi in ranges:
            for i in range(bisect_right(cuts, lo) - 1, bisect_right(cuts, hi)):
                cover[i].add(t)
    out: list[list] = []
    for i in range(len(cuts) - 1):
        if not cover[i]:
            continue
        lo, hi, ts = cuts[i], cuts[i + 1] - 1, frozenset(cover[i])
        if out and out[-1][2] == ts and out[-1][1] + 1 == lo:
            out[-1][1] = hi
        else:
            out.append([lo, hi, ts])
    return [tuple(x) for x in out]


class Dfa:
    """Deterministic: trans[q] = sorted disjoint [(lo, hi, dst)]; a missing range is rejection."""

    def __init__(self, trans: list[list[tuple[int, int, int]]], finals: set[int], start: int = 0):
        self.trans, self.finals, self.start = trans, finals, start

    @classmethod
    def from_nfa(cls, nfa: CharNfa) -> "Dfa":
        closures: dict[frozenset, frozenset] = {}  # target set -> its closure: many rows and
        # ranges step to the same set (a pattern's `.*` on every state), each closed once
        universal = nfa.universal()
        # every set holding a universal state accepts every string from there on: one DFA state
        # (an unanchored pattern's states after its match would otherwise stay apart, tracking
        # partial matches that no longer matter: thousands of states for a long alternation)
        everything = nfa.closure((min(universal),)) if universal else None

        def close(ts: frozenset) -> frozenset:
            got = closures.get(ts)
            if got is None:
                got = nfa.closure(ts)
                if everything is not None and not universal.isdisjoint(got):
                    got = everything
                closures[ts] = got
            return got

        sets, trans = _explore(close(frozenset((nfa.start,))), lambda cur, state: [
            (lo, hi, state(close(ts))) for lo, hi, ts in _split([e for s in cur for e in nfa.edges[s]])])
        return cls(trans, {q for q, st in enumerate(sets) if not st.isdisjoint(nfa.finals)})

    @classmethod
    def from_ir(cls, node: ir.Node) -> "Dfa":
        return cls.from_nfa(CharNfa.from_ir(node))

    def complement(self) -> "Dfa":
        """Every string over all scalar values this DFA rejects."""
        dead = len(self.trans)
        trans = []
        for row in self.trans + [[]]:
            full, nxt = list(row), 0
            for lo, hi, _ in row:  # the gaps go to the dead state
                full += [(a, b, dead) for a, b in _gaps(nxt, lo - 1)]
                nxt = hi + 1
            full += [(a, b, dead) for a, b in _gaps(nxt, MAX_CP)]
            trans.append(sorted(full))
        return Dfa(trans, set(range(dead + 1)) - self.finals, self.start).trim()

    def intersect(self, other: "Dfa") -> "Dfa":
        x, y = self, other

        def row(pair, state):  # both rows are sorted and disjoint: merge them
            p, q = pair
            out, j, ry = [], 0, y.trans[q]
            for a, b, t in x.trans[p]:
                while j < len(ry) and ry[j][1] < a:
                    j += 1
                k = j
                while k < len(ry) and ry[k][0] <= b:
                    out.append((max(a, ry[k][0]), min(b, ry[k][1]), state((t, ry[k][2]))))
                    k += 1
            return out

        pairs, trans = _explore((x.start, y.start), row)
        return Dfa(trans, {i for i, (p, q) in enumerate(pairs) if p in x.finals and q in y.finals}).trim()

    def union(self, other: "Dfa") -> "Dfa":
        return self.complement().intersect(other.complement()).complement()

    def with_length(self, lo: int, hi: int | None) -> "Dfa":
        """This language restricted to lo..hi characters (hi None: unbounded)."""
        cap = hi if hi is not None else lo  # counts saturate at lo when there is no upper bound

        def row(pair, state):
            q, c = pair
            n = c + 1 if c < cap else (None if hi is not None else cap)
            return [] if n is None else [(a, b, state((t, n))) for a, b, t in self.trans[q]]

        pairs, trans = _explore((self.start, 0), row)
        return Dfa(trans, {i for i, (q, c) in enumerate(pairs) if q in self.finals and c >= lo}).trim()

    def trim(self) -> "Dfa":
        """Keep the states on some path from the start to a final state (renumbered, start 0);
        a DFA with none is the empty language (one state, no finals)."""
        back: list[list[int]] = [[] for _ in self.trans]
        for q, row in enumerate(self.trans):
            for _, _, t in row:
                back[t].append(q)
        live, todo = set(self.finals), list(self.finals)
        while todo:
            for p in back[todo.pop()]:
                if p not in live:
                    live.add(p)
                    todo.append(p)
        if self.start not in live:
            return Dfa([[]], set(), 0)
        keep, todo = [self.start], [self.start]
        seen = {self.start}
        while todo:  # reachable from the start, through live states only
            for _, _, t in self.trans[todo.pop()]:
                if t in live and t not in seen:
                    seen.add(t)
                    keep.append(t)
                    todo.append(t)
        new = {q: i for i, q in enumerate(keep)}
        trans = [[(a, b, new[t]) for a, b, t in self.trans[q] if t in new] for q in keep]
        return Dfa(trans, {new[q] for q in self.finals if q in new}, 0)

    def minimize(self) -> "Dfa":
        """The equivalent DFA with the fewest states: Moore's partition refinement (a state's
        signature: its block and its row with targets as blocks, adjacent ranges to one block
        merged), after trim (a missing range is the one dead state).  Patterns spelled for
        clarity (uri, email) shrink by a third or more, and every product built on them
        (lengths, intersections) by as much."""
        d = self.trim()
        n = len(d.trans)

        def merged(row, label):
            out: list = []
            for a, b, t in row:
                bt = label[t]
                if out and out[-1][2] == bt and out[-1][1] + 1 == a:
                    out[-1] = (out[-1][0], b, bt)
                else:
                    out.append((a, b, bt))
            return out

        block = [1 if q in d.finals else 0 for q in range(n)]
        count = len(set(block))
        while True:
            sigs: dict = {}
            new = [sigs.setdefault((block[q], tuple(merged(d.trans[q], block))), len(sigs)) for q in range(n)]
            if len(sigs) == count:  # no block split: stable
                break
            block, count = new, len(sigs)
        trans: list = [None] * count
        for q in range(n):
            if trans[new[q]] is None:
                trans[new[q]] = merged(d.trans[q], new)
        return Dfa(trans, {new[q] for q in d.finals}, new[d.start])

    def is_empty(self) -> bool:
        return not self.finals

    def to_ir(self) -> ir.Node:
        """An ir.Automaton over CharClass labels (one per pair of states), or NOTHING if empty."""
        if self.is_empty():
            return ir.NOTHING
        edges = []
        for q, row in enumerate(self.trans):
            by_dst: dict[int, list] = {}
            for a, b, t in row:
                by_dst.setdefault(t, []).append((a, b))
            edges += [(q, ir.CharClass(tuple(rs)), t) for t, rs in sorted(by_dst.items())]
        return ir.Automaton(self.start, frozenset(self.finals), tuple(edges))


def _gaps(lo: int, hi: int) -> list[tuple[int, int]]:
    return normalize_ranges([(lo, hi)]) if lo <= hi else []


def _explore(first, row_of) -> tuple[list, list]:
    """Breadth-first construction of a DFA whose states are keys (first: the start, state 0):
    row_of(key, state) is the key's row [(lo, hi, target id)], state(k) the id of key k (new
    keys queued; past MAX_STATES, TooLarge).  Returns (keys by id, rows by id)."""
    index, keys, trans = {first: 0}, [first], []

    def state(key) -> int:
        d = index.get(key)
        if d is None:
            d = index[key] = len(keys)
            keys.append(key)
            if len(keys) > MAX_STATES:
                raise TooLarge
        return d

    while len(trans) < len(keys):
        trans.append(row_of(keys[len(trans)], state))
    return keys, trans


def language(node: ir.Node, lo: int = 0, hi: int | None = None, also: ir.Node | None = None) -> Dfa:
    """The strings of regex IR `node` that have lo..hi characters and (when given) also match
    regex IR `also`, as a DFA (TooLarge past MAX_STATES)."""
    dfa = Dfa.from_ir(node).minimize()
    if also is not None:
        dfa = dfa.intersect(Dfa.from_ir(also).minimize()).minimize()
    if lo or hi is not None:
        dfa = dfa.with_length(lo, hi)
    return dfa


def restrict(node: ir.Node, lo: int = 0, hi: int | None = None, also: ir.Node | None = None) -> ir.Node | None:
    """language(...) as IR; None when the automata grow past MAX_STATES."""
    try:
        return language(node, lo, hi, also).to_ir()
    except TooLarge:
        return None


def none_of(nodes: list[ir.Node]) -> ir.Node | None:
    """The strings matching none of the regex IRs `nodes`, as IR; None past MAX_STATES."""
    try:
        return Dfa.from_ir(ir.Alt(tuple(nodes))).complement().to_ir()
    except TooLarge:
        return None
