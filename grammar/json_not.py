"""`not`, `if`/`then`/`else` and `dependentSchemas` as unions of plain schemas.

A grammar has no complement, but a schema's negation usually has a plain spelling: keyword by
keyword, "not (A and B)" is "not A or not B", and most keywords negate into one schema of their
own type: `required: [a, b]` fails when `a` or `b` is absent, `minimum: 3` when a number is
below 3, `type: T` for the other types, `enum` for the values left out (numbers as the open
ranges between the excluded ones).  String keywords (`pattern`, lengths, string enums) negate into
`{"type": "string", "not": {...}}`, which the lowering intersects with the complement of the
negated language (an automaton, see `string_without`).  `negations` returns that union as a list
of schemas, or None where a keyword has no such spelling (`uniqueItems`, `items`, `multipleOf`,
formats, ...): the caller keeps its strict error then.

Keys a negation requires (a property value that fails) are declared by it, as an `anyOf`
branch's are: they come after the parent's declared keys (README, "Key order").
"""
from __future__ import annotations

from grammar.json_oneof import _resolve

ALL_TYPES = ("null", "boolean", "object", "array", "string", "number")
MAX_ALTERNATIVES = 64
MAX_DEPTH = 6
_STRING = ("pattern", "minLength", "maxLength")
_BOUNDS = {"minimum": ("exclusiveMaximum", "number"), "exclusiveMinimum": ("maximum", "number"),
           "maximum": ("exclusiveMinimum", "number"), "exclusiveMaximum": ("minimum", "number")}
_COUNTS = {"minItems": ("maxItems", "array", -1), "maxItems": ("minItems", "array", 1),
           "minProperties": ("maxProperties", "object", -1), "maxProperties": ("minProperties", "object", 1)}


class _No(Exception):
    """a negation with no plain spelling"""


def negations(lw, schema, base: str, types=ALL_TYPES) -> list | None:
    """Schemas whose union is exactly the values that fail `schema` (among values of `types`,
    the types the enclosing schema allows), or None."""
    try:
        out = _neg(lw, schema, base, frozenset(types), 0)
    except _No:
        return None
    return out if len(out) <= MAX_ALTERNATIVES else None


def _neg(lw, s, base: str, types: frozenset, depth: int) -> list:
    from grammar.json_merge import _VALIDATION
    from grammar.json_schema import IGNORED, _modernize

    if depth > MAX_DEPTH:
        raise _No
    s = _resolve(lw, s, base)
    if s is True:
        return []
    if s is False:
        return [True]
    if not isinstance(s, dict):
        raise _No
    s = _modernize(s)
    out: list = []
    for key in s:
        if key in IGNORED or key not in _VALIDATION:  # annotations and unknown keywords
            continue
        v = s[key]
        if key == "$ref":  # with siblings: its target is one more conjunct
            try:
                target, _, tbase = lw.index.resolve(v, base)
            except LookupError:
                raise _No from None
            out += _neg(lw, target, tbase, types, depth + 1)
        elif key == "allOf":
            for m in v:
                out += _neg(lw, m, base, types, depth + 1)
        elif key == "anyOf":  # fails every branch: the products of the branches' failures
            out += _product([_neg(lw, m, base, types, depth + 1) for m in v])
        elif key == "not":
            out.append(v)
        elif key == "type":
            out += _neg_type(v)
        elif key in ("enum", "const"):
            out += _neg_values([v] if key == "const" else list(v), types)
        elif key in _STRING:
            if not any(k in s for k in _STRING[:_STRING.index(key)]):  # the string keywords as one
                out.append({"type": "string", "not": {k: s[k] for k in _STRING if k in s}})
        elif key in _BOUNDS:
            other, t = _BOUNDS[key]
            out.append({"type": t, other: v})
        elif key in _COUNTS:
            other, t, step = _COUNTS[key]
            if v + step >= 0:
                out.append({"type": t, other: v + step})
        elif key == "required":
            out += [{"type": "object", "properties": {k: False}} for k in dict.fromkeys(v)]
        elif key == "properties":
            for name, sub in v.items():
                out += [{"type": "object", "required": [name], "properties": {name: n}}
                        for n in _neg(lw, sub, base, frozenset(ALL_TYPES), depth + 1)]
        elif key == "dependentRequired":
            for name, needs in v.items():
                out += [{"type": "object", "required": [name], "properties": {k: False}}
                        for k in needs if k != name]
        else:  # format, multipleOf, items, uniqueItems, patternProperties, oneOf, if, ...
            raise _No
        if len(out) > MAX_ALTERNATIVES:
            raise _No
    return out


