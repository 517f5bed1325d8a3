"""String and number schemas -> IR (the JSON-text level).

Strings: `pattern` and `format` are regexes over the DECODED string; `to_json_text` rewrites
their IR so that every character matches all of its JSON spellings (see json_values). Length
bounds and a second regex (pattern with format) are intersected exactly: structurally when
`restrict_length` can, else through finite automata (automata.py).
Numbers: bounds and multipleOf go through the digit automata of json_numbers.
"""
from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from grammar.automata import restrict
from grammar.formats import KNOWN_UNSUPPORTED, format_pattern
from grammar.ir import EMPTY, NOTHING, Alt, Automaton, CharClass, Literal, Node, Repeat, Seq
from grammar.json_numbers import decimal_range, int_range, multiple_of_rules
from grammar.json_values import DIGIT, INT_DIGITS, NONZERO, NUMBER, QUOTE, STRING, STRING_CHAR, alt, escaped_class, lit, seq

MAX_ENUMERATED = 2000  # multiples of multipleOf we are willing to list one by one
MAX_AUTOMATON = 12  # largest multipleOf (not dividing 1000) lowered as a remainder automaton


def to_json_text(node: Node, memo: dict | None = None) -> Node:
    """Rewrite a regex IR over decoded characters into IR over their JSON-escaped spellings."""
    memo = {} if memo is None else memo
    if node in memo:
        return memo[node]
    if isinstance(node, CharClass):
        out = escaped_class(node.ranges, node.negated)
    elif isinstance(node, Literal):
        out = seq([escaped_class(((ord(c), ord(c)),)) for c in node.value.decode("utf-8")] or [EMPTY])
    elif isinstance(node, Seq):
        out = seq([to_json_text(x, memo) for x in node.items] or [EMPTY])
    elif isinstance(node, Alt):
        out = Alt(tuple(to_json_text(x, memo) for x in node.items))
    elif isinstance(node, Repeat):
        out = Repeat(to_json_text(node.item, memo), node.min, node.max)
    elif isinstance(node, Automaton):
        out = Automaton(node.start, node.finals, tuple((q, to_json_text(label, memo), r) for q, label, r in node.edges))
    else:
        raise TypeError(f"unexpected regex IR node {node!r}")
    memo[node] = out
    return out


def length_range(node: Node) -> tuple[int, int | None]:
    """(min, max) decoded length of the strings a regex IR matches (max None: unbounded)."""
    if isinstance(node, CharClass):
        return 1, 1
    if isinstance(node, Literal):
        n = len(node.value.decode("utf-8"))
        return n, n
    if isinstance(node, Seq):
        lo, hi = 0, 0
        for x in node.items:
            a, b = length_range(x)
            lo, hi = lo + a, None if hi is None or b is None else hi + b
        return lo, hi
    if isinstance(node, Alt):
        if not node.items:
            return 0, 0
        rs = [length_range(x) for x in node.items]
        return min(r[0] for r in rs), None if any(r[1] is None for r in rs) else max(r[1] for r in rs)
    if isinstance(node, Repeat):
        a, b = length_range(node.item)
        return a * node.min, None if node.max is None or b is None else b * node.max
    raise TypeError(f"unexpected regex IR node {node!r}")


