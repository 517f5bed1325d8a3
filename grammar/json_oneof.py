"""Proving oneOf branches mutually exclusive, so that oneOf can be lowered as anyOf exactly.

A grammar can take a union but not an "exactly one of". When no instance satisfies two branches
at once, "exactly one" equals "at least one". `provably_disjoint` is conservative (False means
"could not prove it"); it recognises what real schemas use:
- disjoint `type` sets (integer counts as number);
- an enum/const branch none of whose values validates against the other branch;
- objects that both require a property whose schemas are provably disjoint (discriminators),
  or one object requiring a property the other forbids (additionalProperties false);
- strings whose pattern / format / length languages do not intersect (an automaton product).
"""
from __future__ import annotations

_ALL = {"null", "boolean", "object", "array", "string", "number", "integer"}
MAX_DEPTH = 4


def _types(s) -> set[str]:
    t = s.get("type") if isinstance(s, dict) else None
    if t is None:
        return set(_ALL)
    out = {t} if isinstance(t, str) else set(t)
    if "number" in out:
        out.add("integer")
    return out


def _resolve(lw, s, base):
    depth = 0
    while isinstance(s, dict) and set(s) - {"title", "description", "$comment"} == {"$ref"} and depth < 8:
        try:
            s = lw.index.resolve(s["$ref"], base)[0]
        except LookupError:
            return s
        depth += 1
    return s


def _values(s):
    if isinstance(s, dict):
        if "const" in s:
            return [s["const"]]
        if "enum" in s:
            return list(s["enum"])
    return None


def provably_disjoint(lw, a, b, base: str, depth: int = 0) -> bool:
    a, b = _resolve(lw, a, base), _resolve(lw, b, base)
    if a is False or b is False:
        return True
    if a is True or b is True or depth > MAX_DEPTH or not isinstance(a, dict) or not isinstance(b, dict):
        return False
    common = _types(a) & _types(b)
    if not common:
        return True
    for x, y in ((a, b), (b, a)):
        vals = _values(x)
        if vals is not None and not any(lw.is_valid(v, y) for v in vals):
            return True
    if common <= {"object"}:
        return _objects_disjoint(lw, a, b, base, depth)
    if common <= {"string"}:
        return _strings_disjoint(lw, a, b)
    return False


def _string_dfa(lw, s: dict):
    """The decoded strings schema `s` allows, as a DFA (None: keywords beyond pattern, format
    and lengths)."""
    from grammar import automata
    from grammar.formats import format_pattern
    from grammar.json_schema import IGNORED, STRING_KEYWORDS

    if any(k != "type" and k not in STRING_KEYWORDS and k not in IGNORED for k in s):
        return None
    regexes = [lw.regex(s["pattern"], "", search=True)] if "pattern" in s else []
    if "format" in s and format_pattern(s["format"]) is not None:
        regexes.append(lw.regex(format_pattern(s["format"]), "", search=False))
    regexes = regexes or [lw.regex(r"[\s\S]*", "", search=False)]
    return automata.language(regexes[0], s.get("minLength", 0), s.get("maxLength"), *regexes[1:])


def _strings_disjoint(lw, a: dict, b: dict) -> bool:
    from grammar import automata
    from grammar.errors import GrammarError

    try:
        x, y = _string_dfa(lw, a), _string_dfa(lw, b)
        return x is not None and y is not None and x.intersect(y).is_empty()
    except (automata.TooLarge, GrammarError):
        return False


def _objects_disjoint(lw, a: dict, b: dict, base: str, depth: int) -> bool:
    pa, pb = a.get("properties", {}), b.get("properties", {})
    ra, rb = set(a.get("required", [])), set(b.get("required", []))
    for key in ra & rb:
        if key in pa and key in pb and provably_disjoint(lw, pa[key], pb[key], base, depth + 1):
            return True
    for x, y, rx in ((a, b, ra), (b, a, rb)):
        py = y.get("properties", {})
        closed = y.get("additionalProperties", True) is False and not y.get("patternProperties")
        if any((closed and k not in py) or py.get(k) is False for k in rx):
            return True
    return False


def strings_one_of(lw, branches: list):
    """The IR of oneOf over branches that all constrain strings only (pattern, format, lengths,
    type string): the strings in exactly one branch language, L_i minus every other L_j, as one
    automaton.  None when a branch is anything else or the automata grow past their bound."""
    from grammar import automata
    from grammar.errors import GrammarError
    from grammar.json_scalars import to_json_text
    from grammar.json_values import QUOTE, seq

    if len(branches) > 5 or not all(isinstance(b, dict) and _types(b) <= {"string"} for b in branches):
        return None
    try:
        dfas = [_string_dfa(lw, b) for b in branches]
        if any(d is None for d in dfas):
            return None
        outside = [d.complement() for d in dfas]
        exactly_one = None
        for i, d in enumerate(dfas):
            only = d
            for j in range(len(dfas)):
                if j != i:
                    only = only.intersect(outside[j])
            exactly_one = only if exactly_one is None else exactly_one.union(only)
        return seq((QUOTE, to_json_text(exactly_one.to_ir()), QUOTE))
    except (automata.TooLarge, GrammarError):
        return None
