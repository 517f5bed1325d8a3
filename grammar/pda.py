"""The pushdown automaton over bytes, and its lazily built, vectorized token-mask tables.

A *stack* is a tuple of rule-DFA states, bottom first; its top is the state of the innermost
rule being matched; every other frame is the caller's *return* state (already past the call).
A *configuration* is a frozenset of stacks (the parse is nondeterministic), closed under
  push: top has call edge (R, ret)   =>  stack[:-1] + (ret, start_R)
  pop:  top is final in its rule     =>  stack[:-1]
and keeping only stacks that can consume a byte, plus END = () (the grammar can terminate).
Every kept stack is viable (the NFA is trimmed), so: output viable <=> configuration non-empty.

Truncated configurations (the mask cache keys).  A stack cut to its top k frames starts with
MARK; popping past the cut gives EXIT = (MARK,): "the unknown context continues from here".
A `Level` interns truncated configurations as ids and grows a table T[id, byte] -> id lazily
(one byte cell at a time); the token mask of an id is one numpy walk of the vocabulary trie
over T (see vocab.py).  A token is
  accepted    if its walk ends in a non-empty configuration (true whatever the context),
  dependent   if it was rejected but passed an EXIT with bytes left (the context decides),
  rejected    otherwise.
Dependent tokens are resolved at the next, deeper level, and past the last level exactly.

This module is the reference implementation, in Python and numpy; with a C compiler the same
automaton runs in C (pda_core.c via pda_native.NativeLevel, tested equal mask for mask).
"""
from __future__ import annotations

from bisect import bisect_right

import numpy as np

from .nfa import DEAD, RuleDfa
from .vocab import Vocabulary, pack_bits

MARK = -1
END: tuple = ()
EXIT: tuple = (MARK,)
UNKNOWN = -2  # T cell not computed yet
MEMO_LIMIT = 200_000
TAIL_NODES = 24  # below this frontier size, past TAIL_DEPTH bytes, the trie walk
TAIL_DEPTH = 6  # finishes in a scalar loop (long tokens are few and form chains)


class Pda:
    def __init__(self, dfa: RuleDfa):
        self.dfa = dfa
        self._memo: dict = {}  # (stack, k) -> closure of that one stack

    def closure(self, stacks, k: int | None) -> frozenset:
        """Union of the closures of each stack (closure distributes over union), memoized."""
        memo = self._memo
        if len(memo) > MEMO_LIMIT:
            memo.clear()
        out: set = set()
        for st in stacks:
            got = memo.get((st, k))
            if got is None:
                got = self._closure_one(st, k)
                memo[(st, k)] = got
            out |= got
        return frozenset(out)

    def _closure_one(self, stack: tuple, k: int | None) -> frozenset:
        dfa, out, seen = self.dfa, [], set()
        todo = [stack]
        while todo:
            st = todo.pop()
            if st in seen:
                continue
            seen.add(st)
            if not st or st == EXIT:
                out.append(st)
                continue
            top = st[-1]
            if dfa.has_bytes[top]:
                out.append(st)
            for r, ret in dfa.call_edges(top):
                new = st[:-1] + (ret, dfa.starts[r])
                if k is not None and len(new) - (new[0] == MARK) > k:
                    new = (MARK,) + new[-k:]
                todo.append(new)
            if dfa.final[top]:
                todo.append(st[:-1])
        return frozenset(out)

    def initial(self) -> frozenset:
        return self.closure([(self.dfa.starts[0],)], None)

    def step(self, config: frozenset, byte: int, k: int | None) -> frozenset:
        step, moved = self.dfa.step, []
        for st in config:
            if st and st[-1] != MARK:
                d = step(st[-1], byte)
                if d != DEAD:
                    moved.append(st[:-1] + (d,))
        return self.closure(moved, k) if moved else frozenset()


def truncate_stack(st: tuple, k: int) -> tuple:
    return st if len(st) <= k else (MARK,) + st[-k:]


