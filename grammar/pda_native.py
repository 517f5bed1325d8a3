"""The C automaton (pda_core.c) behind the same interface as pda.Level.

`NativeCore` owns one grammar's C state: the NFA's arrays, the lazily determinized rule DFA, the
stack nodes, the levels' configurations, byte tables and cached masks; a configuration's mask is
one `gs_config_mask` call.  `NativeDfa` shows the DFA's state sets to the shortest-completion
index (dfa.sets, as nfa.RuleDfa has them).  `NativeLevel` is a drop-in for pda.Level: interned
configuration ids, `mask(cid)`, `token_end_states(cid)`, `successors`, and `configs[cid]` as the
frozenset of stack tuples Python code reads (converted on demand and cached; the hot paths never
need it).  `NativeConfigs` holds the matcher's full configurations.

Not thread-safe on its own: the CompiledGrammar's lock serializes every call on one grammar.
"""
from __future__ import annotations

import sys
import threading
import weakref

import numpy as np

from . import native
from .pda import MARK
from .vocab import PLAIN_BYTES, Vocabulary


class _Buffer:
    """A growable int32 scratch array with its address cached."""

    def __init__(self, n: int):
        self.resize(n)

    def resize(self, n: int) -> None:
        self.a = np.empty(n, dtype=np.int32)
        self.p = self.a.ctypes.data


SLAB_ROWS = 32  # mask rows per slab (192 KiB for a 49k vocabulary)
SLAB_POOL = 64  # slabs kept for the next grammars (12 MiB at 49k)
_slab_pool: dict[int, list[np.ndarray]] = {}  # num_words -> slabs free for reuse
_retired: list[np.ndarray] = []  # slabs of dead cores, reusable once no view of them is left
_slab_lock = threading.Lock()


def _retire(slabs: list[np.ndarray]) -> None:
    """A core's finalizer: its slabs become reusable (see _new_slab).  It takes no lock (a
    finalizer can run inside _new_slab's, from a GC pass): one list extend is atomic."""
    _retired.extend(slabs)
    slabs.clear()


def _new_slab(words: int) -> np.ndarray:
    """A [SLAB_ROWS, words] int32 slab, contents undefined.  A fresh one faults in each of its pages
    on first write (48 for a 49k vocabulary); one of a dead grammar is reused instead once no view
    of it (a mask handed out, still held) is left: its reference count is then only ours."""
    with _slab_lock:  # (only here are slabs taken out of _retired: none is handed out twice)
        pool = _slab_pool.setdefault(words, [])
        if not pool and _retired:
            n = len(_retired)
            batch = _retired[:n]
            del _retired[:n]  # (a finalizer may append meanwhile: after position n)
            for slab in batch:
                # references: batch's, the loop's and getrefcount's argument; a view adds its own
                if sys.getrefcount(slab) <= 3 and slab.shape[1] == words and len(pool) < SLAB_POOL:
                    pool.append(slab)  # (a slab still seen through a view is freed with it)
            del batch, slab
        if pool:
            return pool.pop()
    return np.empty((SLAB_ROWS, words), dtype=np.int32)


