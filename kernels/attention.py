"""Triton paged attention: the KV write and one varlen attention kernel for decode and prefill.

Same signatures and semantics as `kernels.reference.write_kv` / `paged_attention` (see the cache
layout diagram there). One program handles one sequence b, one tile of BLOCK_Q of its query
tokens and one kv head h; the G query heads sharing h are stacked into the rows of the tile:

    tile row r  ->  query token qt * BLOCK_Q + r // G_PAD,  query head h * G + r % G_PAD
    (rows with r % G_PAD >= G or a token past the sequence's query length are padding)

so the K/V tile read from the paged cache serves all G heads at once (GQA), and M = BLOCK_Q *
G_PAD >= 16 rows keeps tl.dot legal for decode (BLOCK_Q = 1 token when G_PAD >= 16). Keys are
read BLOCK_N positions at a time through the block table (one table lookup per position, so
BLOCK_N need not equal the page size). Query token i of a sequence with q_len new tokens and
seq_len context sits at position seq_len - q_len + i and sees keys at positions <= its own
(and > position - sliding_window): this covers decode, chunked prefill and prefix-cache hits.

Long-context decode with few (sequence, kv head) pairs would leave most SMs idle, so an all-decode
batch may also split its keys over SPLITS programs per pair (flash decoding): each writes its
running (max, sum, unnormalized output) and `_combine_splits_kernel` merges them exactly.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


def check_launchable(kernel, tensor: torch.Tensor) -> None:
    """Triton kernels run on CUDA tensors, or anywhere under TRITON_INTERPRET=1 (tests)."""
    if not tensor.is_cuda and type(kernel).__name__ != "InterpretedFunction":
        raise RuntimeError(
            f"{kernel.__name__}: the Triton path needs CUDA tensors (got {tensor.device}); "
            "use kernels.reference on the CPU, or set TRITON_INTERPRET=1 before importing triton"
        )


@triton.jit
def _write_kv_kernel(k_ptr, v_ptr, kc_ptr, vc_ptr, slot_ptr, stride_t, stride_slot, HD, BLOCK: tl.constexpr):
    tok = tl.program_id(0).to(tl.int64)
    slot = tl.load(slot_ptr + tok).to(tl.int64)
    if slot >= 0:
        offs = tl.arange(0, BLOCK)
        m = offs < HD  # one token's Hkv * D values are contiguous in both tensors
        tl.store(kc_ptr + slot * stride_slot + offs, tl.load(k_ptr + tok * stride_t + offs, mask=m), mask=m)
        tl.store(vc_ptr + slot * stride_slot + offs, tl.load(v_ptr + tok * stride_t + offs, mask=m), mask=m)


def write_kv(
    k_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    v_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    k: torch.Tensor,  # [T, Hkv, D]
    v: torch.Tensor,  # [T, Hkv, D]
    slot_mapping: torch.Tensor,  # [T] int64 (< 0: not written)
) -> None:
    """Scatter new keys/values into their cache slots, in place."""
    check_launchable(_write_kv_kernel, k_cache)
    _nb, _bs, hkv, d = k_cache.shape
    if not (k_cache.is_contiguous() and v_cache.is_contiguous()):
        raise ValueError("write_kv: k_cache and v_cache must be contiguous [num_blocks, block_size, Hkv, D]")
    t = k.shape[0]
    if t == 0:
        return
    k = k.to(k_cache.dtype).reshape(t, hkv * d).contiguous()  # [T, Hkv*D]
    v = v.to(v_cache.dtype).reshape(t, hkv * d).contiguous()
    _write_kv_kernel[(t,)](
        k, v, k_cache, v_cache, slot_mapping.contiguous(), k.stride(0), hkv * d, hkv * d,
        BLOCK=triton.next_power_of_2(hkv * d),
    )


@triton.jit
def _paged_attn_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, qsl_ptr, seq_lens_ptr, bt_ptr, part_ptr, part_ml_ptr,
    stride_qt, stride_qh, stride_ot, stride_oh, stride_kb, stride_ks, stride_kh, stride_bt,
    scale, window, G, D, page,
    BLOCK_Q: tl.constexpr, G_PAD: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_WINDOW: tl.constexpr, PRECISION: tl.constexpr, SPLITS: tl.constexpr,
):
    b = tl.program_id(0)
    if SPLITS == 1:
        qt = tl.program_id(1)
    else:  # decode: one query token, axis 1 of the grid is the split of the keys
        qt = 0
    h = tl.program_id(2)
    q0 = tl.load(qsl_ptr + b)
    q_len = tl.load(qsl_ptr + b + 1) - q0
    if qt * BLOCK_Q < q_len:
        seq_len = tl.load(seq_lens_ptr + b)
        rows = tl.arange(0, BLOCK_Q * G_PAD)  # [M]
        tok = qt * BLOCK_Q + rows // G_PAD  # [M] query index within the sequence
        head = h * G + rows % G_PAD  # [M]
        row_ok = (tok < q_len) & (rows % G_PAD < G)
        q_pos = seq_len - q_len + tok  # [M] absolute positions
        d = tl.arange(0, BLOCK_D)
        d_ok = d < D
        q_off = (q0 + tok).to(tl.int64)[:, None] * stride_qt + head[:, None] * stride_qh + d[None, :]
        q = tl.load(q_ptr + q_off, mask=row_ok[:, None] & d_ok[None, :], other=0.0)  # [M, BLOCK_D]
        # keys this tile can see: [lo, hi) with hi = last query position + 1
        hi = tl.minimum(seq_len, seq_len - q_len + (qt + 1) * BLOCK_Q)
        lo = 0
        if HAS_WINDOW:
            lo = tl.maximum(seq_len - q_len + qt * BLOCK_Q - window + 1, 0)
            lo = (lo // BLOCK_N) * BLOCK_N
        if SPLITS > 1:  # this program's share of [lo, hi), a whole number of BLOCK_N tiles
            chunk = tl.cdiv(tl.cdiv(hi - lo, SPLITS), BLOCK_N) * BLOCK_N
            lo = lo + tl.program_id(1) * chunk
            hi = tl.minimum(hi, lo + chunk)
        m_i = tl.full([BLOCK_Q * G_PAD], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_Q * G_PAD], tl.float32)
        acc = tl.zeros([BLOCK_Q * G_PAD, BLOCK_D], tl.float32)
        for n0 in range(lo, hi, BLOCK_N):
            kpos = n0 + tl.arange(0, BLOCK_N)  # [N]
            k_ok = kpos < hi
            blk = tl.load(bt_ptr + b.to(tl.int64) * stride_bt + kpos // page, mask=k_ok, other=0).to(tl.int64)
            kv_off = blk * stride_kb + (kpos % page) * stride_ks + h * stride_kh  # [N]
            kv_mask = k_ok[:, None] & d_ok[None, :]
            k = tl.load(k_ptr + kv_off[:, None] + d[None, :], mask=kv_mask, other=0.0)  # [N, BLOCK_D]
            v = tl.load(v_ptr + kv_off[:, None] + d[None, :], mask=kv_mask, other=0.0)  # [N, BLOCK_D]
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale  # [M, N] float32
            vis = (kpos[None, :] <= q_pos[:, None]) & k_ok[None, :]
            if HAS_WINDOW:
                vis = vis & (kpos[None, :] > q_pos[:, None] - window)
            s = tl.where(vis, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))  # [M]
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with nothing visible yet
            p = tl.exp(s - m_safe[:, None])  # [M, N]
            alpha = tl.exp(m_i - m_safe)  # [M]
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
            m_i = m_new
        if SPLITS == 1:
            out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]
            o_off = (q0 + tok).to(tl.int64)[:, None] * stride_ot + head[:, None] * stride_oh + d[None, :]
            tl.store(o_ptr + o_off, out.to(o_ptr.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])
        else:
            # partial state of rows r < G_PAD (token 0): part [B, Hkv, SPLITS, G_PAD, BLOCK_D],
            # part_ml [B, Hkv, SPLITS, 2, G_PAD] = (running max, running sum); empty splits keep -inf / 0
            base = (b * tl.num_programs(2) + h).to(tl.int64) * SPLITS + tl.program_id(1)
            first = rows < G_PAD
            tl.store(part_ptr + base * G_PAD * BLOCK_D + rows[:, None] * BLOCK_D + d[None, :], acc,
                     mask=first[:, None])
            tl.store(part_ml_ptr + base * 2 * G_PAD + rows, m_i, mask=first)
            tl.store(part_ml_ptr + base * 2 * G_PAD + G_PAD + rows, l_i, mask=first)


@triton.jit
def _combine_splits_kernel(
    part_ptr, part_ml_ptr, o_ptr, qsl_ptr, stride_ot, stride_oh, G, D,
    SPLITS: tl.constexpr, G_PAD: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s for one (sequence, kv head)."""
    b = tl.program_id(0)
    h = tl.program_id(1)
    sp = tl.arange(0, SPLITS)
    g = tl.arange(0, G_PAD)
    d = tl.arange(0, BLOCK_D)
    base = (b * tl.num_programs(1) + h).to(tl.int64) * SPLITS + sp  # [S]
    m = tl.load(part_ml_ptr + base[:, None] * 2 * G_PAD + g[None, :])  # [S, G_PAD]
    l_s = tl.load(part_ml_ptr + base[:, None] * 2 * G_PAD + G_PAD + g[None, :])  # [S, G_PAD]
    acc = tl.load(part_ptr + (base[:, None, None] * G_PAD + g[None, :, None]) * BLOCK_D + d[None, None, :])
    m_all = tl.max(m, 0)  # [G_PAD]
    m_all = tl.where(m_all == float("-inf"), 0.0, m_all)
    w = tl.exp(m - m_all[None, :])  # [S, G_PAD]; 0 for empty splits
    den = tl.sum(w * l_s, 0)  # [G_PAD]
    out = tl.sum(w[:, :, None] * acc, 0) / tl.where(den > 0, den, 1.0)[:, None]  # [G_PAD, BLOCK_D]
    row = tl.load(qsl_ptr + b).to(tl.int64)
    o_off = row * stride_ot + (h * G + g)[:, None] * stride_oh + d[None, :]
    tl.store(o_ptr + o_off, out.to(o_ptr.dtype.element_ty), mask=(g < G)[:, None] & (d < D)[None, :])