class Level:
    """Interned k-truncated configurations, their byte table and their cached token masks."""

    def __init__(self, pda: Pda, vocab: Vocabulary, k: int):
        self.pda, self.vocab, self.k = pda, vocab, k
        self.configs: list[frozenset] = [frozenset()]  # id 0: dead (empty configuration)
        self.index: dict[frozenset, int] = {frozenset(): 0}
        self.T = np.full((64, 256), UNKNOWN, dtype=np.int32)  # [capacity, 256]
        self.T[0, :] = 0
        self.has_exit = np.zeros(64, dtype=bool)  # [capacity]
        self.masks: dict[int, tuple[np.ndarray, np.ndarray, bool]] = {}
        self.any_exit = False  # no interned configuration has EXIT yet: skip the flag arrays
        self.successors: dict[int, np.ndarray] = {}  # cid -> ids reachable by one token
        self.bounds: dict[int, list[int]] = {}  # cid -> its byte-cell boundaries

    def intern(self, config: frozenset) -> int:
        cid = self.index.get(config)
        if cid is None:
            cid = len(self.configs)
            if cid == self.T.shape[0]:
                grow = np.full((cid, 256), UNKNOWN, dtype=np.int32)
                self.T = np.concatenate([self.T, grow])
                self.has_exit = np.concatenate([self.has_exit, np.zeros(cid, dtype=bool)])
            self.configs.append(config)
            self.index[config] = cid
            self.has_exit[cid] = EXIT in config
            self.any_exit = self.any_exit or bool(self.has_exit[cid])
        return cid

    def singles(self, cid: int) -> list[int]:
        """The ids of the one-stack configurations {s} for the stacks s of configuration cid that
        can read a byte (END and EXIT left out)."""
        return [self.intern(frozenset((st,))) for st in self.configs[cid] if st and st != EXIT]

    def _bounds(self, c: int) -> list[int]:
        """Sorted cell boundaries of configuration c: bytes in one cell step alike."""
        got = self.bounds.get(c)
        if got is None:
            cuts, dfa = {0, 256}, self.pda.dfa
            for st in self.configs[c]:
                if st and st[-1] != MARK:
                    cuts |= dfa.byte_cuts(st[-1])
            got = sorted(x for x in cuts if 0 <= x <= 256)
            self.bounds[c] = got
        return got

    def expand_cell(self, c: int, b: int) -> None:
        """Fill T[c, cell of b] with one pda step (cells are computed lazily, on demand)."""
        bounds = self._bounds(c)
        i = bisect_right(bounds, b)
        lo, hi = bounds[i - 1], bounds[i]
        nid = self.intern(self.pda.step(self.configs[c], lo, self.k))
        self.T[c, lo:hi] = nid

    def expand_pairs(self, ps: np.ndarray, byts: np.ndarray) -> None:
        """Fill the UNKNOWN entries T[ps[i], byts[i]]."""
        pairs = zip(ps.tolist(), byts.tolist())
        for c, b in sorted(set(pairs)) if ps.size > 1 else pairs:  # small: numpy overhead dominates
            if self.T[c, b] == UNKNOWN:  # an earlier cell of this batch may have filled it
                self.expand_cell(c, b)

    def mask(self, cid: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(accepted words, dependent words, any dependent) for configuration id `cid`."""
        got = self.masks.get(cid)
        if got is None:
            got = self._walk(cid)
            self.masks[cid] = got
        return got

    def num_masks(self) -> int:
        """Masks cached so far."""
        return len(self.masks)

    def restricted(self, cid: int, only: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """mask(cid) for the tokens in `only` (int32 words); here the cached full walk."""
        acc, dep, _ = self.mask(cid)
        dep = dep & only
        return acc & only, dep, bool(dep.any())

    def _children(self, frontier: np.ndarray, depth: int, in_frontier: np.ndarray) -> np.ndarray:
        """Sorted node ids of the children of the sorted depth-`depth` nodes in `frontier`."""
        v = self.vocab
        a, b = int(v.depth_lo[depth + 1]), int(v.depth_lo[depth + 2])
        if frontier.size * 8 >= b - a:  # dense: test every node of the next depth
            in_frontier[frontier] = True
            return a + np.flatnonzero(in_frontier[v.parent[a:b]])
        lo, hi = v.child_lo[frontier], v.child_hi[frontier]  # [F]
        lens = hi - lo
        # children ranges are disjoint and ascending: concatenate them
        return np.arange(int(lens.sum())) + np.repeat(lo - (np.cumsum(lens) - lens), lens)

    def _walk_tail(self, nodes: list[int], state: np.ndarray, flag: np.ndarray) -> None:
        """Depth-first finish of the walk below `nodes`, one trie node at a time."""
        v, T = self.vocab, self.T
        lo, hi, last = v.child_lo, v.child_hi, v.last_byte
        while nodes:
            p = nodes.pop()
            ps = int(state[p])
            fl = bool(flag[p]) or bool(self.has_exit[ps])
            for c in range(int(lo[p]), int(hi[p])):
                b = int(last[c])
                if T[ps, b] == UNKNOWN:
                    self.expand_cell(ps, b)
                    T = self.T
                ns = int(T[ps, b])
                state[c] = ns
                flag[c] = fl
                if ns != 0 or fl:
                    nodes.append(c)

    def token_end_states(self, cid: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(int32 [vocabulary size] by token id: the configuration id each token leads to from
        `cid`, 0 = rejected, context-dependent or not walkable (special);  the distinct nonzero
        ones;  whether any token is context-dependent).  One fresh walk, nothing cached."""
        v = self.vocab
        state, flag = self._numpy_states(cid)
        walked = state[v.token_node].astype(np.int32)
        ends = np.zeros(v.size, dtype=np.int32)
        ends[v.token_ids] = walked
        live = np.unique(walked[walked != 0])
        return ends, live, bool((flag[v.token_node] & (walked == 0)).any())

    def _walk(self, cid: int):
        """Walk the vocabulary trie from configuration cid (see vocab.py): token verdicts."""
        state, flag = self._numpy_states(cid)
        return self._finish(cid, state, flag)

    def _numpy_states(self, cid: int) -> tuple[np.ndarray, np.ndarray]:
        """The numpy walk, breadth-first: (state, flag) per trie node."""
        v = self.vocab
        state = np.zeros(v.num_nodes, dtype=np.int32)  # [N] configuration after the node's bytes
        flag = np.zeros(v.num_nodes, dtype=bool)  # [N] some byte was read while EXIT was open
        state[0] = cid
        in_frontier = np.zeros(v.num_nodes, dtype=bool)  # [N] scratch for _children
        frontier = np.zeros(1, dtype=np.int64)  # [F] nodes of this depth to extend, sorted
        for depth in range(v.max_len):
            if depth >= TAIL_DEPTH and frontier.size <= TAIL_NODES:  # a few long tokens left
                self._walk_tail(frontier.tolist(), state, flag)
                break
            idx = self._children(frontier, depth, in_frontier)  # [C]
            if idx.size == 0:
                break
            par = v.parent[idx]
            ps = state[par]
            byts = v.last_byte[idx]
            key = ps.astype(np.int64) * 256 + byts
            ns = self.T.ravel()[key]
            unknown = ns == UNKNOWN
            if unknown.any():
                self.expand_pairs(ps[unknown], byts[unknown])
                ns = self.T.ravel()[key]
            state[idx] = ns
            live = ns != 0
            if self.any_exit:
                fl = flag[par] | self.has_exit[ps]
                flag[idx] = fl
                live |= fl  # dead but flagged: the descendants stay dependent
            frontier = idx[live]
        return state, flag

    def _finish(self, cid: int, state: np.ndarray, flag: np.ndarray):
        """(accepted words, dependent words, any dependent) from the walked node states."""
        v = self.vocab
        final = state[v.token_node]
        alive = final != 0
        acc = np.zeros(v.size, dtype=bool)
        acc[v.token_ids[alive]] = True
        dep_ids = v.token_ids[flag[v.token_node] & ~alive]
        dep = np.zeros(v.size, dtype=bool)
        dep[dep_ids] = True
        self.successors[cid] = np.unique(final[alive])  # configurations one token away
        return pack_bits(acc, v.num_words), pack_bits(dep, v.num_words), dep_ids.size > 0
