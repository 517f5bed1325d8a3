"""normalize.prepare + Nfa in one step: the raw grammar encoded once, the passes run in C.

    nfa = grammar_nfa(grammar)   # == Nfa(normalize.prepare(grammar), productive=True), array for array

`encode_raw` writes the raw grammar as the flat int code gs_nfa_build reads (nfa._encode's
format; a CharClass record carries its productive flag too), doing _resolve_shared's work on
the way: Regex nodes parsed, repeat bounds checked (the same GrammarError, met in the same
order), and structurally equal subtrees written once exactly where _resolve_shared makes them
one object (a node's offset is its identity for the C passes: two offsets where Python has two
objects).  gs_prep_run (pda_core.c, "prepare") then runs prepare's passes with the same
decisions, and gs_nfa_build builds the automaton straight from its result.

The Python pipeline stays the reference and runs instead (`None` from `native_nfa`) when the
native core is not loaded, for left-recursive grammars (a cycle in the lead graph: prepare
rewrites or rejects those), for undefined references (prepare's error names them), and for
anything this encoder does not write (IR subclasses, unknown nodes, bounds beyond int32, a
hoisted rule's name taken by a grammar rule).
"""
from __future__ import annotations

import numpy as np

from . import ir, native
from .errors import GrammarError
from .normalize import prepare
from .nfa import _ALT, _CLASS, _LIT, _REF, _REPEAT, _SEQ, Nfa, write_automaton, write_bytes, write_template
from .regex import parse_regex

_INT32_MIN, _INT32_MAX = -(2 ** 31), 2 ** 31 - 1
_FALLBACK, _UNPRODUCTIVE, _TOO_DEEP = 1, 2, 3


class _Unsupported(Exception):
    """Something only the Python passes handle (the grammar goes to them)."""


def encode_raw(rules: dict, index: dict) -> tuple[list, bytearray, list]:
    """(code, literal pool, roots) of the raw rules (roots[i]: rule i's body).  Raises
    GrammarError as _resolve_shared does, _Unsupported for what goes to the Python passes.
    One Python frame per IR level (like _resolve_shared)."""
    code: list[int] = []
    pool = bytearray()
    lits: dict[bytes, int] = {}  # a literal's bytes -> its one record
    refs: dict[str, int] = {}  # a rule name -> its one record
    classes: dict[tuple, int] = {}  # (ranges, negated) -> its record (template before it)
    table: dict[tuple, int] = {}  # hash-consing: (kind, children offsets, bounds) -> offset
    memo: dict[int, int] = {}  # id(node) -> offset: raw nodes (alive in `rules` throughout: an id
    # is never reused while this runs, so no (node, offset) pair to check)
    plain: dict[int, tuple] = {}  # id(node) -> (node, offset): a parsed regex's nodes (never merged)
    Literal, Ref, Seq, Alt, CharClass, Repeat = ir.Literal, ir.Ref, ir.Seq, ir.Alt, ir.CharClass, ir.Repeat
    ByteClass, Automaton, Regex = ir.ByteClass, ir.Automaton, ir.Regex
    missing = []

    def literal(v: bytes) -> int:
        out = lits.get(v)
        if out is None:
            out = lits[v] = len(code)
            code.extend((_LIT, len(v), len(pool)))
            pool.extend(v)
        return out

    def ref(name: str) -> int:
        out = refs.get(name)
        if out is None:
            r = index.get(name)
            if r is None:
                missing.append(name)
                r = -1
            out = refs[name] = len(code)
            code.extend((_REF, r))
        return out

    def charclass(n) -> int:
        key = (n.ranges, n.negated)
        out = classes.get(key)  # (ranges as lists: a TypeError, the Python passes)
        if out is None:
            toff = write_template(code, n.ranges, n.negated)
            out = classes[key] = len(code)
            code.extend((_CLASS, toff, int(bool(n.ranges) or bool(n.negated))))
        return out

    def bounds(lo, hi) -> None:  # (a max below 0 would read as unbounded in the code)
        if type(lo) is not int or not _INT32_MIN <= lo <= _INT32_MAX or \
                (hi is not None and (type(hi) is not int or not 0 <= hi <= _INT32_MAX)):
            raise _Unsupported

    def enc(n) -> int:  # a raw node (_resolve_shared's visit)
        out = memo.get(id(n))
        if out is not None:
            return out
        t = type(n)
        if t is Seq or t is Alt:
            kids = []
            for it in n.items:  # leaves and met items here, without a call
                ti = type(it)
                if ti is Literal:
                    off = lits.get(it.value)
                    kids.append(off if off is not None else literal(it.value))
                elif ti is Ref:
                    off = refs.get(it.name)
                    kids.append(off if off is not None else ref(it.name))
                elif ti is CharClass:  # (ranges as lists: a TypeError, the Python passes)
                    off = classes.get((it.ranges, it.negated))
                    kids.append(off if off is not None else charclass(it))
                else:
                    off = memo.get(id(it))
                    kids.append(off if off is not None else enc(it))
            key = (t, *kids)
            out = table.get(key)
            if out is None:
                out = table[key] = len(code)
                code.append(_SEQ if t is Seq else _ALT)
                code.append(len(kids))
                code.extend(kids)
        elif t is Literal:
            out = literal(n.value)
        elif t is Ref:
            out = ref(n.name)
        elif t is Repeat:
            if n.max is not None and n.max < n.min:
                raise GrammarError(f"repeat bounds min={n.min} > max={n.max}")
            bounds(n.min, n.max)
            item = memo.get(id(n.item))
            if item is None:
                item = enc(n.item)
            key = (t, item, n.min, n.max)
            out = table.get(key)
            if out is None:
                out = table[key] = len(code)
                code.extend((_REPEAT, item, n.min, -1 if n.max is None else n.max))
        elif t is CharClass:
            out = charclass(n)
        elif t is Regex:
            out = penc(parse_regex(n.pattern))
        elif t is ByteClass:
            out = write_bytes(code, n.ranges)
        elif t is Automaton:
            out = write_automaton(code, n, [enc(label) for _, label, _ in n.edges])
        else:  # a subclass or an unknown node: the Python passes (and their error)
            raise _Unsupported
        memo[id(n)] = out
        return out

    def penc(n) -> int:  # a parsed regex's node: kept as it is by _resolve_shared (not merged)
        got = plain.get(id(n))
        if got is not None and got[0] is n:
            return got[1]
        t = type(n)
        if t is Seq or t is Alt:
            kids = [penc(it) for it in n.items]
            out = len(code)
            code.append(_SEQ if t is Seq else _ALT)
            code.append(len(kids))
            code.extend(kids)
        elif t is Literal:
            out = literal(n.value)
        elif t is CharClass:
            out = charclass(n)
        elif t is Repeat:
            bounds(n.min, n.max)
            item = penc(n.item)
            out = len(code)
            code.extend((_REPEAT, item, n.min, -1 if n.max is None else n.max))
        elif t is ByteClass:
            out = write_bytes(code, n.ranges)
        elif t is Ref:
            out = ref(n.name)
        elif t is Automaton:
            out = write_automaton(code, n, [penc(label) for _, label, _ in n.edges])
        else:
            raise _Unsupported
        plain[id(n)] = (n, out)
        return out

    try:
        roots = [enc(body) for body in rules.values()]
    except TypeError:  # a malformed node (ranges as lists...): the Python passes deal with it
        raise _Unsupported from None
    finally:
        enc = penc = None  # noqa: F841  (the recursive closures' cycles, broken)
    if missing:  # prepare's error (which rule, which names) comes from the Python passes
        raise _Unsupported
    return code, pool, roots


