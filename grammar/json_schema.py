"""JSON Schema (draft 2020-12, draft-07 spellings) -> grammar IR.

    grammar, warnings = json_schema_to_grammar({"type": "object", "properties": {...}})

Pipeline per subschema (`_Lowerer.node`): draft-07 spellings are rewritten to 2020-12
(`_modernize`), `allOf` and `$ref`-with-siblings are folded into one schema by intersection
(`_flatten`, json_merge), a lone `$ref` becomes a rule reference (so recursion works),
`anyOf`/`oneOf` distribute their siblings into each branch, `enum`/`const` become literal
alternatives filtered by a real validator, and the rest is lowered per allowed type.

Strict mode (default): every keyword that cannot be enforced exactly raises GrammarError with
the JSON pointer of the keyword. strict=False drops it instead (the grammar then accepts a
superset) and lists each drop in the returned warnings. See schemas/KEYWORDS.md.
"""
from __future__ import annotations

import json
import re

import jsonschema

from grammar import automata, ir
from grammar.errors import GrammarError
from grammar.ir import NOTHING, Literal, Node, Ref
from grammar.json_merge import canon, merge
from grammar.json_not import negations, string_kind, string_without
from grammar.json_objects import array_node, object_node
from grammar.json_oneof import objects_one_of, provably_disjoint, strings_one_of
from grammar.json_refs import RefIndex, escape_pointer, pointer_child, unescape_pointer
from grammar.json_scalars import number_node, string_node, to_json_text
from grammar.json_values import QUOTE, WS, add_used_shared, alt, json_value_rules, seq, value_literal
from grammar.regex import parse_regex

ALL_TYPES = ("null", "boolean", "object", "array", "string", "number")
IGNORED = frozenset({"title", "description", "default", "examples", "$comment", "$schema", "$id", "$anchor",
                     "$defs", "definitions", "readOnly", "writeOnly", "deprecated", "contentMediaType",
                     "contentEncoding", "contentSchema", "$vocabulary", "format_hint", "$dynamicAnchor"})
UNSUPPORTED = ("not", "if", "then", "else", "contains", "minContains", "maxContains", "dependentSchemas",
               "$dynamicRef", "$recursiveRef", "$recursiveAnchor")
MAX_INLINE_DEPTH = 12
MAX_REWRITES = 256  # union branches one schema's not / if rewritings may write, all told
COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


def json_schema_to_grammar(schema: dict | str | bool, *, strict: bool = True,
                           allow_additional_properties_default: bool = True) -> tuple[ir.Grammar, list[str]]:
    """Lower a JSON Schema to a grammar over its JSON texts; returns (grammar, warnings).

    Raises GrammarError(message, pointer=...) for an invalid schema, and in strict mode for any
    keyword it cannot enforce exactly.
    """
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as e:
            raise GrammarError(f"schema is not valid JSON: {e}", pointer="") from None
    if not isinstance(schema, (dict, bool)):
        raise GrammarError("a schema must be a JSON object or a boolean", pointer="")
    lw = _Lowerer(schema, strict, allow_additional_properties_default)
    try:
        lw.rules["start"] = lw.node(schema, "", lw.index.base)
    except RecursionError:
        raise GrammarError("schema nesting too deep (or a $ref cycle that never reaches a value)",
                           pointer="") from None
    add_used_shared(lw.rules)
    return ir.Grammar(rules=lw.rules, start="start", frames=frozenset({"json_ws", "json_char", "json_unit"})), lw.warnings


