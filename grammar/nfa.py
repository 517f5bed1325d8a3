"""Byte-level Thompson NFA for the kept rules, and the lazily determinized per-rule DFA.

Each kept rule R gets NFA states [start_R .. final_R]; edges are byte ranges, epsilons, and
calls `(callee rule, return state)`.  After `trim()`, every remaining state can reach its rule's
final state (calls count only into productive rules), so every non-empty state set is viable.

`RuleDfa` interns epsilon-closed NFA state sets as DFA states ("dstates") on demand: the DFA of
a 10,000-state NFA costs nothing until the matcher walks into it.  A dstate belongs to one rule.
"""
from __future__ import annotations

import ctypes
from array import array
from functools import lru_cache

import numpy as np

from . import ir, native
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
# node kinds of the flat code gs_nfa_build reads (pda_core.c: NB_LIT ...)
_LIT, _REF, _CLASS, _BYTES, _SEQ, _ALT, _REPEAT, _AUTO = range(8)
_INT32 = 2 ** 31 - 1
_THREE_POINTERS = ctypes.c_void_p * 3  # made once: each new ctypes array type is a GC cycle


def write_template(code: list, ranges, negated: bool) -> int:
    """Append a CharClass's template (_class_template) to the flat code; returns its offset."""
    k, s_edges, rows, empty = _class_template(ranges, negated)
    toff = len(code)
    code.extend((k, int(empty), len(s_edges) + sum(map(len, rows))))
    for a, b, d in s_edges:
        code.extend((-1, a, b, d))
    for j, row in enumerate(rows):
        for a, b, d in row:
            code.extend((j, a, b, d))
    return toff


def write_bytes(code: list, ranges) -> int:
    """Append a ByteClass record; returns its offset."""
    out = len(code)
    code.extend((_BYTES, len(ranges)))
    for lo, hi in ranges:
        code.extend((lo, hi))
    return out


def write_automaton(code: list, node: ir.Automaton, labels: list) -> int:
    """Append an Automaton record whose edge labels are the offsets `labels` (in edge order);
    states are renumbered by first use, the start first (nfa.py's `at` order)."""
    order: dict = {}
    at = lambda q: order.setdefault(q, len(order))  # noqa: E731
    at(node.start)
    edges = [(at(q), lab, at(r)) for (q, _, r), lab in zip(node.edges, labels)]
    finals = [at(q) for q in node.finals]
    out = len(code)
    code.extend((_AUTO, len(order), 0, len(edges)))
    for e in edges:
        code.extend(e)
    code.append(len(finals))
    code.extend(finals)
    return out


def _encode(rules: dict, index: dict, names: list) -> tuple[list, bytearray, list]:
    """(code, literal pool, roots): the kept rules as the flat int code gs_nfa_build reads, each
    distinct node (by identity) written once, after its children; roots[i] is rule names[i]'s
    body.  One Python frame per IR level (deep schemas need every stack frame)."""
    code: list[int] = []
    pool = bytearray()
    leaves: dict = {}  # a literal's bytes or a reference's rule name -> its one record
    classes: dict[tuple, int] = {}  # (ranges, negated) -> template offset
    seen: dict[int, tuple] = {}  # id(node) -> (node, offset)
    Literal, Ref, Seq, Alt = ir.Literal, ir.Ref, ir.Seq, ir.Alt

    def enc(node) -> int:
        got = seen.get(id(node))
        if got is not None and got[0] is node:
            return got[1]
        t = type(node)
        if t not in _NODE_TYPES:  # a subclass: dispatch on its IR base class
            t = next((k for k in _NODE_TYPES if isinstance(node, k)), None)
        if t is Seq or t is Alt:
            kids = []
            for it in node.items:  # leaves and met items here, without a call
                ti = type(it)
                if ti is Literal or ti is Ref:
                    key = it.value if ti is Literal else it.name
                    off = leaves.get(key)
                    kids.append(off if off is not None else enc(it))
                    continue
                got = seen.get(id(it))
                kids.append(got[1] if got is not None and got[0] is it else enc(it))
            out = len(code)
            code.append(_SEQ if t is Seq else _ALT)
            code.append(len(kids))
            code.extend(kids)
        elif t is Literal:
            v = node.value
            out = leaves.get(v)
            if out is None:
                out = leaves[v] = len(code)
                code.extend((_LIT, len(v), len(pool)))
                pool.extend(v)
        elif t is Ref:
            out = leaves.get(node.name)
            if out is None:
                out = leaves[node.name] = len(code)
                code.extend((_REF, index[node.name]))
        elif t is ir.CharClass:
            key = (node.ranges, node.negated)
            toff = classes.get(key)
            if toff is None:
                toff = classes[key] = write_template(code, node.ranges, node.negated)
            out = len(code)
            code.extend((_CLASS, toff))
        elif t is ir.ByteClass:
            out = write_bytes(code, node.ranges)
        elif t is ir.Repeat:
            item = enc(node.item)
            if node.min > _INT32 or (node.max is not None and node.max > _INT32):
                raise OverflowError("repeat bound out of range")
            out = len(code)
            code.extend((_REPEAT, item, node.min, -1 if node.max is None else node.max))
        elif t is ir.Automaton:
            out = write_automaton(code, node, [enc(label) for _, label, _ in node.edges])
        else:
            raise GrammarError(f"cannot compile IR node {node!r}")
        seen[id(node)] = (node, out)
        return out

    roots = [enc(rules[name]) for name in names]
    enc = None  # noqa: F841  (the recursive closure's cycle, broken)
    return code, pool, roots


