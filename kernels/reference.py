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

import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """s = x + residual (x itself when residual is None); returns (s, RMSNorm(s) * weight).

    The decoder's residual stream: each sub-layer's output is added to the residual and the sum is
    normalized for the next sub-layer, so backends may fuse the add and the norm."""
    total = x if residual is None else x + residual
    return total, F.rms_norm(total, total.shape[-1:], weight, eps)


def pack_linear(weight: torch.Tensor) -> torch.Tensor:
    """The reference keeps a linear's [N, K] weight as it is (backends may re-lay it out once)."""
    return weight


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [..., K] @ weight[N, K].T + bias: what every backend's `linear` must equal."""
    return F.linear(x, weight, bias)


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


def rope_write_kv(
    qkv: torch.Tensor,  # [T, (Hq + 2 Hkv) D] the fused projection's output: q | k | v
    num_heads: int,
    num_kv_heads: int,
    rope_table: torch.Tensor,  # [P, D] cos in the first half, sin in the second
    positions: torch.Tensor,  # [T] int64
    k_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    v_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    slot_mapping: torch.Tensor,  # [T] int64 (< 0: not written)
) -> torch.Tensor:  # [T, Hq, D] rotated queries
    """Rotary embedding (rotate-half form: halves are the real and imaginary parts) on q and k,
    then k and v scattered into their cache slots; returns the rotated queries."""
    t, d = qkv.shape[0], rope_table.shape[1]
    qk = qkv[:, : (num_heads + num_kv_heads) * d].view(t, num_heads + num_kv_heads, d)
    v = qkv[:, (num_heads + num_kv_heads) * d :].view(t, num_kv_heads, d)
    cos, sin = rope_table[positions].chunk(2, dim=-1)  # [T, D/2] each
    cos, sin = cos[:, None], sin[:, None]
    x1, x2 = qk.chunk(2, dim=-1)
    qk = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    write_kv(k_cache, v_cache, qk[:, num_heads:], v, slot_mapping)
    return qk[:, :num_heads]


def gather_kv(
    cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    block_tables: torch.Tensor,  # [B, M] int
    max_len: int,
    out: torch.Tensor | None = None,  # optional flat buffer of cache.dtype to gather into
) -> torch.Tensor:  # [B, max_len, Hkv, D]
    """Read the first max_len positions of each sequence out of the paged cache."""
    _nb, bs, hkv, d = cache.shape
    nblk = (max_len + bs - 1) // bs
    idx = block_tables[:, :nblk].reshape(-1).long()  # [B * nblk] block ids, row-major
    if out is None:
        blocks = cache.index_select(0, idx)  # [B * nblk, bs, Hkv, D]
    else:
        blocks = torch.index_select(cache, 0, idx, out=out[: idx.numel() * bs * hkv * d].view(-1, bs, hkv, d))
    return blocks.view(block_tables.shape[0], nblk * bs, hkv, d)[:, :max_len]


