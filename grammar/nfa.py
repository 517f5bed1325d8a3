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


@lru_cache(maxsize=4096)
def _class_template(ranges, negated: bool) -> tuple:
    """A CharClass's Thompson piece, relative: (k fresh states, edges from the start state,
    each fresh state's edges, matches nothing); an edge is (lo, hi, d), d the fresh state's
    offset or -1 for the end state.  The continuation chain (cont[m]: m more 80-BF bytes to the
    end) is shared by the sequences, and states come in the order the sequences make them."""
    seqs = _class_sequences(ranges, negated)
    rows: list[list] = []
    s_edges: list = []
    cont = [-1]

    def fresh() -> int:
        rows.append([])
        return len(rows) - 1

    for seq in seqs:
        m = 0  # trailing full continuation ranges go through the shared chain
        while m < len(seq) - 1 and seq[len(seq) - 1 - m] == (0x80, 0xBF):
            m += 1
        while len(cont) <= m:
            nxt = fresh()
            rows[nxt].append((0x80, 0xBF, cont[-1]))
            cont.append(nxt)
        cur, head = None, seq[: len(seq) - m]
        for k, (a, b) in enumerate(head):
            nxt = cont[m] if k == len(head) - 1 else fresh()
            (s_edges if cur is None else rows[cur]).append((a, b, nxt))
            cur = nxt
    return len(rows), tuple(s_edges), tuple(tuple(r) for r in rows), not seqs


