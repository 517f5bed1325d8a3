"""The token-trie walk in C, compiled on first use (like Triton's kernels), with a numpy fallback.

A cold mask walks the vocabulary trie over the lazily grown byte table `T[config, byte]` (see
pda.py).  In numpy that walk is a dozen fancy-indexing passes (~1-2 ms for 49k tokens); this
40-line C loop does the same depth-first in ~0.1-0.5 ms.  The C source below is compiled once
per machine with the system C compiler into ~/.cache/gramserve/native (or $GRAMSERVE_CACHE) and
loaded with ctypes; no compiler, a failed build or GRAMSERVE_NATIVE=0 all mean `load()` returns
None and the numpy walk runs instead (the two are tested equal).

gs_walk contract: for every start node p (its state/flag already set; with `resume`, its state
is first read from its now-filled cell T[state[parent], byte]), visit the subtree below p
depth-first; each visited child c gets state[c] = T[state[parent], byte] and flag[c] = flag[p] |
has_exit[state[p]]; descend while the state is live (non-zero) or the flag is set.  A child whose
T cell is still UNKNOWN is not descended: it is written to `blocked`, and its cell, marked
PENDING so that it is asked for once, to `need` (as config * 256 + byte).  The caller fills the
needed cells in Python and walks on from the blocked children with `resume` (`starts` may be
the `blocked` array itself: every start is read before anything is written there).  Returns the
number blocked.
Every child written is appended to `touched` (gs_finish reads the verdicts from those only).
With `selfloop` (per configuration, the 256-bit set of bytes whose known cell leads back to it;
NULL disables this), a live child c whose `sub_bytes` all loop on its state is not descended:
every token below it ends in that state, so c goes to `skipped` and gs_finish sets those tokens'
verdicts from the depth-first token range of c (inside a JSON string most of the trie is skipped).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import sysconfig
import tempfile
import threading

SOURCE = r"""
#include <stdint.h>
#define UNKNOWN (-2)
#define PENDING (-3)
/* c's whole subtree stays in ns: every byte below c loops on ns (selfloop: known cells only) */
static inline int gs_skippable(const uint64_t *selfloop, const uint64_t *sub_bytes, int64_t c, int32_t ns) {
    const uint64_t *sb = sub_bytes + c * 4, *sl = selfloop + (int64_t)ns * 4;
    return !((sb[0] & ~sl[0]) | (sb[1] & ~sl[1]) | (sb[2] & ~sl[2]) | (sb[3] & ~sl[3]));
}

int64_t gs_walk(int32_t *T, const uint8_t *has_exit, const int64_t *child_lo,
                const int64_t *child_hi, const uint8_t *last_byte, const int64_t *parent,
                int32_t *state, uint8_t *flag, const int64_t *starts, int64_t n_starts,
                int64_t resume, int64_t *stack, int64_t *blocked, int64_t *need, int64_t *n_need,
                int64_t *touched, int64_t *n_touched, const uint64_t *selfloop,
                const uint64_t *sub_bytes, int64_t *skipped, int64_t *n_skipped) {
    int64_t sp = 0, nb = 0, nn = 0, nt = *n_touched, ns_ = *n_skipped;
    for (int64_t i = 0; i < n_starts; i++) {
        const int64_t c = starts[i];
        if (resume) {  /* a child blocked last round: its cell is filled now */
            const int32_t ns = T[(int64_t)state[parent[c]] * 256 + last_byte[c]];
            state[c] = ns;
            if (ns == 0 && !flag[c]) continue;
            if (selfloop && child_lo[c] < child_hi[c] && gs_skippable(selfloop, sub_bytes, c, ns)) {
                skipped[ns_++] = c;
                continue;
            }
        }
        stack[sp++] = c;
    }
    while (sp > 0) {
        int64_t p = stack[--sp];
        int32_t ps = state[p];
        uint8_t fl = flag[p] | has_exit[ps];
        int32_t *row = T + (int64_t)ps * 256;
        for (int64_t c = child_lo[p]; c < child_hi[p]; c++) {
            const uint8_t b = last_byte[c];
            int32_t ns = row[b];
            flag[c] = fl;
            touched[nt++] = c;
            if (ns < 0) {  /* UNKNOWN: ask for the cell once (PENDING), park the child */
                if (ns == UNKNOWN) { row[b] = PENDING; need[nn++] = (int64_t)ps * 256 + b; }
                state[c] = UNKNOWN;
                blocked[nb++] = c;
                continue;
            }
            state[c] = ns;
            if (ns != 0 || fl) {
                if (child_lo[c] == child_hi[c]) continue;  /* a leaf: nothing below to walk */
                if (selfloop && gs_skippable(selfloop, sub_bytes, c, ns)) skipped[ns_++] = c;
                else stack[sp++] = c;
            }
        }
    }
    *n_need = nn;
    *n_touched = nt;
    *n_skipped = ns_;
    return nb;
}