class _Workspace(threading.local):
    """Per-thread gather buffers, reused across calls and layers. A fresh multi-MB CPU tensor
    per call page-faults on first touch: with reuse a 64 x 400-token decode layer costs ~21 ms
    of CPU instead of ~75 ms. Buffers above 256 MiB are not kept."""

    def __init__(self) -> None:
        self.bufs: dict[tuple, torch.Tensor] = {}

    def get(self, name: str, numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
        if device.type != "cpu" or numel * dtype.itemsize > 256 << 20:
            return None  # the CUDA caching allocator already reuses memory
        buf = self.bufs.get((name, dtype))
        if buf is None or buf.numel() < numel:
            with torch.inference_mode(False):  # a normal tensor: writable in and out of inference mode
                buf = self.bufs[(name, dtype)] = torch.empty(numel + numel // 4, dtype=dtype)
        return buf


_WORKSPACE = _Workspace()


def _scratch(name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor | None:
    """A reused float32 [shape] buffer for a temporary that dies within the call (CPU only)."""
    n = 1
    for dim in shape:
        n *= dim
    buf = _WORKSPACE.get(name, n, torch.float32, like.device)
    return None if buf is None else buf[:n].view(shape)


def _gather_pair(k_cache: torch.Tensor, v_cache: torch.Tensor, tables: torch.Tensor, max_len: int):
    """K and V of each sequence ([B, max_len, Hkv, D] each), gathered into the workspace."""
    _nb, bs, hkv, d = k_cache.shape
    numel = tables.shape[0] * ((max_len + bs - 1) // bs) * bs * hkv * d
    k = gather_kv(k_cache, tables, max_len, _WORKSPACE.get("k", numel, k_cache.dtype, k_cache.device))
    v = gather_kv(v_cache, tables, max_len, _WORKSPACE.get("v", numel, v_cache.dtype, v_cache.device))
    return k, v


_SDPA_GQA = tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 5)  # enable_gqa


def _attend(
    q: torch.Tensor,  # [B, n, Hq, D]
    k: torch.Tensor,  # [B, L, Hkv, D]
    v: torch.Tensor,  # [B, L, Hkv, D]
    mask: torch.Tensor,  # [B, n, L] bool, True = may attend (every query sees at least itself)
    scale: float,
) -> torch.Tensor:  # [B, n, Hq, D]
    """Masked GQA attention through torch's fused SDPA (no [B, H, n, L] float scores on the CPU
    flash path; ~3x faster than matmul + masked softmax for a 64 x 400-token decode batch)."""
    hq, hkv = q.shape[2], k.shape[2]
    qt = q.transpose(1, 2).contiguous()  # [B, Hq, n, D] (a strided q sends SDPA off its fast path)
    kt, vt = k.transpose(1, 2), v.transpose(1, 2)  # [B, Hkv, L, D] views
    kw = {}
    if hq != hkv:
        if _SDPA_GQA:
            kw["enable_gqa"] = True
        else:
            kt, vt = kt.repeat_interleave(hq // hkv, 1), vt.repeat_interleave(hq // hkv, 1)
    out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask[:, None], scale=scale, **kw)
    return out.transpose(1, 2)  # [B, n, Hq, D]


def _mask(q_pos: torch.Tensor, kv_len: torch.Tensor, max_len: int, sliding_window: int | None) -> torch.Tensor:
    # q_pos: [B, n] absolute positions of the queries; kv_len: [B] valid keys; -> [B, n, L]
    j = torch.arange(max_len, device=q_pos.device)
    m = (j[None, None, :] <= q_pos[:, :, None]) & (j[None, None, :] < kv_len[:, None, None])
    if sliding_window is not None:
        m &= j[None, None, :] > q_pos[:, :, None] - sliding_window
    return m


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """[T, 2I] fused gate|up matmul output -> [T, I] silu(gate) * up (the gated MLP's middle)."""
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate) * up


def paged_attention(
    q: torch.Tensor,  # [T, Hq, D] queries of all sequences, packed
    k_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D] (new keys already written)
    v_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    query_start_loc: torch.Tensor,  # [B+1] int
    seq_lens: torch.Tensor,  # [B] int
    block_tables: torch.Tensor,  # [B, M] int
    scale: float,
    sliding_window: int | None = None,
    max_query_len: int | None = None,
    decode_fn: Callable[..., torch.Tensor | None] | None = None,
) -> torch.Tensor:  # [T, Hq, D]
    """Causal attention of a varlen batch over the paged cache (decode and prefill alike).

    max_query_len (optional, as in ForwardBatch): 1 declares an all-decode batch (one query per
    sequence, query_start_loc = 0..B), skipping the split into decode and prefill rows.
    decode_fn (optional): computes the single-query rows straight from the cache
    (q, k_cache, v_cache, tables, kv_len, scale, sliding_window, max_len) -> [Bd, Hq, D], or
    returns None to leave them to the gather + SDPA path (see kernels/cpu_native.py)."""
    dev = q.device
    lens = seq_lens.tolist()
    bsz = len(lens)
    out = torch.empty_like(q)
    if max_query_len == 1:
        decode, rest, rows = list(range(bsz)), [], None
    else:
        qsl = query_start_loc.tolist()
        q_lens = [qsl[i + 1] - qsl[i] for i in range(bsz)]
        decode = [i for i in range(bsz) if q_lens[i] == 1]
        rest = [i for i in range(bsz) if q_lens[i] > 1]
        rows = torch.tensor([qsl[i] for i in decode], dtype=torch.long, device=dev)
    if decode:
        # all single-token queries in one padded batch: [Bd, 1, Hq, D] against [Bd, L, Hkv, D]
        idx = None if rows is None else torch.tensor(decode, dtype=torch.long, device=dev)
        tables = block_tables if idx is None else block_tables[idx]
        kv_len = seq_lens.to(dev).long() if idx is None else seq_lens.to(dev).long()[idx]  # [Bd]
        max_len = max(lens[i] for i in decode)
        q_dec = q[:bsz] if rows is None else q[rows]  # [Bd, Hq, D]
        o = None if decode_fn is None else decode_fn(q_dec, k_cache, v_cache, tables, kv_len, scale,
                                                     sliding_window, max_len)
        if o is None:
            k, v = _gather_pair(k_cache, v_cache, tables, max_len)
            mask = _mask((kv_len - 1)[:, None], kv_len, max_len, sliding_window)
            o = _attend(q_dec[:, None], k, v, mask, scale)[:, 0]
        if rows is None:
            out[:bsz] = o
        else:
            out[rows] = o
    for i in rest:
        n, seq_len = q_lens[i], lens[i]
        k, v = _gather_pair(k_cache, v_cache, block_tables[i : i + 1], seq_len)
        q_pos = torch.arange(seq_len - n, seq_len, device=dev)[None]  # [1, n]
        mask = _mask(q_pos, torch.tensor([seq_len], device=dev), seq_len, sliding_window)
        out[qsl[i] : qsl[i + 1]] = _attend(q[qsl[i] : qsl[i + 1]][None], k, v, mask, scale)[0]
    return out


# Sampling: the transform order is fixed by the docstring of kernels/sampling.py.


@dataclass
class SamplingTensors:
    """One row per sequence sampled this step (B rows)."""

    temperature: torch.Tensor  # [B] float32; 0 -> greedy (argmax) for that row
    top_p: torch.Tensor  # [B] float32; 1.0 = off
    top_k: torch.Tensor  # [B] int32; 0 = off
    min_p: torch.Tensor  # [B] float32; 0 = off
    seeds: torch.Tensor  # [B] int64 per-request seed
    positions: torch.Tensor  # [B] int64 Philox counter: index of the output token being drawn
    repetition_penalty: torch.Tensor  # [B] float32; 1.0 = off
    presence_penalty: torch.Tensor  # [B] float32; 0 = off
    frequency_penalty: torch.Tensor  # [B] float32; 0 = off
    bitmask: torch.Tensor | None = None  # [B, ceil(V_tok/32)] int32, bit = 1 allowed
    logit_bias: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # (rows, ids, values)
    output_token_counts: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # (rows, ids, counts)
    prompt_token_mask: tuple[torch.Tensor, torch.Tensor] | None = None  # (rows, ids)
    vocab_size: int = 0  # V_tok; logits columns >= V_tok are always masked
    num_logprobs: int = 0  # max top-logprobs asked by any row (0 = none)
    all_greedy: bool = False
    any_penalties: bool = False  # repetition, presence or frequency present in some row
    any_top_p_top_k: bool = False
    any_min_p: bool = False


@dataclass
class SamplerOutput:
    token_ids: torch.Tensor  # [B] int64
    logprobs: torch.Tensor  # [B] float32 raw logprob of the chosen token
    top_ids: torch.Tensor | None = None  # [B, num_logprobs] int64
    top_logprobs: torch.Tensor | None = None  # [B, num_logprobs] float32


_MASK32 = 0xFFFFFFFF
_PHILOX_M0, _PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
_PHILOX_W0, _PHILOX_W1 = 0x9E3779B9, 0xBB67AE85


def _mulhilo32(a: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    # a: int64 holding uint32; a*b needs 64 bits unsigned, so split b in 16-bit halves:
    # a*b = y*2^16 + x with x = a*b_lo < 2^48, y = a*b_hi < 2^48 (no int64 overflow).
    x, y = a * (b & 0xFFFF), a * (b >> 16)
    hi = (y + (x >> 16)) >> 16
    lo = (((y & 0xFFFF) << 16) + x) & _MASK32
    return hi, lo


def philox_uniform(seeds: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Philox4x32-10 with key = seed (2 x 32 bits), counter = (position lo, position hi, 0, 0).

    Returns u = (word0 >> 9) * 2^-23 in [0, 1 - 2^-23], float32 [B]. The draw depends only on
    (seed, position): never on the batch row. Triton's `_philox_uniform` computes the same bits.
    """
    s, p = seeds.long(), positions.long()  # [B]
    c0, c1 = p & _MASK32, (p >> 32) & _MASK32
    c2, c3 = torch.zeros_like(c0), torch.zeros_like(c0)
    k0, k1 = s & _MASK32, (s >> 32) & _MASK32
    for _ in range(10):
        hi0, lo0 = _mulhilo32(c0, _PHILOX_M0)
        hi1, lo1 = _mulhilo32(c2, _PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + _PHILOX_W0) & _MASK32, (k1 + _PHILOX_W1) & _MASK32
    return (c0 >> 9).to(torch.float32) * (2.0**-23)


@dataclass
class SparseEdits:
    """Bias and penalties merged into one entry per distinct (row, token) pair, N entries."""

    rows: torch.Tensor  # [N] int64
    tokens: torch.Tensor  # [N] int64, < V_tok
    bias: torch.Tensor  # [N] float32 summed logit bias
    counts: torch.Tensor  # [N] float32 occurrences in the output so far
    in_prompt: torch.Tensor  # [N] bool


def merge_sparse(t: SamplingTensors, device: torch.device) -> SparseEdits | None:
    """Merge the three sparse inputs; O(N log N) in the number of entries, never O(B * V).

    Count and prompt entries are skipped unless `t.any_penalties` (without penalties they are
    no-ops); logit bias entries always apply."""
    counts = t.output_token_counts if t.any_penalties else None
    prompt = t.prompt_token_mask if t.any_penalties else None
    if all(p is None or p[0].numel() == 0 for p in (t.logit_bias, counts, prompt)):
        return None
    v = t.vocab_size

    def valid(*cols: torch.Tensor) -> list[torch.Tensor]:  # drop ids outside [0, V): masked anyway
        cols = [c.to(device) for c in cols]
        keep = (cols[1] >= 0) & (cols[1] < v)
        return [c[keep] for c in cols]

    e = torch.empty(0, dtype=torch.long, device=device)
    bias = valid(*t.logit_bias) if t.logit_bias is not None else [e, e, e.float()]
    cnt = valid(*counts) if counts is not None else [e, e, e]
    prm = valid(*prompt) if prompt is not None else [e, e]
    keys = torch.cat([r.long() * v + i.long() for r, i in (bias[:2], cnt[:2], prm)])  # row-major ids
    nb, nc = bias[0].numel(), cnt[0].numel()
    uniq, inv = torch.unique(keys, return_inverse=True)  # [N], [nb + nc + np]
    n = uniq.numel()
    bsum = torch.zeros(n, device=device).index_add_(0, inv[:nb], bias[2].float())
    csum = torch.zeros(n, device=device).index_add_(0, inv[nb : nb + nc], cnt[2].float())
    in_prompt = torch.zeros(n, dtype=torch.bool, device=device)
    in_prompt[inv[nb + nc :]] = True
    return SparseEdits(uniq // v, uniq % v, bsum, csum, in_prompt)


def apply_sparse(x: torch.Tensor, e: SparseEdits, t: SamplingTensors) -> torch.Tensor:
    """x [B, W] float32, edited in place: bias -> repetition -> presence/frequency. Returns the
    old values [N] so that the caller can restore x."""
    flat = e.rows * x.stride(0) + e.tokens  # [N] index into x.view(-1) (x rows contiguous)
    xf = x.view(-1)
    old = xf[flat]  # [N]
    val = old + e.bias
    rp = t.repetition_penalty.to(x.device)[e.rows]  # [N]
    seen = e.in_prompt | (e.counts > 0)
    val = torch.where(seen, torch.where(val > 0, val / rp, val * rp), val)
    val = val - e.counts * t.frequency_penalty.to(x.device)[e.rows]
    val = val - (e.counts > 0).float() * t.presence_penalty.to(x.device)[e.rows]
    xf[flat] = val
    return old


_BYTE_BIAS: dict[torch.device, torch.Tensor] = {}


def mask_bias(bitmask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """[B, ceil(V/32)] int32 -> [B, V] float32 additive mask: 0.0 where allowed, -inf elsewhere.

    Bit t % 32 of word t // 32 (little-endian). One [256, 8] table row per byte of the mask: on
    the CPU this is ~6x cheaper than unpacking to bool and masked_fill (4 ms vs 25 ms for
    64 x 49,152 on one core). Assumes a little-endian host (x86, ARM, CUDA)."""
    dev = bitmask.device
    if dev not in _BYTE_BIAS:
        bits = (torch.arange(256, device=dev)[:, None] >> torch.arange(8, device=dev)) & 1  # [256, 8]
        _BYTE_BIAS[dev] = torch.where(bits.bool(), 0.0, float("-inf"))
    b, nw = bitmask.shape[0], (vocab_size + 31) // 32
    byte_ids = bitmask[:, :nw].contiguous().view(torch.uint8).reshape(-1).long()  # [B * nw * 4]
    return _BYTE_BIAS[dev].index_select(0, byte_ids).view(b, nw * 32)[:, :vocab_size]


def apply_bitmask(raw: torch.Tensor, bitmask: torch.Tensor, vocab_size: int,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """[B, V] logits with the tokens the bitmask forbids set to -inf (a new tensor, or `out`)."""
    return torch.add(raw, mask_bias(bitmask.to(raw.device), vocab_size), out=out)


def unpack_bitmask(bitmask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """[B, ceil(V/32)] int32 -> [B, V] bool, True = allowed."""
    return mask_bias(bitmask, vocab_size) == 0


def inverse_temperature(temperature: torch.Tensor) -> torch.Tensor:
    """[B] -> [B] float32 r = fl(1 / T), 0 for greedy rows (T == 0); both paths use s = x * r."""
    temp = temperature.float()
    return torch.where(temp > 0, 1.0 / torch.where(temp > 0, temp, 1.0), 0.0)


def _topk_threshold(s: torch.Tensor, top_k: torch.Tensor) -> torch.Tensor:
    # s [B, V]; -> [B] k-th largest value (ties kept by the caller's >=); -inf where k is off
    kmax = min(int(top_k.max()), s.shape[1])
    if kmax <= 0:
        return torch.full_like(s[:, 0], float("-inf"))
    vals = torch.topk(s, kmax, dim=-1).values  # [B, kmax] descending
    k = top_k.long().clamp(1, kmax)
    kth = vals.gather(1, (k - 1)[:, None])[:, 0]
    return torch.where((top_k > 0) & (top_k < s.shape[1]), kth, float("-inf"))


def _topp_threshold(s: torch.Tensor, w: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    # Keep token i iff the mass of survivors strictly above it is < p * Z. Sorted descending, the
    # exclusive cumsum is non-decreasing, so the kept set is a prefix; its last value is the
    # threshold and ties with it are kept by >= (so the rule never splits equal logits).
    z = w.sum(-1, keepdim=True)  # [B, 1]
    target = top_p[:, None] * z
    kcap = min(s.shape[1], 1024)  # try a partial sort first: top-p usually keeps few tokens
    for k in (kcap, s.shape[1]):
        sv, si = torch.topk(s, k, dim=-1)  # [B, k]
        ws = w.gather(1, si)
        excl = torch.cumsum(ws, -1) - ws  # [B, k] mass strictly before each sorted position
        n_keep = (excl < target).sum(-1)  # [B] >= 1 since excl[0] = 0 < target
        if k == s.shape[1] or bool((n_keep < k).all()):
            break
    th = sv.gather(1, (n_keep - 1).clamp(min=0)[:, None])[:, 0]
    return torch.where(top_p < 1.0, th, float("-inf"))


def _inverse_cdf(w: torch.Tensor, u: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """First column whose cumulative weight exceeds u * total, per row of w [B, V] >= 0; -1 for a
    row with no weight. Two levels, like the Triton kernel's tiles: chunk sums, then a cumsum
    inside the one chunk that crosses the target (no full [B, V] cumsum)."""
    b, v = w.shape
    nfull = v // chunk
    sums = [w[:, : nfull * chunk].view(b, nfull, chunk).sum(-1)] if nfull else []
    if v % chunk:
        sums.append(w[:, nfull * chunk :].sum(-1, keepdim=True))
    csum = torch.cumsum(torch.cat(sums, 1), 1)  # [B, nC] running total after each chunk
    total = csum[:, -1]
    target = u * total  # [B]; u <= 1 - 2^-23 so target < total: some chunk crosses it
    j = torch.searchsorted(csum, target[:, None], right=True)[:, 0].clamp(max=csum.shape[1] - 1)  # [B]
    base = torch.where(j > 0, csum.gather(1, (j - 1).clamp(min=0)[:, None])[:, 0], 0.0)  # [B]
    cols = j[:, None] * chunk + torch.arange(chunk, device=w.device)  # [B, C]
    wc = torch.where(cols < v, w.gather(1, cols.clamp(max=v - 1)), 0.0)  # [B, C]
    cum = base[:, None] + torch.cumsum(wc, 1)  # [B, C]
    hit = (cum > target[:, None]) & (wc > 0)
    pos = wc > 0  # rounding fallback: the chunk's last positive weight
    last = chunk - 1 - pos.flip(1).int().argmax(1)
    tok = j * chunk + torch.where(hit.any(1), hit.int().argmax(1), last)
    return torch.where((total > 0) & pos.any(1), tok, -1)


def _sample_rows(x: torch.Tensor, t: SamplingTensors, fallback: torch.Tensor, xmax: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling, in vocabulary order, of every row of x [B, V] (masked, penalized).

    xmax [B] = x.max(-1); fallback [B] = argmax, used for rows with no allowed token. The
    weights are softmax(s) restricted to the survivors of min-p, top-k and top-p; the Triton
    kernel uses exp(s - max) unnormalized: the same draw up to float rounding."""
    dev = x.device
    inv_t = inverse_temperature(t.temperature.to(dev))  # [B]
    inv_t = torch.where(inv_t > 0, inv_t, 1.0)  # greedy rows: any finite scale, result unused
    s = torch.mul(x, inv_t[:, None], out=_scratch("s", x.shape, x))  # [B, V]
    m = xmax * inv_t  # [B] == s.max(-1): rounding of x * r is monotone in x
    dead = torch.isneginf(m)  # rows with no allowed token: their softmax would be NaN
    if bool(dead.any()):
        s = s.masked_fill(dead[:, None], 0.0)
        m = torch.where(dead, 0.0, m)
    w = torch.softmax(s, -1, out=_scratch("w", s.shape, s))  # [B, V]; masked tokens (-inf) -> 0
    th = None
    if t.any_min_p:
        mp = t.min_p.to(dev)
        th = torch.where(mp > 0, m + torch.log(mp), float("-inf"))
    if t.any_top_p_top_k:
        kth = _topk_threshold(s, t.top_k.to(dev))
        th = kth if th is None else torch.maximum(th, kth)
    if th is not None:
        w = torch.where(s >= th[:, None], w, 0.0)
    if t.any_top_p_top_k:
        w = torch.where(s >= _topp_threshold(s, w, t.top_p.to(dev))[:, None], w, 0.0)
    tok = _inverse_cdf(w, philox_uniform(t.seeds.to(dev), t.positions.to(dev)))
    return torch.where(~dead & (tok >= 0), tok, fallback)


def sample_reference(logits: torch.Tensor, t: SamplingTensors, apply_mask=apply_bitmask) -> SamplerOutput:
    """The torch specification of kernels.sampling.sample (and the engine's CPU sampler).
    apply_mask: how the grammar bitmask reaches the logits (the CPU backend passes the C pass of
    kernels.cpu_native, which gives the same values)."""
    v = t.vocab_size
    raw = logits[:, :v].float()  # [B, V] (a view when logits are float32)
    # [B, V] raw logprobs: one fused pass, cheaper than logsumexp on the CPU. Every [B, V]
    # temporary goes to a reused scratch buffer (fresh multi-MB tensors page-fault each step).
    logp = torch.log_softmax(raw, -1, out=_scratch("logp", raw.shape, raw))
    top_ids = top_lp = None
    if t.num_logprobs > 0:
        top_lp, top_ids = torch.topk(logp, t.num_logprobs, dim=-1)  # [B, n]
    x = raw
    if t.bitmask is not None:  # a new tensor: raw stays untouched
        x = apply_mask(raw, t.bitmask.to(logits.device), v, _scratch("x", raw.shape, raw))
    edits = merge_sparse(t, logits.device)
    if edits is not None:  # masked entries stay -inf under bias and penalties: order-free
        if x is raw:
            buf = _scratch("x", raw.shape, raw)
            x = raw.clone(memory_format=torch.contiguous_format) if buf is None else buf.copy_(raw)
        apply_sparse(x, edits, t)
    xmax, tok = x.max(-1)  # [B] greedy (first maximum on ties)
    if not t.all_greedy:
        sampled = _sample_rows(x, t, tok, xmax)
        tok = torch.where(t.temperature.to(logits.device) > 0, sampled, tok)
    return SamplerOutput(tok, logp.gather(1, tok[:, None])[:, 0], top_ids, top_lp)
