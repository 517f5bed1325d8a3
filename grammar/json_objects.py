"""Object and array schemas -> IR.

Objects: declared properties come in the schema's order (optional ones may be skipped), then
additional properties (when allowed). The member list is a small automaton with one state per
(declared index i, members emitted so far c); c saturates at the largest count any bound needs,
so min/maxProperties are exact.  A state reached from two states is a rule, any other is spelled
inline (an unconstrained object: one rule per property, its states after the first member).
Keys of additional properties never spell a declared name (`key_not_in`), so a declared
property's schema cannot be bypassed.  dependentRequired adds to the state the names an emitted
member made required further on, and the targets already emitted for members further on.

Arrays: prefixItems one by one, then `items` repeated, with minItems/maxItems as exact counts.
"""
from __future__ import annotations

import re
from functools import lru_cache

from grammar.ir import EMPTY, NOTHING, Automaton, Literal, Node, Ref, Repeat
from grammar.json_merge import LATE, both
from grammar.json_refs import escape_pointer
from grammar.json_values import QUOTE, STRING_CHAR, STRING_UNIT, WS, alt, escaped_class, seq, string_literal

COMMA = seq((WS, Literal(b","), WS))
COLON = seq((WS, Literal(b":"), WS))
_TRIVIAL = (True, {})
_UNITS = Repeat(STRING_UNIT, 0, None)  # the rest of a key, once it spells none of the names
ARRAY_ITEM_INLINE = 400  # an array item this big (IR nodes) or smaller is spelled inline twice
MAX_PATTERNS = 5  # patternProperties split into at most 2^5 key regions
# declared keys placed among the additional ones (json_oneof sets it): json_merge.LATE
MAX_LATE = 3  # (a state per subset of them emitted)


def key_not_in(names) -> Node:
    """A JSON string (quotes included) whose decoded value is none of `names`: a trie complement."""
    return _key_not_in(tuple(names))


@lru_cache(maxsize=1024)
def _key_not_in(names: tuple) -> Node:  # cached (IR nodes are immutable): objects repeat name lists
    return seq((QUOTE, _key_rest(tuple(sorted(set(names)))), QUOTE))


_KEY_RESTS: dict[tuple, Node] = {}  # _key_rest's cache (a dict, not an lru_cache wrapper: one
_KEY_RESTS_LIMIT = 4096  # stack frame a name character, as long names need)


def _key_rest(suffixes: tuple) -> Node:
    """The rest of a key (up to the closing quote) once what it spelled so far leaves these name
    suffixes possible (sorted, distinct; "" for a name spelled in full): any rest but them, a trie
    complement.  Cached by the suffixes (IR nodes are immutable): different name lists share
    their tails, and a trie node depends on nothing else."""
    got = _KEY_RESTS.get(suffixes)
    if got is not None:
        return got
    tails: dict[str, set] = {}  # next character -> the suffixes after it
    for x in suffixes:
        if x:
            tails.setdefault(x[0], set()).add(x[1:])
    kids = tuple(sorted(tails))
    parts = [] if "" in suffixes else [EMPTY]  # stopping here spells a non-name
    parts.append(_key_escape(kids))
    for k in kids:
        parts.append(seq((escaped_class(((ord(k), ord(k)),)), _key_rest(tuple(sorted(tails[k]))))))
    out = alt(parts)
    if len(_KEY_RESTS) >= _KEY_RESTS_LIMIT:
        _KEY_RESTS.clear()
    _KEY_RESTS[suffixes] = out
    return out


@lru_cache(maxsize=1024)
def _key_escape(kids: tuple) -> Node:
    """A key rest (nonempty) that starts with none of the characters `kids`: few distinct sets
    (single letters) recur."""
    other = escaped_class(tuple((ord(k), ord(k)) for k in kids), negated=True) if kids else STRING_CHAR
    return seq((other, _UNITS))


def _small(node: Node, budget: int = 40) -> int:
    """budget minus the node count of `node` (negative: larger than budget)."""
    budget -= 1
    if isinstance(node, Automaton):
        return budget - len(node.edges)
    for child in getattr(node, "items", ()) if not isinstance(node, Repeat) else (node.item,):
        if budget < 0:
            break
        budget = _small(child, budget)
    return budget