/* Tokens' verdicts from the walked node states, visiting only the nodes the walk wrote
   (touched[], a node may repeat): acc/dep bit words (zeroed by the caller), the distinct live end
   states into succ (seen[] zeroed, one byte per configuration id).  The tokens spelled by node
   c are tok[tok_lo[c] .. tok_lo[c + 1]).  A skipped node's strict descendants all end in its
   state with its children's flag: sub_tok[sub_lo[c] .. sub_hi[c]).  Returns the number of
   successors. */
static inline void gs_set(uint32_t *bits, const int64_t *ids, int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; j++) bits[ids[j] >> 5] |= 1u << (ids[j] & 31);
}

int64_t gs_finish(const int32_t *state, const uint8_t *flag, const int64_t *touched, int64_t nt,
                  const int64_t *tok_lo, const int64_t *tok, uint32_t *acc, uint32_t *dep,
                  uint8_t *seen, int32_t *succ, const int64_t *skipped, int64_t n_skipped,
                  const int64_t *sub_lo, const int64_t *sub_hi, const int64_t *sub_tok,
                  const uint8_t *has_exit) {
    int64_t ns = 0;
    for (int64_t i = 0; i < nt; i++) {
        const int64_t node = touched[i];
        const int32_t st = state[node];
        if (tok_lo[node] == tok_lo[node + 1]) continue;  /* a prefix only, no token ends here */
        if (st > 0) {
            if (!seen[st]) { seen[st] = 1; succ[ns++] = st; }
            gs_set(acc, tok, tok_lo[node], tok_lo[node + 1]);
        } else if (flag[node]) {
            gs_set(dep, tok, tok_lo[node], tok_lo[node + 1]);
        }
    }
    for (int64_t i = 0; i < n_skipped; i++) {
        const int64_t node = skipped[i];
        const int32_t st = state[node];
        if (sub_lo[node] == sub_hi[node]) continue;
        if (st > 0) {
            if (!seen[st]) { seen[st] = 1; succ[ns++] = st; }
            gs_set(acc, sub_tok, sub_lo[node], sub_hi[node]);
        } else if (flag[node] | has_exit[st]) {
            gs_set(dep, sub_tok, sub_lo[node], sub_hi[node]);
        }
    }
    return ns;
}
"""

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False


def _build(path: str) -> None:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "walk.c")
        with open(src, "w") as f:
            f.write(SOURCE)
        out = os.path.join(tmp, "walk.so")
        subprocess.run(cc.split() + ["-O2", "-shared", "-fPIC", "-o", out, src], check=True,
                       capture_output=True, timeout=120)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(out, path)  # atomic: concurrent builders never see a half-written file


def load() -> ctypes.CDLL | None:
    """The compiled walker, or None (numpy fallback).  Built at most once per process."""
    global _lib, _tried
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get("GRAMSERVE_NATIVE", "1") == "0":
            return None
        tag = hashlib.sha256((SOURCE + sys.platform + sysconfig.get_platform()).encode()).hexdigest()[:16]
        cache = os.environ.get("GRAMSERVE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gramserve")
        path = os.path.join(cache, "native", f"walk-{tag}.so")
        try:
            if not os.path.exists(path):
                _build(path)
            lib = ctypes.CDLL(path)
            lib.gs_walk.restype = ctypes.c_int64
            lib.gs_walk.argtypes = [ctypes.c_void_p] * 9 + [ctypes.c_int64] * 2 + [ctypes.c_void_p] * 10
            lib.gs_finish.restype = ctypes.c_int64
            lib.gs_finish.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] + [ctypes.c_void_p] * 7 \
                + [ctypes.c_int64] + [ctypes.c_void_p] * 4
            _lib = lib
        except (OSError, subprocess.SubprocessError):
            _lib = None
        return _lib
