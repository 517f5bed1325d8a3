"""oneOf over object branches that may overlap, made exact: the grammar accepts an instance
exactly when `jsonschema` says it is valid, over every object built from the schema's keys
(each absent or holding a value from a small pool; keys in the schema's order, as the README's
key-order rule has it) and a few non-objects."""
import itertools
import json
import random

import jsonschema
import pytest

from grammar import GrammarCompiler, GrammarError, Vocabulary
from grammar.json_schema import json_schema_to_grammar
from grammar_helpers import accepts_json, schema_keys

BYTES = GrammarCompiler(Vocabulary([bytes([i]) for i in range(256)]))
POOL = (0, 2.5, "circle", "rectangle", "ab", True, None, [1], {"id": 1}, {})
OTHERS = (1, "x", None, [], True)

NUM = {"type": "number"}
SHAPES = {"type": "object", "properties": {"shape": {"enum": ["circle", "rectangle"]}, "radius": NUM,
                                           "length": NUM, "width": NUM}}

CASES = {
    # branches apart only by the keys they require (a radius, or a length and a width)
    "required_only": {**SHAPES, "oneOf": [{"required": ["radius"]}, {"required": ["length", "width"]}]},
    # no parent: non-objects satisfy both branches, so no non-object is valid
    "untyped": {"oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
    # a discriminator the branches do not require: present, it rules the other branch out
    "loose_discriminator": {**SHAPES, "oneOf": [
        {"properties": {"shape": {"const": "circle"}}, "required": ["radius"]},
        {"properties": {"shape": {"const": "rectangle"}}, "required": ["length", "width"]}]},
    # the other branch also fails on a value of another type (ok: 0 is not a boolean)
    "value_types": {"properties": {"error": {}, "ok": {}}, "oneOf": [
        {"properties": {"error": {"type": "string"}}, "required": ["error"]},
        {"properties": {"ok": {"type": "boolean"}, "error": {"type": "null"}}, "required": ["ok"]}]},
    # keys only the other branch declares: a term that needs one present keeps it among the
    # additional members, in any order (the key order is the branch's own)
    "value_types_open": {"oneOf": [
        {"properties": {"error": {"type": "string"}}, "required": ["error"]},
        {"properties": {"ok": {"type": "boolean"}, "error": {"type": "null"}}, "required": ["ok"]}]},
    "disjoint_keys": {"type": "object", "oneOf": [
        {"properties": {"token": {"type": "string"}}, "required": ["token"]},
        {"properties": {"email": {"type": "string"}, "key": {"type": ["string", "null"]}}, "required": ["email", "key"]}]},
    # a negation json_not writes (minLength, an object), on a key both declare
    "negated_values": {"type": "object", "properties": {"id": {}, "spec": {}}, "oneOf": [
        {"properties": {"id": {"type": "string", "minLength": 3}}, "required": ["id"]},
        {"properties": {"spec": {"type": "object", "required": ["id"]}}, "required": ["spec"]}]},
    # a value failing a pattern (the string's complement)
    "negated_pattern": {"oneOf": [{"required": ["a"]},
                                  {"properties": {"a": {"type": "string", "pattern": "^c"}}, "required": ["b"]}]},
    # closed branches: {} satisfies both, a key the other forbids tells them apart
    "closed_branches": {"oneOf": [
        {"type": "object", "additionalProperties": False, "properties": {"foo": {"type": "string"}}},
        {"type": "object", "additionalProperties": False, "properties": {"bar": {"type": "string"}}}]},
    # keys only one branch declares, each with its own types, declared by the parent too
    "branch_keys": {"type": "object", "properties": {"key": {}, "secret": {}, "role": {}, "ttl": {}}, "oneOf": [
        {"properties": {"key": {"type": "string"}, "secret": {"type": "string"}}, "required": ["key", "secret"]},
        {"properties": {"role": {"type": ["string", "null"]}, "ttl": {"type": "number"}},
         "required": ["role", "ttl"]}]},
    # three branches, each pair sharing a key
    "three_pairs": {"type": "object", "oneOf": [{"required": ["a", "b"]}, {"required": ["b", "c"]},
                                                {"required": ["a", "c"]}]},
    # a closed object: the branches are judged against the same properties
    "closed": {"type": "object", "additionalProperties": False,
               "properties": {"a": NUM, "b": {"type": "string"}, "c": {}},
               "oneOf": [{"required": ["a"]}, {"required": ["b"]}, {"required": ["c"]}]},
    # a branch whose every instance satisfies another: only the other one can be alone
    "nested_required": {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["a", "b"]}]},
    # enum values: a kind both branches allow may be decided by the other key
    "enum_values": {"type": "object", "properties": {"kind": {"enum": ["circle", "rectangle", 0]}},
                    "oneOf": [{"properties": {"kind": {"enum": ["circle"]}}},
                              {"properties": {"kind": {"enum": ["circle", "rectangle"]}}, "required": ["n"]}]},
    # under a property and in array items, through $ref
    "nested": {"type": "object", "properties": {"dims": {"$ref": "#/$defs/dims"}},
               "$defs": {"dims": {"type": "array", "maxItems": 1, "items": {
                   "oneOf": [{"$ref": "#/$defs/circle"}, {"$ref": "#/$defs/box"}]}},
                   "circle": {"type": "object", "required": ["radius"]},
                   "box": {"type": "object", "required": ["length"]}}},
}


