"""allOf as a real intersection: merge two (already allOf-free) schemas into one.

`merge(a, b, conflict)` returns a schema whose instances are exactly those valid under both, or
calls `conflict(keyword, message)` for what it cannot intersect exactly (two different
`pattern`s, incompatible `patternProperties`, ...). `conflict` raises in strict mode; in
non-strict mode it records a warning and the merge keeps a's value, i.e. drops b's constraint
(a superset, never a silent one).

Invariants: keywords that only one side has are copied; equal values are kept once; nested
subschemas are combined lazily as {"allOf": [x, y]} and flattened when they are lowered.
"""
from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Callable

Conflict = Callable[[str, str], None]
LATE = "$gramserve_late"  # json_objects.LATE (declared keys placed among the additional ones)

_MAX_KEYWORDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_MIN_KEYWORDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "$schema", "$id",
                          "$anchor", "$defs", "definitions", "readOnly", "writeOnly", "deprecated",
                          "contentMediaType", "contentEncoding", "contentSchema", "$vocabulary"})
_OBJECT_KEYS = ("properties", "patternProperties", "additionalProperties")
# keywords with validation meaning; any other keyword (x-*, vendor extensions, misspellings) is
# an annotation by the spec: two different values of it are no conflict
_VALIDATION = frozenset({
    "type", "enum", "const", "properties", "patternProperties", "additionalProperties", "required",
    "items", "prefixItems", "additionalItems", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "format", "minItems",
    "maxItems", "uniqueItems", "contains", "minContains", "maxContains", "minProperties",
    "maxProperties", "propertyNames", "dependentRequired", "dependentSchemas", "dependencies",
    "anyOf", "oneOf", "allOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "$recursiveRef",
    "unevaluatedProperties", "unevaluatedItems"})


def both(x, y):
    """The lazy intersection of two subschemas."""
    if x is True or x == {}:
        return y
    if y is True or y == {} or x == y:
        return x
    if x is False or y is False:
        return False
    return {"allOf": [x, y]}


