"""CompiledGrammar (immutable, shared, thread-safe) and GrammarMatcher (a cheap per-request cursor).

Mask of a configuration C (a set of full stacks, see pda.py): a token is allowed from C exactly
when it is allowed from one of C's stacks (a PDA step acts on each stack alone), so
    allowed(C) = EOS bits if END in C  |  union over the stacks s of C of allowed(s)
    allowed(s) = accepted(trunc(s, 4))
               | dependent(trunc(s, 4)) & accepted(trunc(s, 16))
               | ... & accepted(trunc(s, 64))
               | exact byte-by-byte check of the tokens still dependent
Keying the level walks by single stacks, not whole configurations, lets a stack met in several
configurations (a string's interior next to different alternatives, a value position reached
along different paths) be walked once.  Each level's table and masks are built on demand and cached forever
(keys repeat across requests).  With the C core a fill is one call into fast_fill.c (a CPython
extension) that writes the caller's row from the stack masks the core caches: a copy, or one OR
per stack (~0.6 us warm); without that extension (no Python headers) the final mask is cached
here in a bounded LRU of rows, so a steady-state step is one dict lookup and one row copy.  The
lazily grown caches are guarded by one lock per grammar.
"""
from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import OrderedDict, deque

import numpy as np

from . import native
from ._gc import no_gc
from .nfa import Nfa, RuleDfa
from .pda import END, MARK, Level, Pda, truncate_stack
from .pda_native import NativeConfigs, NativeCore, NativeDfa, NativeLevel
from .shortest import ShortestCompletion
from .vocab import Vocabulary, pack_bits, token_words

LEVELS = (4, 16, 64)
MASK_LRU = 4096
STACK_LRU = 8192  # single-stack masks (the union of a configuration's is its mask)
BUDGET_LRU = 1024  # stacks whose token-by-room groups are kept (closing before the limit)
STEP_MEMO = 200_000


_MISSING = object()


def _lru(table: OrderedDict, key, compute, limit: int):
    """table[key], compute(key) on a miss; the least recently used entry goes past `limit`."""
    got = table.get(key, _MISSING)
    if got is _MISSING:
        got = table[key] = compute(key)
        if len(table) > limit:
            table.popitem(last=False)
    else:
        table.move_to_end(key)
    return got


class _PyConfigs:
    """Full configurations as the Python automaton has them: frozensets of stack tuples (see
    pda.py).  pda_native.NativeConfigs has the same methods over the C automaton's ids; the
    CompiledGrammar treats a configuration and a stack as opaque values and goes through these."""

    def __init__(self, pda: Pda):
        self.pda = pda
        self.initial = pda.initial()
        self._steps: dict = {}

    def can_end(self, config: frozenset) -> bool:
        return END in config

    def stacks(self, config: frozenset) -> list[tuple]:
        """The stacks of `config` other than END."""
        return [st for st in config if st]

    def frames(self, stack: tuple) -> tuple:
        """The stack as a tuple of DFA states, bottom first."""
        return stack

    def tuples(self, config: frozenset) -> frozenset:
        return config

    def single(self, level, stack: tuple) -> int:
        """The id in `level` of the configuration {stack cut to the level's depth}."""
        return level.intern(frozenset((truncate_stack(stack, level.k),)))

    def lone(self, stack: tuple) -> frozenset:
        """The full configuration made of this one (closed) stack."""
        return frozenset((stack,))

    def step(self, config: frozenset, data: bytes) -> frozenset:
        if len(self._steps) > STEP_MEMO:
            self._steps.clear()
        for b in data:
            key = (config, b)
            nxt = self._steps.get(key)
            if nxt is None:
                nxt = self.pda.step(config, b, None)
                self._steps[key] = nxt
            config = nxt
            if not config:
                break
        return config