def decode_splits(batch: int, num_kv_heads: int, max_context: int, device: torch.device) -> int:
    """Split-KV ("flash decoding") factor for an all-decode batch: enough programs to fill the
    GPU (~4 per SM) when batch * Hkv is small, each split keeping >= 512 keys; 1 on the CPU."""
    if device.type != "cuda":
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    want = max(1, (4 * sms) // max(1, batch * num_kv_heads))
    return min(triton.next_power_of_2(want), 64, triton.next_power_of_2(triton.cdiv(max_context, 512)))


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
    num_splits: int | None = None,
) -> torch.Tensor:  # [T, Hq, D]
    """Causal attention of a varlen batch over the paged cache (decode and prefill alike).

    max_query_len (optional, as in ForwardBatch) saves a device-to-host read of query_start_loc;
    1 declares an all-decode batch, which may then be split along the keys (num_splits, a power
    of 2; by default `decode_splits` picks it from the GPU's size, 1 on the CPU)."""
    check_launchable(_paged_attn_kernel, q)
    t, hq, d = q.shape
    _nb, page, hkv, _ = k_cache.shape
    if hq % hkv or k_cache.stride(3) != 1 or q.stride(2) != 1 or k_cache.stride() != v_cache.stride():
        raise ValueError("paged_attention: Hq must be a multiple of Hkv; q and the caches need unit stride on D")
    bsz = seq_lens.shape[0]
    out = torch.empty_like(q)
    if t == 0 or bsz == 0:
        return out
    g = hq // hkv
    g_pad = triton.next_power_of_2(g)
    if max_query_len is None:
        max_query_len = int((query_start_loc[1:] - query_start_loc[:-1]).max())
    block_q = max(1, 16 // g_pad) if max_query_len == 1 else max(1, 64 // g_pad)
    grid = (bsz, triton.cdiv(max_query_len, block_q), hkv)
    bt = block_tables.contiguous()
    splits = num_splits
    if splits is None:
        splits = decode_splits(bsz, hkv, bt.shape[1] * page, q.device) if max_query_len == 1 else 1
    block_d = max(16, triton.next_power_of_2(d))
    if splits > 1:  # decode only: axis 1 of the grid is the split
        if max_query_len != 1 or splits & (splits - 1):
            raise ValueError("num_splits > 1 needs an all-decode batch (max_query_len=1) and a power of 2")
        grid = (bsz, splits, hkv)
        part = torch.empty(bsz, hkv, splits, g_pad, block_d, device=q.device, dtype=torch.float32)
        part_ml = torch.empty(bsz, hkv, splits, 2, g_pad, device=q.device, dtype=torch.float32)
    else:
        part = part_ml = out  # unused
    qsl = query_start_loc.contiguous()
    _paged_attn_kernel[grid](
        q, k_cache, v_cache, out, qsl, seq_lens.contiguous(), bt, part, part_ml,
        q.stride(0), q.stride(1), out.stride(0), out.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2), bt.stride(0),
        float(scale), int(sliding_window or 0), g, d, page,
        BLOCK_Q=block_q, G_PAD=g_pad, BLOCK_N=64, BLOCK_D=block_d,
        HAS_WINDOW=sliding_window is not None, PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        SPLITS=splits,
    )
    if splits > 1:
        _combine_splits_kernel[(bsz, hkv)](
            part, part_ml, out, qsl, out.stride(0), out.stride(1), g, d,
            SPLITS=splits, G_PAD=g_pad, BLOCK_D=block_d,
        )
    return out
