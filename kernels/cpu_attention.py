"""Decode attention straight from the paged KV cache, in C (OpenMP), for the CPU float32 path.

The torch path (reference.paged_attention) gathers every sequence's K and V into a padded
workspace and then runs SDPA over it: each step copies the whole live cache once and reads it
twice.  For a 64-sequence decode step of SmolLM2 that is ~0.7 GB of copies, a third of the step.
This kernel reads each cached key and value exactly once, from its block, for all the query
heads that share it (GQA):

    for each sequence b, in parallel (each cached row holds all KV heads: read it once):
        s[hq, p] = scale * q[b, hq] . K[slot(b, p), hq // G]    p in the visible window
        w        = softmax(s[hq])                                for every query head hq
        out[hq]  = sum_p w[hq, p] * V[slot(b, p), hq // G]

Built like Triton builds kernels: compiled once per machine with the system C compiler
(-O3 -march=native -fopenmp, reassociated sums, no -ffast-math) into ~/.cache/gramserve (or $GRAMSERVE_CACHE), loaded with ctypes
(which releases the GIL during the call, so the grammar thread keeps running).  `load()` is
None without a compiler or with GRAMSERVE_NATIVE=0; then the torch path runs.  Tested equal to
the reference within 1e-5.
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

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

/* One task per sequence: each cached K/V row (all KV heads, contiguous) is read once. */
void gs_decode_attention(const float *q, const float *kc, const float *vc,
                         const int64_t *tables, int64_t max_blocks, const int64_t *seq_lens,
                         int64_t B, int64_t Hq, int64_t Hkv, int64_t D, int64_t BS,
                         float scale, int64_t window, float *out, int64_t max_len) {
    const int64_t G = Hq / Hkv, row = Hkv * D;
    #pragma omp parallel
    {
        float *s = (float *)malloc(sizeof(float) * (size_t)(max_len > 0 ? max_len : 1) * Hq);
        #pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++) {
            const int64_t L = seq_lens[b];
            const int64_t lo = (window > 0 && L > window) ? L - window : 0;
            const int64_t n = L - lo;
            const float *qb = q + b * Hq * D;
            const int64_t *tab = tables + b * max_blocks;
            for (int64_t p = lo; p < L;) {  /* scores s[hq * n + i], whole blocks at a time */
                const int64_t blk = p / BS, end = (blk + 1) * BS < L ? (blk + 1) * BS : L;
                const float *kb = kc + tab[blk] * BS * row;
                for (; p < end; p++) {
                    const float *k = kb + (p - blk * BS) * row;
                    for (int64_t hq = 0; hq < Hq; hq++) {
                        const float *qj = qb + hq * D, *kh = k + (hq / G) * D;
                        float acc = 0.f;
                        for (int64_t d = 0; d < D; d++) acc += qj[d] * kh[d];
                        s[hq * n + (p - lo)] = acc * scale;
                    }
                }
            }
            for (int64_t hq = 0; hq < Hq; hq++) {
                float *sj = s + hq * n, m = -INFINITY, sum = 0.f;
                for (int64_t i = 0; i < n; i++) m = sj[i] > m ? sj[i] : m;
                for (int64_t i = 0; i < n; i++) { sj[i] = expf(sj[i] - m); sum += sj[i]; }
                const float inv = 1.f / sum;
                for (int64_t i = 0; i < n; i++) sj[i] *= inv;
            }
            float *o = out + b * Hq * D;
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
        free(s);
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
        path = os.path.join(cache, "native", f"attn-{tag}.so")
        try:
            if not os.path.exists(path):
                cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
                with tempfile.TemporaryDirectory() as tmp:
                    src, so = os.path.join(tmp, "attn.c"), os.path.join(tmp, "attn.so")
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