def restrict_length(node: Node, lo: int, hi: int | None) -> Node | None:
    """`node` limited to decoded lengths lo..hi, or None when that is not expressible exactly here."""
    a, b = length_range(node)
    if a >= lo and (hi is None or (b is not None and b <= hi)):
        return node
    if isinstance(node, Repeat):
        w, w2 = length_range(node.item)
        if w != w2 or w == 0:
            return None
        new_min = max(node.min, -(-lo // w))
        new_max = hi // w if node.max is None and hi is not None else node.max
        if hi is not None:
            new_max = min(new_max, hi // w)
        return NOTHING if new_max is not None and new_min > new_max else Repeat(node.item, new_min, new_max)
    if isinstance(node, Seq):
        ranges = [length_range(x) for x in node.items]
        var = [i for i, (x, y) in enumerate(ranges) if x != y]
        if len(var) != 1:
            return None
        fixed = sum(x for i, (x, _) in enumerate(ranges) if i != var[0])
        inner = restrict_length(node.items[var[0]], max(lo - fixed, 0), None if hi is None else hi - fixed)
        if inner is None:
            return None
        return Seq(node.items[:var[0]] + (inner,) + node.items[var[0] + 1:])
    if isinstance(node, Alt):
        parts = [restrict_length(x, lo, hi) for x in node.items]
        return None if any(p is None for p in parts) else alt([p for p in parts if p != NOTHING] or [NOTHING])
    return None


LONG_STRING = 256  # a plain string whose length bound reaches this is a rule of its own (_string_node)


def string_node(lw, schema: dict, ptr: str) -> Node:
    """A string schema's node, memoized in the lowerer by its four keywords (schemas repeat
    formats and patterns; a parse, an automaton and a JSON spelling each time otherwise), unless
    the lowering warned (a repeat warns at its own pointer)."""
    key = (schema.get("minLength", 0), schema.get("maxLength"), schema.get("pattern"), schema.get("format"))
    if not all(type(x) in (int, str, type(None)) for x in key):  # (odd values: not memoized)
        return _string_node(lw, schema, ptr)
    got = lw.string_nodes.get(key)
    if got is None:
        warned = len(lw.warnings)
        got = _string_node(lw, schema, ptr)
        if len(lw.warnings) == warned:
            lw.string_nodes[key] = got
    return got


def _string_node(lw, schema: dict, ptr: str) -> Node:
    lo, hi = schema.get("minLength", 0), schema.get("maxLength")
    pattern, fmt = schema.get("pattern"), schema.get("format")
    if fmt is not None and format_pattern(fmt) is None:
        if fmt in KNOWN_UNSUPPORTED:
            lw.unsupported("format", f"format {fmt!r} is not supported", f"{ptr}/format")
        fmt = None  # an unknown format is an annotation
    if pattern is None and fmt is None:
        if hi is not None and lo > hi:
            return NOTHING
        if lo == 0 and hi is None:
            return STRING
        node = seq((QUOTE, Repeat(STRING_CHAR, lo, hi), QUOTE))
        if max(lo, hi or 0) < LONG_STRING:
            return node
        # a rule of its own (string_node hands the same one to every equal schema): each use is
        # one call edge, where an inlined copy unrolls a state per character (a schema with 50
        # `maxLength: 4096` strings built a 13.5M-state automaton); prepare still inlines it
        # where it is used once or twice
        name = lw.fresh("long_string")
        lw.rules[name] = node
        return lw.ref(name)
    also = None
    if pattern is not None:
        body, where = lw.regex(pattern, f"{ptr}/pattern", search=True), "pattern"
        if fmt is not None:  # both: the intersection of their automata (automata.py)
            also, where = lw.regex(format_pattern(fmt), f"{ptr}/format", search=False), "format"
    else:
        body, where = lw.regex(format_pattern(fmt), f"{ptr}/format", search=False), "format"
    tight = body if also is None and not lo and hi is None else None
    if tight is None and also is None:
        tight = restrict_length(body, lo, hi)  # structural: cheap, when it can prove it exact
    if tight is None:
        tight = restrict(body, lo, hi, also)
    if tight is None:
        key = "format" if also is not None else "maxLength" if hi is not None else "minLength"
        lw.unsupported(key, f"{'pattern with format' if also is not None else 'minLength/maxLength with this ' + where}"
                       " needs an automaton larger than the compiler builds", f"{ptr}/{key}")
        tight = body  # non-strict: the pattern alone, a superset
    return seq((QUOTE, to_json_text(tight), QUOTE))


def _bound(schema: dict, incl: str, excl: str, pick) -> tuple[Decimal | None, bool]:
    """The tighter of e.g. minimum / exclusiveMinimum as (value, exclusive)."""
    cands = []
    if isinstance(schema.get(incl), (int, float)) and not isinstance(schema.get(incl), bool):
        cands.append((Decimal(str(schema[incl])), False))
    if isinstance(schema.get(excl), (int, float)) and not isinstance(schema.get(excl), bool):
        cands.append((Decimal(str(schema[excl])), True))
    if not cands:
        return None, False
    best = pick(c[0] for c in cands)
    return best, any(c[1] for c in cands if c[0] == best)


def number_node(lw, schema: dict, ptr: str, integer: bool) -> Node:
    lo, lo_ex = _bound(schema, "minimum", "exclusiveMinimum", max)
    hi, hi_ex = _bound(schema, "maximum", "exclusiveMaximum", min)
    mult = schema.get("multipleOf")
    dm = None if mult is None else Decimal(str(mult))
    if integer and dm is not None and dm % 1 != 0:  # n | x*d for integer x, with m = n/d reduced
        dm = Decimal(Fraction(dm).numerator)
    if integer or (dm is not None and dm % 1 == 0):
        ilo = None if lo is None else math.floor(lo) + 1 if lo_ex else math.ceil(lo)
        ihi = None if hi is None else math.ceil(hi) - 1 if hi_ex else math.floor(hi)
        if dm is None or dm == 1:
            return int_range(ilo, ihi)
        return _multiple_of(lw, int(dm), ilo, ihi, f"{ptr}/multipleOf")
    if dm is not None:
        q = -dm.normalize().as_tuple().exponent
        if dm.normalize() != Decimal(1).scaleb(-q):
            lw.unsupported("multipleOf", f"multipleOf {mult} is enforced only for integers and powers of ten",
                           f"{ptr}/multipleOf")
        else:
            return decimal_range(lo, lo_ex, hi, hi_ex, frac_digits=q)
    if lo is None and hi is None:
        return NUMBER
    return decimal_range(lo, lo_ex, hi, hi_ex)


def _multiple_of(lw, k: int, lo: int | None, hi: int | None, ptr: str) -> Node:
    """Integers divisible by k within [lo, hi]: listed, or a remainder automaton for sign-only bounds."""
    if lo is not None and hi is not None and (hi - lo) // k <= MAX_ENUMERATED:
        first = -(-lo // k) * k
        return alt([lit(str(v)) for v in range(first, hi + 1, k)] or [NOTHING])
    if hi is None and (lo is None or lo <= k) and (_tail_digits(k) or k <= MAX_AUTOMATON):
        positive = _positive_multiples(lw, k)
        parts = [positive]
        if lo is None or lo <= 0:
            parts.append(Literal(b"0"))
        if lo is None:
            parts.append(seq((Literal(b"-"), positive)))
        return alt(parts)
    lw.unsupported("multipleOf", f"multipleOf {k} with these bounds is not supported", ptr)
    return int_range(lo, hi)


def _tail_digits(k: int) -> int | None:
    """m (<= 3) such that k divides 10**m: divisibility then only depends on the last m digits."""
    return next((m for m in range(1, 4) if 10 ** m % k == 0), None)


def _positive_multiples(lw, k: int) -> Node:
    """Canonical positive integers (<= INT_DIGITS digits) divisible by k."""
    m = _tail_digits(k)
    if m is None:  # remainder automaton: one rule per (remainder, digits left)
        rules, entry = multiple_of_rules(k, lw.fresh(f"mult{k}_"))
        lw.rules.update(rules)
        return alt([x for x in entry.items if x != Literal(b"0")])
    small = [lit(str(v)) for v in range(k, 10 ** m, k)]
    endings = alt([lit(str(v).zfill(m)) for v in range(0, 10 ** m, k)])
    return alt(small + [seq((NONZERO, Repeat(DIGIT, 0, INT_DIGITS - 1 - m), endings))])