def canon(value) -> str:
    """A key under which JSON-Schema-equal values (1 and 1.0; key order) coincide."""
    def norm(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v
    return json.dumps(norm(value), sort_keys=True)


def _types(t) -> set[str]:
    return {t} if isinstance(t, str) else set(t)


def _merge_type(ta, tb) -> list[str]:
    a, b = _types(ta), _types(tb)
    out = a & b
    if "integer" in (a | b) and ("number" in a or "number" in b):
        if ("integer" in a and "number" in b) or ("number" in a and "integer" in b):
            out.add("integer")
    return sorted(out)


def _merge_multiple(x, y, conflict: Conflict):
    dx, dy = Decimal(str(x)), Decimal(str(y))
    if (dx / dy) % 1 == 0:
        return x
    if (dy / dx) % 1 == 0:
        return y
    if dx % 1 == 0 and dy % 1 == 0:
        return math.lcm(int(dx), int(dy))
    conflict("multipleOf", f"cannot intersect multipleOf {x} and {y}")
    return x


def _merge_objects(a: dict, b: dict, conflict: Conflict) -> dict:
    """properties / patternProperties / additionalProperties of a AND b."""
    pa, pb = a.get("properties", {}), b.get("properties", {})
    ppa, ppb = a.get("patternProperties", {}), b.get("patternProperties", {})
    ada, adb = a.get("additionalProperties", True), b.get("additionalProperties", True)
    if ppa and ppb and not (ada in (True, {}) and adb in (True, {})):
        conflict("patternProperties", "cannot intersect patternProperties together with additionalProperties")

    def other_side(key, props, pats, addl):
        if key in props:
            return props[key]
        hits = [s for p, s in pats.items() if re.search(p, key)]
        out = True
        for s in hits:
            out = both(out, s)
        return out if hits else addl

    out: dict = {}
    for key in list(pa) + [k for k in pb if k not in pa]:
        out[key] = both(other_side(key, pa, ppa, ada), other_side(key, pb, ppb, adb))
    pats = {p: both(s, adb) for p, s in ppa.items()}
    for p, s in ppb.items():
        pats[p] = both(pats[p], s) if p in pats else both(s, ada)
    res = {"properties": out} if out else {}
    if pats:
        res["patternProperties"] = pats
    if "additionalProperties" in a or "additionalProperties" in b:  # explicit, even when true:
        res["additionalProperties"] = both(ada, adb)  # it evaluates every undeclared property
    return res


def _merge_prefix(a: dict, b: dict) -> list:
    pa, pb = a.get("prefixItems", []), b.get("prefixItems", [])
    ia, ib = a.get("items", True), b.get("items", True)
    n = max(len(pa), len(pb))
    return [both(pa[i] if i < len(pa) else ia, pb[i] if i < len(pb) else ib) for i in range(n)]


def merge(a, b, conflict: Conflict):
    """The intersection of schemas a and b (bools allowed)."""
    if a is True or a == {}:
        return b
    if b is True or b == {}:
        return a
    if a is False or b is False:
        return False
    a, b = _conditional(a), _conditional(b)
    if "if" in a and "if" in b and any(canon(a.get(k)) != canon(b.get(k)) for k in _CONDITIONAL):
        b = _conditional(b, as_any_of=True)  # two conditionals: b's becomes a union (exact)
    out = {k: v for k, v in a.items() if k not in _OBJECT_KEYS}
    if any(k in a or k in b for k in _OBJECT_KEYS):
        out.update(_merge_objects(a, b, conflict))
    if "prefixItems" in a or "prefixItems" in b:
        out["prefixItems"] = _merge_prefix(a, b)
    for key, vb in b.items():
        if key in _OBJECT_KEYS or key == "prefixItems":
            continue
        if key in ("const", "enum"):  # combined by _merge_consts
            out.setdefault(key, vb)
            continue
        if key == LATE:  # (an ordering hint of the exact oneOf lowering: both sides' keys)
            out[key] = list(dict.fromkeys(list(out.get(key, [])) + list(vb)))
            continue
        if key not in out or out[key] == vb or key in _ANNOTATIONS or key not in _VALIDATION:
            out.setdefault(key, vb)
            continue
        out[key] = _merge_value(key, out[key], vb, conflict)
    return _merge_consts(out, a, b)


_CONDITIONAL = ("if", "then", "else")


def _conditional(s: dict, as_any_of: bool = False) -> dict:
    """s without then/else when it has no if (annotations then, which must not pair with the
    other side's if); with as_any_of, its if/then/else as the equivalent
    anyOf [(if and then), (not if and else)], intersected with its own anyOf."""
    if "if" not in s:
        return {k: v for k, v in s.items() if k not in ("then", "else")} if "then" in s or "else" in s else s
    if not as_any_of:
        return s
    out = {k: v for k, v in s.items() if k not in _CONDITIONAL}
    cond = [both(s["if"], s.get("then", True)), both({"not": s["if"]}, s.get("else", True))]
    out["anyOf"] = [both(x, y) for x in out["anyOf"] for y in cond] if "anyOf" in out else cond
    return out


def _merge_value(key: str, va, vb, conflict: Conflict):
    if key == "type":
        return _merge_type(va, vb)
    if key == "required":
        return list(dict.fromkeys(list(va) + list(vb)))
    if key in _MIN_KEYWORDS:
        return max(va, vb)
    if key in _MAX_KEYWORDS:
        return min(va, vb)
    if key == "multipleOf":
        return _merge_multiple(va, vb, conflict)
    if key in ("items", "unevaluatedProperties", "unevaluatedItems", "propertyNames", "additionalItems"):
        return both(va, vb)
    if key in ("anyOf", "oneOf"):
        if len(va) * len(vb) > 64:
            conflict(key, f"two {key} lists too large to intersect ({len(va)} x {len(vb)})")
            return va
        return [both(x, y) for x in va for y in vb]
    if key == "uniqueItems":
        return va or vb
    if key == "not":  # neither A nor B: not (A or B)
        return {"anyOf": [va, vb]}
    conflict(key, f"cannot intersect two different {key!r} values")
    return va


def _merge_consts(out: dict, a: dict, b: dict) -> dict:
    """const/enum of both sides become one enum of the values both allow."""
    sets = []
    for side in (a, b):
        if "const" in side:
            sets.append([side["const"]])
        elif "enum" in side:
            sets.append(list(side["enum"]))
    if len(sets) < 2:
        return out
    keep = {canon(v) for v in sets[1]}
    out.pop("const", None)
    out["enum"] = [v for v in sets[0] if canon(v) in keep]
    return out
