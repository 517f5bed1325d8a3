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


def _build(source: str, path: str, flags=CFLAGS) -> None:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "source.c")
        with open(src, "w") as f:
            f.write(source)
        out = os.path.join(tmp, "built.so")
        subprocess.run(cc.split() + list(flags) + ["-o", out, src], check=True,
                       capture_output=True, timeout=120)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(out, path)  # atomic: concurrent builders never see a half-written file


def _built(source_path: str, flags, key: str, name: str) -> str:
    """The path of source_path's build with `flags` in the cache (~/.cache/gramserve/native or
    $GRAMSERVE_CACHE/native), built now if missing; `key` (whatever else makes a build unfit for
    reuse) and the source and flags name it through `name`'s "{tag}"."""
    with open(source_path) as f:
        source = f.read()
    tag = hashlib.sha256((source + key + " ".join(flags)).encode()).hexdigest()[:16]
    cache = os.environ.get("GRAMSERVE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gramserve")
    path = os.path.join(cache, "native", name.format(tag=tag))
    if not os.path.exists(path):
        _build(source, path, flags)
    return path


def load() -> ctypes.CDLL | None:
    """The compiled core, or None (the Python fallback).  Built at most once per process."""
    global _lib, _tried
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get("GRAMSERVE_NATIVE", "1") == "0":
            return None
        try:  # (the flags are in the key: a new flag set must not reuse an old build)
            lib = ctypes.CDLL(_built(SOURCE_PATH, CFLAGS, sys.platform + sysconfig.get_platform(), "pda-{tag}.so"))
            for name, (res, args) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = res, args
            _lib = lib
        except (OSError, subprocess.SubprocessError):
            _lib = None
        return _lib


FAST_SOURCE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fast_fill.c")
_fast = None
_fast_tried = False


def load_fast():
    """The `_fast_fill` extension module (fast_fill.c: a mask fill without ctypes), or None (no C
    compiler, no Python headers, or GRAMSERVE_NATIVE=0: fills go through ctypes and a Python
    cache of mask rows instead, same masks).  Built at most once per process, next to pda_core."""
    global _fast, _fast_tried
    with _lock:
        if _fast_tried:
            return _fast
        _fast_tried = True
        if os.environ.get("GRAMSERVE_NATIVE", "1") == "0":
            return None
        include = sysconfig.get_paths().get("include") or ""
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        if not os.path.exists(os.path.join(include, "Python.h")):
            return None
        try:
            import importlib.util

            flags = ("-O2", "-shared", "-fPIC", "-I" + include)  # the ABI in the key: one build per Python
            path = _built(FAST_SOURCE_PATH, flags, sys.version + suffix, "fast-{tag}/_fast_fill" + suffix)
            spec = importlib.util.spec_from_file_location("_fast_fill", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _fast = module
        except (OSError, ImportError, subprocess.SubprocessError):
            _fast = None
        return _fast


_FAST_TARGETS = {"fill": "gs_config_mask", "step": "gs_step_bytes"}  # extension call -> C function


def fast_call(name: str):
    """(the extension's function `name`, the address of the pda_core function it calls), or None
    when either library is missing (the ctypes path then)."""
    module, lib = load_fast(), load()
    if module is None or lib is None:
        return None
    return getattr(module, name), ctypes.cast(getattr(lib, _FAST_TARGETS[name]), ctypes.c_void_p).value