def _objects(keys: list[str], n: int, seed: int):
    """every presence pattern with a fixed value, then n random objects"""
    rnd = random.Random(seed)
    for mask in itertools.product((0, 1), repeat=len(keys)):
        yield {k: 2.5 for k, on in zip(keys, mask) if on}
    for _ in range(n):
        yield {k: rnd.choice(POOL) for k in keys if rnd.random() < 0.6}


def _orders(schema, keys: list[str]) -> list[list[str]]:
    """The key orders a dict built from each branch has: the parent's properties, the branch's,
    the required ones, then the rest in any order (the README's key-order rule, branch by
    branch): here the other keys, or an undeclared key first."""
    out = [keys]
    for branch in schema.get("oneOf", []):
        first = list(schema.get("properties", {})) + list(branch.get("properties", {})) + \
            list(branch.get("required", [])) + list(schema.get("required", []))
        out.append(list(dict.fromkeys(first + keys)))
        out.append(list(dict.fromkeys(first + ["zz"] + keys)))  # an undeclared key before the others
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_of_objects_exact(name):
    schema = CASES[name]
    compiled = BYTES.compile_json_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    keys = schema_keys(schema, skip=("dims",))
    instances = list(_objects(keys, 1500, seed=len(name))) + list(OTHERS)
    if name == "nested":
        instances = [{"dims": [x]} for x in instances] + [{"dims": []}, {}]
    orders = _orders(schema, keys)
    seen_valid = 0
    for value in instances:
        want = validator.is_valid(value)
        seen_valid += want
        forms = [value] if not isinstance(value, dict) or name == "nested" else \
            [{k: value[k] for k in order if k in value} for order in orders]
        got = any(accepts_json(compiled, form) for form in forms)
        assert got == want, f"{name}: {json.dumps(value)} valid={want}"
    assert seen_valid > 5  # the check saw valid instances, not only rejections


def test_one_of_objects_with_extras_forbidden():
    """The compiler option that forbids undeclared keys by default applies inside the terms."""
    schema = {"type": "object", "properties": {"a": NUM, "b": NUM},
              "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
    grammar, _ = json_schema_to_grammar(schema, allow_additional_properties_default=False)
    compiled = BYTES.compile_grammar(grammar)
    for value, want in (({"a": 1}, True), ({"b": 1}, True), ({"a": 1, "b": 2}, False), ({}, False),
                        ({"a": 1, "c": 2}, False)):
        assert accepts_json(compiled, value) == want, value


@pytest.mark.parametrize("schema", [
    # a branch that can fail another way than those handled (uniqueItems has no negation)
    {"oneOf": [{"required": ["a"]}, {"properties": {"a": {"type": "array", "uniqueItems": True}}, "required": ["b"]}]},
    # "not an integer" among numbers has no schema
    {"type": "object", "oneOf": [{"properties": {"k": {"type": "string"}}, "required": ["k"]},
                                 {"properties": {"t": {"type": "integer"}}, "required": ["t"]}]},
])
def test_one_of_objects_not_provable_still_strict(schema):
    """Where exactness is not shown, the strict error stays, naming the oneOf."""
    with pytest.raises(GrammarError) as err:
        json_schema_to_grammar(schema)
    assert err.value.pointer == "/oneOf"
