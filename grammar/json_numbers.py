"""Exact digit automata for bounded JSON integers and decimals (minimum/maximum/multipleOf).

All grammars here spell numbers without exponent and without superfluous leading zeros, the way
`json.dumps` writes integers and most decimals. Two ideas carry everything:

- integers in [lo, hi]: split by digit count; for a fixed count, compare digit strings
  lexicographically (`_fixed`): a common prefix, then one digit strictly between the bounds'
  digits followed by free digits, or a digit equal to one bound and a recursive tail.
- a decimal's value, once its integer part is fixed, only depends on the fraction digits,
  compared lexicographically with the bound's fraction padded with zeros (`_frac`). So
  `x >= 3.25` is "integer part > 3, any fraction" or "integer part 3, fraction >= .25".
Negative values are "-" followed by a magnitude with the bounds mirrored.
"""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from grammar.ir import EMPTY, NOTHING, CharClass, Literal, Node, Ref, Repeat
from grammar.json_values import DIGIT, FRAC_DIGITS, INT_DIGITS, NONZERO, alt, lit, seq

_NONE = object()  # "this side of the comparison is already decided"
_IMPOSSIBLE = object()


def _digits(lo: int, hi: int) -> Node:
    return CharClass(((48 + lo, 48 + hi),))


def _fixed(a: str, b: str) -> Node:
    """Digit strings of len(a) == len(b) lying lexicographically in [a, b]."""
    if not a:
        return EMPTY
    n = len(a) - 1
    if a[0] == b[0]:
        return seq((lit(a[0]), _fixed(a[1:], b[1:])))
    if a[1:] == "0" * n and b[1:] == "9" * n:
        return seq((_digits(int(a[0]), int(b[0])), Repeat(DIGIT, n, n))) if n else _digits(int(a[0]), int(b[0]))
    parts = [seq((lit(a[0]), _fixed(a[1:], "9" * n)))]
    if int(b[0]) - int(a[0]) > 1:
        parts.append(seq((_digits(int(a[0]) + 1, int(b[0]) - 1), Repeat(DIGIT, n, n))))
    parts.append(seq((lit(b[0]), _fixed("0" * n, b[1:]))))
    return alt(parts)


@lru_cache(maxsize=1024)
def uint_range(lo: int, hi: int | None) -> Node:
    """Canonical non-negative integers in [lo, hi]; hi=None: up to max(INT_DIGITS, len(lo)) digits.
    Cached (IR nodes are immutable): schemas repeat their bounds, and a shared node is built once
    and walked once by the passes after the front end."""
    lo = max(lo, 0)
    if hi is None:
        hi = 10 ** max(INT_DIGITS, len(str(lo))) - 1
    if lo > hi:
        return NOTHING
    la, lb = len(str(lo)), len(str(hi))
    if la == lb:
        return _fixed(str(lo), str(hi))
    parts = [_fixed(str(lo), "9" * la)]
    if lb - la > 1:  # every length strictly between is unconstrained
        parts.append(seq((NONZERO, Repeat(DIGIT, la, lb - 2))))
    parts.append(_fixed("1" + "0" * (lb - 1), str(hi)))
    return alt(parts)


@lru_cache(maxsize=1024)
def int_range(lo: int | None, hi: int | None) -> Node:
    """Canonical integers (no "-0") in [lo, hi]; None is unbounded (up to INT_DIGITS digits).
    Cached, as uint_range."""
    parts = []
    if hi is None or hi >= 0:
        parts.append(uint_range(0 if lo is None else max(lo, 0), hi))
    if lo is None or lo < 0:
        neg = uint_range(1 if hi is None or hi >= 0 else -hi, None if lo is None else -lo)
        parts.append(seq((Literal(b"-"), neg)))
    return alt(parts)


def _split(d: Decimal) -> tuple[int, str]:
    """Non-negative decimal -> (integer part, fraction digits without trailing zeros)."""
    ip, _, fp = format(d, "f").partition(".")
    return int(ip), fp.rstrip("0")


def _rest(bound, d: int, lower: bool):
    """Remaining bound after fraction digit d (None: decided in our favour)."""
    if bound is None:
        return None
    b0 = int(bound[0]) if bound else 0
    if d == b0:
        return bound[1:]
    return None if (d > b0) == lower else _IMPOSSIBLE