def native_nfa(grammar: ir.Grammar) -> Nfa | None:
    """Nfa(normalize.prepare(grammar), productive=True) through the C passes, or None where the
    Python passes must run (see the module doc)."""
    lib = native.load()
    if lib is None:
        return None
    rules = grammar.rules
    names = list(rules)
    index = {n: i for i, n in enumerate(names)}
    try:
        code, pool, roots = encode_raw(rules, index)
    except _Unsupported:
        return None
    code = np.asarray(code, dtype=np.int32)
    pool = np.frombuffer(bytes(pool) or b"\0", dtype=np.uint8)
    roots = np.asarray(roots, dtype=np.int32)
    frames = np.zeros(len(names) + 1, dtype=np.uint8)
    for name in grammar.frames:
        r = index.get(name)
        if r is not None:
            frames[r] = 1
    handle = lib.gs_prep_run(code.ctypes.data, len(code), pool.ctypes.data, len(names), roots.ctypes.data,
                             index[grammar.start], frames.ctypes.data)
    if not handle:
        raise MemoryError("out of memory preparing the grammar")
    try:
        status = lib.gs_prep_status(handle)
        if status == _FALLBACK:
            return None
        if status == _UNPRODUCTIVE:
            raise GrammarError(f"the grammar matches nothing (rule {grammar.start!r} is unproductive)")
        if status == _TOO_DEEP:
            raise GrammarError("the grammar nests too deeply to compile")
        k = lib.gs_prep_rules(handle, None)
        info = np.zeros(3 * k, dtype=np.int32)
        lib.gs_prep_rules(handle, info.ctypes.data)
        kept = []
        for kind, r, num in info.reshape(-1, 3).tolist():
            kept.append(names[r] if kind == 0 else f"{names[r]}~{'item' if kind == 1 else 'label'}{num}")
        if len(set(kept)) != len(kept):  # a hoisted rule's name is a grammar rule's: Python's dict
            return None  # overwrites that rule, the C passes do not
        build = lib.gs_prep_nfa(handle)
        if not build:
            raise MemoryError("out of memory building the grammar automaton")
    finally:
        lib.gs_prep_free(handle)
    return Nfa.from_build(lib, build, kept)


def grammar_nfa(grammar: ir.Grammar) -> Nfa:
    """The automaton of prepare(grammar): through the C passes where they apply, else Python's."""
    nfa = native_nfa(grammar)
    if nfa is None:
        nfa = Nfa(prepare(grammar), productive=True)
    return nfa