def _shared(lw, member: Node, budget: int = 40) -> Node:
    """A member used by several counting states: a rule of its own unless it is tiny (at most
    `budget` IR nodes)."""
    if _small(member, budget) >= 0:
        return member
    rule = lw.fresh("member")
    lw.rules[rule] = member
    return lw.ref(rule)


def _pattern_key(lw, pattern: str, ptr: str) -> Node:
    from grammar.json_scalars import to_json_text
    return seq((QUOTE, to_json_text(lw.regex(pattern, ptr, search=True)), QUOTE))


def _declared(lw, schema: dict, ptr: str, base: str, addl) -> list[tuple[Node, bool, str]]:
    props, pats = schema.get("properties", {}), schema.get("patternProperties", {})
    required = schema.get("required", [])
    names = list(props) + [r for r in required if r not in props]
    items: list[tuple[Node, bool, str]] = []
    for name in names:
        sub, where = (props[name], f"{ptr}/properties/{escape_pointer(name)}") if name in props else (addl, ptr)
        hits = [s for p, s in pats.items() if re.search(p, name)]
        if name not in props and hits:
            sub = True
        for s in hits:
            sub = both(sub, s)
        if "propertyNames" in schema and not lw.is_valid(name, schema["propertyNames"]):
            sub = False
        if sub is False:
            if name in required:
                return [(NOTHING, True, name)]
            continue
        member = seq((string_literal(name), COLON, lw.node(sub, where, base)))
        items.append((_shared(lw, member), name in required, name))
    return items


def _extra(lw, schema: dict, ptr: str, base: str, addl) -> Node | None:
    """One additional member `"key": value`, or None when no additional member is allowed."""
    pats, names = schema.get("patternProperties", {}), schema.get("propertyNames")
    declared = list(schema.get("properties", {}))
    members: list[Node] = []
    if pats and not (addl in _TRIVIAL and all(s in _TRIVIAL for s in pats.values())):
        plain_names = names in (None, True, {})
        names_dfa = None if plain_names else _names_dfa(lw, names, base)
        regions = _key_regions(lw, pats, declared, addl, ptr, base, names_dfa) \
            if plain_names or names_dfa is not None else None
        if regions is not None:
            return _shared(lw, alt(regions)) if regions else None
        if not plain_names:  # the pattern keys below would not be checked against it
            lw.unsupported("propertyNames", "this propertyNames schema cannot be enforced on pattern keys",
                           f"{ptr}/propertyNames")
        if addl is not False:  # exact only with the complement of the patterns; a union is a superset
            lw.unsupported("patternProperties", "patternProperties next to additionalProperties other than "
                           "false would need a regex complement", f"{ptr}/patternProperties")
        elif len({repr(s) for s in pats.values()}) > 1:
            lw.unsupported("patternProperties", "several patternProperties with different schemas may "
                           "overlap", f"{ptr}/patternProperties")
        for p, s in pats.items():
            where = f"{ptr}/patternProperties/{escape_pointer(p)}"
            members.append(seq((_pattern_key(lw, p, where), COLON, lw.node(s, where, base))))
    if addl is not False:
        key = key_not_in(declared)
        if names not in (None, True, {}):
            key = _name_key(lw, names, declared, f"{ptr}/propertyNames", base)
        members.append(seq((key, COLON, lw.node(addl, f"{ptr}/additionalProperties", base))))
    return _shared(lw, alt(members)) if members else None


def _names_dfa(lw, names, base: str):
    """propertyNames as an automaton of key strings (a $ref followed; an enum or const of
    strings, or a string schema: pattern, lengths, format), or None when it is something else."""
    from grammar import automata
    from grammar.json_oneof import _resolve, _string_dfa

    names = _resolve(lw, names, base)
    if names is False:
        return automata.Dfa([[]], set(), 0)
    if not isinstance(names, dict) or names.get("type", "string") != "string":
        return None
    try:
        if "enum" in names or "const" in names:
            if set(names) - {"enum", "const", "type", "title", "description"}:
                return None
            values = [v for v in names.get("enum", [names.get("const")]) if isinstance(v, str)
                      and lw.is_valid(v, names)]
            return automata.Dfa.from_ir(alt([Literal(v.encode()) for v in values] or [NOTHING]))
        return _string_dfa(lw, {k: v for k, v in names.items() if k != "type"})
    except automata.TooLarge:
        return None