@lru_cache(maxsize=4096)
def _frac(a: str | None, ea: bool, b: str | None, eb: bool, n: int, nonempty: bool) -> Node:
    """Fraction digit strings F, len(F) <= n, with a <= .F <= b (strict when ea/eb)."""
    if a == "" and not ea:
        a = None
    if a is None and b is None:
        return Repeat(DIGIT, 1 if nonempty else 0, n)
    parts: list[Node] = []
    if not nonempty and a is None and (b is None or b != "" or not eb):
        parts.append(EMPTY)  # the value .F == 0 satisfies both sides
    if n > 0:
        groups: dict[tuple, list[int]] = {}
        for d in range(10):
            ra, rb = _rest(a, d, True), _rest(b, d, False)
            if ra is not _IMPOSSIBLE and rb is not _IMPOSSIBLE:
                groups.setdefault((ra, rb), []).append(d)
        for (ra, rb), ds in groups.items():  # digits sharing a tail are contiguous
            parts.append(seq((_digits(ds[0], ds[-1]), _frac(ra, ea, rb, eb, n - 1, False))))
    return alt(parts) if parts else NOTHING


def _tail(a, ea, b, eb, n: int) -> Node:
    """Optional '.' + fraction (n digits at most) whose value satisfies the bounds."""
    parts = []
    if _frac(a, ea, b, eb, 0, False) != NOTHING:
        parts.append(EMPTY)
    if n > 0:
        parts.append(seq((Literal(b"."), _frac(a, ea, b, eb, n, True))))
    return alt(parts) if parts else NOTHING


def _magnitude(lo: Decimal, lo_ex: bool, hi: Decimal | None, hi_ex: bool, n: int) -> Node:
    ai, af = _split(lo)
    if hi is not None:
        bi, bf = _split(hi)
        if ai == bi:
            return seq((lit(str(ai)), _tail(af, lo_ex, bf, hi_ex, n)))
    parts = [seq((lit(str(ai)), _tail(af, lo_ex, None, False, n)))]
    mid_hi = None if hi is None else bi - 1
    if mid_hi is None or mid_hi > ai:
        parts.append(seq((uint_range(ai + 1, mid_hi), _tail(None, False, None, False, n))))
    if hi is not None:
        parts.append(seq((lit(str(bi)), _tail(None, False, bf, hi_ex, n))))
    return alt(parts)


def decimal_range(lo: Decimal | None, lo_ex: bool, hi: Decimal | None, hi_ex: bool,
                  frac_digits: int = FRAC_DIGITS) -> Node:
    """Decimals (no exponent, <= frac_digits fraction digits) in the interval; None: unbounded."""
    if lo is not None and hi is not None and (lo > hi or (lo == hi and (lo_ex or hi_ex))):
        return NOTHING
    parts = []
    if hi is None or hi > 0 or (hi == 0 and not hi_ex):  # values >= 0
        a, ea = (Decimal(0), False) if lo is None or lo < 0 else (lo, lo_ex)
        parts.append(_magnitude(a, ea, hi, hi_ex, frac_digits))
    if lo is None or lo < 0:  # values < 0: "-" then a magnitude > 0
        a, ea = (-hi, hi_ex) if hi is not None and hi < 0 else (Decimal(0), True)
        b, eb = (None, False) if lo is None else (-lo, lo_ex)
        parts.append(seq((Literal(b"-"), _magnitude(a, ea, b, eb, frac_digits))))
    return alt(parts) if parts else NOTHING


def multiple_of_rules(k: int, prefix: str) -> tuple[dict[str, Node], Node]:
    """Non-negative canonical integers divisible by k, at most INT_DIGITS digits.

    Rule `{prefix}{r}_{c}`: the digits still to come, given remainder r so far and at most c
    more digits; only reachable (r, c) pairs are emitted. Returns (rules, entry node).
    """
    rules: dict[str, Node] = {}

    def state(r: int, c: int) -> Node:
        name = f"{prefix}{r}_{c}"
        if name not in rules:
            rules[name] = NOTHING  # placeholder against re-entry; the graph is acyclic in c
            parts = [EMPTY] if r == 0 else []
            if c > 0:
                nxt: dict[int, list[int]] = {}
                for d in range(10):
                    nxt.setdefault((10 * r + d) % k, []).append(d)
                for r2, ds in nxt.items():
                    cls = CharClass(tuple((48 + d, 48 + d) for d in ds))
                    parts.append(seq((cls, state(r2, c - 1))))
            rules[name] = alt(parts) if parts else NOTHING
        return Ref(name)

    firsts: dict[int, list[int]] = {}
    for d in range(1, 10):
        firsts.setdefault(d % k, []).append(d)
    entry = alt([Literal(b"0")] + [seq((CharClass(tuple((48 + d, 48 + d) for d in ds)), state(r, INT_DIGITS - 1)))
                                   for r, ds in firsts.items()])
    state = None  # noqa: F841  (the recursive closure's cycle, broken)
    return rules, entry