class _Lowerer:
    def __init__(self, root, strict: bool, allow_additional: bool):
        self.root, self.strict, self.allow_additional = root, strict, allow_additional
        self.rules: dict[str, Node] = {}
        self.warnings: list[str] = []
        self.index = RefIndex(root)
        self.ref_rules: dict[str, str] = {}
        self.counter = 0
        self.lowered: dict[tuple, tuple] = {}  # (_json_key(schema), base) -> (node, fresh names it took)
        self.json_keys: dict[int, tuple] = {}  # id(JSON value) -> (value, its key)
        self.json_ids: dict[tuple, int] = {}
        self.array_tails: dict[tuple, tuple] = {}  # json_objects.array_node's memo
        self.string_nodes: dict[tuple, Node] = {}  # json_scalars.string_node's memo
        self.rewrites = 0  # union branches written for not / if / dependentSchemas (MAX_REWRITES)
        draft7 = isinstance(root, dict) and "draft-0" in str(root.get("$schema", ""))
        cls = jsonschema.Draft7Validator if draft7 else jsonschema.Draft202012Validator
        self.validator = cls(root if isinstance(root, dict) else {})

    # -- services used by json_objects / json_scalars -------------------------------------------
    def unsupported(self, keyword: str, message: str, ptr: str) -> None:
        if self.strict:
            raise GrammarError(f"{message} (strict mode; strict=False drops it with a warning)", pointer=ptr)
        self.warnings.append(f"{ptr or '/'}: dropped {keyword}: {message}")

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}{self.counter}"

    def ref(self, name: str) -> Ref:
        return Ref(name)

    def regex(self, pattern: str, ptr: str, search: bool) -> Node:
        try:
            return parse_regex(pattern, search=search)
        except GrammarError as e:
            raise GrammarError(e.message, pointer=ptr) from None

    def is_valid(self, value, schema) -> bool:
        try:
            return self.validator.evolve(schema=schema).is_valid(value)
        except jsonschema.exceptions.RefResolutionError:
            return False
        except Exception:  # an unresolvable $ref etc.: treat as "cannot prove valid"
            return False

    # -- lowering ------------------------------------------------------------------------------
    def node(self, schema, ptr: str, base: str) -> Node:
        """The IR of `schema` (at JSON pointer `ptr`, $refs resolved against `base`).

        A subschema equal to one lowered before (same JSON, key order included, same base) gets
        that same node: schemas repeat subtrees verbatim (a property in every anyOf branch),
        and a shared node is walked once by every later pass.  Lowering depends on nothing else
        but the pointer in messages: a lowering that warned is not reused (its repeat warns at
        its own pointer), and one that raised never finished.  The rule counter moves on as the
        repeat would have moved it, so rule names stay those of lowering every copy."""
        if schema is True or schema == {}:
            return self._any()
        if schema is False:
            return NOTHING
        if not isinstance(schema, dict):
            raise GrammarError("a schema must be a JSON object or a boolean", pointer=ptr)
        key = (self._json_key(schema), base)
        got = self.lowered.get(key)
        if got is not None:
            self.counter += got[1]
            return got[0]
        counter, warned = self.counter, len(self.warnings)
        out = self._lower(schema, ptr, base)
        if len(self.warnings) == warned:
            self.lowered[key] = (out, self.counter - counter)
        return out

    def _json_key(self, value):
        """A key equal for equal JSON values only (key order and number types included: 1, 1.0
        and true differ); an int per object or array, memoized by identity (the value is kept,
        so its id cannot be reused)."""
        if not isinstance(value, (dict, list)):
            return (type(value), repr(value) if type(value) is float else value)  # -0.0 == 0.0: repr
        got = self.json_keys.get(id(value))
        if got is not None and got[0] is value:
            return got[1]
        if isinstance(value, dict):
            k = (dict, tuple([(name, self._json_key(v)) for name, v in value.items()]))
        else:
            k = (list, tuple([self._json_key(v) for v in value]))
        out = self.json_ids.setdefault(k, len(self.json_ids))
        self.json_keys[id(value)] = (value, out)
        return out

    def _lower(self, schema: dict, ptr: str, base: str) -> Node:
        schema = self._flatten(_modernize(schema), ptr, base, 0)
        if not isinstance(schema, dict):
            return self.node(schema, ptr, base)
        if "$ref" in schema:
            return self._ref(schema["$ref"], ptr, base)
        if "enum" in schema or "const" in schema:  # the validator filters values: every keyword is exact
            return self._enum(schema, ptr)
        if "not" in schema:
            neg = schema["not"]
            if neg is True or (isinstance(neg, dict) and all(k in IGNORED for k in neg)):
                return NOTHING  # every value satisfies `{}`, so none satisfies its negation
            if neg is False:  # nothing satisfies `false`: the `not` holds for every value
                schema = {k: v for k, v in schema.items() if k != "not"}
            else:
                schema = self._not_type(schema, ptr)
            if "not" in schema:
                out = self._not(schema, ptr, base)
                if out is not None:
                    return out
        if "if" in schema or "then" in schema or "else" in schema:
            out = self._if_then_else(schema, ptr, base)
            if out is not None:
                return out
        if "dependentSchemas" in schema:
            return self._dependent_schemas(schema, ptr, base)
        for key in UNSUPPORTED:
            if key in schema:
                self.unsupported(key, f"{key!r} cannot be enforced by a grammar", f"{ptr}/{key}")
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._branches(schema, key, ptr, base)
        return self._typed(schema, ptr, base)

    def _not(self, schema: dict, ptr: str, base: str) -> Node | None:
        """`not` as the union of its negation's plain schemas (json_not), intersected with the
        rest; on strings, the complement of the negated language.  None: not expressible."""
        rest = {k: v for k, v in schema.items() if k != "not"}
        types = _type_set(rest)
        if types == {"string"} and string_kind(schema["not"]):
            for where, sub in ((ptr, rest), (f"{ptr}/not", schema["not"])):  # a bad pattern: named here
                if isinstance(sub.get("pattern"), str):
                    self.regex(sub["pattern"], f"{where}/pattern", search=True)
            try:
                dfa = string_without(self, rest, schema["not"])
            except automata.TooLarge:
                dfa = None
            return None if dfa is None else seq((QUOTE, to_json_text(dfa.to_ir()), QUOTE))
        alts = negations(self, schema["not"], base, types)
        if alts is None:
            return None
        if not self._spend(len(alts)):
            return self._too_many("not", rest, ptr, base)
        return self._rewritten({"allOf": [rest, {"anyOf": alts}]} if alts else False, ptr, base, rest,
                               [(f"{ptr}/not", schema["not"])], "not")

    def _if_then_else(self, schema: dict, ptr: str, base: str) -> Node | None:
        """(if and then) or (not if and else); then/else without if are annotations."""
        rest = {k: v for k, v in schema.items() if k not in ("if", "then", "else")}
        if "if" not in schema:
            return self.node(rest, ptr, base)
        neg = negations(self, schema["if"], base, _type_set(rest))
        if neg is None:
            return None
        if not self._spend(1 + len(neg)):
            return self._too_many("if", rest, ptr, base)
        then, other = schema.get("then", True), schema.get("else", True)
        alts = [{"allOf": [schema["if"], then]}] + [{"allOf": [n, other]} for n in neg]
        sources = [(f"{ptr}/{k}", schema[k]) for k in ("then", "else", "if") if k in schema]
        return self._rewritten({"allOf": [rest, {"anyOf": alts}]}, ptr, base, rest, sources, "if")

    def _dependent_schemas(self, schema: dict, ptr: str, base: str) -> Node:
        """Each `name: S`: name absent, or present and S (exact: a union per name)."""
        rest = {k: v for k, v in schema.items() if k != "dependentSchemas"}
        members, sources = [rest], []
        for name, sub in schema["dependentSchemas"].items():
            members.append({"anyOf": [{"properties": {name: False}}, {"allOf": [{"required": [name]}, sub]}]})
            sources.append((f"{ptr}/dependentSchemas/{escape_pointer(name)}", sub))
        return self._rewritten({"allOf": members}, ptr, base, rest, sources, "dependentSchemas")

    def _spend(self, branches: int) -> bool:
        """Count union branches written by rewritings; False past MAX_REWRITES (nested
        if/else ladders multiply: the rewriting then gives up, and strict mode says so)."""
        self.rewrites += branches
        return self.rewrites <= MAX_REWRITES

    def _too_many(self, keyword: str, rest: dict, ptr: str, base: str) -> Node:
        self.unsupported(keyword, f"{keyword!r} would need a union past {MAX_REWRITES} branches here (nested "
                         "if/else or not)", f"{ptr}/{keyword}")
        return self.node(rest, ptr, base)  # non-strict: without it

    def _rewritten(self, schema, ptr: str, base: str, rest: dict, sources: list, keyword: str) -> Node:
        """Lower `schema`, a rewriting of the one at ptr (its `rest` and the subschemas
        `sources` ((pointer, schema) pairs) inside allOf/anyOf members): the errors and warnings
        from inside it name the user's pointers, not the rewriting's."""
        def repoint(p: str | None) -> str | None:
            if p is None or not p.startswith(ptr):
                return p
            tail = p[len(ptr):]
            while True:  # the rewriting's own allOf / anyOf steps
                m = re.match(r"/(?:allOf|anyOf)/\d+", tail)
                if not m:
                    break
                tail = tail[m.end():]
            for where, sub in sources + [(ptr, rest)]:
                if tail and _points_into(sub, tail):
                    return where + tail
            return f"{ptr}/{keyword}"
        n = len(self.warnings)
        try:
            out = self.node(schema, ptr, base)
        except GrammarError as e:
            raise GrammarError(e.message, pointer=repoint(e.pointer), line=e.line) from None
        fixed = []
        for w in self.warnings[n:]:
            where, sep, what = w.partition(": ")
            fixed.append(f"{repoint('' if where == '/' else where) or '/'}{sep}{what}")
        self.warnings[n:] = list(dict.fromkeys(fixed))  # (the rest's own, once per branch: once)
        return out

    def _not_type(self, schema: dict, ptr: str) -> dict:
        """`not: {type: T}` removes the types T (exact); any other `not` stays unsupported."""
        neg = schema["not"]
        if not (isinstance(neg, dict) and "type" in neg and all(k == "type" or k in IGNORED for k in neg)):
            return schema
        drop = {neg["type"]} if isinstance(neg["type"], str) else set(neg["type"])
        t = schema.get("type", ALL_TYPES + ("integer",))
        types = {t} if isinstance(t, str) else set(t)
        if "number" in types and "integer" in drop and "number" not in drop:
            return schema  # "a number but not an integer" is not expressible
        if "number" in drop:
            drop.add("integer")
        out = {k: v for k, v in schema.items() if k != "not"}
        out["type"] = sorted(types - drop)
        return out

    def _any(self) -> Node:
        if "json_value" not in self.rules:
            self.rules.update(json_value_rules("json_"))
        return Ref("json_value")

    def _ref(self, ref, ptr: str, base: str) -> Node:
        try:
            target, tptr, tbase = self.index.resolve(ref, base)
        except LookupError as e:
            raise GrammarError(str(e), pointer=f"{ptr}/$ref") from None
        key = f"{tbase}#{tptr}"
        if key not in self.ref_rules:
            name = self.ref_rules[key] = self.fresh("ref")
            self.rules[name] = NOTHING  # placeholder while a recursive schema refers to itself
            self.rules[name] = self.node(target, tptr, tbase)
        return Ref(self.ref_rules[key])

    def _flatten(self, schema: dict, ptr: str, base: str, depth: int):
        """Fold allOf members and a $ref that has sibling keywords into one schema."""
        has_ref_siblings = "$ref" in schema and any(k not in IGNORED for k in schema if k != "$ref")
        if "allOf" not in schema and not has_ref_siblings:
            return schema
        if depth > MAX_INLINE_DEPTH:
            raise GrammarError("allOf/$ref nesting too deep to intersect (recursive $ref inside allOf?)",
                               pointer=ptr)
        out = {k: v for k, v in schema.items() if k not in ("allOf", "$ref")}
        members = [(m, f"{ptr}/allOf/{i}", base) for i, m in enumerate(schema.get("allOf", []))]
        if has_ref_siblings:
            try:
                target, tptr, tbase = self.index.resolve(schema["$ref"], base)
            except LookupError as e:
                raise GrammarError(str(e), pointer=f"{ptr}/$ref") from None
            members.append((target, tptr, tbase))
        keys = list(schema)  # properties come in text order: members first if allOf/$ref come first
        first = min(keys.index(k) for k in ("allOf", "$ref") if k in schema)
        members_first = "properties" in schema and first < keys.index("properties")
        siblings, out = out, True
        for member, mptr, mbase in members:
            for _ in range(MAX_INLINE_DEPTH):  # follow a chain of lone $refs
                if not (isinstance(member, dict) and "$ref" in member):
                    break
                if any(k not in IGNORED for k in member if k != "$ref"):
                    member = self._flatten(_modernize(member), mptr, mbase, depth + 1)
                    continue
                try:
                    member, mptr, mbase = self.index.resolve(member["$ref"], mbase)
                except LookupError as e:
                    raise GrammarError(str(e), pointer=f"{mptr}/$ref") from None
            if isinstance(member, dict):
                if "$ref" in member:
                    raise GrammarError("$ref chain too long to intersect", pointer=mptr)
                member = self._scoped(self._flatten(_modernize(member), mptr, mbase, depth + 1), mptr)
            out = merge(out, member, lambda kw, msg, p=mptr: self.unsupported(kw, msg, f"{p}/{kw}"))
            if out is False:
                return False
        conflict = lambda kw, msg: self.unsupported(kw, msg, f"{ptr}/{kw}")  # noqa: E731
        out = merge(out, siblings, conflict) if members_first else merge(siblings, out, conflict)
        return self._flatten(out, ptr, base, depth + 1) if isinstance(out, dict) else out

    def _scoped(self, member, ptr: str):
        """A member about to be merged with its siblings: its unevaluated* only see its own
        keywords, so they become additionalProperties / items before the merge."""
        if not isinstance(member, dict) or not ("unevaluatedProperties" in member or "unevaluatedItems" in member):
            return member
        if "anyOf" in member or "oneOf" in member:
            self.unsupported("unevaluatedProperties", "unevaluated* next to anyOf/oneOf inside an in-place "
                             "applicator", ptr)
            return member
        out = dict(member)
        for uneval, plain in (("unevaluatedProperties", "additionalProperties"), ("unevaluatedItems", "items")):
            if uneval in out:
                value = out.pop(uneval)
                out.setdefault(plain, value)
        return out

    def _branches(self, schema: dict, key: str, ptr: str, base: str) -> Node:
        rest = {k: v for k, v in schema.items() if k != key}
        constraining = any(k not in IGNORED for k in rest)
        branches = []
        for i, sub in enumerate(schema[key]):
            if constraining and isinstance(sub, dict):
                sub = self._scoped(self._flatten(_modernize(sub), f"{ptr}/{key}/{i}", base, 0), f"{ptr}/{key}/{i}")
            merged = merge(rest, sub, lambda kw, msg, p=f"{ptr}/{key}/{i}": self.unsupported(kw, msg, f"{p}/{kw}")) \
                if constraining else sub
            branches.append((merged, f"{ptr}/{key}/{i}"))
        if key == "oneOf":
            flat = [self._flatten(_modernize(b), p, base, 0) if isinstance(b, dict) else b for b, p in branches]
            for only, kind in ((_object_only, "object"), (_string_only, "string")):
                if len(flat) > 1 and all(only(b) for b in flat):
                    # any other value satisfies every branch, hence not exactly one: only `kind` remains
                    flat = [merge(b, {"type": kind}, lambda kw, msg: None) for b in flat]
                    branches = [(b, p) for b, (_, p) in zip(flat, branches)]
            overlap = next(((i, j) for i in range(len(flat)) for j in range(i + 1, len(flat))
                            if not provably_disjoint(self, flat[i], flat[j], base)), None)
            if overlap is not None:
                exact = strings_one_of(self, flat)  # string branches: "exactly one" by automata
                if exact is not None:
                    return exact
                terms = objects_one_of(self, flat, base)  # objects told apart by keys and values
                if terms is not None:
                    return alt([self.node({"allOf": [flat[i], extra]} if extra else flat[i], branches[i][1], base)
                                for i, extra in terms] or [NOTHING])
                self.unsupported("oneOf", f"oneOf branches {overlap[0]} and {overlap[1]} may overlap: only "
                                 "anyOf semantics can be enforced", f"{ptr}/oneOf")
        return alt([self.node(b, p, base) for b, p in branches] or [NOTHING])

    def _enum(self, schema: dict, ptr: str) -> Node:
        values = [schema["const"]] if "const" in schema else list(schema["enum"])
        if "enum" in schema and "const" in schema:
            keep = {canon(v) for v in schema["enum"]}
            values = [v for v in values if canon(v) in keep]
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const")}
        if any(k not in IGNORED for k in rest):
            values = [v for v in values if self.is_valid(v, rest)]
        t = schema.get("type")
        integer = t == "integer" or (isinstance(t, list) and "integer" in t and "number" not in t)
        return alt([value_literal(v, WS, integer) for v in values] or [NOTHING])

    def _typed(self, schema: dict, ptr: str, base: str) -> Node:
        t = schema.get("type", ALL_TYPES)
        types = {t} if isinstance(t, str) else set(t)
        unknown = types - set(ALL_TYPES) - {"integer"}
        if unknown:
            raise GrammarError(f"unknown type(s) {sorted(unknown)}", pointer=f"{ptr}/type")
        parts: list[Node] = []
        if "null" in types:
            parts.append(Literal(b"null"))
        if "boolean" in types:
            parts += [Literal(b"true"), Literal(b"false")]
        if "number" in types or "integer" in types:
            parts.append(number_node(self, schema, ptr, integer="number" not in types))
        if "string" in types:
            parts.append(string_node(self, schema, ptr))
        if "array" in types:
            parts.append(array_node(self, schema, ptr, base))
        if "object" in types:
            parts.append(object_node(self, schema, ptr, base))
        return alt(parts or [NOTHING])