class NativeCore:
    def __init__(self, lib, arrays: tuple[np.ndarray, ...], vocab: Vocabulary):
        """`arrays`: the NFA as Nfa.arrays gives it (kept here: C reads them in place)."""
        self.lib, self.vocab = lib, vocab
        self._keep = arrays
        self.n_rules = len(arrays[7])
        v = vocab
        self.h = lib.gs_core_new(len(arrays[0]) - 1, *(a.ctypes.data for a in arrays[:7]), self.n_rules,
                                 arrays[7].ctypes.data,
                                 *(a.ctypes.data for a in (v.pre_nodes, v.pre_sub_bytes, v.sub_tokens32,
                                                           v.sub_token_len, v.pre_parent, v.token_pre_node, v.token_bytes, v.token_offsets,
                                                           v.big_below_slot, v.big_below_words)),
                                 v.big_below_lens.ctypes.data if len(v.big_below_lens) else None,
                                 *(a.ctypes.data for a in (PLAIN_BYTES, v.plain_node_flags, v.plain_next, v.plain_le_words,
                                                           v.plain_len_any)),
                                 v.plain_max_len, v.size, v.num_nodes, v.max_len)
        if not self.h:
            raise MemoryError("cannot allocate the grammar automaton")
        # the C tables (rows, DFA, cached masks: megabytes on a big schema) go with this object
        weakref.finalize(self, lib.gs_core_free, self.h)
        self._sids: dict[tuple, int] = {}
        self._tuples: dict[int, tuple] = {}
        self.frames = _Buffer(64)  # a stack's frames read back from C
        self._any_dep = np.zeros(1, dtype=np.int32)
        self._p_any_dep = self._any_dep.ctypes.data
        self.ids = _Buffer(64)  # stack ids read back from C
        self.succ = _Buffer(256)  # a walk's successors
        self.level_ids = np.zeros(0, dtype=np.int32)  # the mask levels, first to last (set_levels)
        self._p_level_ids = 0
        self._slab, self._slab_used, self._slab_p = np.zeros((0, vocab.num_words), dtype=np.int32), 0, 0
        self._slabs: list[np.ndarray] = []  # every slab taken (reused by later grammars: _retire)
        weakref.finalize(self, _retire, self._slabs)

    def set_levels(self, levels: list["NativeLevel"], full: "NativeLevel", eos: np.ndarray) -> None:
        """The levels stack masks go through (first to last), the level of full configurations and
        the EOS words (kept: C reads them in place)."""
        self.level_ids = np.asarray([lv.lv for lv in levels], dtype=np.int32)
        self._p_level_ids, self.full_lv = self.level_ids.ctypes.data, full.lv
        self._eos = np.ascontiguousarray(eos, dtype=np.int32)
        self._p_eos = self._eos.ctypes.data
        self.lib.gs_set_levels(self.h, self._p_level_ids, self.level_ids.size, self.full_lv, self._p_eos)
        self._config_mask = self.lib.gs_config_mask

    def config_mask(self, cid: int) -> np.ndarray:
        """int32 [num_words]: the tokens allowed from full configuration `cid` (gs_config_mask:
        each stack's mask, cached in C, all in one call)."""
        words, p = self.word_row()
        if self._config_mask(self.h, cid, p) < 0:
            raise MemoryError("the grammar automaton ran out of memory")
        return words

    def word_row(self) -> tuple[np.ndarray, int]:
        """An int32 [num_words] row (a mask, kept for good in a cache) and its address: carved from
        slabs, since numpy's `.ctypes` costs ~3 us a call (more than a small walk).  Not zeroed:
        the C calls that fill one write every word."""
        slab, i = self._slab, self._slab_used
        if i == slab.shape[0]:
            slab = self._slab = _new_slab(self.vocab.num_words)
            self._slabs.append(slab)
            self._slab_p, i = slab.ctypes.data, 0
        self._slab_used = i + 1
        return slab[i], self._slab_p + i * slab.strides[0]

    def word_pair(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Two rows as word_row gives them (a level mask's accepted and dependent bits)."""
        acc, p_acc = self.word_row()
        dep, p_dep = self.word_row()
        return acc, dep, p_acc, p_dep

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
            if depth > self.frames.a.size:
                self.frames.resize(2 * depth)
            r = self.lib.gs_stack_frames(self.h, sid, self.frames.p)
            got = ((MARK,) if r & 1 else ()) + tuple(self.frames.a[: r >> 1].tolist())
            self._tuples[sid] = got
        return got


class NativeDfa:
    """dfa.sets[d]: the NFA states of the C core's DFA state d, as a frozenset (built on demand,
    cached): what the shortest-completion index reads of the DFA."""

    def __init__(self, core: NativeCore):
        self.core = core
        self._cache: dict[int, frozenset] = {}

    @property
    def sets(self) -> "NativeDfa":
        return self  # (a property, not an attribute: that would be a reference cycle)

    def __getitem__(self, d: int) -> frozenset:
        got = self._cache.get(d)
        if got is None:
            lib, h, buf = self.core.lib, self.core.h, self.core.ids
            n = lib.gs_dfa_set_len(h, d)
            if n > buf.a.size:
                buf.resize(2 * n)
            lib.gs_dfa_set(h, d, buf.p)
            got = self._cache[d] = frozenset(buf.a[:n].tolist())
        return got


class _Configs:
    """level.configs[cid] as pda.Level has it: a frozenset of stack tuples (built on demand).  It
    holds the core and the level's index, not the level (which holds it): no reference cycle, so
    a dropped grammar's C tables go with its last reference, not at the next cyclic GC pass."""

    def __init__(self, core: NativeCore, lv: int):
        self.core, self.lv = core, lv
        self._cache: dict[int, frozenset] = {}

    def __len__(self) -> int:
        return self.core.lib.gs_num_configs(self.core.h, self.lv)

    def __getitem__(self, cid: int) -> frozenset:
        got = self._cache.get(cid)
        if got is None:
            got = self._cache[cid] = frozenset(map(self.core.stack_tuple, _sids(self.core, self.lv, cid)))
        return got


def _sids(core: NativeCore, lv: int, cid: int) -> list[int]:
    """The stack nodes of configuration cid of level lv (sorted: END = 0 and EXIT = 1 first)."""
    buf = core.ids
    n = core.lib.gs_config_len(core.h, lv, cid)
    if n > buf.a.size:
        buf.resize(2 * n)
    core.lib.gs_config_stacks(core.h, lv, cid, buf.p)
    return buf.a[:n].tolist()


class NativeLevel:
    """pda.Level's interface over a C level of `core` keeping k frames."""

    native = True

    def __init__(self, core: NativeCore, k: int):
        self.core, self.k, self.vocab = core, k, core.vocab
        self.lv = core.check(core.lib.gs_level_new(core.h, k))
        self.configs = _Configs(core, self.lv)
        self.successors: dict[int, np.ndarray] = {}

    def intern(self, config: frozenset) -> int:
        core = self.core
        ids = np.asarray([core.sid(st) for st in config], dtype=np.int32)
        return core.check(core.lib.gs_config_intern(core.h, self.lv, ids.ctypes.data, ids.size))

    def single(self, sid: int) -> int:
        """The configuration {stack node sid cut to k frames}."""
        return self.core.check(self.core.lib.gs_single(self.core.h, self.lv, sid))

    def sids(self, cid: int) -> list[int]:
        """The stack nodes of configuration cid (sorted: END = 0 and EXIT = 1 first)."""
        return _sids(self.core, self.lv, cid)

    def singles(self, cid: int) -> list[int]:
        """As pda.Level.singles: the one-stack configurations of cid's stacks (END, EXIT left out)."""
        return [self.single(s) for s in self.sids(cid) if s > 1]

    def has_exit(self, cid: int) -> bool:
        return bool(self.core.lib.gs_has_exit(self.core.h, self.lv, cid))

    def mask(self, cid: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(accepted words, dependent words, any dependent) for configuration id `cid`: one walk on
        first use, cached in C (the cache stack masks read); also records its successors."""
        core = self.core
        acc, dep, p_acc, p_dep = core.word_pair()  # [W] each
        got = core.check(core.lib.gs_level_mask(core.h, self.lv, cid, p_acc, p_dep, core.succ.p, core.succ.a.size))
        n = got & ((1 << 40) - 1)
        if n > core.succ.a.size:
            core.succ.resize(2 * n)
            core.lib.gs_level_mask(core.h, self.lv, cid, p_acc, p_dep, core.succ.p, core.succ.a.size)
        self.successors[cid] = np.sort(core.succ.a[:n])
        return acc, dep, bool(got >> 40)

    def num_masks(self) -> int:
        """Masks cached so far."""
        return self.core.lib.gs_num_masks(self.core.h, self.lv)

    def token_end_states(self, cid: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """As pda.Level.token_end_states: (int32 [vocabulary size] by token id: the configuration
        id each token leads to from `cid`, 0 = rejected or context-dependent; the distinct
        nonzero ones; whether any token is context-dependent)."""
        core = self.core
        ends = np.zeros(self.vocab.size, dtype=np.int32)
        n = core.check(core.lib.gs_scan(core.h, self.lv, cid, None, None, ends.ctypes.data, core._p_any_dep, None))
        live = np.empty(n, dtype=np.int32)
        core.lib.gs_last_succ(core.h, live.ctypes.data)
        return ends, live, bool(core._any_dep[0])


class NativeConfigs:
    """Full configurations (no frames cut) in the C automaton: the matcher's states, as ids of a
    level with k = 0.  Same methods as matcher._PyConfigs (there a configuration is a frozenset
    of stack tuples); a stack is a C stack node."""

    def __init__(self, core: NativeCore):
        self.core, self.full = core, NativeLevel(core, 0)
        self.lv = self.full.lv
        call = native.fast_call("step")  # step(): one extension call instead of a ctypes one
        self._fast_step = None if call is None else (*call, core.h, self.lv)
        start = core.check(core.lib.gs_push(core.h, 0, core.lib.gs_dfa_start(core.h, 0)))
        ids = np.asarray([start], dtype=np.int32)
        self.initial = core.check(core.lib.gs_config_closure(core.h, self.lv, ids.ctypes.data, 1))

    def can_end(self, cid: int) -> bool:
        return bool(self.core.lib.gs_has_end(self.core.h, self.lv, cid))

    def stacks(self, cid: int) -> list[int]:
        ids = self.full.sids(cid)
        return ids[1:] if ids and ids[0] == 0 else ids  # END reads no byte

    def frames(self, sid: int) -> tuple:
        return self.core.stack_tuple(sid)

    def tuples(self, cid: int) -> frozenset:
        return self.full.configs[cid]

    @staticmethod
    def single(level: NativeLevel, sid: int) -> int:
        return level.single(sid)

    def lone(self, sid: int) -> int:
        ids = np.asarray([sid], dtype=np.int32)
        return self.core.check(self.core.lib.gs_config_intern(self.core.h, self.lv, ids.ctypes.data, 1))

    def step(self, cid: int, data: bytes) -> int:
        fast = self._fast_step
        if fast is not None and type(data) is bytes:
            step, fn, h, lv = fast
            return self.core.check(step(fn, h, lv, cid, data))
        return self.core.check(self.core.lib.gs_step_bytes(self.core.h, self.lv, cid, data, len(data)))
