"""fill_bitmask's one-call path (grammar/fast_fill.c, a CPython extension over the C core's cached
stack masks) writes exactly the rows of the general path (grammar.mask, through ctypes), for every
row a caller may pass, and stays exact when threads share a grammar; accept_token's step through
the extension reaches the same configurations as through ctypes."""
import json
import os
import sysconfig
import threading

import numpy as np
import pytest

from grammar import GrammarCompiler, allocate_bitmask, native

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _invoice():
    with open(os.path.join(ROOT, "schemas", "invoice.json")) as f, \
            open(os.path.join(ROOT, "schemas", "invoice.example.json")) as g:
        return json.load(f), json.dumps(json.load(g))


def _path(vocab, text: str) -> list[int]:
    """Greedy longest-match token ids of text (any tokenization is accepted)."""
    lookup = {t: i for i, t in enumerate(vocab.tokens) if t and i not in set(vocab.special_token_ids)}
    data, out, i = text.encode(), [], 0
    while i < len(data):
        n = next(n for n in range(min(vocab.max_len, len(data) - i), 0, -1) if data[i:i + n] in lookup)
        out.append(lookup[data[i:i + n]])
        i += n
    return out


def _need_fast():
    if native.load() is None or native.load_fast() is None:
        pytest.skip("C core or Python headers unavailable here: fills take the ctypes path")


def test_fast_fill_builds_where_the_core_and_python_headers_exist(smollm2_vocab):
    if native.load() is None or os.environ.get("GRAMSERVE_NATIVE") == "0":
        pytest.skip("native automaton unavailable here")
    if not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        pytest.skip("no Python headers")
    assert native.load_fast() is not None
    g = GrammarCompiler(smollm2_vocab).compile_json_object()
    assert g._fast is not None


def test_fast_fill_rows_equal_the_general_path_for_every_kind_of_row(smollm2_vocab):
    _need_fast()
    schema, text = _invoice()
    g = GrammarCompiler(smollm2_vocab).compile_json_schema(schema)
    words = smollm2_vocab.num_words
    m = g.matcher()
    for tok in _path(smollm2_vocab, text)[:60]:
        want = g.mask(m.config).copy()  # the ctypes path's row (its own cache of rows)
        row = allocate_bitmask(1, smollm2_vocab.size)[0]
        row[:] = -1  # dirty: every word must be written
        m.fill_bitmask(row)
        assert np.array_equal(row, want)
        wide = np.full(words + 7, -1, dtype=np.int32)  # a wider row: the tail is zeroed
        m.fill_bitmask(wide)
        assert np.array_equal(wide[:words], want) and not wide[words:].any()
        unsigned = np.full(words, 7, dtype=np.uint32)
        m.fill_bitmask(unsigned)
        assert np.array_equal(unsigned.view(np.int32), want)
        strided = np.full(2 * words, -1, dtype=np.int32)[::2]  # not contiguous: the general path
        m.fill_bitmask(strided)
        assert np.array_equal(strided, want)
        wide64 = np.zeros(words, dtype=np.int64)  # another dtype: the general path's cast
        m.fill_bitmask(wide64)
        assert np.array_equal(wide64, want.astype(np.int64))
        assert m.accept_token(tok)
    short = np.zeros(words - 1, dtype=np.int32)
    with pytest.raises(ValueError, match="need"):
        m.fill_bitmask(short)
    frozen = np.zeros(words, dtype=np.int32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        m.fill_bitmask(frozen)
    eos = smollm2_vocab.eos_token_ids[0]
    done = g.matcher()
    for tok in _path(smollm2_vocab, text):
        assert done.accept_token(tok)
    assert done.accept_token(eos) and done.is_terminated()
    row = np.full(words, -1, dtype=np.int32)
    done.fill_bitmask(row)
    assert not row.any()  # terminated: nothing allowed


def test_fast_fill_is_exact_with_threads_sharing_a_grammar(smollm2_vocab):
    _need_fast()
    schema, text = _invoice()
    ids = _path(smollm2_vocab, text)

    def masks(g) -> list[bytes]:
        m, out = g.matcher(), []
        row = allocate_bitmask(1, smollm2_vocab.size)[0]
        for tok in ids:
            m.fill_bitmask(row)
            out.append(row.tobytes())
            assert m.accept_token(tok)
        return out

    want = masks(GrammarCompiler(smollm2_vocab).compile_json_schema(schema))
    shared = GrammarCompiler(smollm2_vocab).compile_json_schema(schema)  # cold: the threads build it
    got, errors = [None] * 4, []

    def run(i):
        try:
            got[i] = masks(shared)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(g == want for g in got)


def test_extension_step_reaches_the_configurations_of_the_ctypes_step(smollm2_vocab):
    _need_fast()
    schema, text = _invoice()
    ids = _path(smollm2_vocab, text)
    g = GrammarCompiler(smollm2_vocab).compile_json_schema(schema)
    assert g.configs._fast_step is not None
    fast = g.matcher()
    configs = [fast.config]
    for tok in ids:
        assert fast.accept_token(tok)
        configs.append(fast.config)
    assert not fast.accept_token(smollm2_vocab.special_token_ids[0])  # special: never allowed
    assert g.step_bytes(g.initial, b"\x00") == 0  # outside the language: 0 (dead)
    saved, g.configs._fast_step = g.configs._fast_step, None  # the ctypes step, same tables (ids)
    slow = g.matcher()
    for tok, want in zip(ids, configs[1:]):
        assert slow.accept_token(tok) and slow.config == want
    assert g.step_bytes(g.initial, b"\x00") == 0
    g.configs._fast_step = saved


def test_the_ctypes_fill_path_writes_the_same_rows(smollm2_vocab):
    """Where the extension cannot be built (no Python headers), fill_bitmask goes through ctypes
    and the Python cache of mask rows: the same rows, dirty or wider."""
    _need_fast()
    schema, text = _invoice()
    g = GrammarCompiler(smollm2_vocab).compile_json_schema(schema)
    fast_rows, slow_rows = [], []
    for use_fast in (True, False):
        saved = g._fast
        if not use_fast:
            g._fast = None
        try:
            m = g.matcher()
            for tok in _path(smollm2_vocab, text):
                row = np.full(smollm2_vocab.num_words + 3, -1, dtype=np.int32)
                m.fill_bitmask(row)
                (fast_rows if use_fast else slow_rows).append(row.tobytes())
                assert m.accept_token(tok)
        finally:
            g._fast = saved
    assert fast_rows == slow_rows
