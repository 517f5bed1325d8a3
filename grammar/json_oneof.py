"""Proving oneOf branches mutually exclusive, so that oneOf can be lowered as anyOf exactly.

A grammar can take a union but not an "exactly one of". When no instance satisfies two branches
at once, "exactly one" equals "at least one". `provably_disjoint` is conservative (False means
"could not prove it"); it recognises what real schemas use:
- disjoint `type` sets (integer counts as number);
- an enum/const branch none of whose values validates against the other branch;
- objects that both require a property whose schemas are provably disjoint (discriminators),
  or one object requiring a property the other forbids (additionalProperties false);
- strings whose pattern / format / length languages do not intersect (an automaton product).
Property schemas are compared after their allOf members are intersected (merged branches carry
`{"allOf": [parent's, branch's]}` for a property both name).

Where branches can overlap, two exact lowerings remain: `strings_one_of` (each string branch
minus the others, by automata) and `objects_one_of` (each object branch with, for every other
branch, one way of failing it: a required key absent or a property value it refuses).
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


class _Conflict(Exception):
    pass


def _conflict(kw, msg):
    raise _Conflict


def _resolve(lw, s, base, depth: int = 0):
    """s with a lone $ref followed and allOf members (so resolved) intersected into it, where
    that is plain (else s as it is: the provers then see less and prove less)."""
    from grammar.json_merge import merge
    from grammar.json_schema import _modernize

    for _ in range(8):
        if not (isinstance(s, dict) and set(s) - {"title", "description", "$comment"} == {"$ref"}):
            break
        try:
            s = lw.index.resolve(s["$ref"], base)[0]
        except LookupError:
            return s
    if isinstance(s, dict) and isinstance(s.get("allOf"), list) and "$ref" not in s and depth < 4:
        out = _modernize({k: v for k, v in s.items() if k != "allOf"})
        try:
            for m in s["allOf"]:
                m = _resolve(lw, m, base, depth + 1)
                m = _modernize(m) if isinstance(m, dict) else m
                if not isinstance(m, (dict, bool)) or (isinstance(m, dict) and ("$ref" in m or "allOf" in m)):
                    return s
                out = merge(out, m, _conflict)
        except _Conflict:
            return s
        return out
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


# ------------------------------------------------------------------ oneOf over objects
MAX_TERMS = 24
MAX_LATE = 3  # json_objects.MAX_LATE
LATE = "$gramserve_late"  # json_merge.LATE
_KEY_REACH = ("additionalProperties", "patternProperties", "propertyNames", "unevaluatedProperties")
_TYPES = ("null", "boolean", "object", "array", "string", "number")


def _trivial(s) -> bool:
    from grammar.json_schema import IGNORED

    return s is True or (isinstance(s, dict) and all(k in IGNORED for k in s))


def _negation(lw, s, have, base: str):
    """A schema for the values of `have` (the other branch's schema for the key; None: any)
    that fail s (False: none), or None when it cannot be written: s a type list (integer alone
    is not: its complement among numbers is not a schema), an enum/const with `have` finite, or
    what json_not can negate."""
    from grammar.json_not import negations
    from grammar.json_schema import IGNORED

    if not isinstance(s, dict):
        return None
    keys = {k for k in s if k not in IGNORED}
    if keys == {"type"}:
        t = {s["type"]} if isinstance(s["type"], str) else set(s["type"])
        if "integer" in t and "number" not in t:
            return None
        rest = [x for x in _TYPES if x not in t]
        return {"type": rest} if rest else False
    vals = _values(have) if have is not None else None
    if keys and keys <= {"enum", "const"} and vals is not None:
        try:  # (not lw.is_valid: its "cannot tell" is False, which would put a value here)
            check = lw.validator.evolve(schema=s)
            out = [v for v in vals if not check.is_valid(v)]
        except Exception:
            return None
        return {"enum": out} if out else False
    alts = negations(lw, s, base)
    return None if alts is None else {"anyOf": alts} if alts else False


def _failures(lw, fi: dict, fj: dict, base: str):
    """How an instance of fi that has every key fj requires can still fail fj: a list of
    (key, schema, late) -- fails when the key is present with a value of that schema (True: any
    value fi allows); late: fi leaves the key to its additional members, so a term requiring it
    places it among them -- or None when fj may fail otherwise (fj's keywords other than
    required and the property schemas must appear in fi unchanged)."""
    from grammar.json_merge import _VALIDATION, canon
    from grammar.json_schema import IGNORED

    pi, pj = fi.get("properties", {}), fj.get("properties", {})
    dflt = True if lw.allow_additional else False
    ai, aj = fi.get("additionalProperties", dflt), fj.get("additionalProperties", dflt)
    for k, v in fj.items():
        if k not in ("required", "properties", "additionalProperties") and k not in IGNORED and \
                k in _VALIDATION and (k not in fi or canon(fi[k]) != canon(v)):
            return None
    if any(k in x for x in (fi, fj) for k in _KEY_REACH[1:]):
        # patterns: fi must give every key fj does not name the schema fj gives it
        if any(canon(fi.get(k)) != canon(fj.get(k)) for k in _KEY_REACH[1:]) or canon(ai) != canon(aj) \
                or set(pi) - set(pj):
            return None
        keys, patterned = list(pj), True
    else:
        # keys neither names: fi's additional members must satisfy fj's
        if not (_trivial(aj) or ai is False or canon(ai) == canon(aj)):
            return None
        keys, patterned = list(dict.fromkeys(list(pj) + list(pi))), False
    out = []
    for key in keys:
        v = pj.get(key, aj)
        have = pi[key] if key in pi else (None if patterned else ai)  # None: not looked into
        have, v = _resolve(lw, have, base), _resolve(lw, v, base)
        if _trivial(v) or have is False or (have is not None and canon(have) == canon(v)):
            continue  # fi's value for this key satisfies fj's, or fi cannot have the key
        late = key not in pi  # (fi's additional members: the term keeps it among them)
        if v is False or (have is not None and provably_disjoint(lw, have, v, base)):
            out.append((key, True, late))  # present, it fails fj
            continue
        neg = _negation(lw, v, have, base)
        if neg is None:
            return None
        if neg is not False:
            out.append((key, neg, late))
    return out


def _hitting_sets(family: list[frozenset]) -> list[frozenset] | None:
    """The minimal sets that meet every member of family (None: more than MAX_TERMS)."""
    found: set[frozenset] = set()

    def go(chosen: frozenset) -> bool:
        miss = next((s for s in family if not s & chosen), None)
        if miss is None:
            found.add(chosen)
            return len(found) <= 4 * MAX_TERMS
        return all(go(chosen | {k}) for k in sorted(miss, key=repr))

    if not go(frozenset()):
        return None
    minimal = [f for f in found if not any(g < f for g in found)]
    return sorted(minimal, key=lambda f: sorted(map(repr, f))) if len(minimal) <= MAX_TERMS else None


def objects_one_of(lw, flat: list, base: str) -> list[tuple[int, dict]] | None:
    """oneOf over object branches, exactly, when each branch's instance can fail another branch
    only by lacking a key it requires or by a property value of a simple kind (a type, an enum
    value, a value disjoint from it): {"required": ["radius"]} / {"required": ["length",
    "width"]}, or discriminators not required.  "Exactly branch i" is branch i with, for every
    other branch j it may overlap, one such failure of j: one of j's required keys absent, or
    one of j's properties present with a value j refuses.  Returns the terms (branch index,
    schema to intersect it with) whose union is the oneOf, or None when that cannot be shown or
    the terms pass MAX_TERMS."""
    from grammar.json_schema import IGNORED

    res = [_resolve(lw, b, base) for b in flat]
    if len(res) < 2 or not all(isinstance(b, dict) and _types(b) == {"object"} for b in res):
        return None
    if any(k in b for b in res for k in ("$ref", "allOf") if k not in IGNORED):
        return None
    from grammar.json_merge import canon

    req = [frozenset(b.get("required", ())) for b in res]
    terms: list[tuple[int, dict]] = []
    for i, fi in enumerate(res):
        family, negs = [], {}
        for j, fj in enumerate(res):
            if j == i or provably_disjoint(lw, flat[i], flat[j], base):
                continue
            fails = _failures(lw, fi, fj, base)
            if fails is None:
                return None
            member = [("absent", k) for k in req[j] - req[i]]
            for k, n, late in fails:
                negs[("value", k, canon(n))] = (k, n, late)
                member.append(("value", k, canon(n)))
            family.append(frozenset(member))
        if frozenset() in family:
            continue  # every instance of i satisfies another branch too
        sets = _hitting_sets(family)
        if sets is None:
            return None
        for chosen in sets:
            absent = sorted(x[1] for x in chosen if x[0] == "absent")
            values = sorted((negs[x] for x in chosen if x[0] == "value"), key=lambda v: (v[0], canon(v[1])))
            if any(k in absent for k, _, _ in values):
                continue  # absent and present at once
            if len({k for k, _, late in values if late}) > MAX_LATE:
                return None  # (the object lowering would order them)
            extra: list = [{"properties": {k: False for k in absent}}] if absent else []
            extra += [{"required": [k], "properties": {k: n}, **({LATE: [k]} if late else {})}
                      for k, n, late in values]
            terms.append((i, {"allOf": extra} if extra else {}))
            if len(terms) > MAX_TERMS:
                return None
    return terms
