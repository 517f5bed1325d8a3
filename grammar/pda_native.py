"""The C automaton (pda_core.c) behind the same interface as pda.Level.

`NativeCore` owns one grammar's C state: the NFA's arrays, the lazily determinized rule DFA, the
stack nodes, the levels' configurations and byte tables.  `NativeDfa` shows that DFA to Python
code with nfa.RuleDfa's interface.  `NativeLevel` is a drop-in for pda.Level: interned
configuration ids, `mask(cid)`, `token_end_states(cid)`, `successors`, and `configs[cid]` as the
frozenset of stack tuples Python code reads (converted on demand and cached; the hot paths never
need it).  A cold mask is one `gs_walk` call, which computes each table cell it needs in C, plus
one `gs_finish` call for the token verdicts.

Not thread-safe on its own: the CompiledGrammar's lock serializes every call on one grammar.
"""
from __future__ import annotations

from itertools import chain

import numpy as np

from .nfa import DEAD
from .pda import MARK
from .vocab import Vocabulary

def _nfa_arrays(nfa) -> tuple[np.ndarray, ...]:
    """The NFA as CSR int32 arrays: byte edges (lo, hi, target), epsilons, calls (rule, return),
    and the final-state flags (what gs_core_new reads)."""
    n = len(nfa.eps)

    def csr(lists, width):
        off = np.zeros(n + 1, dtype=np.int32)
        np.cumsum([len(x) for x in lists], out=off[1:])
        flat = list(chain.from_iterable(chain.from_iterable(lists))) if width > 1 else list(chain.from_iterable(lists))
        return off, np.asarray(flat if flat else [0], dtype=np.int32)

    eb_off, eb = csr(nfa.bytes, 3)
    eps_off, eps = csr(nfa.eps, 1)
    nc_off, nc = csr(nfa.calls, 2)
    final = np.zeros(n, dtype=np.uint8)
    final[nfa.final] = 1
    return eb_off, eb, eps_off, eps, nc_off, nc, final, np.asarray(nfa.start, dtype=np.int32)


class NativeCore:
    def __init__(self, lib, nfa, vocab: Vocabulary):
        self.lib, self.nfa, self.vocab = lib, nfa, vocab
        self._keep = arrays = _nfa_arrays(nfa)  # referenced here: C reads them in place
        v = vocab
        self.h = lib.gs_core_new(len(nfa.eps), *(a.ctypes.data for a in arrays[:7]), len(nfa.start),
                                 arrays[7].ctypes.data,
                                 *(a.ctypes.data for a in (v.pre_depth, v.pre_size, v.pre_byte, v.pre_sub_bytes,
                                                           v.pre_tok_lo, v.sub_tokens, v.sub_token_pos)),
                                 v.num_nodes, v.max_len)
        self._any_dep = np.zeros(1, dtype=np.int32)
        if not self.h:
            raise MemoryError("cannot allocate the grammar automaton")
        self._sids: dict[tuple, int] = {}
        self._tuples: dict[int, tuple] = {}
        self._frames = np.empty(64, dtype=np.int32)

    def __del__(self):
        h, self.h = getattr(self, "h", None), None
        if h:
            self.lib.gs_core_free(h)

    def check(self, got: int) -> int:
        """`got` from a C call, or MemoryError for the C side's error code (-1)."""
        if got < 0:
            raise MemoryError("the grammar automaton ran out of memory")
        return got

    def sid(self, st: tuple) -> int:
        """The C node of a stack tuple (see pda.py: MARK first when cut)."""
        got = self._sids.get(st)
        if got is None:
            marked = bool(st) and st[0] == MARK
            got = 1 if marked else 0
            for d in st[1:] if marked else st:
                got = self.check(self.lib.gs_push(self.h, got, d))
            self._sids[st] = got
        return got

    def stack_tuple(self, sid: int) -> tuple:
        got = self._tuples.get(sid)
        if got is None:
            depth = self.lib.gs_stack_depth(self.h, sid)
            if depth > self._frames.size:
                self._frames = np.empty(2 * depth, dtype=np.int32)
            r = self.lib.gs_stack_frames(self.h, sid, self._frames.ctypes.data)
            got = ((MARK,) if r & 1 else ()) + tuple(self._frames[: r >> 1].tolist())
            self._tuples[sid] = got
        return got


class _Flags:
    def __init__(self, dfa: "NativeDfa", bit: int):
        self.dfa, self.bit = dfa, bit

    def __getitem__(self, d: int) -> bool:
        return bool(self.dfa.info(d) & self.bit)


