"""The pushdown automaton's hot path in C (pda_core.c), compiled on first use, with a numpy fallback.

A cold mask needs PDA steps (one per new table cell) and a walk of the vocabulary trie over the
table.  In Python those cost ~16 us a cell and a dozen numpy passes a walk; pda_core.c keeps the
stacks, configurations, tables and the walk in C (see its header comment and pda_native.py), so
a cold mask is one C call that fills the cells it meets as it walks.  The C file is compiled once
per machine with the system C compiler into ~/.cache/gramserve/native (or $GRAMSERVE_CACHE) and
loaded with ctypes; no compiler, a failed build or GRAMSERVE_NATIVE=0 all mean `load()` returns
None and the pure-Python automaton with the numpy walk (pda.py) runs instead (the two are tested
equal, mask for mask).
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

SOURCE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pda_core.c")

_P, _I32, _I64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64
_SIGNATURES = {  # name: (restype, argtypes)
    "gs_core_new": (_P, [_I64] + [_P] * 7 + [_I32] + [_P] * 17 + [_I32, _I64, _I64, _I32]),
    "gs_core_free": (None, [_P]),
    "gs_live_cores": (_I64, []),
    "gs_nfa_live": (_I64, [_I64] + [_P] * 6 + [_I32, _P, _P, _I32, _P]),
    "gs_nfa_build": (_P, [_P, _P, _I32, _P]),
    "gs_nfa_result": (None, [_P, _P, _P]),
    "gs_nfa_csr": (_I32, [_P] * 7),
    "gs_nfa_release": (None, [_P]),
    "gs_prep_run": (_P, [_P, _I64, _P, _I32, _P, _I32, _P]),
    "gs_prep_status": (_I32, [_P]),
    "gs_prep_rules": (_I32, [_P, _P]),
    "gs_prep_nfa": (_P, [_P]),
    "gs_prep_free": (None, [_P]),
    "gs_live_preps": (_I64, []),
    "gs_level_new": (_I32, [_P, _I32]),
    "gs_dfa_start": (_I32, [_P, _I32]),
    "gs_dfa_set_len": (_I32, [_P, _I32]),
    "gs_dfa_set": (None, [_P, _I32, _P]),
    "gs_push": (_I32, [_P, _I32, _I32]),
    "gs_num_configs": (_I64, [_P, _I32]),
    "gs_has_exit": (_I32, [_P, _I32, _I32]),
    "gs_has_end": (_I32, [_P, _I32, _I32]),
    "gs_stack_frames": (_I64, [_P, _I32, _P]),
    "gs_stack_depth": (_I32, [_P, _I32]),
    "gs_config_len": (_I32, [_P, _I32, _I32]),
    "gs_config_stacks": (None, [_P, _I32, _I32, _P]),
    "gs_config_intern": (_I32, [_P, _I32, _P, _I32]),
    "gs_config_closure": (_I32, [_P, _I32, _P, _I32]),
    "gs_single": (_I32, [_P, _I32, _I32]),
    "gs_step_bytes": (_I32, [_P, _I32, _I32, ctypes.c_char_p, _I64]),
    "gs_scan": (_I64, [_P, _I32, _I32, _P, _P, _P, _P, _P]),
    "gs_last_succ": (None, [_P, _P]),
    "gs_pool_masks": (_I64, []),
    "gs_num_masks": (_I64, [_P, _I32]),
    "gs_level_mask": (_I64, [_P, _I32, _I32, _P, _P, _P, _I64]),
    "gs_set_levels": (None, [_P, _P, _I32, _I32, _P]),
    "gs_config_mask": (_I64, [_P, _I32, _P]),
}

CFLAGS = ("-O3", "-shared", "-fPIC")  # -O3: 6% fewer instructions than -O2 on the mask fills (callgrind)
_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False


def _build(source: str, path: str) -> None:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "pda_core.c")
        with open(src, "w") as f:
            f.write(source)
        out = os.path.join(tmp, "pda_core.so")
        subprocess.run(cc.split() + list(CFLAGS) + ["-o", out, src], check=True,
                       capture_output=True, timeout=120)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(out, path)  # atomic: concurrent builders never see a half-written file


def load() -> ctypes.CDLL | None:
    """The compiled core, or None (the Python fallback).  Built at most once per process."""
    global _lib, _tried
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get("GRAMSERVE_NATIVE", "1") == "0":
            return None
        try:
            with open(SOURCE_PATH) as f:
                source = f.read()
            key = source + sys.platform + sysconfig.get_platform() + " ".join(CFLAGS)  # flags too: a new
            tag = hashlib.sha256(key.encode()).hexdigest()[:16]  # flag set must not reuse an old build
            cache = os.environ.get("GRAMSERVE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gramserve")
            path = os.path.join(cache, "native", f"pda-{tag}.so")
            if not os.path.exists(path):
                _build(source, path)
            lib = ctypes.CDLL(path)
            for name, (res, args) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = res, args
            _lib = lib
        except (OSError, subprocess.SubprocessError):
            _lib = None
        return _lib
