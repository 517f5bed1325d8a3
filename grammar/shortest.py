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
"""
from __future__ import annotations

import heapq

from .nfa import Nfa, RuleDfa

INF = float("inf")


class ShortestCompletion:
    def __init__(self, nfa: Nfa, dfa: RuleDfa):
        self.nfa, self.dfa = nfa, dfa
        n = len(nfa.eps)
        rev: list[list[tuple[int, int, int, int]]] = [[] for _ in range(n)]  # t -> (s, kind, x, _)
        for s in range(n):
            for lo, _hi, t in nfa.bytes[s]:
                rev[t].append((s, 0, lo, 0))
            for t in nfa.eps[s]:
                rev[t].append((s, 1, 0, 0))
            for r, t in nfa.calls[s]:
                rev[t].append((s, 2, r, 0))
        self._rev = rev
        minlen = [INF] * len(nfa.start)
        while True:
            dist, move = self._dijkstra(minlen)
            new = [dist[s] for s in nfa.start]
            if new == minlen:
                break
            minlen = new
        self.dist, self.move, self.minlen = dist, move, minlen
        self._finals = set(nfa.final)
        self._rule_text: dict[int, bytes] = {}
        self._dstate: dict[int, tuple[float, int]] = {}  # dstate -> (dist, best NFA state)

    def _dijkstra(self, minlen: list[float]):
        n = len(self._rev)
        dist = [INF] * n
        move: list[tuple | None] = [None] * n  # s -> (kind, x, next state) on a shortest path
        heap = []
        for f in self.nfa.final:
            dist[f] = 0
            heap.append((0, f))
        heapq.heapify(heap)
        while heap:
            d, t = heapq.heappop(heap)
            if d > dist[t]:
                continue
            for s, kind, x, _ in self._rev[t]:
                cost = 1 if kind == 0 else 0 if kind == 1 else minlen[x]
                nd = d + cost
                if nd < dist[s]:
                    dist[s] = nd
                    move[s] = (kind, x, t)
                    heapq.heappush(heap, (nd, s))
        return dist, move

    def _text_from(self, s: int) -> bytes:
        """The bytes of the shortest path from NFA state s to its rule's final state."""
        out = bytearray()
        finals = self._finals
        while s not in finals:  # edges never leave a rule: any final is s's own rule's
            kind, x, t = self.move[s]
            if kind == 0:
                out.append(x)
            elif kind == 2:
                out += self.rule_text(x)
            s = t
        return bytes(out)

    def rule_text(self, r: int) -> bytes:
        got = self._rule_text.get(r)
        if got is None:
            got = self._text_from(self.nfa.start[r])
            self._rule_text[r] = got
        return got

    def _best(self, d: int) -> tuple[float, int]:
        got = self._dstate.get(d)
        if got is None:
            got = min(((self.dist[s], s) for s in self.dfa.sets[d]), default=(INF, -1))
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
