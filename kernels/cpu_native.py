"""CPU kernels in C (OpenMP) for the float32 path: decode attention straight from the paged KV
cache, and the MLP's fused SiLU-and-multiply, and the grammar mask on the sampler's logits.

Decode attention.  The torch path (reference.paged_attention) gathers every sequence's K and V
into a padded workspace and then runs SDPA over it: each step copies the whole live cache once
and reads it twice.  For a 64-sequence decode step of SmolLM2 that is ~0.7 GB of copies, a third
of the step.  This kernel reads each cached key and value exactly once, from its block, for all
the query heads that share it (GQA):

    for each sequence b, in parallel (each cached row holds all KV heads: read it once):
        s[hq, p] = scale * q[b, hq] . K[slot(b, p), hq // G]    p in the visible window
        w        = softmax(s[hq])                                for every query head hq
        out[hq]  = sum_p w[hq, p] * V[slot(b, p), hq // G]

With AVX2 the scores take 8 rows at a time (8 independent FMA chains, one transposing horizontal
add), and the weighted sum walks the V rows once, in order; the softmax's exp is a vectorizable
polynomial (libm's expf is a scalar call).  Other CPUs run the plain loops.

Grammar mask.  `apply_bitmask` writes the logits with every token the row's bitmask forbids
set to -inf, in one pass (the torch path expands the bits into a [B, V] bias and adds it).

SiLU-and-multiply.  `silu(gate) * up` on the two halves of the fused gate|up output is two torch
passes over strided views plus a temporary; `gs_silu_mul` is one pass into a contiguous [T, I].

Rotary embedding and KV write.  `gs_rope_kv` rotates q and k straight out of the fused q|k|v
projection and writes k and v into their cache slots in the same pass.

RMSNorm.  `gs_add_rms_norm` adds the residual and normalizes in one pass per row (torch's rms_norm
is six small ops, ~0.3 ms on a 64-row decode activation, 61 times a step).

Built like Triton builds kernels: compiled once per machine with the system C compiler
(-O3 -march=native -fopenmp, reassociated sums, no -ffast-math) into ~/.cache/gramserve (or
$GRAMSERVE_CACHE), loaded with ctypes (which releases the GIL during the call, so the grammar
thread keeps running).  `load()` is None without a compiler or with GRAMSERVE_NATIVE=0; then the
torch paths run.  Tested equal to the references within 1e-5.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sysconfig
import tempfile
import threading

import torch

from kernels import reference

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

/* exp(x), written so the compiler vectorizes the loops that call it (libm's expf is a scalar
   call): 2^n by exponent bits times a degree-6 polynomial on |r| <= ln2/2, relative error ~2e-7.
   x is clamped to [-87, 88]: below, ~2^-125 (nothing next to the softmax maximum's 1); above,
   ~2^127 (silu(x) = x / (1 + exp(-x)) is then 0 to float precision anyway). */
static inline float gs_exp(float x) {
    x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);
    const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.f;
    union { int32_t i; float f; } u;
    u.i = ((int32_t)n + 127) << 23;
    return p * u.f;
}

#ifdef __AVX2__
/* [sum(a0), ..., sum(a7)] */
static inline __m256 hsum8(__m256 a0, __m256 a1, __m256 a2, __m256 a3,
                           __m256 a4, __m256 a5, __m256 a6, __m256 a7) {
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}
#endif

/* s[hq * n + (p - lo)] = scale * q[hq] . K[p, hq / G] for rows p in [a, e) of one block */
static void scores(const float *qb, const float *kb, int64_t a, int64_t e, int64_t blk0, int64_t lo,
                   int64_t n, int64_t Hq, int64_t G, int64_t D, int64_t row, float scale, float *s) {
    int64_t p = a;
#ifdef __AVX2__
    if (D % 8 == 0) {
        const __m256 vs = _mm256_set1_ps(scale);
        for (; p + 8 <= e; p += 8) {  /* 8 rows at once: 8 independent FMA chains per head */
            const float *k0 = kb + (p - blk0) * row;
            for (int64_t hq = 0; hq < Hq; hq++) {
                const float *qj = qb + hq * D, *kh = k0 + (hq / G) * D;
                __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
                for (int64_t d = 0; d < D; d += 8) {
                    const __m256 qv = _mm256_loadu_ps(qj + d);
                    c0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kh + d), c0);
                    c1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kh + row + d), c1);
                    c2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kh + 2 * row + d), c2);
                    c3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kh + 3 * row + d), c3);
                    c4 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kh + 4 * row + d), c4);
                    c5 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kh + 5 * row + d), c5);
                    c6 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kh + 6 * row + d), c6);
                    c7 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kh + 7 * row + d), c7);
                }
                _mm256_storeu_ps(s + hq * n + (p - lo), _mm256_mul_ps(vs, hsum8(c0, c1, c2, c3, c4, c5, c6, c7)));
            }
        }
    }
#endif
    for (; p < e; p++) {
        const float *k = kb + (p - blk0) * row;
        for (int64_t hq = 0; hq < Hq; hq++) {
            const float *qj = qb + hq * D, *kh = k + (hq / G) * D;
            float acc = 0.f;
            for (int64_t d = 0; d < D; d++) acc += qj[d] * kh[d];
            s[hq * n + (p - lo)] = acc * scale;
        }
    }
}

/* o[hq] = sum_p s[hq * n + (p - lo)] * V[p, hq / G] over the visible rows */
static void weighted_values(const float *vc, const int64_t *tab, int64_t lo, int64_t L, int64_t BS,
                            int64_t n, int64_t Hq, int64_t Hkv, int64_t G, int64_t D, int64_t row,
                            const float *s, const float *zeros, float *o) {
#ifdef __AVX2__
    if (D % 8 == 0) {  /* row by row, every head: each V row is read once, in order */
        memset(o, 0, sizeof(float) * (size_t)(Hq * D));
        for (int64_t p = lo; p < L;) {
            const int64_t blk = p / BS, end = (blk + 1) * BS < L ? (blk + 1) * BS : L;
            const float *vb = vc + tab[blk] * BS * row - blk * BS * row;
            for (; p < end; p++) {
                const float *v = vb + p * row;
                for (int64_t hq = 0; hq < Hq; hq++) {
                    const __m256 w = _mm256_broadcast_ss(s + hq * n + (p - lo));
                    const float *vh = v + (hq / G) * D;
                    float *oj = o + hq * D;
                    for (int64_t d = 0; d < D; d += 8)
                        _mm256_storeu_ps(oj + d, _mm256_fmadd_ps(w, _mm256_loadu_ps(vh + d), _mm256_loadu_ps(oj + d)));
                }
            }
        }
        return;
    }
#endif
    memset(o, 0, sizeof(float) * (size_t)(Hq * D));
    for (int64_t p = lo; p < L;) {
        const int64_t blk = p / BS, end = (blk + 1) * BS < L ? (blk + 1) * BS : L;
        const float *vb = vc + tab[blk] * BS * row;
        for (; p < end; p++) {
            const float *v = vb + (p - blk * BS) * row;
            for (int64_t hq = 0; hq < Hq; hq++) {
                const float w = s[hq * n + (p - lo)], *vh = v + (hq / G) * D;
                float *oj = o + hq * D;
                for (int64_t d = 0; d < D; d++) oj[d] += w * vh[d];
            }
        }
    }
}

/* One task per sequence: each cached K/V row (all KV heads, contiguous) is read once. */
void gs_decode_attention(const float *q, const float *kc, const float *vc,
                         const int64_t *tables, int64_t max_blocks, const int64_t *seq_lens,
                         int64_t B, int64_t Hq, int64_t Hkv, int64_t D, int64_t BS,
                         float scale, int64_t window, float *out, int64_t max_len) {
    const int64_t G = Hq / Hkv, row = Hkv * D;
    #pragma omp parallel
    {
        const size_t cap = (size_t)(max_len > 0 ? max_len : 1);
        float *s = (float *)malloc(sizeof(float) * cap * Hq);
        float *zeros = (float *)calloc(cap, sizeof(float));
        #pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++) {
            const int64_t L = seq_lens[b];
            const int64_t lo = (window > 0 && L > window) ? L - window : 0;
            const int64_t n = L - lo;
            const float *qb = q + b * Hq * D;
            const int64_t *tab = tables + b * max_blocks;
            for (int64_t p = lo; p < L;) {  /* scores, whole blocks at a time */
                const int64_t blk = p / BS, end = (blk + 1) * BS < L ? (blk + 1) * BS : L;
                scores(qb, kc + tab[blk] * BS * row, p, end, blk * BS, lo, n, Hq, G, D, row, scale, s);
                p = end;
            }
            for (int64_t hq = 0; hq < Hq; hq++) {
                float *sj = s + hq * n, m = -INFINITY, sum = 0.f;
                for (int64_t i = 0; i < n; i++) m = sj[i] > m ? sj[i] : m;
                for (int64_t i = 0; i < n; i++) { sj[i] = gs_exp(sj[i] - m); sum += sj[i]; }
                const float inv = 1.f / sum;
                for (int64_t i = 0; i < n; i++) sj[i] *= inv;
            }
            weighted_values(vc, tab, lo, L, BS, n, Hq, Hkv, G, D, row, s, zeros, out + b * Hq * D);
        }
        free(zeros);
        free(s);
    }
}

/* out[b, t] = raw[b, t] where bit t of the row's grammar bitmask is set, else -inf: the sampler's
   first transform in one pass (torch builds a [B, V] additive bias, then adds it). */
void gs_apply_bitmask(const float *raw, int64_t raw_stride, const int32_t *bits, int64_t bits_stride,
                      float *out, int64_t B, int64_t V) {
    #pragma omp parallel for schedule(static) if (B * V >= 65536)
    for (int64_t b = 0; b < B; b++) {
        const float *r = raw + b * raw_stride;
        const uint32_t *w = (const uint32_t *)(bits + b * bits_stride);
        float *o = out + b * V;
        for (int64_t t = 0; t < V; t++) o[t] = ((w[t >> 5] >> (t & 31)) & 1u) ? r[t] : -INFINITY;
    }
}

/* out[t] = silu(gu[t, :I]) * gu[t, I:] for a [T, 2I] gate|up matmul output: one pass, no strided
   temporaries (torch's silu and mul on the two halves are two passes over views). */
void gs_silu_mul(const float *gu, float *out, int64_t T, int64_t I) {
    #pragma omp parallel for schedule(static) if (T * I >= 65536)
    for (int64_t t = 0; t < T; t++) {
        const float *g = gu + t * 2 * I, *u = g + I;
        float *o = out + t * I;
        for (int64_t i = 0; i < I; i++) o[i] = g[i] / (1.f + gs_exp(-g[i])) * u[i];
    }
}

/* Rotary embedding on q and k of the fused q|k|v projection output, k and v written to their
   cache slots, rotated q to q_out [T, Hq, D]: one pass instead of the slicing, four multiplies,
   a concatenation and two index copies of the torch path.  table [P, D]: cos | sin halves. */
void gs_rope_kv(const float *qkv, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, const float *table,
                const int64_t *pos, const int64_t *slots, float *kc, float *vc, float *q_out) {
    const int64_t half = D / 2, width = (Hq + 2 * Hkv) * D;
    #pragma omp parallel for schedule(static) if (T * width >= 65536)
    for (int64_t t = 0; t < T; t++) {
        const float *row = qkv + t * width, *cs = table + pos[t] * D, *sn = cs + half;
        const int64_t slot = slots[t];
        for (int64_t h = 0; h < Hq + Hkv; h++) {
            const float *x = row + h * D;
            float *o = h < Hq ? q_out + (t * Hq + h) * D : (slot >= 0 ? kc + (slot * Hkv + h - Hq) * D : 0);
            if (!o) continue;
            for (int64_t i = 0; i < half; i++) {
                const float a = x[i], b = x[i + half];
                o[i] = a * cs[i] - b * sn[i];
                o[i + half] = b * cs[i] + a * sn[i];
            }
        }
        if (slot >= 0) memcpy(vc + slot * Hkv * D, row + (Hq + Hkv) * D, sizeof(float) * (size_t)(Hkv * D));
    }
}

/* RMSNorm with the residual add in front: s = x + res (written to sum_out; no add when res is
   NULL), out = s / sqrt(mean(s^2) + eps) * w, one row of H per t.  torch's rms_norm on a [64, 576]
   decode activation is six small ops (~0.3 ms); this is one pass. */
void gs_add_rms_norm(const float *x, const float *res, const float *w, float *sum_out, float *out,
                     int64_t T, int64_t H, float eps) {
    #pragma omp parallel for schedule(static) if (T * H >= 65536)
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * H;
        float *o = out + t * H;
        const float *s = xr;
        if (res) {
            const float *rr = res + t * H;
            float *so = sum_out + t * H;
            for (int64_t i = 0; i < H; i++) so[i] = xr[i] + rr[i];
            s = so;
        }
        float acc = 0.f;
        for (int64_t i = 0; i < H; i++) acc += s[i] * s[i];
        const float r = 1.f / sqrtf(acc / (float)H + eps);
        for (int64_t i = 0; i < H; i++) o[i] = s[i] * r * w[i];
    }
}
"""

