"""Paged KV block manager with automatic prefix caching (pure Python, no torch).

The KV cache is `num_blocks` pages of `block_size` token slots. A request owns a block table:
position p of its sequence lives in slot `table[p // block_size] * block_size + p % block_size`.

    tokens:  [t0 .. t15][t16 .. t31][t32 t33 t34]      block_size 16, 35 tokens
    table:   [    7    ][    2     ][    9      ]      the last block is partial, never shared
    hashes:  [   h0    ][    h1    ]                   h_i = H(h_{i-1}, tokens of block i)

Every block is in exactly one of three states:

    held       ref_count > 0      in >= 1 request table (shared full blocks have ref_count > 1)
    free       ref_count == 0     no hash; in `_free` (allocated first)
    evictable  ref_count == 0     has a hash; in `_evictable` (LRU order; revived on a cache hit,
                                  evicted, i.e. its hash dropped, when `_free` runs dry)

A full block is hashed once all its tokens are known and scheduled to be computed; the digest
chains the parent's digest with the block's token ids (blake2b, not Python's `hash()`, so one
user cannot craft collisions with another's prefix). `_cached` maps digest -> block id. Two
requests may compute the same content in the same step (both missed): the second block stays
unregistered, so the map keeps one block per digest.
"""
from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

# Root of every hash chain; versioned so a change of the hashing scheme never matches old digests.
_ROOT_HASH = b"gramserve-kv-prefix-v1"


def hash_block(parent: bytes | None, token_ids: Sequence[int]) -> bytes:
    """Chained digest of one full block: H(parent digest || token ids as little int64)."""
    h = hashlib.blake2b(_ROOT_HASH if parent is None else parent, digest_size=16)
    h.update(array("q", token_ids).tobytes())
    return h.digest()


def num_blocks_for_budget(budget_bytes: int, block_size: int, num_layers: int, num_kv_heads: int,
                          head_dim: int, dtype_bytes: int) -> int:
    """How many KV blocks (K and V, every layer) fit in `budget_bytes`."""
    dims = dict(block_size=block_size, num_layers=num_layers, num_kv_heads=num_kv_heads,
                head_dim=head_dim, dtype_bytes=dtype_bytes)
    for name, value in dims.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    # 2 = one K page and one V page per layer
    block_bytes = 2 * num_layers * block_size * num_kv_heads * head_dim * dtype_bytes
    n = budget_bytes // block_bytes
    if n < 1:
        raise ValueError(f"KV budget of {budget_bytes} bytes holds no block of {block_bytes} bytes; "
                         f"raise the KV cache budget or lower block_size")
    return n


@dataclass
class PrefixCacheStats:
    """Monotone counters for metrics. Counted per `get_computed_blocks` call (a request retried
    while it waits for memory is counted again, as in vLLM)."""

    requests: int = 0  # lookups
    queries: int = 0  # tokens looked up
    hits: int = 0  # tokens found in the cache

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


class _Block:
    __slots__ = ("block_id", "ref_count", "block_hash")

    def __init__(self, block_id: int) -> None:
        self.block_id = block_id
        self.ref_count = 0
        self.block_hash: bytes | None = None  # set <=> registered in BlockManager._cached