class Nfa:
    """The Thompson NFA of the kept rules, as flat edge arrays.

    Built into three `array('i')` buffers in creation order (byte edges (src, lo, hi, target),
    epsilons (src, target), calls (src, rule, return)), by gs_nfa_build in C from the IR's flat
    code (`_encode`) where the native core loads, else by the Python `_builder` (its reference,
    tested equal array for array): appending raw ints is what a compile of a 100k-state schema can
    afford, where per-state Python lists cost a cache miss per state on
    every later pass.  `arrays()` turns them into CSR (each state's edges in creation order; the
    C build hands over its CSR arrays directly, gs_nfa_csr, and keeps no Python buffers);
    `bytes` / `eps` / `calls` are per-state lists made from it on demand (the Python reference
    automaton and, without a C compiler, `trim` read those).  After a trim that drops edges the
    CSR arrays are the NFA and the buffers are released."""

    def __init__(self, rules: dict[str, ir.Node], productive: bool = False):
        """productive=True promises that every rule derives some string (normalize.prepare's
        output): then, unless a piece matching nothing was built (Alt(()), an empty class), every
        Thompson state lies on a start-to-final path and `trim` has nothing to do."""
        self.names = list(rules)
        self.maybe_dead = not productive
        index = {n: i for i, n in enumerate(self.names)}
        self.B, self.E, self.C = array("i"), array("i"), array("i")
        self.n = 0
        self._csr = self._lists = None
        self.start, self.final = [], []
        for name in self.names:
            s, e = self.new(), self.new()
            self.start.append(s)
            self.final.append(e)
        lib = native.load()
        if lib is not None:  # the same construction in C (pda_core.c: gs_nfa_build)
            self._build_native(lib, rules, index)
        else:
            build, close = self._builder(index)
            for i, name in enumerate(self.names):
                build(rules[name], self.start[i], self.final[i])
            close()
        self.trim()

    def new(self) -> int:
        self.n += 1
        return self.n - 1

    def _builder(self, index: dict):
        """(build(node, s, e) appending to this NFA's edge arrays (locals, not attributes: the hot
        loop of a compile), close()).  States are numbered in the order of the plain Thompson
        recursion: a Seq makes each item's end state before the item's own states, a Literal's
        chain comes in order.  Every edge a build between s and e adds leaves s or a state it
        made (never e), so a composite node built before is replayed from its range of each
        array (`copy`).  The nested builders call each other through their closures, a
        reference cycle that would keep the IR alive until a cyclic-GC pass: close() breaks it."""
        B, E, C = self.B, self.E, self.C
        Literal, CharClass, Seq, Alt, Ref = ir.Literal, ir.CharClass, ir.Seq, ir.Alt, ir.Ref
        dead = [self.maybe_dead]  # maybe_dead, written back after each top-level build
        n = self.n

        def new() -> int:
            nonlocal n
            n += 1
            return n - 1

        def literal(v: bytes, s: int, e: int) -> None:
            nonlocal n
            k = len(v)
            if k == 1:
                c = v[0]
                B.extend((s, c, c, e))
            elif k == 0:
                E.extend((s, e))
            else:  # states base .. base + k - 2, in order
                base = n
                c = v[0]
                B.extend((s, c, c, base))
                for j in range(1, k - 1):
                    c = v[j]
                    B.extend((base + j - 1, c, c, base + j))
                c = v[k - 1]
                B.extend((base + k - 2, c, c, e))
                n += k - 1

        built: dict[int, tuple] = {}  # id(composite node) -> where its first piece lies

        def build(node, s: int, e: int) -> None:
            nonlocal n
            t = type(node)
            if t not in _NODE_TYPES:  # a subclass: dispatch on its IR base class
                t = next((k for k in _NODE_TYPES if isinstance(node, k)), None)
            if t is Literal:
                literal(node.value, s, e)
            elif t is Ref:
                C.extend((s, index[node.name], e))
            elif t is CharClass:
                k, s_edges, rows, empty = _class_template(node.ranges, node.negated)
                if empty:
                    dead[0] = True
                base = n
                for a, b, d in s_edges:
                    B.extend((s, a, b, base + d if d >= 0 else e))
                for j, row in enumerate(rows):
                    for a, b, d in row:
                        B.extend((base + j, a, b, base + d if d >= 0 else e))
                n += k
            elif t is ir.ByteClass:
                for lo, hi in node.ranges:
                    B.extend((s, lo, hi, e))
                if not node.ranges:
                    dead[0] = True
            else:
                got = built.get(id(node))
                if got is not None:
                    copy(got, s, e)
                    return
                n0, b0, e0, c0 = n, len(B), len(E), len(C)
                composite(node, t, s, e)
                built[id(node)] = (node, s, n0, n, b0, len(B), e0, len(E), c0, len(C), dead[0])

        def shifted(arr, lo: int, hi: int, width: int, s0: int, s: int, n0: int, off: int, e: int) -> None:
            """Append arr[lo:hi] (edges of `width` ints: source first, target last) with sources
            s0 -> s, made states + off, and targets below n0 (the old end) -> e."""
            if hi - lo <= 64:
                seg = arr[lo:hi]
                for i in range(0, hi - lo, width):
                    src, t = seg[i], seg[i + width - 1]
                    seg[i] = s if src == s0 else src + off
                    seg[i + width - 1] = t + off if t >= n0 else e
                arr.extend(seg)
                return
            a = np.frombuffer(arr[lo:hi], dtype=np.int32).reshape(-1, width).copy()
            src, t = a[:, 0], a[:, width - 1]
            a[:, 0] = np.where(src == s0, s, src + off)
            a[:, width - 1] = np.where(t >= n0, t + off, e)
            arr.frombytes(a.tobytes())

        def copy(got: tuple, s: int, e: int) -> None:
            """A composite node built before, again between s and e: its first piece's states and
            edges shifted (what building it again makes, state for state, edge for edge)."""
            nonlocal n
            _, s0, n0, n1, b0, b1, e0, e1, c0, c1, was_dead = got
            off = n - n0
            if was_dead:
                dead[0] = True
            if b1 > b0:
                shifted(B, b0, b1, 4, s0, s, n0, off, e)
            if e1 > e0:
                shifted(E, e0, e1, 2, s0, s, n0, off, e)
            if c1 > c0:
                shifted(C, c0, c1, 3, s0, s, n0, off, e)
            n += n1 - n0

        def composite(node, t, s: int, e: int) -> None:
            nonlocal n
            if t is Seq:
                items = node.items
                if not items:
                    E.extend((s, e))
                    return
                cur = s
                last = len(items) - 1
                for k, it in enumerate(items):
                    if k == last:
                        nxt = e
                    else:
                        nxt = n
                        n += 1
                    ti = type(it)
                    if ti is Literal:
                        literal(it.value, cur, nxt)
                    elif ti is Ref:
                        C.extend((cur, index[it.name], nxt))
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
                E.extend((s, at(node.start)))
                for q, label, r in node.edges:
                    build(label, at(q), at(r))
                for q in node.finals:
                    E.extend((at(q), e))
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
                E.extend((cur, head))
                build(item, head, tail)
                E.extend((tail, head, head, e))
                return
            for _ in range(node.max - node.min):
                E.extend((cur, e))
                nxt = new()
                build(item, cur, nxt)
                cur = nxt
            E.extend((cur, e))

        def top(node, s: int, e: int) -> None:
            dead[0] = self.maybe_dead
            try:
                build(node, s, e)
            finally:
                self.maybe_dead = dead[0]
                self.n = n

        def close() -> None:
            nonlocal build, copy, composite, repeat, shifted
            build = copy = composite = repeat = shifted = None
            built.clear()

        return top, close

    def _build_native(self, lib, rules: dict, index: dict) -> None:
        """The edge buffers that `_builder` makes, state for state, made by gs_nfa_build from
        the IR's flat code (`_encode`): the Python recursion over a big schema's IR costs a few
        microseconds an edge."""
        code, pool, roots = _encode(rules, index, self.names)
        code = np.asarray(code, dtype=np.int32)
        pool = np.frombuffer(bytes(pool) or b"\0", dtype=np.uint8)
        roots = np.asarray(roots, dtype=np.int32)
        handle = lib.gs_nfa_build(code.ctypes.data, pool.ctypes.data, len(roots), roots.ctypes.data)
        if not handle:
            raise MemoryError("out of memory building the grammar automaton")
        self._take_build(lib, handle)

    @classmethod
    def from_build(cls, lib, handle, names: list) -> "Nfa":
        """The Nfa of a gs_nfa_build handle (released here) whose rules are `names` in order
        and productive (prepare_native: what __init__ makes of prepare's rules)."""
        self = cls.__new__(cls)
        self.names = list(names)
        self.maybe_dead = False
        self.B = self.E = self.C = None
        self._csr = self._lists = None
        k = len(self.names)
        self.start, self.final = list(range(0, 2 * k, 2)), list(range(1, 2 * k, 2))
        self.n = 2 * k
        self._take_build(lib, handle)
        self.trim()
        return self

    def _take_build(self, lib, handle) -> None:
        """The CSR arrays of a gs_nfa_build handle, which is released."""
        try:
            info = np.zeros(5, dtype=np.int64)
            bufs = _THREE_POINTERS()
            lib.gs_nfa_result(handle, info.ctypes.data, ctypes.addressof(bufs))
            n, nb, ne, nc, dead = info.tolist()
            self.n = n
            self.maybe_dead = self.maybe_dead or bool(dead)
            # the CSR arrays straight from the build (gs_nfa_csr: what `arrays` makes of the buffers)
            csr = [np.empty(n + 1, dtype=np.int32), np.zeros(max(nb // 4 * 3, 1), dtype=np.int32),
                   np.empty(n + 1, dtype=np.int32), np.zeros(max(ne // 2, 1), dtype=np.int32),
                   np.empty(n + 1, dtype=np.int32), np.zeros(max(nc // 3 * 2, 1), dtype=np.int32)]
            if lib.gs_nfa_csr(handle, *(a.ctypes.data for a in csr)) < 0:
                raise MemoryError("out of memory building the grammar automaton")
        finally:
            lib.gs_nfa_release(handle)
        final = np.zeros(n, dtype=np.uint8)
        final[self.final] = 1
        self._csr = (*csr, final, np.asarray(self.start, dtype=np.int32))
        self.B = self.E = self.C = None  # never filled: the CSR arrays are the NFA

    def arrays(self) -> tuple[np.ndarray, ...]:
        """CSR int32 arrays: (byte-edge offsets, byte edges (lo, hi, target) flat, epsilon offsets,
        epsilon targets, call offsets, calls (rule, return) flat, final flags (uint8), rule start
        states).  What the C automaton and ShortestCompletion read."""
        if self._csr is None:
            n = self.n

            def csr(arr, width):
                flat = np.frombuffer(arr, dtype=np.int32).reshape(-1, width).copy()
                off = np.zeros(n + 1, dtype=np.int32)
                np.cumsum(np.bincount(flat[:, 0], minlength=n), out=off[1:])
                order = np.argsort(flat[:, 0], kind="stable")
                items = np.ascontiguousarray(flat[order, 1:]).ravel()
                return off, items if items.size else np.zeros(1, dtype=np.int32)

            eb_off, eb = csr(self.B, 4)
            eps_off, eps = csr(self.E, 2)
            nc_off, nc = csr(self.C, 3)
            final = np.zeros(n, dtype=np.uint8)
            final[self.final] = 1
            self._csr = (eb_off, eb, eps_off, eps, nc_off, nc, final, np.asarray(self.start, dtype=np.int32))
        return self._csr

    def _per_state(self) -> tuple[list, list, list]:
        if self._lists is None:
            eb_off, eb, eps_off, eps, nc_off, nc, _, _ = self.arrays()
            eb_t = [tuple(x) for x in eb[: 3 * int(eb_off[-1])].reshape(-1, 3).tolist()]
            nc_t = [tuple(x) for x in nc[: 2 * int(nc_off[-1])].reshape(-1, 2).tolist()]
            ep = eps[: int(eps_off[-1])].tolist()
            bo, eo, co = eb_off.tolist(), eps_off.tolist(), nc_off.tolist()
            self._lists = ([eb_t[bo[s]:bo[s + 1]] for s in range(self.n)],
                           [ep[eo[s]:eo[s + 1]] for s in range(self.n)],
                           [nc_t[co[s]:co[s + 1]] for s in range(self.n)])
        return self._lists

    @property
    def bytes(self) -> list[list[tuple[int, int, int]]]:
        """Per state: its byte edges (lo, hi, target), in creation order."""
        return self._per_state()[0]

    @property
    def eps(self) -> list[list[int]]:
        """Per state: its epsilon targets."""
        return self._per_state()[1]

    @property
    def calls(self) -> list[list[tuple[int, int]]]:
        """Per state: its calls (rule index, return state)."""
        return self._per_state()[2]

    def trim(self) -> None:
        """Drop every edge into a state that cannot reach its rule's final state.

        A state is live when a byte or epsilon edge leads to a live state, or a call edge (r, t)
        has both t and r's start live (a call waits for the later of the two): one backward
        worklist pass, in C (`gs_nfa_live`) or in Python without a compiler.  Skipped when
        nothing can be dead (see __init__)."""
        if not self.maybe_dead:
            return
        live = self._live()
        if not live[self.start[0]]:
            raise GrammarError("the grammar matches nothing")
        if live.all():  # the usual case: nothing to drop
            return
        eb_off, eb, eps_off, eps, nc_off, nc, final, start = self.arrays()
        n = self.n

        def kept(off, items, width, keep_of):  # the CSR arrays without the edges keep_of rejects
            rows = items[: width * int(off[-1])].reshape(-1, width)
            keep = keep_of(rows)
            new_off = np.zeros(n + 1, dtype=np.int32)
            np.cumsum(np.bincount(np.repeat(np.arange(n), np.diff(off))[keep], minlength=n), out=new_off[1:])
            flat = rows[keep].ravel()
            return new_off, flat if flat.size else np.zeros(1, dtype=np.int32)

        eb_off, eb = kept(eb_off, eb, 3, lambda x: live[x[:, 2]])
        eps_off, eps = kept(eps_off, eps, 1, lambda x: live[x[:, 0]])
        nc_off, nc = kept(nc_off, nc, 2, lambda x: live[x[:, 1]] & live[start[x[:, 0]]])
        self._csr = (eb_off, eb, eps_off, eps, nc_off, nc, final, start)
        self.B = self.E = self.C = None  # stale: the trimmed CSR arrays are the NFA now
        self._lists = None

    def _live(self) -> np.ndarray:
        """bool [n]: the states that can reach their rule's final state."""
        n = self.n
        live = np.zeros(n, dtype=np.uint8)
        lib = native.load()
        if lib is not None:
            eb_off, eb, eps_off, eps, nc_off, nc, _, start = self.arrays()
            finals = np.asarray(self.final, dtype=np.int32)
            if lib.gs_nfa_live(n, *(a.ctypes.data for a in (eb_off, eb, eps_off, eps, nc_off, nc)), len(start),
                               start.ctypes.data, finals.ctypes.data, len(finals), live.ctypes.data) < 0:
                raise MemoryError("out of memory trimming the grammar automaton")
            return live.astype(bool)
        rev: list[list[int]] = [[] for _ in range(n)]
        rev_call: list[list[tuple[int, int]]] = [[] for _ in range(n)]  # t -> [(source, callee)]
        for s, (bs, es, cs) in enumerate(zip(self.bytes, self.eps, self.calls)):
            for _, _, t in bs:
                rev[t].append(s)
            for t in es:
                rev[t].append(s)
            for r, t in cs:
                rev_call[t].append((s, r))
        rule_of_start = {st: r for r, st in enumerate(self.start)}
        waiting: dict[int, list[int]] = {}  # callee -> sources whose return state is live
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
        return live.astype(bool)


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
