"""JSON lexical building blocks shared by the JSON Schema front end and JSON mode.

Everything here matches the JSON *text* (UTF-8 bytes), not decoded values:
- `WS`: the bounded whitespace allowed between tokens: "", " ", or "\\n" plus at most
  `MAX_INDENT` spaces. This admits compact JSON, Python's default `json.dumps` form (", " and
  ": ") and `indent=2` pretty-printing up to 20 levels, and it can never loop forever.
- `escaped_class(ranges)`: one *decoded* character from a code-point set, in every JSON
  spelling we allow: the raw character (when JSON allows it raw), the short escapes
  (\\" \\\\ \\/ \\b \\f \\n \\r \\t) and \\uXXXX (surrogate pairs above U+FFFF) for control and
  non-ASCII characters. Spellings of distinct characters never overlap, so counting
  `escaped_class` items counts decoded characters exactly (minLength/maxLength).
- Unbounded numbers carry at most `INT_DIGITS` integer, `FRAC_DIGITS` fraction and
  `EXP_DIGITS` exponent digits.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache

from grammar.ir import EMPTY, NOTHING, Alt, Automaton, CharClass, Literal, Node, Ref, Repeat, Seq
from grammar.utf8 import normalize_ranges

MAX_INDENT = 40
INT_DIGITS = 20
FRAC_DIGITS = 20
EXP_DIGITS = 3
ALL_CHARS = ((0, 0x10FFFF),)

# Shared pieces are rules referenced by name (`shared_rules` defines them), so a grammar
# holds one copy of each however often it is used.
WS: Node = Ref("json_ws")
STRING_CHAR: Node = Ref("json_char")  # one decoded character, exactly (a surrogate pair is one)
STRING: Node = Ref("json_string")
NUMBER: Node = Ref("json_number")
U_ESCAPE: Node = Ref("json_uesc")  # a \\u escape (or a pair) for any control or non-ASCII character
SHORT_ESCAPE: Node = Ref("json_sesc")  # the eight two-byte escapes
STRING_UNIT: Node = Ref("json_unit")  # one string unit; a surrogate pair is two (uncounted strings)

_SHORT = {0x22: b'\\"', 0x5C: b"\\\\", 0x2F: b"\\/", 0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n",
          0x0D: b"\\r", 0x09: b"\\t"}
# characters that may be spelled \uXXXX: controls and everything outside printable ASCII
_U_ESCAPABLE = ((0x00, 0x1F), (0x7F, 0x10FFFF))
_U_FULL = normalize_ranges(_U_ESCAPABLE)  # surrogates cut out


def lit(text: str) -> Literal:
    return Literal(text.encode("utf-8"))


def _among(flat: list, x) -> bool:
    """x in flat, comparing only nodes of x's own class (IR nodes of different classes are never
    equal: skipping them saves two dataclass __eq__ calls each)."""
    t = type(x)
    for y in flat:
        if y is x or (type(y) is t and y == x):
            return True
    return False


def alt(items, compare: bool = True) -> Node:
    """Alt that flattens nested Alts, drops NOTHING and repeats, and collapses singletons.

    compare=False finds repeats by identity only (literals still by value): for items that are
    big trees, whose equality test walks them (once per path through their shared parts)."""
    flat: list[Node] = []
    lits: set[bytes] = set()  # values of the Literals in flat: an enum's are found by hash
    ids: set[int] = set()  # (compare=False) ids of the other nodes in flat
    for it in items:
        for x in (it.items if isinstance(it, Alt) else (it,)):
            if type(x) is Literal:  # equal to a node of flat exactly when a Literal of its value
                if x.value not in lits:
                    lits.add(x.value)
                    flat.append(x)
            elif compare:
                if not _among(flat, x):
                    flat.append(x)
            elif id(x) not in ids:
                ids.add(id(x))
                flat.append(x)
    return flat[0] if len(flat) == 1 else Alt(tuple(flat))


def seq(items) -> Node:
    """Seq that flattens nested Seqs, short-circuits NOTHING and collapses singletons."""
    flat: list[Node] = []
    for it in items:
        t = type(it)
        if t is Alt and not it.items:  # == NOTHING (an exact Alt(()))
            return NOTHING
        if t is Seq or isinstance(it, Seq):
            flat.extend(it.items)
        else:
            flat.append(it)
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def _intersect(a, b) -> list[tuple[int, int]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _hex_class(lo: int, hi: int) -> Node:
    """One hex digit (either case) whose value is in lo..hi."""
    ranges = []
    if lo <= 9:
        ranges.append((0x30 + lo, 0x30 + min(hi, 9)))
    if hi >= 10:
        a, b = max(lo, 10) - 10, hi - 10
        ranges += [(0x41 + a, 0x41 + b), (0x61 + a, 0x61 + b)]
    return CharClass(tuple(ranges))


def _hex_range(lo: int, hi: int, width: int = 4) -> Node:
    """Exactly `width` hex digits (either case) whose value lies in [lo, hi]."""
    if width == 0:
        return EMPTY
    unit = 16 ** (width - 1)
    ld, hd = lo // unit, hi // unit
    if lo % unit == 0 and hi % unit == unit - 1:  # whole blocks: free lower digits
        return seq([_hex_class(ld, hd)] + [_hex_class(0, 15)] * (width - 1))
    if hd == ld:
        return seq((_hex_class(ld, ld), _hex_range(lo % unit, hi % unit, width - 1)))
    parts: list[Node] = [seq((_hex_class(ld, ld), _hex_range(lo % unit, unit - 1, width - 1)))]
    if hd - ld > 1:
        parts.append(seq([_hex_class(ld + 1, hd - 1)] + [_hex_class(0, 15)] * (width - 1)))
    parts.append(seq((_hex_class(hd, hd), _hex_range(0, hi % unit, width - 1))))
    return alt(parts)


def _u_escape(lo: int, hi: int) -> Node:
    """\\uXXXX spellings of the code points lo..hi (no surrogates inside; pairs above U+FFFF)."""
    parts: list[Node] = []
    if lo <= 0xFFFF:
        parts.append(seq((Literal(b"\\u"), _hex_range(lo, min(hi, 0xFFFF)))))
    if hi > 0xFFFF:
        a, b = max(lo, 0x10000) - 0x10000, hi - 0x10000
        ha, la, hb, lb = 0xD800 + (a >> 10), 0xDC00 + (a & 0x3FF), 0xD800 + (b >> 10), 0xDC00 + (b & 0x3FF)
        pair = lambda h1, h2, l1, l2: seq((Literal(b"\\u"), _hex_range(h1, h2), Literal(b"\\u"), _hex_range(l1, l2)))
        if ha == hb:
            parts.append(pair(ha, ha, la, lb))
        else:
            parts.append(pair(ha, ha, la, 0xDFFF))
            if hb - ha > 1:
                parts.append(pair(ha + 1, hb - 1, 0xDC00, 0xDFFF))
            parts.append(pair(hb, hb, 0xDC00, lb))
    return alt(parts)


def escaped_class(ranges, negated: bool = False) -> Node:
    """All JSON spellings of one decoded character whose code point is in `ranges`."""
    try:  # cached (IR nodes are immutable): key tries spell the same characters again and again
        return _escaped_class(ranges, negated)
    except TypeError:  # unhashable ranges (lists)
        return _escaped_class(tuple(tuple(r) for r in ranges), negated)


@lru_cache(maxsize=8192)
def _escaped_class(ranges, negated: bool) -> Node:
    cps = normalize_ranges(ranges, negated)
    if not cps:
        return NOTHING
    parts: list[Node] = []
    raw = _intersect(cps, [(0x20, 0x21), (0x23, 0x5B), (0x5D, 0x10FFFF)])  # JSON allows these unescaped
    if raw:
        parts.append(CharClass(tuple(raw)))
    shorts = [spelled for cp, spelled in _SHORT.items() if any(lo <= cp <= hi for lo, hi in cps)]
    if len(shorts) == len(_SHORT):
        parts.append(SHORT_ESCAPE)
    else:
        parts += [Literal(x) for x in shorts]
    u_set = _intersect(cps, _U_ESCAPABLE)
    if u_set == _U_FULL:  # the common case (any char, a few ASCII excluded): one shared rule
        parts.append(U_ESCAPE)
    else:
        parts += [_u_escape(lo, hi) for lo, hi in u_set]
    return alt(parts)


HEX = CharClass(((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)))
# one JSON string "unit" (a pair spells as two units): for strings without length bounds,
# where counting does not matter; much smaller than STRING_CHAR
_UNIT: Node = alt((CharClass(((0x20, 0x21), (0x23, 0x5B), (0x5D, 0xD7FF), (0xE000, 0x10FFFF))),
                         seq((Literal(b"\\"), alt((CharClass(((0x22, 0x22), (0x2F, 0x2F), (0x5C, 0x5C), (0x62, 0x62),
                                                                 (0x66, 0x66), (0x6E, 0x6E), (0x72, 0x72), (0x74, 0x74))),
                                                      seq((Literal(b"u"), HEX, HEX, HEX, HEX))))))))
QUOTE = Literal(b'"')
DIGIT = CharClass(((0x30, 0x39),))
NONZERO = CharClass(((0x31, 0x39),))
UINT: Node = alt((Literal(b"0"), seq((NONZERO, Repeat(DIGIT, 0, INT_DIGITS - 1)))))
INTEGER: Node = seq((Repeat(Literal(b"-"), 0, 1), UINT))
FRACTION: Node = seq((Literal(b"."), Repeat(DIGIT, 1, FRAC_DIGITS)))
EXPONENT: Node = seq((CharClass(((0x45, 0x45), (0x65, 0x65))), Repeat(CharClass(((0x2B, 0x2B), (0x2D, 0x2D))), 0, 1),
                      Repeat(DIGIT, 1, EXP_DIGITS)))


def shared_rules() -> dict[str, Node]:
    """The rules behind WS, STRING_CHAR, STRING_UNIT, STRING and NUMBER (a fresh dict; the
    bodies, immutable, are built once per process)."""
    return dict(_shared_bodies())


@lru_cache(maxsize=1)
def _shared_bodies() -> tuple:
    return tuple({
        "json_ws": Alt((EMPTY, Literal(b" "), Seq((Literal(b"\n"), Repeat(Literal(b" "), 0, MAX_INDENT))))),
        "json_char": escaped_class(ALL_CHARS),
        "json_sesc": alt([Literal(x) for x in _SHORT.values()]),
        "json_uesc": alt([_u_escape(lo, hi) for lo, hi in _U_FULL]),
        "json_unit": _UNIT,
        "json_string": seq((QUOTE, Repeat(STRING_UNIT, 0, None), QUOTE)),
        "json_number": seq((INTEGER, Repeat(FRACTION, 0, 1), Repeat(EXPONENT, 0, 1))),
    }.items())


def add_used_shared(rules: dict[str, Node]) -> None:
    """Define (in place) the shared rules that `rules` reference, directly or not."""
    shared, seen, todo = shared_rules(), set(), list(rules.values())
    undefined = shared.keys() - rules.keys()
    while todo and undefined:  # (once every shared rule is defined, the walk can add nothing)
        node = todo.pop()
        if isinstance(node, Ref):
            if node.name in undefined:
                rules[node.name] = shared[node.name]
                undefined.discard(node.name)
                todo.append(shared[node.name])
        elif isinstance(node, (Seq, Alt)):
            for x in node.items:  # (literals and classes refer to nothing: not even queued)
                tx = type(x)
                if tx is not Literal and tx is not CharClass and id(x) not in seen:
                    seen.add(id(x))
                    todo.append(x)
        elif isinstance(node, Repeat):
            todo.append(node.item)
        elif isinstance(node, Automaton):
            todo.extend(label for _, label, _ in node.edges)



def json_value_rules(prefix: str = "json_") -> dict[str, Node]:
    """Rules for any JSON value; the entry rule is `prefix + "value"`. Core's JSON mode may reuse it.

    Whitespace is `WS` between tokens, never before the value or after it. The shared rules
    (json_ws, json_string, json_number, ...) are included under their fixed names.
    """
    value, ws = Ref(prefix + "value"), WS
    member = seq((STRING, ws, Literal(b":"), ws, value))
    obj = seq((Literal(b"{"), ws, alt((EMPTY, seq((member, Repeat(seq((ws, Literal(b","), ws, member)), 0, None), ws)))),
               Literal(b"}")))
    arr = seq((Literal(b"["), ws, alt((EMPTY, seq((value, Repeat(seq((ws, Literal(b","), ws, value)), 0, None), ws)))),
               Literal(b"]")))
    rules = {
        prefix + "value": alt((Ref(prefix + "object"), Ref(prefix + "array"), STRING, NUMBER,
                               Literal(b"true"), Literal(b"false"), Literal(b"null"))),
        prefix + "object": obj,
        prefix + "array": arr,
    }
    add_used_shared(rules)
    return rules


_ONE_SPELLING = re.compile(r'[ !#-.0-\[\]-~]+')  # printable ASCII but " \\ /: spelled as is


def string_literal(text: str) -> Node:
    """A JSON string whose decoded content is exactly `text` (any allowed spelling per char)."""
    if _ONE_SPELLING.fullmatch(text):  # the usual key or enum value: one literal
        return Literal(b'"' + text.encode() + b'"')
    parts: list[Node] = [QUOTE]
    i = 0
    for m in _ONE_SPELLING.finditer(text):  # runs of one-spelling characters become Literals
        parts += [escaped_class(((ord(c), ord(c)),)) for c in text[i:m.start()]]
        parts.append(Literal(m.group().encode()))
        i = m.end()
    parts += [escaped_class(((ord(c), ord(c)),)) for c in text[i:]]
    parts.append(QUOTE)
    return seq(_merge_literals(parts))


def _merge_literals(parts: list[Node]) -> list[Node]:
    out: list[Node] = []
    for p in parts:
        if isinstance(p, Literal) and out and isinstance(out[-1], Literal):
            out[-1] = Literal(out[-1].value + p.value)
        else:
            out.append(p)
    return out


def value_literal(value, ws: Node, integer: bool = False) -> Node:
    """A JSON text equal to `value` (key order as given, `ws` between tokens); with `integer`
    (the schema's type allows integers only), an integral number is spelled "2" alone, not also
    "2.0" (which draft-04 does not count as an integer)."""
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, dict):
        members = [seq((string_literal(k), ws, Literal(b":"), ws, value_literal(v, ws))) for k, v in value.items()]
        return _delimited(b"{", members, b"}", ws)
    if isinstance(value, list):
        return _delimited(b"[", [value_literal(v, ws) for v in value], b"]", ws)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer() \
            and abs(value) < 2 ** 63:
        if integer:
            return lit(str(int(value)))
        return alt((lit(str(int(value))), lit(f"{int(value)}.0")))  # 2 == 2.0 in JSON Schema
    return Literal(json.dumps(value).encode())


def _delimited(open_: bytes, items: list[Node], close: bytes, ws: Node) -> Node:
    body: list[Node] = [Literal(open_), ws]
    for i, it in enumerate(items):
        if i:
            body += [ws, Literal(b","), ws]
        body.append(it)
    if items:
        body.append(ws)
    body.append(Literal(close))
    return seq(body)
