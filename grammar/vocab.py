"""A tokenizer's vocabulary as byte strings, plus the arrays the mask walk needs.

Token ids index `tokens`; special tokens (BOS, chat markers, ...) are never allowed by a
grammar, EOS tokens are allowed exactly when the grammar can terminate.

Token trie (built once per vocabulary, shared by every compiled grammar), for the mask walk.
Nodes are the distinct prefixes of the walkable (non-special, non-empty) tokens, numbered
depth-major and, within a depth, in byte-lexicographic order; node 0 is the empty prefix.  So the
children of a node are one contiguous range, and the children of a sorted node list are sorted:

    depth 0: [0]      depth 1: [1 "a"][2 "b"]      depth 2: [3 "ab"][4 "ac"][5 "bx"] ...
    parent      [N]   int64  node -> its prefix minus the last byte
    last_byte   [N]   uint8  node -> its last byte
    child_lo/hi [N]   int64  node -> children are nodes child_lo..child_hi-1
    token_ids   [n]   int64  walkable token ids;  token_node [n] int64: the node spelling each

The C walk's layout is the same trie in preorder (rank r), where every subtree is one range of
ranks and its tokens one range of `sub_tokens` (the tokens in depth-first order):
    pre_nodes     [N+1]  packed records: subtree size, first token `tlo` (node r's own tokens are
                         sub_tokens[tlo[r]:tlo[r + 1]], the ones strictly below it
                         sub_tokens[tlo[r + 1]:tlo[r + size[r]]]), depth, last byte, height
    pre_sub_bytes [N,4]  uint64: the bytes on the edges strictly below each node (256 bits)
    pre_parent    [N]    parent's rank;  token_pre_node [V]: token id -> its node's rank (-1)
    sub_tokens32, sub_token_len [n]: each token's id and length
    big_below_slot [N], big_below_words [S, words]: for the S nodes with >= BIG_BELOW tokens
                         strictly below, those tokens as mask words (the walk ORs them);
                         big_below_lens [S, 4]: their lengths as a 256-bit set
    plain_node_flags [N], plain_next [N], plain_le_words [L + 1, words], plain_len_any [L + 1]: the plain tokens
                         (PLAIN_BYTES only, at most L = plain_max_len <= PLAIN_MAX_LEN long) by length
pre_sub_bytes, sub_token_* and big_below_* let the walk skip a subtree whole: from a configuration that loops on every byte of
`pre_sub_bytes[r]` (a string's interior, whitespace, `.*`), every token below r ends where r does.
"""
from __future__ import annotations

import hashlib
import re

import numpy as np