def _key_regions(lw, pats: dict, declared: list[str], addl, ptr: str, base: str, names=None) -> list[Node] | None:
    """Additional members under patternProperties, exactly: the undeclared keys (that `names`,
    propertyNames' automaton, accepts) split by the set of patterns they match (each region an
    automaton: intersections and complements of the patterns, automata.py), each region's value
    under all of its patterns' schemas, or under additionalProperties where no pattern matches.
    None past MAX_PATTERNS or the automaton bound (the caller then falls back)."""
    from grammar import automata
    from grammar.json_scalars import to_json_text

    keys = list(pats)
    if len(keys) > MAX_PATTERNS:
        return None
    where = [f"{ptr}/patternProperties/{escape_pointer(p)}" for p in keys]
    try:
        dfas = [automata.Dfa.from_ir(lw.regex(p, w, search=True)) for p, w in zip(keys, where)]
        outside = [d.complement() for d in dfas]
        region0 = automata.Dfa.from_ir(alt([Literal(n.encode()) for n in declared] or [NOTHING])).complement()
        if names is not None:
            region0 = region0.intersect(names)
        members = []
        for chosen in range(1 << len(keys)):
            region = region0
            for i in range(len(keys)):
                region = region.intersect(dfas[i] if chosen >> i & 1 else outside[i])
                if region.is_empty():
                    break
            hits = [i for i in range(len(keys)) if chosen >> i & 1]
            if region.is_empty() or (not hits and addl is False):
                continue
            sub = addl if not hits else pats[keys[hits[0]]]
            for i in hits[1:]:
                sub = both(sub, pats[keys[i]])
            if sub is False:
                continue
            key = seq((QUOTE, to_json_text(region.to_ir()), QUOTE))
            value = lw.node(sub, where[hits[0]] if hits else f"{ptr}/additionalProperties", base)
            members.append(seq((key, COLON, value)))
        return members
    except automata.TooLarge:
        return None


def _name_key(lw, names, declared: list[str], ptr: str, base: str) -> Node:
    if names is False:
        return NOTHING
    if isinstance(names, dict) and ("enum" in names or "const" in names):
        values = names.get("enum", [names.get("const")])
        return alt([string_literal(v) for v in values if isinstance(v, str) and v not in declared
                    and lw.is_valid(v, names)] or [NOTHING])
    if isinstance(names, dict) and set(names) <= {"type", "pattern", "minLength", "maxLength", "format",
                                                   "title", "description"} and names.get("type", "string") == "string":
        from grammar.json_scalars import string_node
        return string_node(lw, names, ptr)
    lw.unsupported("propertyNames", "this propertyNames schema cannot be enforced on additional keys", ptr)
    return key_not_in(declared)


