"""Byte-level Thompson NFA for the kept rules, and the lazily determinized per-rule DFA.

Each kept rule R gets NFA states [start_R .. final_R]; edges are byte ranges, epsilons, and
calls `(callee rule, return state)`.  After `trim()`, every remaining state can reach its rule's
final state (calls count only into productive rules), so every non-empty state set is viable.

`RuleDfa` interns epsilon-closed NFA state sets as DFA states ("dstates") on demand: the DFA of
a 10,000-state NFA costs nothing until the matcher walks into it.  A dstate belongs to one rule.
"""
from __future__ import annotations

from functools import lru_cache

from . import ir
from .errors import GrammarError
from .utf8 import normalize_ranges, utf8_sequences

DEAD = -1


@lru_cache(maxsize=4096)
def _class_sequences(ranges, negated: bool) -> tuple:
    """UTF-8 byte-range sequences of a CharClass (cached: JSON grammars repeat a few classes)."""
    return tuple(seq for lo, hi in normalize_ranges(ranges, negated) for seq in utf8_sequences(lo, hi))


class Nfa:
    def __init__(self, rules: dict[str, ir.Node], productive: bool = False):
        """productive=True promises that every rule derives some string (normalize.prepare's
        output): then, unless a piece matching nothing was built (Alt(()), an empty class), every
        Thompson state lies on a start-to-final path and `trim` has nothing to do."""
        self.names = list(rules)
        self.maybe_dead = not productive
        index = {n: i for i, n in enumerate(self.names)}
        self.bytes: list[list[tuple[int, int, int]]] = []  # (lo, hi, target)
        self.eps: list[list[int]] = []
        self.calls: list[list[tuple[int, int]]] = []  # (rule index, return state)
        self.start, self.final = [], []
        for name in self.names:
            s, e = self.new(), self.new()
            self.start.append(s)
            self.final.append(e)
        for i, name in enumerate(self.names):
            self.build(rules[name], self.start[i], self.final[i], index)
        self.trim()

    def new(self) -> int:
        self.bytes.append([])
        self.eps.append([])
        self.calls.append([])
        return len(self.eps) - 1

    def build(self, node, s: int, e: int, index: dict) -> None:
        """Add states/edges so that the paths s -> e spell exactly `node`; never loops on s or e."""
        if isinstance(node, ir.Literal):
            cur = s
            for k, b in enumerate(node.value):
                nxt = e if k == len(node.value) - 1 else self.new()
                self.bytes[cur].append((b, b, nxt))
                cur = nxt
            if not node.value:
                self.eps[s].append(e)
        elif isinstance(node, ir.ByteClass):
            self.bytes[s].extend((lo, hi, e) for lo, hi in node.ranges)
            self.maybe_dead |= not node.ranges
        elif isinstance(node, ir.CharClass):
            self.maybe_dead |= not _class_sequences(node.ranges, node.negated)
            cont = [e]  # cont[m]: m more continuation bytes (80-BF) to e, shared by the sequences
            for seq in _class_sequences(node.ranges, node.negated):
                m = 0  # trailing full continuation ranges go through the shared chain
                while m < len(seq) - 1 and seq[len(seq) - 1 - m] == (0x80, 0xBF):
                    m += 1
                while len(cont) <= m:
                    nxt = self.new()
                    self.bytes[nxt].append((0x80, 0xBF, cont[-1]))
                    cont.append(nxt)
                cur, head = s, seq[: len(seq) - m]
                for k, (a, b) in enumerate(head):
                    nxt = cont[m] if k == len(head) - 1 else self.new()
                    self.bytes[cur].append((a, b, nxt))
                    cur = nxt
        elif isinstance(node, ir.Seq):
            cur = s
            for k, it in enumerate(node.items):
                nxt = e if k == len(node.items) - 1 else self.new()
                self.build(it, cur, nxt, index)
                cur = nxt
            if not node.items:
                self.eps[s].append(e)
        elif isinstance(node, ir.Alt):
            self.maybe_dead |= not node.items
            for it in node.items:
                self.build(it, s, e, index)
        elif isinstance(node, ir.Repeat):
            self.build_repeat(node, s, e, index)
        elif isinstance(node, ir.Ref):
            self.calls[s].append((index[node.name], e))
        elif isinstance(node, ir.Automaton):  # fresh states: never loops on s or e
            self.maybe_dead |= not node.finals  # Dfa.to_ir keeps only states on accepting paths
            states: dict[int, int] = {}
            at = lambda q: states[q] if q in states else states.setdefault(q, self.new())  # noqa: E731
            self.eps[s].append(at(node.start))
            for q, label, r in node.edges:
                self.build(label, at(q), at(r), index)
            for q in node.finals:
                self.eps[at(q)].append(e)
        else:
            raise GrammarError(f"cannot compile IR node {node!r}")

    def build_repeat(self, node: ir.Repeat, s: int, e: int, index: dict) -> None:
        cur = s
        for _ in range(node.min):
            nxt = self.new()
            self.build(node.item, cur, nxt, index)
            cur = nxt
        if node.max is None:  # fresh loop head: no edge ever returns to s
            head, tail = self.new(), self.new()
            self.eps[cur].append(head)
            self.build(node.item, head, tail, index)
            self.eps[tail].append(head)
            self.eps[head].append(e)
            return
        for _ in range(node.max - node.min):
            self.eps[cur].append(e)
            nxt = self.new()
            self.build(node.item, cur, nxt, index)
            cur = nxt
        self.eps[cur].append(e)

    def trim(self) -> None:
        """Drop every edge into a state that cannot reach its rule's final state.

        One backward worklist pass: a state is live when a byte or epsilon edge leads to a live
        state, or a call edge (r, t) has both t and r's start live (a call waits for the later
        of the two).  Skipped when nothing can be dead (see __init__)."""
        if not self.maybe_dead:
            return
        n = len(self.eps)
        rev: list[list[int]] = [[] for _ in range(n)]
        rev_call: list[list[tuple[int, int]]] = [[] for _ in range(n)]  # t -> [(source, callee)]
        for s in range(n):
            for _, _, t in self.bytes[s]:
                rev[t].append(s)
            for t in self.eps[s]:
                rev[t].append(s)
            for r, t in self.calls[s]:
                rev_call[t].append((s, r))
        rule_of_start = {st: r for r, st in enumerate(self.start)}
        waiting: dict[int, list[int]] = {}  # callee -> sources whose return state is live
        live = bytearray(n)
        todo = []
        for f in self.final:
            live[f] = 1
            todo.append(f)
        while todo:
            t = todo.pop()
            ready = list(rev[t])
            for s, r in rev_call[t]:
                if live[self.start[r]]:
                    ready.append(s)
                else:
                    waiting.setdefault(r, []).append(s)
            r = rule_of_start.get(t)
            if r is not None:
                ready += waiting.pop(r, ())
            for s in ready:
                if not live[s]:
                    live[s] = 1
                    todo.append(s)
        if not live[self.start[0]]:
            raise GrammarError("the grammar matches nothing")
        if all(live):  # the usual case: nothing to drop
            return
        for s in range(n):
            if self.bytes[s]:
                self.bytes[s] = [x for x in self.bytes[s] if live[x[2]]]
            if self.eps[s]:
                self.eps[s] = [t for t in self.eps[s] if live[t]]
            if self.calls[s]:
                self.calls[s] = [(r, t) for r, t in self.calls[s] if live[t] and live[self.start[r]]]