class NativeDfa:
    """nfa.RuleDfa's interface over the C core's DFA (one DFA, one numbering, for C and Python:
    the Python automaton (pda.Pda) and the shortest-completion index read it through this)."""

    def __init__(self, core: NativeCore):
        self.core, self.nfa = core, core.nfa
        lib, h = core.lib, core.h
        self.starts = [lib.gs_dfa_start(h, r) for r in range(len(core.nfa.start))]
        self.final, self.has_bytes = _Flags(self, 1), _Flags(self, 2)
        self._info: dict[int, int] = {}
        self._calls: dict[int, tuple] = {}
        self._steps: dict[tuple[int, int], int] = {}
        self.sets = _Sets(core)

    def info(self, d: int) -> int:
        got = self._info.get(d)
        if got is None:
            got = self._info[d] = self.core.check(self.core.lib.gs_dfa_info(self.core.h, d))
        return got

    def call_edges(self, d: int) -> tuple[tuple[int, int], ...]:
        got = self._calls.get(d)
        if got is None:
            n = self.info(d) >> 2
            out = np.empty(max(2 * n, 1), dtype=np.int32)
            self.core.lib.gs_dfa_calls(self.core.h, d, out.ctypes.data)
            flat = out[: 2 * n].tolist()
            got = self._calls[d] = tuple(zip(flat[0::2], flat[1::2]))
        return got

    def step(self, d: int, b: int) -> int:
        got = self._steps.get((d, b))
        if got is None:
            got = self.core.lib.gs_dfa_step(self.core.h, d, b)
            if got < DEAD:
                raise MemoryError("the grammar automaton ran out of memory")
            self._steps[(d, b)] = got
        return got


class _Sets:
    """dfa.sets[d]: the NFA states of dstate d, as a frozenset (built on demand)."""

    def __init__(self, core: NativeCore):
        self.core = core
        self._cache: dict[int, frozenset] = {}

    def __len__(self) -> int:
        return self.core.lib.gs_dfa_count(self.core.h)

    def __getitem__(self, d: int) -> frozenset:
        got = self._cache.get(d)
        if got is None:
            lib, h = self.core.lib, self.core.h
            out = np.empty(max(lib.gs_dfa_set_len(h, d), 1), dtype=np.int32)
            lib.gs_dfa_set(h, d, out.ctypes.data)
            got = self._cache[d] = frozenset(out[: lib.gs_dfa_set_len(h, d)].tolist())
        return got


class _Configs:
    """level.configs[cid] as pda.Level has it: a frozenset of stack tuples (built on demand)."""

    def __init__(self, level: "NativeLevel"):
        self.level = level
        self._cache: dict[int, frozenset] = {}

    def __len__(self) -> int:
        return self.level.core.lib.gs_num_configs(self.level.core.h, self.level.lv)

    def __getitem__(self, cid: int) -> frozenset:
        got = self._cache.get(cid)
        if got is None:
            core, lv = self.level.core, self.level.lv
            n = core.lib.gs_config_len(core.h, lv, cid)
            ids = np.empty(max(n, 1), dtype=np.int32)
            core.lib.gs_config_stacks(core.h, lv, cid, ids.ctypes.data)
            got = self._cache[cid] = frozenset(core.stack_tuple(s) for s in ids[:n].tolist())
        return got


class NativeLevel:
    """pda.Level's interface over a C level of `core` keeping k frames."""

    native = True

    def __init__(self, core: NativeCore, k: int):
        self.core, self.k, self.vocab = core, k, core.vocab
        self.lv = core.check(core.lib.gs_level_new(core.h, k))
        self.configs = _Configs(self)
        self.masks: dict[int, tuple[np.ndarray, np.ndarray, bool]] = {}
        self.successors: dict[int, np.ndarray] = {}

    def intern(self, config: frozenset) -> int:
        core = self.core
        ids = np.asarray([core.sid(st) for st in config], dtype=np.int32)
        return core.check(core.lib.gs_config_intern(core.h, self.lv, ids.ctypes.data, ids.size))

    def single(self, sid: int) -> int:
        """The configuration {stack node sid cut to k frames}."""
        return self.core.check(self.core.lib.gs_single(self.core.h, self.lv, sid))

    def has_exit(self, cid: int) -> bool:
        return bool(self.core.lib.gs_has_exit(self.core.h, self.lv, cid))

    def mask(self, cid: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(accepted words, dependent words, any dependent) for configuration id `cid`."""
        got = self.masks.get(cid)
        if got is None:
            got = self.masks[cid] = self._walk(cid)
        return got

    def _scan(self, cid: int, acc, dep, ends) -> int:
        core = self.core
        n = core.check(core.lib.gs_scan(core.h, self.lv, cid, *(None if x is None else x.ctypes.data
                                                                 for x in (acc, dep, ends)),
                                        1, core._any_dep.ctypes.data))
        return n

    def _walk(self, cid: int):
        v, core = self.vocab, self.core
        acc = np.zeros(v.num_words, dtype=np.int32)  # [W]
        dep = np.zeros(v.num_words, dtype=np.int32)  # [W]
        n = self._scan(cid, acc, dep, None)
        succ = np.empty(max(n, 1), dtype=np.int32)
        core.lib.gs_successors(core.h, succ.ctypes.data)
        self.successors[cid] = np.sort(succ[:n])
        return acc, dep, bool(core._any_dep[0])

    def token_end_states(self, cid: int) -> tuple[np.ndarray, bool]:
        """As pda.Level.token_end_states: (the configuration id each walkable token leads to from
        `cid`, 0 = rejected or context-dependent; whether any token is context-dependent)."""
        ends = np.zeros(self.vocab.token_ids.size, dtype=np.int32)
        self._scan(cid, None, None, ends)
        return ends, bool(self.core._any_dep[0])