def _neg_type(t) -> list:
    ts = {t} if isinstance(t, str) else set(t)
    if "integer" in ts and "number" not in ts:
        raise _No  # the non-integral numbers have no schema
    rest = [x for x in ALL_TYPES if x not in ts]
    return [{"type": rest}] if rest else []


def _neg_values(values: list, types: frozenset) -> list:
    """The values of `types` not in `values`."""
    out: list = []
    nums = sorted({v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)})
    if "null" in types and None not in values:
        out.append({"type": "null"})
    if "boolean" in types:
        left = [b for b in (True, False) if not any(v is b for v in values)]
        if left:
            out.append({"enum": left})
    if "string" in types:
        strs = [v for v in values if isinstance(v, str)]
        out.append({"type": "string", "not": {"enum": strs}} if strs else {"type": "string"})
    if "number" in types or "integer" in types:  # a number other than these: the gaps between them
        t = "number" if "number" in types else "integer"
        lo = None
        for p in nums:
            out.append({"type": t, "exclusiveMaximum": p} if lo is None else
                       {"type": t, "exclusiveMinimum": lo, "exclusiveMaximum": p})
            lo = p
        out.append({"type": t} if lo is None else {"type": t, "exclusiveMinimum": lo})
    for t, kind in (("object", dict), ("array", list)):
        if t in types:
            if any(isinstance(v, kind) for v in values):
                raise _No  # every object but these: no schema
            out.append({"type": t})
    return out


def _product(lists: list[list]) -> list:
    """Schemas for the values in one of each list's union: the pairwise allOf of the lists'
    members (a list that is empty leaves nothing)."""
    out: list = [True]
    for alts in lists:
        out = [a if b is True else b if a is True else {"allOf": [a, b]} for a in out for b in alts]
        if len(out) > MAX_ALTERNATIVES:
            raise _No
    return out


def string_kind(exclude) -> bool:
    """Is `exclude` what string_without can take out of a string language?"""
    from grammar.json_schema import IGNORED

    if not isinstance(exclude, dict):
        return False
    if "enum" in exclude or "const" in exclude:
        return set(exclude) - set(IGNORED) <= {"enum", "const", "type"} and exclude.get("type", "string") == "string"
    return all(k in _STRING or k in IGNORED or (k == "type" and exclude[k] == "string") for k in exclude)


def string_without(lw, schema: dict, exclude) -> object | None:
    """The automaton of the strings `schema`'s string keywords allow but `exclude` (string
    keywords, or an enum/const of strings) does not; None when either has other keywords."""
    from grammar import automata
    from grammar.formats import KNOWN_UNSUPPORTED, format_pattern
    from grammar.ir import Literal
    from grammar.json_oneof import _string_dfa
    from grammar.json_values import alt

    if not string_kind(exclude):
        return None
    keep = {k: v for k, v in schema.items() if k in _STRING or k == "format"}
    if "format" in keep and format_pattern(keep["format"]) is None and keep["format"] in KNOWN_UNSUPPORTED:
        return None  # (the plain lowering says so, and names the format)
    base = _string_dfa(lw, keep)
    if base is None:
        return None
    if "enum" in exclude or "const" in exclude:
        values = [exclude["const"]] if "const" in exclude else list(exclude["enum"])
        strs = [v for v in values if isinstance(v, str)]
        if not strs:
            return base
        gone = automata.language(alt([Literal(v.encode("utf-8")) for v in strs]))
    else:
        gone = _string_dfa(lw, {k: v for k, v in exclude.items() if k != "type"})
        if gone is None:
            return None
    return base.intersect(gone.complement())