class CompiledGrammar:
    def __init__(self, rules: dict | Nfa, vocab: Vocabulary, warnings: list[str] | None = None,
                 use_native: bool = True):
        self.vocab = vocab
        self.warnings = list(warnings or [])
        self._fast = None  # see fill_bitmask
        self._eos = token_words(vocab.eos_token_ids, vocab.num_words)
        # rules: normalize.prepare's output, or already its automaton (prepare_native.grammar_nfa)
        nfa = rules if isinstance(rules, Nfa) else Nfa(rules, productive=True)
        self.nfa_arrays = nfa.arrays()  # what the C core and the shortest completions read
        lib = native.load() if use_native else None
        if lib is not None:  # the C automaton (pda_core.c); pda.Level is its Python reference
            # the Python Nfa (tens of thousands of lists for a big schema) is dropped here: a
            # cached grammar keeps numpy arrays only, which the cyclic GC never walks
            self.core = NativeCore(lib, self.nfa_arrays, vocab)
            self.dfa = NativeDfa(self.core)
            self.levels = [NativeLevel(self.core, k) for k in LEVELS]
            self.configs = NativeConfigs(self.core)
            self.core.set_levels(self.levels, self.configs.full, self._eos)
            call = native.fast_call("fill")
            if call is not None:  # fill_bitmask's path: (fill, gs_config_mask's address, core, width)
                self._fast = (*call, self.core.h, vocab.num_words)
        else:
            self.core = None
            self.dfa = RuleDfa(nfa)
            pda = Pda(self.dfa)
            self.levels = [Level(pda, vocab, k) for k in LEVELS]
            self.configs = _PyConfigs(pda)
        self.initial = self.configs.initial
        self._lock = threading.RLock()
        self._masks: OrderedDict = OrderedDict()
        self._stack_masks: OrderedDict = OrderedDict()
        self._warmed = False  # warmup() has run
        self._shortest = None  # ShortestCompletion, built on first use
        self._budget_profiles: OrderedDict = OrderedDict()
        self._end_rooms: dict[int, tuple[float, float]] = {}  # see _end_room
        self._shortest_texts: OrderedDict = OrderedDict()
        self._closings: OrderedDict = OrderedDict()

    def matcher(self, max_rollback_tokens: int | None = None) -> "GrammarMatcher":
        return GrammarMatcher(self, max_rollback_tokens)

    def warmup(self, time_budget_s: float = 0.5, max_states: int = 4096) -> int:
        """Precompute first-level single-stack masks breadth-first from the start, within a time
        budget.

        Meant for the compile thread pool, off the decode loop: a request that follows the
        explored stacks then never pays a cold mask walk.  Runs once per grammar: a later call
        (the compile cache hands the same grammar to every request with the same schema) returns
        at once, instead of spending its budget again on the CPU the batch is using.  Returns the
        masks now cached."""
        level = self.levels[0]
        with self._lock:
            if self._warmed:
                return level.num_masks()
            self._warmed = True
        deadline = time.perf_counter() + time_budget_s

        with self._lock:
            queue = deque(dict.fromkeys(self.configs.single(level, st) for st in self.configs.stacks(self.initial)))
        seen = set(queue)
        while queue and len(seen) <= max_states and time.perf_counter() < deadline:
            cid = queue.popleft()
            with self._lock:
                level.mask(cid)
                nxt = level.successors.get(cid, ())
                new = [c for n in (nxt.tolist() if len(nxt) else ()) for c in level.singles(n) if c not in seen]
            seen.update(new)
            queue.extend(dict.fromkeys(new))
        return level.num_masks()

    def _shortest_index(self):
        if self._shortest is None:
            self._shortest = ShortestCompletion(self.nfa_arrays, self.dfa)
        return self._shortest

    def can_end(self, config) -> bool:
        """The output can end in this configuration (EOS is allowed)."""
        with self._lock:  # the C tables may be growing in another thread's walk
            return self.configs.can_end(config)

    def budget_mask(self, config, budget: int) -> np.ndarray | None:
        """int32 [num_words]: the tokens after which the output can still end within `budget`
        more bytes (EOS when `config` can end now), or None when every token the grammar allows
        here leaves enough room (then the ordinary mask is the answer).

        Per stack (a token's room from a configuration is its best room from one of the stacks,
        as with masks; cached, LRU): one trie walk from the stack's top frames groups the tokens
        by the length of the shortest completion they lead to; a token that pops below those
        frames counts the cheapest way out of the frames cut off.  Context-dependent tokens are
        left out of the groups (the budget mask is a subset of the exact one)."""
        with self._lock:
            profiles = [_lru(self._budget_profiles, st, self._budget_profile, BUDGET_LRU)
                        for st in self.configs.stacks(config)]
        if all(longest <= budget for longest, _, _ in profiles):
            return None
        words = self._eos.copy() if self.can_end(config) else np.zeros(self.vocab.num_words, dtype=np.int32)
        for _, lengths, unions in profiles:
            i = bisect_right(lengths, budget)  # unions[i - 1]: every group that fits
            if i:
                words |= unions[i - 1]
        return words

    def _budget_profile(self, stack) -> tuple[float, list, list]:
        """(longest completion after any token allowed from `stack`, the completion lengths
        ascending, for each length the words of the tokens whose completion is at most that long)."""
        with no_gc():  # a cold walk interns many configurations: see _gc.py
            return self._budget_groups(self.configs.frames(stack))

    def _budget_groups(self, stack: tuple) -> tuple[float, list, list]:
        sc = self._shortest_index()
        # the deepest level: real outputs rarely nest 64 frames deep, so the walk sees whole
        # stacks and the room it counts is exact
        level = self.levels[-1]
        k = level.k
        cid = level.intern(frozenset((truncate_stack(stack, k),)))
        ends, live, any_dependent = level.token_end_states(cid)  # [V] config ids, 0 = rejected
        cut = len(stack) > k
        below = sum(sc.best(d) for d in stack[:-k]) if cut else 0
        rooms = []  # the shortest completion after each live end configuration
        for c in live.tolist():
            whole, marked = self._end_room(level, c, sc)
            rooms.append(min(whole, marked + below) if cut else whole)
        lengths = sorted({r for r in rooms if r < np.inf})
        # each end configuration's group: the index of its room in lengths (inf: past the last)
        group = np.full(int(live.max()) + 1 if live.size else 1, len(lengths), dtype=np.int32)
        group[live] = [bisect_right(lengths, r) - 1 if r < np.inf else len(lengths) for r in rooms]
        group[0] = len(lengths)  # rejected, context-dependent or special
        tok_group = group.take(ends)  # [V]
        # cumulative: a budget takes every group up to it in one lookup
        unions = [pack_bits(tok_group <= j, self.vocab.num_words) for j in range(len(lengths))]
        # context-dependent tokens are not in any group: their room is unknown, so a budget
        # mask is needed whenever they exist
        longest = float("inf") if any_dependent else (lengths[-1] if lengths else 0)
        return longest, lengths, unions

    def _end_room(self, level, c: int, sc) -> tuple[float, float]:
        """A budget walk's end configuration c: (the shortest completion of its whole stacks, that
        of its cut ones (MARK first) with fewer than k frames above the mark, to which the frames
        cut off from the walk's start add).  Memoized per configuration: both depend on c alone.

        A cut stack's own frames are exactly the start stack's cut-off ones (`below`) only when
        the start was cut and the token left fewer than k frames above them; a full window may
        have pushed more frames out of sight, so its room is unknown (the token is left out,
        never let through)."""
        memo = self._end_rooms.get(c)
        if memo is None:
            whole = marked = np.inf
            for st in level.configs[c]:
                if not st:
                    whole = 0
                elif st[0] != MARK:
                    whole = min(whole, sum(sc.best(d) for d in st))
                elif len(st) - 1 < level.k:
                    marked = min(marked, sum(sc.best(d) for d in st[1:]))
            memo = self._end_rooms[c] = (whole, marked)
        return memo

    def shortest_completion(self, config) -> bytes | None:
        """The bytes of one shortest way to finish from `config` (b"" if it can end now)."""
        with self._lock:
            return _lru(self._shortest_texts, config, self._shortest_text, MASK_LRU)

    def closing_words(self, config) -> tuple[np.ndarray, int] | None:
        """(int32 [num_words]: the tokens that spell the start of the shortest completion, or EOS
        when the output can end now; the completion's length in bytes), or None for a dead
        configuration.  Cached (LRU): near max_tokens every step of a closing request asks."""
        with self._lock:
            return _lru(self._closings, config, self._closing_words, MASK_LRU)

    def _closing_words(self, config) -> tuple[np.ndarray, int] | None:
        text = self.shortest_completion(config)
        if text is None:
            return None
        ids = self.vocab.eos_token_ids if not text else self.vocab.prefix_token_ids(text)
        return token_words(ids, self.vocab.num_words), len(text)

    def _shortest_text(self, config) -> bytes | None:
        return self._shortest_index().text(self.configs.tuples(config))

    def step_bytes(self, config, data: bytes):
        """The full configuration after `data` (falsy if the output left the language)."""
        with self._lock:
            return self.configs.step(config, data)

    def mask(self, config) -> np.ndarray:
        """int32 [num_words] allowed-token words for a full configuration (do not mutate)."""
        with self._lock:
            return _lru(self._masks, config, self._compute_mask, MASK_LRU)

    def _compute_mask(self, config) -> np.ndarray:
        if self.core is not None:  # the same as _walk_levels, in C (gs_config_mask)
            return self.core.config_mask(config)
        with no_gc():  # a cold mask interns many configurations: see _gc.py
            return self._walk_levels(config)

    def _walk_levels(self, config) -> np.ndarray:
        stacks = self.configs.stacks(config)
        if self.can_end(config):  # END: the EOS bits
            allowed = self._eos.copy()
        elif len(stacks) == 1:  # one stack: its mask is the answer
            return _lru(self._stack_masks, stacks[0], self._stack_mask, STACK_LRU)
        else:
            allowed = np.zeros(self.vocab.num_words, dtype=np.int32)
        for st in stacks:
            allowed |= _lru(self._stack_masks, st, self._stack_mask, STACK_LRU)
        return allowed

    def _stack_mask(self, stack) -> np.ndarray:
        """int32 [num_words]: the tokens allowed from one full stack (do not mutate).

        The first level's walk (its mask cached by the truncated configuration, shared by every
        stack with the same top frames) decides most tokens; each deeper level walks only the trie
        paths to the tokens still context-dependent."""
        first, *deeper = self.levels
        allowed, pending, any_dep = first.mask(self.configs.single(first, stack))
        for level in deeper:
            # a short stack can still be cut: a token's own pushes are truncated at k too
            if not any_dep or not pending.any():
                return allowed
            acc, pending, any_dep = level.restricted(self.configs.single(level, stack), pending)
            allowed = allowed | acc
        if not any_dep or not pending.any():
            return allowed
        allowed = allowed.copy()  # deeper than the last level: check the few leftovers exactly
        bits = np.unpackbits(pending.view(np.uint8), bitorder="little")
        config = self.configs.lone(stack)
        for t in np.flatnonzero(bits).tolist():
            if self.step_bytes(config, self.vocab.tokens[t]):
                allowed[t >> 5] |= np.int32(np.uint32(1 << (t & 31)).view(np.int32))
        return allowed