OBJECT_KEYWORDS = frozenset({"properties", "required", "additionalProperties", "patternProperties",
                             "propertyNames", "minProperties", "maxProperties", "unevaluatedProperties",
                             "dependentRequired"})
STRING_KEYWORDS = frozenset({"pattern", "format", "minLength", "maxLength"})


def _type_set(schema: dict) -> set[str]:
    """The types `schema`'s type keyword allows (all, integer included, without one)."""
    t = schema.get("type", ALL_TYPES + ("integer",))
    return {t} if isinstance(t, str) else set(t)


def _points_into(schema, tail: str) -> bool:
    """Does JSON pointer `tail` ("/properties/b/uniqueItems") name a place inside schema?"""
    node = schema
    try:
        for part in tail.split("/")[1:]:
            node = pointer_child(node, unescape_pointer(part))
    except KeyError:
        return False
    return True


def _string_only(schema) -> bool:
    """A schema that constrains strings only (so every non-string satisfies it)."""
    return isinstance(schema, dict) and "type" not in schema and \
        all(k in STRING_KEYWORDS or k in IGNORED for k in schema)


def _object_only(schema) -> bool:
    """A schema that constrains objects only (so every non-object satisfies it)."""
    return isinstance(schema, dict) and "type" not in schema and \
        all(k in OBJECT_KEYWORDS or k in IGNORED for k in schema)