class _Req:
    """A request's block table and the chain digests of its first len(hashes) full blocks."""

    __slots__ = ("blocks", "hashes")

    def __init__(self) -> None:
        self.blocks: list[int] = []
        # hashes[i] is block i's chain digest (whether or not blocks[i] is the one registered)
        self.hashes: list[bytes] = []


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int = 16, enable_prefix_caching: bool = True) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError(f"num_blocks and block_size must be >= 1, got {num_blocks}, {block_size}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self._blocks = [_Block(i) for i in range(num_blocks)]
        self._free: list[int] = list(range(num_blocks - 1, -1, -1))  # stack: pops block 0 first
        self._evictable: OrderedDict[int, None] = OrderedDict()  # first = least recently freed
        self._cached: dict[bytes, int] = {}
        self._reqs: dict[str, _Req] = {}
        self.stats = PrefixCacheStats()

    # -- queries -------------------------------------------------------------------------------
    @property
    def num_free_blocks(self) -> int:
        """Blocks allocatable now: free plus evictable cached ones."""
        return len(self._free) + len(self._evictable)

    @property
    def num_cached_blocks(self) -> int:
        return len(self._cached)

    @property
    def usage(self) -> float:
        """Fraction of blocks held by requests."""
        return 1.0 - self.num_free_blocks / self.num_blocks

    def block_table(self, req_id: str) -> list[int]:
        req = self._reqs.get(req_id)
        return list(req.blocks) if req is not None else []

    def __contains__(self, req_id: object) -> bool:
        return req_id in self._reqs

    def get_computed_blocks(self, token_ids: Sequence[int]) -> tuple[list[int], int]:
        """Longest cached prefix of full blocks: (block ids, tokens they hold). Takes no reference.

        At most (len - 1) // block_size blocks, so at least one token is left to compute (its
        logits are needed to sample the next token)."""
        if not self.enable_prefix_caching:
            return [], 0
        bs = self.block_size
        hits: list[int] = []
        parent: bytes | None = None
        for i in range(max(len(token_ids) - 1, 0) // bs):
            parent = hash_block(parent, token_ids[i * bs:(i + 1) * bs])
            block_id = self._cached.get(parent)
            if block_id is None:
                break
            hits.append(block_id)
        self.stats.requests += 1
        self.stats.queries += len(token_ids)
        self.stats.hits += len(hits) * bs
        return hits, len(hits) * bs

    # -- allocation ----------------------------------------------------------------------------
    def allocate_slots(self, req_id: str, token_ids: Sequence[int], num_computed_tokens: int,
                       num_new_tokens: int, computed_blocks: list[int] | None = None) -> list[int] | None:
        """Grow req's table to cover num_computed_tokens + num_new_tokens positions.

        A new request's table starts with `computed_blocks` (from get_computed_blocks, same step),
        each taking a reference. Returns the full table, or None, with nothing changed, when the
        blocks do not fit. Then registers every full block whose tokens are known and computed."""
        req = self._reqs.get(req_id)
        computed = computed_blocks or []
        self._validate(req, computed, num_computed_tokens, num_new_tokens)
        num_total = num_computed_tokens + num_new_tokens
        num_required = -(-num_total // self.block_size)  # ceil
        num_have = len(req.blocks) if req is not None else len(computed)
        num_new_blocks = max(num_required - num_have, 0)
        # reviving an evictable hit takes it out of the pool the new blocks are drawn from
        num_revived = sum(1 for b in computed if self._blocks[b].ref_count == 0)
        if num_new_blocks > self.num_free_blocks - num_revived:
            return None
        # -- from here on, nothing can fail --
        if req is None:
            req = self._reqs[req_id] = _Req()
            for b in computed:
                self._take(b)
                req.blocks.append(b)
                req.hashes.append(self._blocks[b].block_hash)  # type: ignore[arg-type]
        for _ in range(num_new_blocks):
            req.blocks.append(self._pop_free())
        if self.enable_prefix_caching:
            self._register_full_blocks(req, token_ids, min(num_total, len(token_ids)))
        return list(req.blocks)

    def _validate(self, req: _Req | None, computed: list[int], num_computed_tokens: int,
                  num_new_tokens: int) -> None:
        if num_computed_tokens < 0 or num_new_tokens < 0:
            raise ValueError(f"token counts must be >= 0, got {num_computed_tokens}, {num_new_tokens}")
        if req is not None:
            if computed:
                raise ValueError("computed_blocks are only accepted for a request without blocks")
            return
        if num_computed_tokens != len(computed) * self.block_size:
            raise ValueError(f"a new request's num_computed_tokens ({num_computed_tokens}) must equal "
                             f"the tokens of its computed_blocks ({len(computed) * self.block_size})")
        if len(set(computed)) != len(computed):
            raise ValueError(f"computed_blocks repeats a block: {computed}")
        for b in computed:
            if not 0 <= b < self.num_blocks or self._blocks[b].block_hash is None:
                raise ValueError(f"block {b} is not a cached block: call get_computed_blocks in the "
                                 f"same step as allocate_slots")

    def _take(self, block_id: int) -> None:
        """Take a reference on a cached block, reviving it if it was evictable."""
        block = self._blocks[block_id]
        if block.ref_count == 0:
            del self._evictable[block_id]
        block.ref_count += 1

    def _pop_free(self) -> int:
        """An unreferenced block with no hash: a free one, else the LRU evictable one, evicted."""
        if self._free:
            block_id = self._free.pop()
        else:
            block_id, _ = self._evictable.popitem(last=False)
            block = self._blocks[block_id]
            del self._cached[block.block_hash]  # type: ignore[arg-type]
            block.block_hash = None
        self._blocks[block_id].ref_count = 1
        return block_id

    def _register_full_blocks(self, req: _Req, token_ids: Sequence[int], num_known: int) -> None:
        """Hash blocks len(req.hashes) .. num_known // block_size - 1 and cache them."""
        bs = self.block_size
        parent = req.hashes[-1] if req.hashes else None
        for i in range(len(req.hashes), num_known // bs):
            parent = hash_block(parent, token_ids[i * bs:(i + 1) * bs])
            req.hashes.append(parent)
            block = self._blocks[req.blocks[i]]
            # block i was freshly allocated (not a hit), so it has no hash yet
            if parent not in self._cached:
                self._cached[parent] = block.block_id
                block.block_hash = parent

    # -- release -------------------------------------------------------------------------------
    def free(self, req_id: str) -> None:
        """Drop req's references (finish, abort, preemption); unknown ids are ignored.

        The tail is released first, so with LRU eviction a prefix's head stays cached longest."""
        req = self._reqs.pop(req_id, None)
        if req is None:
            return
        for block_id in reversed(req.blocks):
            block = self._blocks[block_id]
            block.ref_count -= 1
            if block.ref_count == 0:
                if block.block_hash is None:
                    self._free.append(block_id)
                else:
                    self._evictable[block_id] = None  # most recently freed = evicted last

    def reset_prefix_cache(self) -> bool:
        """Forget every cached prefix. Refused (False, nothing changed) while any block is held:
        their requests' KV would outlive the reset (e.g. after a weight update)."""
        if self.num_free_blocks != self.num_blocks:
            return False
        for block_id in self._evictable:
            self._blocks[block_id].block_hash = None
            self._free.append(block_id)
        self._evictable.clear()
        self._cached.clear()
        return True

    # -- integrity -----------------------------------------------------------------------------
    def check_invariants(self) -> None:
        """Raise AssertionError naming the first violated invariant."""
        refs = [0] * self.num_blocks
        for rid, req in self._reqs.items():
            assert len(set(req.blocks)) == len(req.blocks), f"{rid}: block repeated in {req.blocks}"
            assert len(req.hashes) <= len(req.blocks), f"{rid}: more hashes than blocks"
            for i, b in enumerate(req.blocks):
                assert 0 <= b < self.num_blocks, f"{rid}: block id {b} out of range"
                refs[b] += 1
                h = self._blocks[b].block_hash
                if i >= len(req.hashes):
                    assert h is None, f"{rid}: block {b} at index {i} is cached before being full"
                else:
                    assert h is None or h == req.hashes[i], f"{rid}: block {b} hash != its chain hash"
        free, evictable = set(self._free), set(self._evictable)
        assert len(free) == len(self._free), "free list repeats a block"
        assert not free & evictable, f"blocks both free and evictable: {free & evictable}"
        for block in self._blocks:
            b = block.block_id
            assert block.ref_count == refs[b], f"block {b}: ref_count {block.ref_count} != {refs[b]} tables"
            if block.ref_count > 0:
                assert b not in free and b not in evictable, f"held block {b} is in a free pool"
            elif block.block_hash is None:
                assert b in free, f"unreferenced uncached block {b} is not in the free list"
            else:
                assert b in evictable, f"unreferenced cached block {b} is not evictable"
            if block.block_hash is not None:
                assert self._cached.get(block.block_hash) == b, f"block {b}'s hash maps elsewhere"
        num_hashed = sum(block.block_hash is not None for block in self._blocks)
        assert len(self._cached) == num_hashed, f"{len(self._cached)} cache entries, {num_hashed} hashed blocks"
        assert self.enable_prefix_caching or not self._cached, "prefix caching disabled but blocks cached"
        num_held = sum(r > 0 for r in refs)
        assert num_held + len(free) + len(evictable) == self.num_blocks, "block counts do not add up"
