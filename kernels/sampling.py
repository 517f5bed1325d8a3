"""Fused sampling: one Triton program per row, streaming the vocabulary in tiles.

Each pass over the row (argmax, the top-k and top-p key searches, the normalizer) keeps per-lane
accumulators and reduces them once at the end of the pass, not once per tile: the per-tile
reductions cost more than the tile's arithmetic (masked top-p 3.0-3.4x faster on an H100).

The order of transforms (the torch reference `kernels.reference.sample_reference` and the
Triton kernel below both follow it; `s` is the row after step 5):

 1. grammar mask: columns whose bit is 0 in `bitmask` ([B, ceil(V_tok/32)] int32, little-endian
    bits, bit = 1 allowed) and every column >= V_tok (model padding) become -inf.
 2. logit bias: x[t] += bias[t] (sparse entries; several entries for one token add up).
 3. repetition penalty p (tokens seen in the prompt or the output): x > 0 -> x / p, else x * p.
 4. presence and frequency penalties (output counts c): x -= c * frequency + (c > 0) * presence.
 5. temperature T: s = x * r with r = 1/T rounded to float32 once per row (a multiply is exact-
    rounded everywhere and 5x cheaper than a divide on the CPU). T == 0 means greedy: the row's
    token is the argmax of x (first maximum on ties) and steps 6-9 are skipped.
 6. min-p: keep s >= max(s) + log(min_p)  (i.e. prob >= min_p * max prob).
 7. top-k: keep s >= the k-th largest s (ties with it are kept).
 8. top-p, over the survivors: keep token i iff the survivors' probability mass strictly above
    s_i is < top_p (so equal logits are kept or dropped together; the top token always stays).
 9. sample: u = Philox4x32-10(key = seed, counter = position) -> u in [0, 1 - 2^-23]; the token
    is the first one, in vocabulary order, whose cumulative weight exceeds u * total weight
    (inverse CDF over exp(s - max) restricted to the survivors). The draw depends on seed and
    position only: never on the batch row or the batch's other requests. A row with no allowed
    token returns its argmax (token 0 when every column is masked).

Logprobs, like vLLM's default: `logprobs` and `top_logprobs` come from the model's raw
distribution, log_softmax of logits[:, :V_tok] before any transform above (mask, penalties,
temperature included).

Penalty inputs are sparse (rows, token ids): they are merged once per step into one entry per
(row, token) (O(N log N) in the entries, never O(B * V)) and applied as a gather/scatter on the
logits before the row kernel runs; on the Triton path the edited entries are restored afterwards,
so the caller's logits are unchanged. Equal results between the two paths are exact for greedy
tokens and exact for sampled tokens except when u * total falls within float rounding of a
cumulative-weight boundary (probability ~1e-6 per draw; tests use seeds away from it).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.attention import check_launchable
from kernels.reference import (
    SamplerOutput,
    SamplingTensors,
    apply_sparse,
    inverse_temperature,
    merge_sparse,
    sample_reference,
)

__all__ = ["SamplerOutput", "SamplingTensors", "sample", "sample_reference", "sample_triton"]


@triton.jit
def _philox_uniform(seed, pos):
    """Philox4x32-10 (see reference.philox_uniform): int64 scalars -> float32 in [0, 1 - 2^-23]."""
    c0 = (pos & 0xFFFFFFFF).to(tl.uint32)
    c1 = ((pos >> 32) & 0xFFFFFFFF).to(tl.uint32)
    c2 = c0 * 0
    c3 = c0 * 0
    k0 = (seed & 0xFFFFFFFF).to(tl.uint32)
    k1 = ((seed >> 32) & 0xFFFFFFFF).to(tl.uint32)
    m0 = (c0 * 0 + 0xD2511F53).to(tl.uint32)
    m1 = (c0 * 0 + 0xCD9E8D57).to(tl.uint32)
    for _ in tl.static_range(10):
        hi0 = tl.umulhi(m0, c0)
        lo0 = m0 * c0
        hi1 = tl.umulhi(m1, c2)
        lo1 = m1 * c2
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = k0 + 0x9E3779B9
        k1 = k1 + 0xBB67AE85
    return (c0 >> 9).to(tl.float32) * (1.0 / 8388608.0)


@triton.jit
def _load_tile(row_ptr, mask_row_ptr, start, V, BLOCK: tl.constexpr, HAS_MASK: tl.constexpr):
    """Tile [BLOCK] of one row: (column ids, logits as float32 with masked columns at -inf)."""
    offs = start + tl.arange(0, BLOCK)
    inb = offs < V  # columns >= V_tok (model padding) are masked like disallowed tokens
    x = tl.load(row_ptr + offs, mask=inb, other=float("-inf")).to(tl.float32)
    if HAS_MASK:
        words = tl.load(mask_row_ptr + offs // 32, mask=inb, other=0)  # [BLOCK] int32
        x = tl.where(((words >> (offs % 32)) & 1) != 0, x, float("-inf"))
    return offs, x


@triton.jit
def _key(s):
    """Monotone float32 -> int64 key: a < b  <=>  key(a) < key(b) (for non-NaN floats)."""
    b = s.to(tl.int32, bitcast=True)
    return tl.where(b >= 0, b, b ^ 0x7FFFFFFF).to(tl.int64)


@triton.jit
def _pivot(lo, hi, ksum, cnt, it):
    """Next key to test inside (lo, hi): the mean key of the tokens strictly inside (a split near
    their median: ~15 passes for 150k tokens instead of 32), or the midpoint for the first pass
    and after 24 passes (so the search stays bounded by ~56 passes on any data)."""
    mid = lo + (hi - lo) // 2
    mean = ksum // tl.maximum(cnt, 1)
    use_mean = (it > 0) & (it < 24) & (cnt > 0)
    return tl.where(use_mean, tl.minimum(tl.maximum(mean, lo + 1), hi - 1), mid)


@triton.jit
def _topk_key(row_ptr, mask_row_ptr, V, inv_t, k, n_ok, lo, hi, BLOCK: tl.constexpr, HAS_MASK: tl.constexpr):
    """Search on keys: returns key(k-th largest s). Invariant: count(s >= lo) >= k > count(s >= hi);
    stops when count(s >= lo) == k or no key lies strictly between lo and hi (then lo is it)."""
    cnt_lo = n_ok.to(tl.int64)
    between = cnt_lo
    ksum = lo * 0
    it = 0
    while (cnt_lo != k) & (between > 0) & (hi - lo > 1):
        mid = _pivot(lo, hi, ksum, between, it)
        # per-lane accumulators, reduced once per pass (a reduction per tile costs more than
        # the tile's arithmetic)
        v_mid = tl.zeros([BLOCK], tl.int32)
        v_clow = tl.zeros([BLOCK], tl.int32)  # keys in (lo, mid), and their sum
        v_slow = tl.zeros([BLOCK], tl.int64)
        v_chigh = tl.zeros([BLOCK], tl.int32)  # keys in (mid, hi), and their sum
        v_shigh = tl.zeros([BLOCK], tl.int64)
        for start in range(0, V, BLOCK):
            _offs, x = _load_tile(row_ptr, mask_row_ptr, start, V, BLOCK, HAS_MASK)
            ok = x > float("-inf")
            kk = _key(x * inv_t)
            v_mid += (ok & (kk >= mid)).to(tl.int32)
            in_low = ok & (kk > lo) & (kk < mid)
            in_high = ok & (kk > mid) & (kk < hi)
            v_clow += in_low.to(tl.int32)
            v_slow += tl.where(in_low, kk, 0)
            v_chigh += in_high.to(tl.int32)
            v_shigh += tl.where(in_high, kk, 0)
        c_mid = tl.sum(v_mid).to(tl.int64)
        c_low = tl.sum(v_clow).to(tl.int64)
        s_low = tl.sum(v_slow)
        c_high = tl.sum(v_chigh).to(tl.int64)
        s_high = tl.sum(v_shigh)
        if c_mid >= k:
            lo = mid
            cnt_lo = c_mid
            between = c_high
            ksum = s_high
        else:
            hi = mid
            between = c_low
            ksum = s_low
        it += 1
    return lo


@triton.jit
def _topp_key(row_ptr, mask_row_ptr, V, inv_t, m, th, p_mass, lo, hi, BLOCK: tl.constexpr, HAS_MASK: tl.constexpr):
    """Search on keys for the smallest y with G(y) < p_mass, G(y) = survivors' weight with key >= y;
    returns y - 1 (= the final lo): keep key >= it. Stops when no key lies strictly inside."""
    between = hi - lo
    ksum = lo * 0
    it = 0
    while (between > 0) & (hi - lo > 1):
        mid = _pivot(lo, hi, ksum, between, it)
        v_g = tl.zeros([BLOCK], tl.float32)
        v_clow = tl.zeros([BLOCK], tl.int32)
        v_slow = tl.zeros([BLOCK], tl.int64)
        v_chigh = tl.zeros([BLOCK], tl.int32)
        v_shigh = tl.zeros([BLOCK], tl.int64)
        for start in range(0, V, BLOCK):
            _offs, x = _load_tile(row_ptr, mask_row_ptr, start, V, BLOCK, HAS_MASK)
            s = x * inv_t
            kk = _key(s)
            ok = (x > float("-inf")) & (kk >= th)
            v_g += tl.where(ok & (kk >= mid), tl.exp(s - m), 0.0)
            in_low = ok & (kk > lo) & (kk < mid)
            in_high = ok & (kk > mid) & (kk < hi)
            v_clow += in_low.to(tl.int32)
            v_slow += tl.where(in_low, kk, 0)
            v_chigh += in_high.to(tl.int32)
            v_shigh += tl.where(in_high, kk, 0)
        g = tl.sum(v_g)
        c_low = tl.sum(v_clow).to(tl.int64)
        s_low = tl.sum(v_slow)
        c_high = tl.sum(v_chigh).to(tl.int64)
        s_high = tl.sum(v_shigh)
        if g >= p_mass:
            lo = mid
            between = c_high
            ksum = s_high
        else:
            hi = mid
            between = c_low
            ksum = s_low
        it += 1
    return lo


@triton.jit
def _draw(row_ptr, mask_row_ptr, V, inv_t, m, th, u, fallback, BLOCK: tl.constexpr, HAS_MASK: tl.constexpr):
    """Inverse CDF: first token whose cumulative weight exceeds u * Z (Z summed tile by tile in
    the same order as the search, so the crossing tile always exists when Z > 0)."""
    z = m * 0.0
    for start in range(0, V, BLOCK):
        _offs, x = _load_tile(row_ptr, mask_row_ptr, start, V, BLOCK, HAS_MASK)
        s = x * inv_t
        z += tl.sum(tl.where((x > float("-inf")) & (_key(s) >= th), tl.exp(s - m), 0.0))
    target = u * z
    tok = fallback * 0 - 1
    c = z * 0.0
    start = fallback * 0
    while (start < V) & (tok < 0) & (z > 0):
        offs, x = _load_tile(row_ptr, mask_row_ptr, start, V, BLOCK, HAS_MASK)
        s = x * inv_t
        w = tl.where((x > float("-inf")) & (_key(s) >= th), tl.exp(s - m), 0.0)  # [BLOCK]
        tsum = tl.sum(w)
        if c + tsum > target:
            cum = tl.cumsum(w, 0) + c  # [BLOCK]
            first = tl.min(tl.where((cum > target) & (w > 0), offs, 2147483647))
            last = tl.max(tl.where(w > 0, offs, -1))  # rounding fallback inside the tile
            tok = tl.where(first < 2147483647, first, last).to(tok.dtype)
        c += tsum
        start += BLOCK
    return tl.where(tok >= 0, tok, fallback)


@triton.jit
def _sample_kernel(
    logits_ptr, stride_l, mask_ptr, stride_m,
    inv_temp_ptr, top_p_ptr, top_k_ptr, min_p_ptr, seed_ptr, pos_ptr,
    tok_ptr, V,
    BLOCK: tl.constexpr, HAS_MASK: tl.constexpr, SAMPLE: tl.constexpr,
    MIN_P: tl.constexpr, TOP_K: tl.constexpr, TOP_P: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    row_ptr = logits_ptr + row * stride_l
    mask_row_ptr = mask_ptr + row * stride_m
    # pass 1: argmax / max / min over the allowed columns, count of allowed columns, per lane
    # (lane j sees columns j, j + BLOCK, ...), reduced once after the pass
    v_best = tl.full([BLOCK], float("-inf"), tl.float32)
    v_best_i = tl.zeros([BLOCK], tl.int32)
    v_low = tl.full([BLOCK], float("inf"), tl.float32)
    v_ok = tl.zeros([BLOCK], tl.int32)
    for start in range(0, V, BLOCK):
        offs, x = _load_tile(row_ptr, mask_row_ptr, start, V, BLOCK, HAS_MASK)
        upd = x > v_best  # strict: a lane keeps its earliest maximum
        v_best_i = tl.where(upd, offs, v_best_i)
        v_best = tl.where(upd, x, v_best)
        ok = x > float("-inf")
        v_low = tl.minimum(v_low, tl.where(ok, x, float("inf")))
        v_ok += ok.to(tl.int32)
    best = tl.max(v_best)
    best_i = tl.min(tl.where(v_best == best, v_best_i, 2147483647))  # first maximum of the row
    low = tl.min(v_low)
    n_ok = tl.sum(v_ok)
    tok = best_i.to(tl.int64)
    if SAMPLE:
        inv_t = tl.load(inv_temp_ptr + row)  # fl(1 / T); 0 for greedy rows
        if (inv_t > 0) & (n_ok > 0):
            m = best * inv_t  # max of s (rounding of x * inv_t is monotone in x)
            th = _key(m * 0.0 + float("-inf"))
            if MIN_P:
                mp = tl.load(min_p_ptr + row)
                if mp > 0:
                    th = _key(m + tl.log(mp))
            lo = _key(low * inv_t)
            hi = _key(m) + 1
            if TOP_K:
                k = tl.load(top_k_ptr + row)
                if (k > 0) & (k < n_ok):
                    th = tl.maximum(th, _topk_key(row_ptr, mask_row_ptr, V, inv_t, k, n_ok, lo, hi, BLOCK, HAS_MASK))
            if TOP_P:
                p = tl.load(top_p_ptr + row)
                if p < 1.0:
                    v_z = tl.zeros([BLOCK], tl.float32)
                    for start in range(0, V, BLOCK):
                        _offs, x = _load_tile(row_ptr, mask_row_ptr, start, V, BLOCK, HAS_MASK)
                        s = x * inv_t
                        v_z += tl.where((x > float("-inf")) & (_key(s) >= th), tl.exp(s - m), 0.0)
                    z = tl.sum(v_z)
                    lo = tl.maximum(lo, th)
                    th = _topp_key(row_ptr, mask_row_ptr, V, inv_t, m, th, p * z, lo, hi, BLOCK, HAS_MASK)
            u = _philox_uniform(tl.load(seed_ptr + row), tl.load(pos_ptr + row))
            tok = _draw(row_ptr, mask_row_ptr, V, inv_t, m, th, u, tok, BLOCK, HAS_MASK)
    tl.store(tok_ptr + row, tok)


def sample_triton(logits: torch.Tensor, t: SamplingTensors, block: int = 2048, num_warps: int = 16) -> SamplerOutput:
    """The Triton path of `sample` (CUDA; on the CPU it runs under the Triton interpreter).

    One program per row: 2048-column tiles over 16 warps was the fastest of five shapes on an
    H100 (benchmarks/sampling_gpu_ab.py; masked top-p 1.1-1.4 ms for B <= 64 at V = 128k-152k,
    against 1.5-2.9 ms at 1024 x 4-8; see benchmarks/RESULTS.md)."""
    b, width = logits.shape
    v = t.vocab_size
    if v > width or logits.stride(1) != 1:
        raise ValueError(f"logits must be [B, >= vocab_size={v}] with unit column stride, got {tuple(logits.shape)}")
    dev = logits.device
    raw = logits[:, :v].float()  # [B, V]
    logp_stats = torch.logsumexp(raw, -1)  # [B] raw lse, before any edit
    top_ids = top_lp = None
    if t.num_logprobs > 0:
        vals, top_ids = torch.topk(raw, t.num_logprobs, dim=-1)  # [B, n]
        top_lp = vals - logp_stats[:, None]
    mask = t.bitmask
    if mask is not None:
        nw = (v + 31) // 32
        if mask.shape[0] != b or mask.shape[1] < nw or mask.dtype != torch.int32:
            raise ValueError(f"bitmask must be int32 [B={b}, >= {nw}], got {mask.dtype} {tuple(mask.shape)}")
        mask = mask.to(dev).contiguous()
    check_launchable(_sample_kernel, logits)
    tok = torch.empty(b, dtype=torch.int64, device=dev)
    f32 = lambda a: a.to(dev, torch.float32).contiguous()
    i64 = lambda a: a.to(dev, torch.int64).contiguous()
    x = logits if logits.dtype == torch.float32 and logits.is_contiguous() else raw.contiguous()
    edits = merge_sparse(t, dev)
    saved = apply_sparse(x, edits, t) if edits is not None else None  # x edited in place...
    try:
        _sample_kernel[(b,)](
            x, x.stride(0), mask if mask is not None else tok, mask.stride(0) if mask is not None else 0,
            inverse_temperature(t.temperature.to(dev)), f32(t.top_p), t.top_k.to(dev, torch.int32).contiguous(),
            f32(t.min_p), i64(t.seeds), i64(t.positions), tok, v,
            BLOCK=block, HAS_MASK=mask is not None, SAMPLE=not t.all_greedy,
            MIN_P=t.any_min_p, TOP_K=t.any_top_p_top_k, TOP_P=t.any_top_p_top_k, num_warps=num_warps,
        )
    finally:
        if edits is not None:  # ...and restored: the caller's logits are unchanged
            x.view(-1)[edits.rows * x.stride(0) + edits.tokens] = saved
    chosen = raw.gather(1, tok[:, None])[:, 0] - logp_stats  # [B]
    return SamplerOutput(tok, chosen, top_ids, top_lp)


def sample(logits: torch.Tensor, t: SamplingTensors) -> SamplerOutput:
    """Sample one token per row of logits [B, V_model]: Triton on CUDA, torch elsewhere."""
    return sample_triton(logits, t) if logits.is_cuda else sample_reference(logits, t)
