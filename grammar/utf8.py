"""Unicode code-point ranges -> UTF-8 byte-range sequences.

`utf8_sequences(lo, hi)` splits the scalar values lo..hi into sequences of byte ranges, each
sequence matching exactly the UTF-8 encodings of one sub-range, like the classic RE2/Rust
`Utf8Sequences`.  Surrogates (U+D800..U+DFFF) are not scalar values and never match.
"""
from __future__ import annotations

MAX_CP = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)
_LIMITS = (0x7F, 0x7FF, 0xFFFF, 0x10FFFF)  # largest code point of each encoded length


def normalize_ranges(ranges, negated: bool = False) -> list[tuple[int, int]]:
    """Sorted, merged, surrogate-free inclusive code-point ranges (complemented if negated)."""
    merged: list[list[int]] = []
    for lo, hi in sorted((max(0, a), min(MAX_CP, b)) for a, b in ranges):
        if lo > hi:
            continue
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    if negated:
        comp, nxt = [], 0
        for lo, hi in merged:
            if lo > nxt:
                comp.append([nxt, lo - 1])
            nxt = hi + 1
        if nxt <= MAX_CP:
            comp.append([nxt, MAX_CP])
        merged = comp
    out = []
    for lo, hi in merged:  # cut the surrogate block out
        if hi < SURROGATES[0] or lo > SURROGATES[1]:
            out.append((lo, hi))
            continue
        if lo < SURROGATES[0]:
            out.append((lo, SURROGATES[0] - 1))
        if hi > SURROGATES[1]:
            out.append((SURROGATES[1] + 1, hi))
    return out


def _split(lo: int, hi: int, out: list) -> None:
    # 1. never cross an encoded-length boundary
    for limit in _LIMITS:
        if lo <= limit < hi:
            _split(lo, limit, out)
            _split(limit + 1, hi, out)
            return
    if hi <= 0x7F:
        out.append(((lo, hi),))
        return
    n = 2 if hi <= 0x7FF else 3 if hi <= 0xFFFF else 4
    # 2. split until every continuation byte spans its full 0x80..0xBF range or is shared
    for i in range(1, n):
        m = (1 << (6 * i)) - 1
        if lo & ~m != hi & ~m:
            if lo & m != 0:
                _split(lo, lo | m, out)
                _split((lo | m) + 1, hi, out)
                return
            if hi & m != m:
                _split(lo, (hi & ~m) - 1, out)
                _split(hi & ~m, hi, out)
                return
    a, b = chr(lo).encode(), chr(hi).encode()
    out.append(tuple(zip(a, b)))


def utf8_sequences(lo: int, hi: int) -> list[tuple[tuple[int, int], ...]]:
    """Byte-range sequences whose concatenated matches are exactly UTF-8(lo..hi), no surrogates."""
    out: list = []
    for a, b in normalize_ranges([(lo, hi)]):
        _split(a, b, out)
    return out