def _gpt2_byte_decoder() -> dict[str, int]:
    """The GPT-2 byte-level BPE alphabet: printable stand-ins for the 256 byte values."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


# pda_core.c's Node: the trie in preorder, one 16-byte record per node
PRE_NODE = np.dtype([("size", "<i4"), ("tlo", "<i4"), ("depth", "<u2"), ("byte", "u1"), ("pad", "u1"),
                     ("height", "<u2"), ("pad2", "<u2")])
assert PRE_NODE.itemsize == 16

BIG_BELOW = 512  # see big_below_words

# "Plain" bytes: printable ASCII but the quote and the backslash, what a JSON string holds
# unescaped.  From a string's interior (counted or not) they all step alike, so the walk takes the
# plain tokens (97% of SmolLM2's) by length instead of one trie node at a time; see
# plain_node_flags.  Plain tokens longer than PLAIN_MAX_LEN (none in common vocabularies: their
# longest plain tokens are runs of 64-80 spaces or dashes) are walked as usual.
PLAIN_BYTES = np.zeros(4, dtype=np.uint64)
for _b in set(range(0x20, 0x7F)) - {0x22, 0x5C}:
    PLAIN_BYTES[_b >> 6] |= np.uint64(1) << np.uint64(_b & 63)
PLAIN_MAX_LEN = 128

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class Vocabulary:
    def __init__(self, tokens: list[bytes], eos_token_ids=(), special_token_ids=()):
        self.tokens = [bytes(t) for t in tokens]
        self.size = len(self.tokens)
        self.eos_token_ids = sorted(set(int(i) for i in eos_token_ids))
        self.special_token_ids = sorted(set(int(i) for i in special_token_ids)
                                        | set(self.eos_token_ids))
        special = set(self.special_token_ids)
        for i in self.eos_token_ids:
            if not 0 <= i < self.size:
                raise ValueError(f"eos token id {i} outside the vocabulary (size {self.size})")
        walk = [i for i in range(self.size) if i not in special and self.tokens[i]]
        self.eos_set = frozenset(self.eos_token_ids)  # (membership tests of the per-token step)
        # token id -> its bytes when a grammar can read it (None: special or empty, never allowed)
        self.step_tokens = [None] * self.size
        for i in walk:
            self.step_tokens[i] = self.tokens[i]
        self.max_len = max((len(self.tokens[i]) for i in walk), default=0)
        self._build_trie(walk)
        self.num_words = (self.size + 31) // 32
        # every token's bytes, concatenated: token t is token_bytes[token_offsets[t]:token_offsets[t + 1]]
        self.token_bytes = np.frombuffer(b"".join(self.tokens) or b"\0", dtype=np.uint8)
        self.token_offsets = np.zeros(self.size + 1, dtype=np.int64)
        np.cumsum([len(t) for t in self.tokens], out=self.token_offsets[1:])
        self.hash = hashlib.sha256(b"\0".join(self.tokens) + repr(self.eos_token_ids).encode()
                                   + repr(self.special_token_ids).encode()).hexdigest()[:16]

    def _build_trie(self, walk: list[int]) -> None:
        by_depth: list[set[bytes]] = [set() for _ in range(self.max_len + 1)]
        for i in walk:
            tok = self.tokens[i]
            for j in range(1, len(tok) + 1):
                by_depth[j].add(tok[:j])
        node: dict[bytes, int] = {b"": 0}
        ordered: list[bytes] = [b""]
        for j in range(1, self.max_len + 1):
            for p in sorted(by_depth[j]):
                node[p] = len(ordered)
                ordered.append(p)
        n = len(ordered)
        self.parent = np.asarray([0] + [node[p[:-1]] for p in ordered[1:]], dtype=np.int64)
        self.last_byte = np.asarray([0] + [p[-1] for p in ordered[1:]], dtype=np.uint8)
        counts = np.bincount(self.parent[1:], minlength=n)  # children per node
        # children of node p are contiguous; nodes are sorted by parent so lo = first index
        self.child_lo = np.zeros(n, dtype=np.int64)
        self.child_lo[:] = np.searchsorted(self.parent[1:], np.arange(n)) + 1
        self.child_hi = self.child_lo + counts
        # depth_lo[j] .. depth_lo[j + 1] - 1: the nodes of depth j
        depth_sizes = [1] + [len(by_depth[j]) for j in range(1, self.max_len + 1)]
        self.depth_lo = np.concatenate([[0], np.cumsum(depth_sizes)]).astype(np.int64)
        self.token_ids = np.asarray(walk, dtype=np.int64)
        self.token_node = np.asarray([node[self.tokens[i]] for i in walk], dtype=np.int64)
        self.num_nodes = n
        self._build_subtrees(ordered)

    def _build_subtrees(self, ordered: list[bytes]) -> None:
        n, parent = self.num_nodes, self.parent
        sub = np.zeros((n, 4), dtype=np.uint64)  # [N, 4] bytes strictly below each node
        size = np.ones(n, dtype=np.int64)  # [N] nodes in each subtree, itself included
        own = np.zeros((n, 4), dtype=np.uint64)  # [N, 4] each node's last byte as a bit
        own[np.arange(n), self.last_byte >> 6] = np.left_shift(np.uint64(1), (self.last_byte & 63).astype(np.uint64))
        for j in range(len(self.depth_lo) - 2, 0, -1):  # deepest first: children before parents
            idx = np.arange(self.depth_lo[j], self.depth_lo[j + 1])
            contrib = sub[idx] | own[idx]
            for w in range(4):
                np.bitwise_or.at(sub[:, w], parent[idx], contrib[:, w])
            np.add.at(size, parent[idx], size[idx])
        # preorder rank = rank in byte-lexicographic order of the prefixes; a subtree is the range
        # [pre, pre + size) and the tokens strictly below c have pre in (pre[c], pre[c] + size[c])
        pre = np.empty(n, dtype=np.int64)
        pre[sorted(range(n), key=ordered.__getitem__)] = np.arange(n)
        tok_pre = pre[self.token_node]
        order = np.argsort(tok_pre, kind="stable")
        self.sub_tokens = self.token_ids[order]
        sorted_pre = tok_pre[order]
        # the trie in preorder (the C walk scans it front to back, jumping over dead subtrees),
        # one packed record per node (what a visit reads: one cache line) plus a closing record
        by_pre = np.empty(n, dtype=np.int64)
        by_pre[pre] = np.arange(n)
        depth = np.zeros(n, dtype=np.int64)
        for j in range(1, len(self.depth_lo) - 1):
            depth[self.depth_lo[j]:self.depth_lo[j + 1]] = j
        deepest = depth.copy()  # [N] the depth of the deepest node in each subtree
        for j in range(len(self.depth_lo) - 2, 0, -1):
            idx = np.arange(self.depth_lo[j], self.depth_lo[j + 1])
            np.maximum.at(deepest, parent[idx], deepest[idx])
        nodes = np.zeros(n + 1, dtype=PRE_NODE)
        nodes["size"][:n] = size[by_pre]
        nodes["tlo"] = np.searchsorted(sorted_pre, np.arange(n + 1), side="left")  # token ranges
        nodes["depth"][:n] = depth[by_pre]
        nodes["byte"][:n] = self.last_byte[by_pre]
        nodes["height"][:n] = (deepest - depth)[by_pre]
        self.pre_nodes = nodes
        self.pre_sub_bytes = np.ascontiguousarray(sub[by_pre])
        self.sub_tokens32 = self.sub_tokens.astype(np.int32)  # the C walk's copies
        self.pre_parent = pre[self.parent[by_pre]].astype(np.int32)  # [N] (the root's: 0)
        self.token_pre_node = np.full(self.size, -1, dtype=np.int32)  # [V] token id -> its node's rank
        self.token_pre_node[self.token_ids] = pre[self.token_node]
        self.sub_token_len = depth[self.token_node[order]].astype(np.int32)  # [n] len of sub_tokens[j]
        # the bit words of the tokens strictly below each node with at least BIG_BELOW of them: the
        # walk ORs these (1,536 words for 49k tokens: a few hundred ns) instead of setting
        # thousands of scattered bits one by one when it takes such a subtree whole
        tlo = nodes["tlo"].astype(np.int64)
        ranks = np.arange(n)
        below = tlo[ranks + nodes["size"][:n]] - tlo[ranks + 1]
        big = np.flatnonzero(below >= BIG_BELOW)
        self.big_below_slot = np.full(n, -1, dtype=np.int32)  # [N] rank -> row of big_below_words
        self.big_below_slot[big] = np.arange(len(big), dtype=np.int32)
        words = (self.size + 31) // 32
        self.big_below_words = np.zeros((len(big), words), dtype=np.int32)
        # and the lengths of those tokens as a 256-bit set (the walk marks each length's end
        # configuration a successor), empty when some token is longer than 255 bytes
        self.big_below_lens = np.zeros((len(big), 4), dtype=np.uint64)
        for k, r in enumerate(big):
            self.big_below_words[k] = token_words(self.sub_tokens[tlo[r + 1]:tlo[r + nodes["size"][r]]], words)
            for ln in np.unique(self.sub_token_len[tlo[r + 1]:tlo[r + nodes["size"][r]]]).tolist():
                if ln < 256:
                    self.big_below_lens[k, ln >> 6] |= np.uint64(1) << np.uint64(ln & 63)
        if self.max_len >= 256:
            self.big_below_lens = np.zeros((0, 4), dtype=np.uint64)
        self._build_plain(by_pre, depth, deepest, sub, words)

    def _build_plain(self, by_pre, depth, deepest, sub, words) -> None:
        """The plain tokens (only PLAIN_BYTES, at most PLAIN_MAX_LEN bytes) grouped by length:
        plain_le_words[l] has the bits of those of length <= l, plain_len_any[l] says one has
        length l.  plain_node_flags (preorder): bit 0, every token at or below the node is plain
        (the walk skips the subtree when it has taken the plain tokens by length); bit 1, the
        node's own tokens are plain."""
        n = self.num_nodes
        plain_byte = np.zeros(256, dtype=bool)
        plain_byte[[b for b in range(256) if int(PLAIN_BYTES[b >> 6]) >> (b & 63) & 1]] = True
        path = np.zeros(n, dtype=bool)  # every byte from the root is plain (parents come first)
        path[0] = True
        for j in range(1, len(self.depth_lo) - 1):
            idx = np.arange(self.depth_lo[j], self.depth_lo[j + 1])
            path[idx] = path[self.parent[idx]] & plain_byte[self.last_byte[idx]]
        sub_plain = ((sub & ~PLAIN_BYTES) == 0).all(axis=1)
        own = path & (depth <= PLAIN_MAX_LEN) & (depth > 0)
        whole = own & sub_plain & (deepest <= PLAIN_MAX_LEN)
        self.plain_max_len = int(depth[own].max()) if own.any() else 0  # the chain's length
        flags = whole.astype(np.uint8) | (own.astype(np.uint8) << 1)
        self.plain_node_flags = np.ascontiguousarray(flags[by_pre])
        # plain_next[r]: the first node at or after r (preorder) whose subtree holds a token that
        # is not plain; the nodes between are all in plain-only subtrees, which the walk skips
        # in one jump once the plain tokens are decided
        at = np.where(self.plain_node_flags & 1, n, np.arange(n)).astype(np.int32)
        self.plain_next = np.ascontiguousarray(np.minimum.accumulate(at[::-1])[::-1], dtype=np.int32)
        tok_plain = own[self.token_node]
        lengths = depth[self.token_node]
        top = self.plain_max_len
        self.plain_le_words = np.zeros((top + 1, words), dtype=np.int32)
        self.plain_len_any = np.zeros(top + 1, dtype=np.uint8)
        for ln in range(1, top + 1):
            these = self.token_ids[tok_plain & (lengths == ln)]
            self.plain_len_any[ln] = len(these) > 0
            self.plain_le_words[ln] = self.plain_le_words[ln - 1] | token_words(these, words)

    def __repr__(self) -> str:
        return f"Vocabulary(size={self.size}, eos={self.eos_token_ids}, hash={self.hash})"

    def prefix_token_ids(self, data: bytes) -> list[int]:
        """Ids of the walkable tokens whose bytes are a non-empty prefix of `data`."""
        lookup = getattr(self, "_by_bytes", None)
        if lookup is None:
            lookup = {}
            for i in self.token_ids.tolist():
                lookup.setdefault(self.tokens[i], []).append(i)
            self._by_bytes = lookup
        return [i for k in range(1, min(len(data), self.max_len) + 1) for i in lookup.get(data[:k], ())]

    @classmethod
    def from_tokenizer(cls, tokenizer, eos_token_ids=None) -> "Vocabulary":
        """From a Hugging Face tokenizer: byte-level BPE (GPT-2 'Ġ' alphabet) or SentencePiece
        ('▁' for spaces, <0xXX> byte fallback).  Added special tokens are marked special."""
        n = len(tokenizer)
        pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        for i, tok in added.items():
            if getattr(tok, "special", False):
                special.add(int(i))
        added_ids = {int(i) for i in added}
        sentencepiece = any(p and p.startswith("▁") for p in pieces[:5000]) and \
            not any(p and p.startswith("Ġ") for p in pieces[:5000])
        decoder = _gpt2_byte_decoder()
        tokens = []
        for i, p in enumerate(pieces):
            p = p or ""
            if i in added_ids:
                tokens.append(p.encode())
            elif sentencepiece:
                m = _BYTE_FALLBACK.match(p)
                tokens.append(bytes([int(m.group(1), 16)]) if m else p.replace("▁", " ").encode())
            elif all(c in decoder for c in p):
                tokens.append(bytes(decoder[c] for c in p))
            else:
                tokens.append(p.encode())
        if eos_token_ids is None:
            eos = getattr(tokenizer, "eos_token_id", None)
            eos_token_ids = [] if eos is None else [eos]
        return cls(tokens, eos_token_ids=eos_token_ids, special_token_ids=special)


def allocate_bitmask(rows: int, vocab_size: int) -> np.ndarray:
    """A zeroed int32 mask of shape (rows, ceil(vocab_size / 32)); bit t%32 of word t//32."""
    return np.zeros((rows, (vocab_size + 31) // 32), dtype=np.int32)


def token_words(ids, num_words: int) -> np.ndarray:
    """int32 [num_words]: the bit words with the bits of these token ids set."""
    ids = np.asarray(list(ids), dtype=np.int64)
    words = np.zeros(num_words, dtype=np.uint32)
    np.bitwise_or.at(words, ids >> 5, np.left_shift(np.uint32(1), (ids & 31).astype(np.uint32)))
    return words.view(np.int32)


def pack_bits(allowed: np.ndarray, num_words: int) -> np.ndarray:
    """bool [V] (token id order) -> int32 [num_words], little-endian bit order in each word."""
    padded = np.zeros(num_words * 32, dtype=bool)
    padded[: allowed.shape[0]] = allowed
    return np.packbits(padded, bitorder="little").view("<u4").astype(np.int32, copy=False)