class RuleDfa:
    """Lazily built DFA states over the NFA: dstate -> byte -> dstate, plus its calls."""

    def __init__(self, nfa: Nfa):
        self.nfa = nfa
        self.index: dict[frozenset, int] = {}
        self.sets: list[frozenset] = []
        self.final: list[bool] = []
        self.has_bytes: list[bool] = []
        self.calls: list = []  # per dstate: None until call_edges() fills it
        self.trans: list[dict[int, int]] = []
        self.cuts: list = []  # per dstate: None until byte_cuts() fills it
        self.final_states = set(nfa.final)
        self.starts = [self.intern({s}) for s in nfa.start]  # starts[r]: the dstate entering rule r

    def closure(self, states) -> frozenset:
        seen, todo = set(states), list(states)
        eps = self.nfa.eps
        while todo:
            for t in eps[todo.pop()]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return frozenset(seen)

    def intern(self, states) -> int:
        key = self.closure(states)
        d = self.index.get(key)
        if d is not None:
            return d
        d = len(self.sets)
        self.index[key] = d
        self.sets.append(key)
        self.final.append(not key.isdisjoint(self.final_states))
        self.has_bytes.append(any(self.nfa.bytes[s] for s in key))
        self.trans.append({})
        self.cuts.append(None)
        self.calls.append(None)  # computed on first use by call_edges()
        return d

    def call_edges(self, d: int) -> tuple[tuple[int, int], ...]:
        """(callee rule, return dstate) pairs of dstate d."""
        got = self.calls[d]
        if got is None:
            grouped: dict[int, set[int]] = {}
            for s in self.sets[d]:
                for r, t in self.nfa.calls[s]:
                    grouped.setdefault(r, set()).add(t)
            got = tuple((r, self.intern(ts)) for r, ts in sorted(grouped.items()))
            self.calls[d] = got
        return got

    def byte_cuts(self, d: int) -> frozenset[int]:
        """Bytes where dstate d's behaviour may change: b and b-1 step alike unless b is a cut."""
        got = self.cuts[d]
        if got is None:
            got = frozenset(x for s in self.sets[d] for lo, hi, _ in self.nfa.bytes[s]
                            for x in (lo, hi + 1))
            self.cuts[d] = got
        return got

    def step(self, d: int, b: int) -> int:
        """The dstate after byte b from dstate d, or DEAD."""
        got = self.trans[d].get(b)
        if got is None:
            targets = {t for s in self.sets[d] for lo, hi, t in self.nfa.bytes[s] if lo <= b <= hi}
            got = self.intern(targets) if targets else DEAD
            self.trans[d][b] = got
        return got