_NODE_TYPES = (ir.Literal, ir.CharClass, ir.ByteClass, ir.Seq, ir.Alt, ir.Repeat, ir.Ref, ir.Automaton)


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
        build, close = self._builder(index)
        for i, name in enumerate(self.names):
            build(rules[name], self.start[i], self.final[i])
        close()
        self.trim()

    def new(self) -> int:
        self.bytes.append([])
        self.eps.append([])
        self.calls.append([])
        return len(self.eps) - 1

    def build(self, node, s: int, e: int, index: dict) -> None:
        """Add states/edges so that the paths s -> e spell exactly `node`; never loops on s or e."""
        build, close = self._builder(index)
        build(node, s, e)
        close()

    def build_repeat(self, node: ir.Repeat, s: int, e: int, index: dict) -> None:
        self.build(node, s, e, index)

    def _builder(self, index: dict):
        """(build(node, s, e) over this NFA's lists (locals, not attributes: the hot loop of a
        compile), close()).  States are numbered in the order of the plain Thompson recursion: a
        Seq makes each item's end state before the item's own states, a Literal's chain comes in
        order.  The nested builders call each other through their closures, a reference cycle
        that would keep every list of the NFA (and the IR) alive until a cyclic-GC pass (~0.2 s
        for a big schema): close() breaks it."""
        bytes_, eps, calls = self.bytes, self.eps, self.calls
        Literal, CharClass, Seq, Alt, Ref = ir.Literal, ir.CharClass, ir.Seq, ir.Alt, ir.Ref
        dead = [self.maybe_dead]  # maybe_dead, written back after each top-level build

        def new() -> int:
            bytes_.append([])
            eps.append([])
            calls.append([])
            return len(eps) - 1

        def empties(n: int) -> None:
            eps.extend([[] for _ in range(n)])
            calls.extend([[] for _ in range(n)])

        def literal(v: bytes, s: int, e: int) -> None:
            n = len(v)
            if n == 1:
                c = v[0]
                bytes_[s].append((c, c, e))
            elif n == 0:
                eps[s].append(e)
            else:  # states base .. base + n - 2, in order
                base = len(eps)
                c = v[0]
                bytes_[s].append((c, c, base))
                bytes_.extend([[(c, c, t)] for t, c in enumerate(v[1:n - 1], base + 1)])
                c = v[n - 1]
                bytes_.append([(c, c, e)])
                empties(n - 1)

        built: dict[int, tuple] = {}  # id(composite node) -> where its first piece lies

        def build(node, s: int, e: int) -> None:
            t = type(node)
            if t not in _NODE_TYPES:  # a subclass: dispatch on its IR base class
                t = next((k for k in _NODE_TYPES if isinstance(node, k)), None)
            if t is Literal:
                literal(node.value, s, e)
            elif t is Ref:
                calls[s].append((index[node.name], e))
            elif t is CharClass:
                k, s_edges, rows, empty = _class_template(node.ranges, node.negated)
                if empty:
                    dead[0] = True
                if k:
                    base = len(eps)
                    bytes_[s].extend([(a, b, base + d if d >= 0 else e) for a, b, d in s_edges])
                    bytes_.extend([[(a, b, base + d if d >= 0 else e) for a, b, d in row] for row in rows])
                    empties(k)
                else:
                    bytes_[s].extend([(a, b, e) for a, b, _ in s_edges])
            elif t is ir.ByteClass:
                bytes_[s].extend([(lo, hi, e) for lo, hi in node.ranges])
                if not node.ranges:
                    dead[0] = True
            else:
                got = built.get(id(node))
                if got is not None:
                    copy(got, s, e)
                    return
                n0, lb, le, lc = len(eps), len(bytes_[s]), len(eps[s]), len(calls[s])
                composite(node, t, s, e)
                built[id(node)] = (node, n0, len(eps), s, e, lb, le, lc,
                                   len(bytes_[s]), len(eps[s]), len(calls[s]), dead[0])

        def copy(got: tuple, s: int, e: int) -> None:
            """A composite node built before, again between s and e: its first piece's states and
            edges shifted (what building it again makes, state for state, edge for edge).  A
            piece's edges lead only to its own fresh states or to its end state (never to its
            start, nor anywhere else), and its fresh states come after its end state."""
            _, n0, n1, s0, e0, lb, le, lc, lb1, le1, lc1, was_dead = got
            off = len(eps) - n0
            if was_dead:
                dead[0] = True
            if lb1 > lb:
                bytes_[s].extend([(a, b, t + off if t >= n0 else e) for a, b, t in bytes_[s0][lb:lb1]])
            if le1 > le:
                eps[s].extend([t + off if t >= n0 else e for t in eps[s0][le:le1]])
            if lc1 > lc:
                calls[s].extend([(r, t + off if t >= n0 else e) for r, t in calls[s0][lc:lc1]])
            if n1 > n0:
                bytes_.extend([[(a, b, t + off if t >= n0 else e) for a, b, t in row] if row else []
                               for row in bytes_[n0:n1]])
                eps.extend([[t + off if t >= n0 else e for t in row] if row else [] for row in eps[n0:n1]])
                calls.extend([[(r, t + off if t >= n0 else e) for r, t in row] if row else []
                              for row in calls[n0:n1]])

        def composite(node, t, s: int, e: int) -> None:
            if t is Seq:
                items = node.items
                if not items:
                    eps[s].append(e)
                    return
                cur = s
                last = len(items) - 1
                for k, it in enumerate(items):
                    if k == last:
                        nxt = e
                    else:
                        nxt = len(eps)
                        bytes_.append([])
                        eps.append([])
                        calls.append([])
                    ti = type(it)
                    if ti is Literal:
                        literal(it.value, cur, nxt)
                    elif ti is Ref:
                        calls[cur].append((index[it.name], nxt))
                    else:
                        build(it, cur, nxt)
                    cur = nxt
            elif t is Alt:
                if not node.items:
                    dead[0] = True
                for it in node.items:
                    build(it, s, e)
            elif t is ir.Repeat:
                repeat(node, s, e)
            elif t is ir.Automaton:  # fresh states: never loops on s or e
                if not node.finals:  # Dfa.to_ir keeps only states on accepting paths
                    dead[0] = True
                states: dict[int, int] = {}
                at = lambda q: states[q] if q in states else states.setdefault(q, new())  # noqa: E731
                eps[s].append(at(node.start))
                for q, label, r in node.edges:
                    build(label, at(q), at(r))
                for q in node.finals:
                    eps[at(q)].append(e)
            else:
                raise GrammarError(f"cannot compile IR node {node!r}")

        def repeat(node: ir.Repeat, s: int, e: int) -> None:
            cur, item = s, node.item
            for _ in range(node.min):
                nxt = new()
                build(item, cur, nxt)
                cur = nxt
            if node.max is None:  # fresh loop head: no edge ever returns to s
                head, tail = new(), new()
                eps[cur].append(head)
                build(item, head, tail)
                eps[tail].append(head)
                eps[head].append(e)
                return
            for _ in range(node.max - node.min):
                eps[cur].append(e)
                nxt = new()
                build(item, cur, nxt)
                cur = nxt
            eps[cur].append(e)

        def top(node, s: int, e: int) -> None:
            dead[0] = self.maybe_dead
            try:
                build(node, s, e)
            finally:
                self.maybe_dead = dead[0]

        def close() -> None:
            nonlocal build, copy, composite, repeat
            build = copy = composite = repeat = None
            built.clear()

        return top, close

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
