"""Pure-torch reference implementations: the specification of every kernel in kernels/.

The CPU path of the engine runs these directly; the Triton kernels must match them (tests
compare the two). Shapes are written as comments on the tensor lines.

Paged KV cache layout (one pair of tensors per layer):

    k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim]
    slot = block_id * block_size + offset_in_block

    sequence b, token position p  ->  block_tables[b, p // block_size], offset p % block_size

A flat "varlen" batch packs the query tokens of all sequences one after the other:

    query_start_loc = [0, q0, q0+q1, ...]   (B+1)   sequence b owns q[qsl[b]:qsl[b+1]]
    seq_lens[b]      = context length after this step (cached prefix + the new query tokens)

so the query tokens of sequence b sit at positions seq_lens[b]-q_len_b .. seq_lens[b]-1 and
attend causally to every key at a position <= their own (and, with a sliding window W, to
keys at positions > p - W). This one rule covers decode (q_len 1), chunked prefill and
prefix-cache hits.
"""
from __future__ import annotations

import torch


def write_kv(
    k_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    v_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    k: torch.Tensor,  # [T, Hkv, D]
    v: torch.Tensor,  # [T, Hkv, D]
    slot_mapping: torch.Tensor,  # [T] int64, slot of each token (< 0: not written)
) -> None:
    """Scatter new keys/values into their cache slots, in place."""
    nb, bs, hkv, d = k_cache.shape
    if bool((slot_mapping < 0).any()):
        keep = slot_mapping >= 0
        k, v, slot_mapping = k[keep], v[keep], slot_mapping[keep]
    k_cache.view(nb * bs, hkv, d).index_copy_(0, slot_mapping, k.to(k_cache.dtype))
    v_cache.view(nb * bs, hkv, d).index_copy_(0, slot_mapping, v.to(v_cache.dtype))


def gather_kv(
    cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    block_tables: torch.Tensor,  # [B, M] int
    max_len: int,
) -> torch.Tensor:  # [B, max_len, Hkv, D]
    """Read the first max_len positions of each sequence out of the paged cache."""
    nb, bs, hkv, d = cache.shape
    nblk = (max_len + bs - 1) // bs
    blocks = cache[block_tables[:, :nblk].long()]  # [B, nblk, bs, Hkv, D]
    return blocks.reshape(blocks.shape[0], nblk * bs, hkv, d)[:, :max_len]


def _attend(
    q: torch.Tensor,  # [B, n, Hq, D]
    k: torch.Tensor,  # [B, L, Hkv, D]
    v: torch.Tensor,  # [B, L, Hkv, D]
    mask: torch.Tensor,  # [B, n, L] bool, True = may attend
    scale: float,
) -> torch.Tensor:  # [B, n, Hq, D]
    b, n, hq, d = q.shape
    hkv = k.shape[2]
    g = hq // hkv  # query heads per kv head (GQA)
    qg = q.reshape(b, n, hkv, g, d).permute(0, 2, 3, 1, 4).reshape(b, hkv, g * n, d)  # [B,Hkv,G*n,D]
    kt = k.permute(0, 2, 3, 1)  # [B, Hkv, D, L]
    scores = torch.matmul(qg, kt).float() * scale  # [B, Hkv, G*n, L]
    scores = scores.view(b, hkv, g, n, -1)
    scores = scores.masked_fill(~mask[:, None, None], float("-inf"))
    probs = torch.softmax(scores, dim=-1).to(v.dtype).view(b, hkv, g * n, -1)
    out = torch.matmul(probs, v.permute(0, 2, 1, 3))  # [B, Hkv, G*n, D]
    return out.view(b, hkv, g, n, d).permute(0, 3, 1, 2, 4).reshape(b, n, hq, d)


def _mask(q_pos: torch.Tensor, kv_len: torch.Tensor, max_len: int, sliding_window: int | None) -> torch.Tensor:
    # q_pos: [B, n] absolute positions of the queries; kv_len: [B] valid keys; -> [B, n, L]
    j = torch.arange(max_len, device=q_pos.device)
    m = (j[None, None, :] <= q_pos[:, :, None]) & (j[None, None, :] < kv_len[:, None, None])
    if sliding_window is not None:
        m &= j[None, None, :] > q_pos[:, :, None] - sliding_window
    return m


def paged_attention(
    q: torch.Tensor,  # [T, Hq, D] queries of all sequences, packed
    k_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D] (new keys already written)
    v_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    query_start_loc: torch.Tensor,  # [B+1] int
    seq_lens: torch.Tensor,  # [B] int
    block_tables: torch.Tensor,  # [B, M] int
    scale: float,
    sliding_window: int | None = None,
) -> torch.Tensor:  # [T, Hq, D]
    """Causal attention of a varlen batch over the paged cache (decode and prefill alike)."""
    qsl = query_start_loc.tolist()
    lens = seq_lens.tolist()
    bsz = len(lens)
    q_lens = [qsl[i + 1] - qsl[i] for i in range(bsz)]
    out = torch.empty_like(q)
    decode = [i for i in range(bsz) if q_lens[i] == 1]
    if decode:
        # all single-token queries in one padded batch: [Bd, 1, Hq, D] against [Bd, L, Hkv, D]
        idx = torch.tensor(decode, dtype=torch.long)
        rows = torch.tensor([qsl[i] for i in decode], dtype=torch.long)
        kv_len = seq_lens.long()[idx]
        max_len = max(lens[i] for i in decode)
        k = gather_kv(k_cache, block_tables[idx], max_len)
        v = gather_kv(v_cache, block_tables[idx], max_len)
        mask = _mask((kv_len - 1)[:, None], kv_len, max_len, sliding_window)
        out[rows] = _attend(q[rows][:, None], k, v, mask, scale)[:, 0]
    for i in range(bsz):
        if q_lens[i] == 1:
            continue
        n, seq_len = q_lens[i], lens[i]
        k = gather_kv(k_cache, block_tables[i : i + 1], seq_len)
        v = gather_kv(v_cache, block_tables[i : i + 1], seq_len)
        q_pos = torch.arange(seq_len - n, seq_len)[None]  # [1, n]
        mask = _mask(q_pos, torch.tensor([seq_len]), seq_len, sliding_window)
        out[qsl[i] : qsl[i + 1]] = _attend(q[qsl[i] : qsl[i + 1]][None], k, v, mask, scale)[0]
    return out