# Never -ffast-math: linking it sets flush-to-zero for the whole process (subnormals vanish in
# every other float computation).  These flags only let the compiler reorder the dot-product sums
# into SIMD lanes.
FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math",
         "-fassociative-math", "-fno-signed-zeros"]

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False


def _cpu_tag() -> str:
    try:  # -march=native code is only valid on this CPU model
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


def load() -> ctypes.CDLL | None:
    """The compiled kernel, or None (torch path).  Built at most once per process."""
    global _lib, _tried
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get("GRAMSERVE_NATIVE", "1") == "0":
            return None
        tag = hashlib.sha256((SOURCE + " ".join(FLAGS) + _cpu_tag() + sysconfig.get_platform()).encode()).hexdigest()[:16]
        cache = os.environ.get("GRAMSERVE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gramserve")
        path = os.path.join(cache, "native", f"cpu-{tag}.so")
        try:
            if not os.path.exists(path):
                cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
                with tempfile.TemporaryDirectory() as tmp:
                    src, so = os.path.join(tmp, "cpu.c"), os.path.join(tmp, "cpu.so")
                    with open(src, "w") as f:
                        f.write(SOURCE)
                    subprocess.run(cc.split() + FLAGS + ["-shared", "-fPIC", "-o", so, src, "-lm"],
                                   check=True, capture_output=True, timeout=120)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.replace(so, path)
            lib = ctypes.CDLL(path)
            fn = lib.gs_decode_attention
            fn.restype = None
            fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64, ctypes.c_void_p] + [ctypes.c_int64] * 5 \
                + [ctypes.c_float, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64]
            lib.gs_apply_bitmask.restype = None
            lib.gs_apply_bitmask.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                                             ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
            lib.gs_silu_mul.restype = None
            lib.gs_silu_mul.argtypes = [ctypes.c_void_p] * 2 + [ctypes.c_int64] * 2
            lib.gs_rope_kv.restype = None
            lib.gs_rope_kv.argtypes = [ctypes.c_void_p] + [ctypes.c_int64] * 4 + [ctypes.c_void_p] * 6
            lib.gs_add_rms_norm.restype = None
            lib.gs_add_rms_norm.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int64] * 2 + [ctypes.c_float]
            _lib = lib
        except (OSError, subprocess.SubprocessError):
            _lib = None
        return _lib