def _modernize(schema: dict) -> dict:
    """Draft-07/04 spellings -> 2020-12 (items as list, additionalItems, boolean exclusive bounds,
    dependencies split into dependentRequired and dependentSchemas)."""
    if not any(k in schema for k in ("additionalItems", "exclusiveMinimum", "exclusiveMaximum", "dependencies")) \
            and not isinstance(schema.get("items"), list) \
            and not any(isinstance(schema.get(k), float) for k in COUNTS):
        return schema
    s = dict(schema)
    deps = s.pop("dependencies", None)
    if isinstance(deps, dict):
        for name, dep in deps.items():
            target = "dependentRequired" if isinstance(dep, list) else "dependentSchemas"
            s[target] = {**s.get(target, {}), name: dep}
    for key in COUNTS:
        value = s.get(key)
        if isinstance(value, float):
            if not value.is_integer() or value < 0:
                raise GrammarError(f"{key} must be a non-negative integer", pointer=f"/{key}")
            s[key] = int(value)
    if isinstance(s.get("items"), list):
        s["prefixItems"] = s.pop("items")
        if "additionalItems" in s:
            s["items"] = s.pop("additionalItems")
    else:
        s.pop("additionalItems", None)  # without an items array it has no effect
    for ex, inc in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(s.get(ex), bool):  # draft-04: a flag on minimum/maximum
            if s.pop(ex) and inc in s:
                s[ex] = s.pop(inc)
    return s