class GrammarMatcher:
    """Per-request cursor: the history of configurations, newest last."""

    def __init__(self, grammar: CompiledGrammar, max_rollback_tokens: int | None = None):
        self.grammar = grammar
        self.max_rollback_tokens = max_rollback_tokens
        self._history: list = [grammar.initial]  # configurations (see CompiledGrammar.configs)
        self._terminated = False

    @property
    def config(self):
        return self._history[-1]

    def fill_bitmask(self, row: np.ndarray) -> None:
        """Write the allowed tokens into one int32 row of shape [ceil(V/32)] (or wider)."""
        grammar = self.grammar
        fast = grammar._fast
        if fast is not None and not self._terminated:
            # one C call writes the row in place from the masks the C core caches per stack (the
            # extension in fast_fill.c); -2: not a writable contiguous int32 row, the path below
            fill, fn, core, words = fast
            with grammar._lock:
                got = fill(fn, core, self._history[-1], row, words)
            if got >= 0:
                return
            if got == -1:
                raise MemoryError("the grammar automaton ran out of memory")
        words = grammar.vocab.num_words
        width = row.shape[-1]
        if width < words:
            raise ValueError(f"bitmask row has {width} words, need {words}")
        if width > words:
            row[words:] = 0
            row = row[:words]
        if self._terminated:
            row[:] = 0
            return
        row[:] = self.grammar.mask(self.config)

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; False (and no state change) if the token is not allowed."""
        vocab = self.grammar.vocab
        if self._terminated or not 0 <= token_id < vocab.size:
            return False
        if token_id in vocab.eos_set:
            if not self.grammar.can_end(self.config):
                return False
            self._push(self.config)
            self._terminated = True
            return True
        data = vocab.step_tokens[token_id]
        if data is None:  # special or empty: never allowed
            return False
        nxt = self.grammar.step_bytes(self._history[-1], data)
        if not nxt:
            return False
        self._push(nxt)
        return True

    def accept_bytes(self, data: bytes) -> bool:
        """Advance by raw bytes (counts as one step for rollback)."""
        if self._terminated:
            return False
        nxt = self.grammar.step_bytes(self.config, data)
        if not nxt:
            return False
        self._push(nxt)
        return True

    def _push(self, config) -> None:
        self._history.append(config)
        limit = self.max_rollback_tokens
        if limit is not None and len(self._history) > limit + 1:
            del self._history[0]

    def rollback(self, num_tokens: int) -> None:
        """Undo the last num_tokens accepted tokens (EOS included)."""
        if num_tokens < 0 or num_tokens > len(self._history) - 1:
            raise ValueError(f"cannot roll back {num_tokens} tokens "
                             f"({len(self._history) - 1} available)")
        if num_tokens:
            del self._history[-num_tokens:]
            self._terminated = False

    def can_terminate(self) -> bool:
        return not self._terminated and self.grammar.can_end(self.config)

    def shortest_completion(self) -> bytes | None:
        """The fewest bytes that complete the output from here (b"" when it can end now; None
        once terminated).  Feeding them makes can_terminate() true."""
        if self._terminated:
            return None
        return self.grammar.shortest_completion(self.config)

    def fill_budget_bitmask(self, row: np.ndarray, budget: int) -> bool:
        """Allow only the tokens after which the output can still end within `budget` bytes
        (EOS included when it can end now).  False, and the row untouched, if none fits."""
        if self._terminated:
            return False
        got = self.grammar.budget_mask(self.config, budget)
        if got is None:  # every allowed token leaves room: the ordinary mask
            self.fill_bitmask(row)
            return True
        if not got.any():
            return False
        words = self.grammar.vocab.num_words
        row[words:] = 0
        row[:words] = got
        return True

    def fill_closing_bitmask(self, row: np.ndarray) -> int:
        """Allow only the tokens that spell the start of the shortest completion (EOS when the
        output can end now).  Returns the completion's length in bytes (-1: nothing to allow)."""
        got = None if self._terminated else self.grammar.closing_words(self.config)
        row[:] = 0
        if got is None:
            return -1
        words, length = got
        row[:words.size] = words
        return length

    def is_terminated(self) -> bool:
        return self._terminated

    def reset(self) -> None:
        self._history = [self.grammar.initial]
        self._terminated = False