def supported(q: torch.Tensor, k_cache: torch.Tensor) -> bool:
    return (q.device.type == "cpu" and q.dtype == torch.float32 and k_cache.dtype == torch.float32
            and k_cache.is_contiguous() and load() is not None)


def decode_fn(q, k_cache, v_cache, tables, kv_len, scale, sliding_window, max_len):
    """reference.paged_attention's decode hook: the C kernel where supported, else None."""
    if not supported(q, k_cache):
        return None
    return decode_attention(q, k_cache, v_cache, tables, kv_len, scale, sliding_window, max_len)


def decode_attention(
    q: torch.Tensor,  # [B, Hq, D] float32, one query per sequence
    k_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D] float32, contiguous
    v_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
    block_tables: torch.Tensor,  # [B, M] int
    seq_lens: torch.Tensor,  # [B] int, keys visible to each query (its own included)
    scale: float,
    sliding_window: int | None = None,
    max_len: int | None = None,
) -> torch.Tensor:  # [B, Hq, D]
    lib = load()
    q = q.contiguous()
    tables = block_tables.to(torch.int64).contiguous()  # [B, M]
    lens = seq_lens.to(torch.int64).contiguous()  # [B]
    out = torch.empty_like(q)
    bsz, hq, d = q.shape
    _nb, bs, hkv, _ = k_cache.shape
    longest = int(max_len if max_len is not None else (lens.max().item() if bsz else 0))
    lib.gs_decode_attention(q.data_ptr(), k_cache.data_ptr(), v_cache.data_ptr(), tables.data_ptr(),
                            tables.shape[1], lens.data_ptr(), bsz, hq, hkv, d, bs, scale,
                            sliding_window or 0, out.data_ptr(), longest)
    return out


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """[T, 2I] gate|up -> [T, I] silu(gate) * up: the C pass for contiguous float32 CPU input,
    torch otherwise."""
    lib = load()
    if (lib is None or gate_up.device.type != "cpu" or gate_up.dtype != torch.float32
            or gate_up.dim() != 2 or not gate_up.is_contiguous() or gate_up.requires_grad):
        return reference.silu_mul(gate_up)
    t, two_i = gate_up.shape
    out = torch.empty(t, two_i // 2, dtype=gate_up.dtype)
    lib.gs_silu_mul(gate_up.data_ptr(), out.data_ptr(), t, two_i // 2)
    return out


def apply_bitmask(raw: torch.Tensor, bitmask: torch.Tensor, vocab_size: int,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """[B, V] logits (rows may be strided) with the tokens `bitmask` ([B, ceil(V/32)] int32)
    forbids set to -inf, into `out`: C for float32 CPU tensors, torch otherwise."""
    lib = load()
    b, v = raw.shape
    if (lib is None or raw.device.type != "cpu" or raw.dtype != torch.float32 or raw.stride(1) != 1
            or bitmask.device.type != "cpu" or bitmask.dtype != torch.int32 or bitmask.stride(1) != 1
            or bitmask.shape[1] * 32 < v):
        return reference.apply_bitmask(raw, bitmask, vocab_size, out)
    if out is None or not out.is_contiguous() or out.shape != raw.shape:
        out = torch.empty(b, v, dtype=raw.dtype)
    lib.gs_apply_bitmask(raw.data_ptr(), raw.stride(0), bitmask.data_ptr(), bitmask.stride(0), out.data_ptr(), b, v)
    return out


def add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, rms_norm(s) * weight) with s = x + residual (s = x when residual is None): one C pass
    for contiguous float32 [T, H] CPU tensors, reference.add_rms_norm otherwise."""
    lib = load()
    tensors = (x, weight) if residual is None else (x, residual, weight)
    if (lib is None or x.dim() != 2 or any(t.device.type != "cpu" or t.dtype != torch.float32
                                           or not t.is_contiguous() or t.requires_grad for t in tensors)
            or (residual is not None and residual.shape != x.shape) or weight.shape != x.shape[-1:]):
        return reference.add_rms_norm(x, residual, weight, eps)
    t, h = x.shape
    out = torch.empty_like(x)
    total = x if residual is None else torch.empty_like(x)
    lib.gs_add_rms_norm(x.data_ptr(), 0 if residual is None else residual.data_ptr(), weight.data_ptr(),
                        0 if residual is None else total.data_ptr(), out.data_ptr(), t, h, eps)
    return total, out


def rope_write_kv(qkv, num_heads, num_kv_heads, rope_table, positions, k_cache, v_cache, slot_mapping):
    """reference.rope_write_kv in one C pass for contiguous float32 CPU tensors (torch otherwise)."""
    lib = load()
    tensors = (qkv, rope_table, k_cache, v_cache)
    d = rope_table.shape[-1]
    if (lib is None or qkv.dim() != 2 or d % 2 or qkv.shape[1] != (num_heads + 2 * num_kv_heads) * d
            or any(t.device.type != "cpu" or t.dtype != torch.float32 or not t.is_contiguous() or t.requires_grad
                   for t in tensors)
            or k_cache.shape[-2:] != (num_kv_heads, d) or v_cache.shape != k_cache.shape):
        return reference.rope_write_kv(qkv, num_heads, num_kv_heads, rope_table, positions, k_cache, v_cache,
                                       slot_mapping)
    t = qkv.shape[0]
    pos = positions.to(torch.int64).contiguous()
    slots = slot_mapping.to(torch.int64).contiguous()
    q = torch.empty(t, num_heads, d, dtype=qkv.dtype)
    lib.gs_rope_kv(qkv.data_ptr(), t, num_heads, num_kv_heads, d, rope_table.data_ptr(), pos.data_ptr(),
                   slots.data_ptr(), k_cache.data_ptr(), v_cache.data_ptr(), q.data_ptr())
    return q