def object_node(lw, schema: dict, ptr: str, base: str) -> Node:
    addl = schema.get("additionalProperties")
    if addl is None:
        addl = schema.get("unevaluatedProperties", True if lw.allow_additional else False)
    items = _declared(lw, schema, ptr, base, addl)
    extra = _extra(lw, schema, ptr, base, addl)
    min_p, max_p = schema.get("minProperties", 0), schema.get("maxProperties")
    cap = max(min_p, max_p or 0, 1)  # counts saturate here; c == 0 still means "nothing emitted"
    after, before = _dependencies(lw, schema, items, extra is not None, ptr)
    targets = frozenset().union(*before.values())  # names whose emission later members check
    tracked = bool(after or before)
    # late keys (LATE, set by the exact oneOf lowering): declared, but placed among the additional
    # members in any order, each at most once (the state tracks which were emitted)
    late_names = set(schema.get(LATE, ())) - set(after) - set(before) - targets - \
        {n for owed in after.values() for n in owed}
    late = [(m, r, p) for m, r, p in items if p in late_names] if len(late_names) <= MAX_LATE else []
    if late:
        items = [x for x in items if x[2] not in late_names]
    late_required = frozenset(p for _, r, p in late if r)
    # minProperties counts distinct keys, but additional keys may repeat (JSON allows duplicate
    # names; a parser keeps one): toward it, additional members count once (one is always distinct
    # from the declared names), so no duplicate can fake the count
    distinct = min_p >= 2 and extra is not None
    if distinct and min_p > len(items) + len(late) + 1:
        lw.unsupported("minProperties", f"minProperties {min_p} needs {min_p - len(items) - len(late)} distinct "
                       "additional keys, and a grammar cannot keep additional keys from repeating",
                       f"{ptr}/minProperties")
        distinct = False  # non-strict: every member counts (a duplicate may fake the count)

    def moves(key: tuple) -> tuple:
        """(member, the state after emitting it, the state after skipping it, can stop here) of
        state key = (i, c, owed, seen, done, k, x): members from declared index i on, c emitted
        so far; owed: the declared names an earlier member depends on (now required), seen: the
        dependency targets emitted, done: the late keys emitted; with `distinct`, k: the keys
        that count toward minProperties, x: an additional member was counted.  None for a move
        not allowed.  Past the declared members: ([(member, next state)], None, None, can stop
        here)."""
        i, c, owed, seen, done, k, x = key
        more = max_p is None or c + 1 <= max_p
        kn = min(k + 1, min_p) if distinct else 0  # after a declared name
        if i < len(items):
            member, required, prop = items[i]
            if not tracked:  # (no dependentRequired: owed and seen stay empty, no set to build)
                return member, (i + 1, min(c + 1, cap), owed, seen, done, kn, x) if more else None, \
                    None if required else (i + 1, c, owed, seen, done, k, x), False
            take = (i + 1, min(c + 1, cap), (owed | after.get(prop, frozenset())) - {prop},
                    seen | ({prop} & targets), done, kn, x) if more and before.get(prop, frozenset()) <= seen else None
            skip = (i + 1, c, owed, seen, done, k, x) if not required and prop not in owed else None
            return member, take, skip, False
        first = distinct and not x  # the first additional member counts, the others may repeat a key
        options = [(extra, (i, min(c + 1, cap), owed, seen, done, kn if first else k, x or first))] \
            if extra is not None and more else []
        options += [(m, (i, min(c + 1, cap), owed, seen, done | {p}, kn, x)) for m, _, p in late
                    if p not in done and more]
        enough = (k if distinct else c) >= min_p
        return options, None, None, enough and not owed and late_required <= done

    def successors(key: tuple) -> set:
        member, take, skip, _ = moves(key)
        if key[0] == len(items):
            return {nxt for _, nxt in member}
        return {take, skip} - {None}

    # the states form a DAG: one met from two states on is a rule, any other is spelled inline
    users: dict[tuple, int] = {}
    todo = [(0, 0, frozenset(), frozenset(), frozenset(), 0, False)]
    while todo:
        for nxt in successors(todo.pop()):  # (a state reached by two moves is one use)
            users[nxt] = users.get(nxt, 0) + 1
            if users[nxt] == 1:
                todo.append(nxt)
    names: dict[tuple, str] = {}

    def alternatives(key: tuple) -> Node:
        parts: list[Node] = []
        while key is not None:  # a chain of skips through inline states: one flat Alt
            member, take, skip, stop = moves(key)
            sep = EMPTY if key[1] == 0 else COMMA
            if key[0] == len(items):  # the additional and late members
                if stop:
                    parts.append(EMPTY)
                parts += [seq((sep, m, state(nxt))) for m, nxt in member]
                break
            if take is not None and take == skip:  # emitted or not, the same state follows
                parts.append(seq((alt((seq((sep, member)), EMPTY)), state(take))))
                break
            if stop:
                parts.append(EMPTY)
            if take is not None:
                parts.append(seq((sep, member, state(take))))
            if skip is not None and users[skip] > 1:
                parts.append(state(skip))
                break
            key = skip
        return alt(parts, compare=False)  # (inline states are big trees: compared by identity)

    def state(key: tuple) -> Node:
        """The members from state key on: a rule's reference for a shared state, else inline."""
        if key in names:
            return lw.ref(names[key])
        if users.get(key, 0) < 2:
            return alternatives(key)
        name = names[key] = lw.fresh("obj")
        lw.rules[name] = alternatives(key)
        return lw.ref(name)

    out = seq((Literal(b"{"), WS, state((0, 0, frozenset(), frozenset(), frozenset(), 0, False)), WS, Literal(b"}")))
    state = None  # noqa: F841  (breaks the cycle state <-> alternatives, which would hold the lowerer until a GC pass)
    return out


