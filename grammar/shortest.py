"""Shortest completions: the fewest bytes that take a configuration to the end of the grammar.

Used to close structured output before a token budget runs out (engine/structured.py): when the
tokens left barely cover the shortest completion, the engine allows only tokens that spell its
next bytes, so the output still parses and validates.

Per NFA state s, dist[s] = the fewest bytes from s to its rule's final state, where a byte edge
costs 1, an epsilon 0 and a call edge (R, ret) costs minlen[R] (the shortest sentence of R).
minlen depends on dist and dist on minlen: iterate a backward Dijkstra until minlen is stable
(costs are non-negative and every kept rule is productive, so a few rounds do).  A pushdown
stack (bottom first, see pda.py) then needs sum over its frames of min_{s in frame} dist[s]:
the top frame finishes its rule, each frame below continues from its return state.

Built from the NFA's CSR arrays (Nfa.arrays) and kept as numpy arrays: a compiled grammar holds
no per-state Python objects for the cyclic garbage collector to walk.
"""
from __future__ import annotations

import heapq

import numpy as np

INF = float("inf")
BYTE, EPS, CALL = 0, 1, 2


class ShortestCompletion:
    def __init__(self, arrays: tuple[np.ndarray, ...], dfa):
        eb_off, eb, eps_off, eps, nc_off, nc, final, start = arrays
        self.dfa = dfa
        n = len(eb_off) - 1
        states = np.arange(n, dtype=np.int32)
        nb, ne, ncl = int(eb_off[-1]), int(eps_off[-1]), int(nc_off[-1])
        # every edge s -> t as (t, s, kind, x), grouped by target t: the backward search's input
        tgt = np.concatenate([eb[2:3 * nb:3], eps[:ne], nc[1:2 * ncl:2]])
        src = np.concatenate([np.repeat(states, np.diff(eb_off)), np.repeat(states, np.diff(eps_off)),
                              np.repeat(states, np.diff(nc_off))])
        kind = np.concatenate([np.full(nb, BYTE), np.full(ne, EPS), np.full(ncl, CALL)]).astype(np.int32)
        x = np.concatenate([eb[0:3 * nb:3], np.zeros(ne, dtype=np.int32), nc[0:2 * ncl:2]])
        order = np.argsort(tgt, kind="stable")
        rev_off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(tgt, minlength=n), out=rev_off[1:])
        self._rev = (rev_off, src[order], kind[order], x[order])
        self.final = final.astype(bool)
        self.start = start
        finals = np.flatnonzero(self.final).tolist()
        minlen = [INF] * len(start)
        while True:
            dist, move = self._dijkstra(minlen, finals)
            new = [dist[s] for s in start.tolist()]
            if new == minlen:
                break
            minlen = new
        self.dist = np.asarray(dist)  # [n] float
        self.move = np.asarray(move, dtype=np.int64).reshape(n, 3)  # [n] (kind, x, next); -1: none
        self.minlen = minlen
        self._rule_text: dict[int, bytes] = {}
        self._dstate: dict[int, tuple[float, int]] = {}  # dstate -> (dist, best NFA state)

    def _dijkstra(self, minlen: list[float], finals: list[int]):
        rev_off, rsrc, rkind, rx = (a.tolist() for a in self._rev)
        n = len(rev_off) - 1
        dist = [INF] * n
        move = [-1] * (3 * n)  # s -> (kind, x, next state) on a shortest path
        heap = [(0, f) for f in finals]
        for f in finals:
            dist[f] = 0
        heapq.heapify(heap)
        while heap:
            d, t = heapq.heappop(heap)
            if d > dist[t]:
                continue
            for j in range(rev_off[t], rev_off[t + 1]):
                s, k = rsrc[j], rkind[j]
                nd = d + (1 if k == BYTE else 0 if k == EPS else minlen[rx[j]])
                if nd < dist[s]:
                    dist[s] = nd
                    move[3 * s: 3 * s + 3] = (k, rx[j], t)
                    heapq.heappush(heap, (nd, s))
        return dist, move

    def _text_from(self, s: int) -> bytes:
        """The bytes of the shortest path from NFA state s to its rule's final state."""
        out = bytearray()
        final, move = self.final, self.move
        while not final[s]:  # edges never leave a rule: any final is s's own rule's
            kind, x, t = move[s].tolist()
            if kind == BYTE:
                out.append(x)
            elif kind == CALL:
                out += self.rule_text(x)
            s = t
        return bytes(out)

    def rule_text(self, r: int) -> bytes:
        got = self._rule_text.get(r)
        if got is None:
            got = self._text_from(int(self.start[r]))
            self._rule_text[r] = got
        return got

    def _best(self, d: int) -> tuple[float, int]:
        got = self._dstate.get(d)
        if got is None:
            members = np.fromiter(self.dfa.sets[d], dtype=np.int64)
            if members.size:
                i = int(np.argmin(self.dist[members]))
                got = (float(self.dist[members[i]]), int(members[i]))
            else:
                got = (INF, -1)
            self._dstate[d] = got
        return got

    def best(self, d: int) -> float:
        """Fewest bytes from rule-DFA state d to the end of its rule."""
        return self._best(d)[0]

    def length(self, config) -> float:
        """Fewest bytes from this full configuration to the end (0 when it can end now)."""
        return min((sum(self._best(d)[0] for d in st) for st in config), default=INF)

    def text(self, config) -> bytes | None:
        """The bytes of one shortest completion (None for a dead configuration)."""
        best = min(config, key=lambda st: sum(self._best(d)[0] for d in st), default=None)
        if best is None or self.length([best]) == INF:
            return None
        return b"".join(self._text_from(self._best(d)[1]) for d in reversed(best))
