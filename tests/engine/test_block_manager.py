"""Unit tests of the paged KV block manager (engine/block_manager.py)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.block_manager import BlockManager, hash_block, num_blocks_for_budget

BS = 4  # small blocks keep the token lists readable


def snapshot(bm: BlockManager) -> tuple:
    """Everything allocate_slots could change, to prove a refused call changed nothing."""
    return (
        [(b.ref_count, b.block_hash) for b in bm._blocks],
        list(bm._free),
        list(bm._evictable),
        dict(bm._cached),
        {rid: (list(r.blocks), list(r.hashes)) for rid, r in bm._reqs.items()},
    )


def run_prompt(bm: BlockManager, rid: str, tokens: list[int]) -> list[int] | None:
    """Admit a request like the scheduler does: look up the cache, then allocate the rest."""
    blocks, n = bm.get_computed_blocks(tokens)
    table = bm.allocate_slots(rid, tokens, n, len(tokens) - n, blocks)
    bm.check_invariants()
    return table


def test_num_blocks_for_budget() -> None:
    # 2 (K,V) * 30 layers * 16 slots * 3 heads * 64 dims * 2 bytes = 368640 bytes per block
    assert num_blocks_for_budget(368640 * 10 + 5, 16, 30, 3, 64, 2) == 10
    with pytest.raises(ValueError, match="holds no block"):
        num_blocks_for_budget(368639, 16, 30, 3, 64, 2)
    with pytest.raises(ValueError, match="head_dim"):
        num_blocks_for_budget(1 << 30, 16, 30, 3, 0, 2)


def test_fresh_allocation_refcounts_and_free() -> None:
    bm = BlockManager(num_blocks=8, block_size=BS)
    table = run_prompt(bm, "a", list(range(10)))
    assert table is not None and len(table) == 3  # ceil(10 / 4)
    assert bm.block_table("a") == table
    assert bm.num_free_blocks == 5 and bm.usage == pytest.approx(3 / 8)
    assert all(bm._blocks[b].ref_count == 1 for b in table)
    assert bm.num_cached_blocks == 2  # two full blocks; the partial one is never cached
    bm.free("a")
    bm.free("a")  # idempotent; unknown ids are ignored
    bm.check_invariants()
    assert bm.num_free_blocks == 8 and bm.usage == 0.0 and bm.block_table("a") == []


def test_prefix_hit_shares_full_blocks_not_the_partial_tail() -> None:
    bm = BlockManager(num_blocks=8, block_size=BS)
    prompt = list(range(10))
    ta = run_prompt(bm, "a", prompt)
    blocks, n = bm.get_computed_blocks(prompt + [99])
    assert (blocks, n) == (ta[:2], 8)
    tb = run_prompt(bm, "b", prompt + [99])
    assert tb[:2] == ta[:2] and tb[2] != ta[2]  # the partial block is private
    assert [bm._blocks[b].ref_count for b in ta] == [2, 2, 1]
    assert (bm.stats.requests, bm.stats.queries, bm.stats.hits) == (3, 32, 16)
    assert bm.stats.hit_rate == pytest.approx(16 / 32)


def test_get_computed_blocks_leaves_at_least_one_token() -> None:
    bm = BlockManager(num_blocks=8, block_size=BS)
    prompt = list(range(8))  # exactly two full blocks, both cached after this
    ta = run_prompt(bm, "a", prompt)
    assert bm.num_cached_blocks == 2
    assert bm.get_computed_blocks(prompt) == (ta[:1], 4)
    assert bm.get_computed_blocks(prompt + [5]) == (ta, 8)
    assert bm.get_computed_blocks([]) == ([], 0)
    assert bm.get_computed_blocks(prompt[:4]) == ([], 0)


def test_hash_chain_same_block_under_other_prefix_misses() -> None:
    bm = BlockManager(num_blocks=8, block_size=BS)
    run_prompt(bm, "a", [1, 1, 1, 1, 2, 2, 2, 2, 0])
    # block 1's tokens [2,2,2,2] are cached, but under parent [1,1,1,1], not [3,3,3,3]
    assert bm.get_computed_blocks([3, 3, 3, 3, 2, 2, 2, 2, 0]) == ([], 0)
    assert hash_block(None, [2, 2, 2, 2]) != hash_block(hash_block(None, [1, 1, 1, 1]), [2, 2, 2, 2])
    assert len(bm.get_computed_blocks([1, 1, 1, 1, 3, 3, 3, 3, 0])[0]) == 1


def test_chunked_prefill_registers_only_computed_blocks() -> None:
    bm = BlockManager(num_blocks=8, block_size=BS)
    prompt = list(range(13))
    assert len(bm.allocate_slots("a", prompt, 0, 6)) == 2  # positions 0..5
    assert bm.num_cached_blocks == 1  # block 1 holds only 2 of its 4 tokens so far
    assert len(bm.allocate_slots("a", prompt, 6, 6)) == 3
    assert bm.num_cached_blocks == 3
    assert bm.get_computed_blocks(prompt)[1] == 12
    bm.check_invariants()


def test_decode_grows_one_block_per_boundary() -> None:
    bm = BlockManager(num_blocks=8, block_size=BS)
    tokens = [7, 7, 7]
    table = bm.allocate_slots("a", tokens, 0, 3)
    for step in range(10):
        tokens.append(step)  # the sampled token, computed next step
        table = bm.allocate_slots("a", tokens, len(tokens) - 1, 1)
        bm.check_invariants()
        assert len(table) == -(-len(tokens) // BS)
        assert bm.num_cached_blocks == len(tokens) // BS


def test_lru_eviction_order_and_free_blocks_first() -> None:
    bm = BlockManager(num_blocks=6, block_size=BS)
    ta = run_prompt(bm, "a", [1] * 8 + [0])  # 3 blocks, 2 cached
    tb = run_prompt(bm, "b", [2] * 8 + [0])  # 3 blocks, 2 cached
    bm.free("a")  # tail first: a's partial -> free list, then a1, a0 become evictable
    bm.free("b")
    assert list(bm._evictable) == [ta[1], ta[0], tb[1], tb[0]]
    # the two uncached free blocks are used before any cached block is evicted
    tc = bm.allocate_slots("c", [3] * 8, 0, 8)
    assert list(bm._evictable) == [ta[1], ta[0], tb[1], tb[0]] and bm.num_cached_blocks == 6
    bm.free("c")  # c1, c0 join the LRU tail
    assert bm.allocate_slots("d", [4] * 12, 0, 12) is not None  # 3 blocks: evicts a1, a0, b1
    assert list(bm._evictable) == [tb[0], tc[1], tc[0]]
    assert bm.get_computed_blocks([2] * 8 + [0])[1] == 4  # b0 survived, b1 did not
    assert bm.get_computed_blocks([1] * 8 + [0]) == ([], 0)
    bm.check_invariants()


def test_eviction_drops_least_recently_freed_tail_first() -> None:
    bm = BlockManager(num_blocks=4, block_size=BS)
    ta = run_prompt(bm, "a", [1] * 8 + [0])  # a0, a1 cached, a2 partial
    bm.free("a")
    assert bm.allocate_slots("c", [5] * 3, 0, 3) is not None  # takes the free partial block
    assert bm.allocate_slots("d", [6] * 3, 0, 3) is not None  # takes the never-used block
    assert bm.allocate_slots("e", [7] * 3, 0, 3) is not None  # must evict: a1 (tail) goes first
    assert bm.get_computed_blocks([1] * 8 + [0]) == (ta[:1], 4)
    bm.check_invariants()


def test_exhaustion_returns_none_and_changes_nothing() -> None:
    bm = BlockManager(num_blocks=4, block_size=BS)
    prompt = [1] * 8 + [0]
    run_prompt(bm, "a", prompt)
    bm.free("a")  # 2 evictable cached blocks, 2 free
    blocks, n = bm.get_computed_blocks(prompt + [0] * 8)
    assert n == 8
    before = snapshot(bm)
    # needs 3 new blocks; only 2 remain once the 2 hit blocks are revived
    assert bm.allocate_slots("b", prompt + [0] * 8, n, 9, blocks) is None
    assert snapshot(bm) == before
    assert bm.allocate_slots("b", prompt + [0] * 4, n, 5, blocks) is not None  # 2 new: fits
    assert bm.num_free_blocks == 0
    before = snapshot(bm)
    assert bm.allocate_slots("c", [9], 0, 1) is None
    assert bm.allocate_slots("b", prompt + [0] * 8, 13, 4) is None  # growing also refused
    assert snapshot(bm) == before
    bm.check_invariants()


def test_same_prompt_computed_twice_keeps_one_cache_entry() -> None:
    bm = BlockManager(num_blocks=8, block_size=BS)
    prompt = list(range(9))
    ta = bm.allocate_slots("a", prompt, 0, 9)  # both admitted in one step: b misses too
    tb = bm.allocate_slots("b", prompt, 0, 9)
    assert set(ta).isdisjoint(tb) and bm.num_cached_blocks == 2
    bm.check_invariants()
    bm.free("a")
    bm.free("b")
    bm.check_invariants()
    assert bm.get_computed_blocks(prompt) == (ta[:2], 8)
    assert len(bm._evictable) == 2 and len(bm._free) == 6


def test_prefix_caching_disabled() -> None:
    bm = BlockManager(num_blocks=8, block_size=BS, enable_prefix_caching=False)
    prompt = list(range(9))
    run_prompt(bm, "a", prompt)
    assert bm.get_computed_blocks(prompt) == ([], 0) and bm.num_cached_blocks == 0
    bm.free("a")
    bm.check_invariants()
    assert bm.num_free_blocks == 8 and not bm._evictable


def test_reset_prefix_cache() -> None:
    bm = BlockManager(num_blocks=8, block_size=BS)
    prompt = list(range(9))
    run_prompt(bm, "a", prompt)
    before = snapshot(bm)
    assert bm.reset_prefix_cache() is False  # blocks still held
    assert snapshot(bm) == before
    bm.free("a")
    assert bm.reset_prefix_cache() is True
    bm.check_invariants()
    assert bm.get_computed_blocks(prompt) == ([], 0) and bm.num_free_blocks == 8


def test_invalid_calls_raise_before_changing_anything() -> None:
    bm = BlockManager(num_blocks=8, block_size=BS)
    prompt = list(range(9))
    run_prompt(bm, "a", prompt)
    blocks, n = bm.get_computed_blocks(prompt)
    before = snapshot(bm)
    with pytest.raises(ValueError, match="must equal"):
        bm.allocate_slots("b", prompt, 0, 9, blocks)
    with pytest.raises(ValueError, match="repeats"):
        bm.allocate_slots("b", prompt, 8, 1, [blocks[0], blocks[0]])
    with pytest.raises(ValueError, match="not a cached block"):
        bm.allocate_slots("b", prompt, 4, 5, [bm.block_table("a")[2]])
    with pytest.raises(ValueError, match="only accepted"):
        bm.allocate_slots("a", prompt, 8, 1, blocks)
    with pytest.raises(ValueError, match=">= 0"):
        bm.allocate_slots("a", prompt, 9, -1)
    assert snapshot(bm) == before


@pytest.mark.parametrize("corrupt", ["ref", "free_dup", "hash_map", "table_dup"])
def test_check_invariants_detects_corruption(corrupt: str) -> None:
    bm = BlockManager(num_blocks=8, block_size=BS)
    run_prompt(bm, "a", list(range(9)))
    bm.check_invariants()
    if corrupt == "ref":
        bm._blocks[bm.block_table("a")[0]].ref_count += 1
    elif corrupt == "free_dup":
        bm._free.append(bm._free[0])
    elif corrupt == "hash_map":
        bm._cached[next(iter(bm._cached))] = 7
    else:
        bm._reqs["a"].blocks.append(bm._reqs["a"].blocks[0])
    with pytest.raises(AssertionError):
        bm.check_invariants()


# -- randomized workload: hypothesis state machine -------------------------------------------------
# Three shared prefixes over a 3-token vocabulary, so equal blocks under different parents occur.
PREFIXES = [[0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], [1] * 12, [0, 1, 2, 0] * 2 + [1] * 4]
TOKEN = st.integers(0, 2)


@dataclass
class ModelReq:
    tokens: list[int]
    computed: int = 0  # tokens whose KV is written (the model assumes every scheduled step runs)
    running: bool = False


class BlockManagerMachine(RuleBasedStateMachine):
    @initialize(num_blocks=st.integers(3, 12), block_size=st.sampled_from([1, 2, 4]), caching=st.booleans())
    def setup(self, num_blocks: int, block_size: int, caching: bool) -> None:
        self.bm = BlockManager(num_blocks, block_size, enable_prefix_caching=caching)
        self.reqs: dict[str, ModelReq] = {}
        self.written: dict[int, tuple[int, ...]] = {}  # block id -> the prefix its KV was computed from
        self.next_id = 0

    # -- helpers ---------------------------------------------------------------------------
    def _check_hit(self, tokens: list[int], blocks: list[int], n: int) -> None:
        bs = self.bm.block_size
        assert n == len(blocks) * bs and (n < len(tokens) or n == 0)
        assert self.bm.enable_prefix_caching or not blocks
        for j, b in enumerate(blocks):  # a hit's KV really is the KV of the query's prefix
            assert self.written.get(b) == tuple(tokens[:(j + 1) * bs]), f"stale hit on block {b}"

    def _write(self, rid: str, start: int, n: int, table: list[int]) -> None:
        """Simulate the forward pass: slot p of the table now holds KV of tokens[:p + 1]."""
        tokens, bs = self.reqs[rid].tokens, self.bm.block_size
        holders = Counter(b for r in self.reqs for b in self.bm.block_table(r))
        for p in range(start, start + n):
            b = table[p // bs]
            assert holders[b] == 1, f"{rid} writes block {b} shared by {holders[b]} requests"
            self.written[b] = tuple(tokens[:p + 1])
        self.reqs[rid].computed = start + n

    def _admit(self, rid: str, chunk: int) -> None:
        req = self.reqs[rid]
        blocks, n = self.bm.get_computed_blocks(req.tokens)
        self._check_hit(req.tokens, blocks, n)
        before = snapshot(self.bm)
        num_new = min(chunk, len(req.tokens) - n)
        table = self.bm.allocate_slots(rid, req.tokens, n, num_new, blocks)
        if table is None:
            assert snapshot(self.bm) == before, "a refused allocation changed state"
            return
        req.running = True
        self._write(rid, n, num_new, table)

    def _preempt(self, rid: str) -> None:
        self.bm.free(rid)
        self.reqs[rid].running, self.reqs[rid].computed = False, 0

    def _pick(self, data: st.DataObject, running: bool) -> str | None:
        ids = sorted(r for r, m in self.reqs.items() if m.running == running)
        return data.draw(st.sampled_from(ids)) if ids else None

    # -- rules -----------------------------------------------------------------------------
    @rule(which=st.integers(0, 2), keep=st.integers(0, 12), suffix=st.lists(TOKEN, max_size=6),
          chunk=st.integers(1, 16))
    def add(self, which: int, keep: int, suffix: list[int], chunk: int) -> None:
        tokens = PREFIXES[which][:keep] + suffix
        if not tokens:
            return
        rid, self.next_id = f"r{self.next_id}", self.next_id + 1
        self.reqs[rid] = ModelReq(tokens)
        self._admit(rid, chunk)  # refused: it stays waiting

    @rule(data=st.data(), token=TOKEN, chunk=st.integers(1, 8))
    def step(self, data: st.DataObject, token: int, chunk: int) -> None:
        """Chunked prefill while tokens remain, else decode one sampled token; preempt on OOM."""
        rid = self._pick(data, running=True)
        if rid is None:
            return
        req = self.reqs[rid]
        if req.computed == len(req.tokens):
            req.tokens.append(token)
        num_new = min(chunk, len(req.tokens) - req.computed)
        table = self.bm.allocate_slots(rid, req.tokens, req.computed, num_new)
        if table is None:
            self._preempt(rid)
        else:
            self._write(rid, req.computed, num_new, table)

    @rule(data=st.data())
    def abort(self, data: st.DataObject) -> None:
        rid = self._pick(data, running=data.draw(st.booleans()))
        if rid is not None:
            self.bm.free(rid)
            del self.reqs[rid]

    @rule(data=st.data())
    def preempt(self, data: st.DataObject) -> None:
        rid = self._pick(data, running=True)
        if rid is not None:
            self._preempt(rid)

    @rule(data=st.data(), chunk=st.integers(1, 16))
    def resume(self, data: st.DataObject, chunk: int) -> None:
        rid = self._pick(data, running=False)
        if rid is not None:
            self._admit(rid, chunk)

    @rule(which=st.integers(0, 2), keep=st.integers(0, 12), suffix=st.lists(TOKEN, max_size=4))
    def lookup(self, which: int, keep: int, suffix: list[int]) -> None:
        tokens = PREFIXES[which][:keep] + suffix
        before = snapshot(self.bm)
        self._check_hit(tokens, *self.bm.get_computed_blocks(tokens))
        assert snapshot(self.bm) == before, "get_computed_blocks changed state"

    @rule(preempt_all=st.booleans())
    def reset_cache(self, preempt_all: bool) -> None:
        if preempt_all:
            for rid in [r for r, m in self.reqs.items() if m.running]:
                self._preempt(rid)
        expected = not any(m.running for m in self.reqs.values())
        assert self.bm.reset_prefix_cache() is expected
        if expected:
            assert self.bm.num_cached_blocks == 0 and self.bm.num_free_blocks == self.bm.num_blocks

    @invariant()
    def consistent(self) -> None:
        self.bm.check_invariants()
        bs, held = self.bm.block_size, set()
        for rid, req in self.reqs.items():
            table = self.bm.block_table(rid)
            assert len(table) == (-(-req.computed // bs) if req.running else 0), rid
            held.update(table)
        assert self.bm.num_free_blocks == self.bm.num_blocks - len(held)
        assert self.bm.usage == pytest.approx(len(held) / self.bm.num_blocks)


BlockManagerMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestBlockManagerWorkload = BlockManagerMachine.TestCase