def _dependencies(lw, schema: dict, items: list, open_: bool, ptr: str) -> tuple[dict, dict]:
    """dependentRequired over the declared order: ({name: names after it that it makes required},
    {name: names before it that must have been emitted})."""
    deps = schema.get("dependentRequired") or {}
    order = {prop: i for i, (_, _, prop) in enumerate(items)}
    after: dict[str, frozenset] = {}
    before: dict[str, frozenset] = {}
    for name, needs in deps.items():
        if name not in order:
            if open_ and needs:  # it could come as an additional property: its key is not tracked
                lw.unsupported("dependentRequired", f"{name!r} is not a declared property",
                               f"{ptr}/dependentRequired/{escape_pointer(name)}")
            continue  # otherwise never emitted: nothing to enforce
        for need in needs:
            if need == name:
                continue
            if need not in order:  # only an additional property could supply it
                lw.unsupported("dependentRequired", f"{name!r} requires {need!r}, which is not a declared "
                               "property", f"{ptr}/dependentRequired/{escape_pointer(name)}")
                continue
            side = after if order[need] > order[name] else before
            side[name] = side.get(name, frozenset()) | {need}
    return after, before


def array_node(lw, schema: dict, ptr: str, base: str) -> Node:
    prefix = schema.get("prefixItems", [])
    items = schema.get("items", schema.get("unevaluatedItems", True))
    lo, hi = schema.get("minItems", 0), schema.get("maxItems")
    if schema.get("uniqueItems") is True and not (hi is not None and hi <= 1):
        lw.unsupported("uniqueItems", "uniqueItems cannot be enforced by a grammar", f"{ptr}/uniqueItems")
    if hi is not None and lo > hi:
        return NOTHING
    k = len(prefix) if hi is None else min(len(prefix), hi)
    # tail: the elements after the prefix, at positions k.., count in [max(lo-k, 0), hi-k]
    t_lo, t_hi = max(lo - k, 0), None if hi is None else hi - k
    item = NOTHING if items is False else lw.node(items, f"{ptr}/items", base)
    if item == NOTHING or t_hi == 0:
        rest = EMPTY if t_lo == 0 else NOTHING
    elif k == 0:
        # the item is spelled twice (first, then after each comma): a big one becomes a rule of its
        # own, or nested arrays would double at every level (2^depth NFA states)
        item = _shared(lw, item, ARRAY_ITEM_INLINE)
        # one node per (item, counts): arrays of one item type recur (a list of strings, of any)
        key = (item.name if type(item) is Ref else id(item), t_lo, t_hi)
        got = lw.array_tails.get(key)
        if got is not None and (got[0] is item or type(item) is Ref):
            return got[1]
        first = seq((item, Repeat(seq((COMMA, item)), max(t_lo - 1, 0), None if t_hi is None else t_hi - 1)))
        rest = alt(([EMPTY] if t_lo == 0 else []) + [first])
        out = seq((Literal(b"["), WS, rest, WS, Literal(b"]")))
        lw.array_tails[key] = (item, out)
        return out
    else:
        rest = Repeat(seq((COMMA, item)), t_lo, t_hi)
    for i in range(k - 1, -1, -1):  # rest = the elements from position i on
        node = lw.node(prefix[i], f"{ptr}/prefixItems/{i}", base)
        here = seq(((COMMA if i else EMPTY), node, rest))
        rest = alt(([EMPTY] if i >= lo else []) + [here])
    return seq((Literal(b"["), WS, rest, WS, Literal(b"]")))
