"""`not`, `if`/`then`/`else` and `dependentSchemas`, lowered as unions of plain schemas (and
string complements): the grammar accepts a value exactly when `jsonschema` says it is valid, over
scalars from a pool and every object built from the schema's keys (keys in the schema's order)."""
import itertools
import json
import random

import jsonschema
import pytest

from grammar import GrammarCompiler, GrammarError, Vocabulary
from grammar.json_schema import json_schema_to_grammar
from grammar_helpers import accepts_json, schema_keys

BYTES = GrammarCompiler(Vocabulary([bytes([i]) for i in range(256)]))
SCALARS = (None, True, False, -1, 0, 2.5, 3, 7, 8, 9, 10, 12, 15, 20, 21, -0.5, 0.001,
           "", "US", "CA", "test", "tests", "include", "abc", "xyz", "hello", "12345", "A1B", "-.", "...", "a-b",
           "x" * 9)
VALUES = (0, 2.5, 12, "US", "CA", "test", "12345", "A1B", "", True, None, [1])

CASES = {
    "not_required": {"type": "object", "properties": {"body": {}, "bodyValue": {}},
                     "not": {"required": ["body", "bodyValue"]}},
    "not_any_required": {"properties": {"ref": {}, "metricErrors": {}},
                         "not": {"anyOf": [{"required": ["ref"]}, {"required": ["metricErrors"]}]}},
    "not_all_required": {"type": "object", "properties": {"cmd": {}, "args": {}},
                         "not": {"allOf": [{"required": ["cmd"]}, {"required": ["args"]}]}},
    "not_string_enum": {"type": "string", "not": {"enum": ["test", "include", 3]}},
    "not_enum_with_pattern": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8,
                              "not": {"enum": ["test", "include"]}},
    "not_integer_enum": {"type": "integer", "minimum": 0, "maximum": 20, "not": {"enum": [3, 7, 8, 9]}},
    "not_pattern": {"type": "string", "minLength": 1, "not": {"pattern": "^[.,*\\s-]+$"}},
    "not_length": {"type": "string", "not": {"minLength": 2, "maxLength": 4}},
    "not_properties": {"anyOf": [{"type": "string"},
                                 {"not": {"properties": {"a": {"type": "string"}}, "required": ["a"]}}]},
    "not_range": {"type": "number", "not": {"minimum": 0, "maximum": 10}},
    "not_not": {"not": {"not": {"type": "string", "maxLength": 3}}},
    "not_const_untyped": {"not": {"const": None}},
    "not_bool_and_strings": {"type": ["boolean", "string"], "not": {"enum": [True, "US"]}},
    "not_ref": {"$defs": {"prim": {"enum": ["null", "int", "string"]}}, "type": "string", "pattern": "^[a-z]+$",
                "not": {"$ref": "#/$defs/prim"}},
    "not_counts": {"type": ["array", "object"], "properties": {"a": {}, "b": {}},
                   "not": {"minItems": 1, "maxProperties": 1}},
    "not_number_enum": {"not": {"enum": [3, 2.5, "x", None]}},  # numbers: the open ranges between them
    # allOf members with an if each, and a not each: merged as unions (exact), not a conflict
    "merged_conditionals": {"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "allOf": [
        {"if": {"required": ["a"]}, "then": {"required": ["b"]}},
        {"if": {"required": ["b"]}, "then": {"required": ["c"]}, "else": {"properties": {"a": {"type": "string"}}}},
        {"not": {"required": ["c", "a"]}}, {"not": {"properties": {"b": {"const": 12}}, "required": ["b"]}}]},
    "if_then_else": {"type": "object", "properties": {"country": {"enum": ["US", "CA"]}, "postal": {"type": "string"}},
                     "if": {"properties": {"country": {"const": "US"}}},
                     "then": {"properties": {"postal": {"pattern": "^[0-9]{5}$"}}},
                     "else": {"properties": {"postal": {"pattern": "^[A-Z][0-9][A-Z]$"}}}},
    "if_required_then": {"properties": {"a": {}, "b": {}}, "if": {"required": ["a"]}, "then": {"required": ["b"]}},
    "if_numbers": {"type": "integer", "if": {"minimum": 10}, "then": {"maximum": 15}, "else": {"minimum": 2}},
    "then_without_if": {"type": "integer", "then": {"maximum": 0}},
    "dependent_schemas": {"type": "object", "properties": {"card": {"type": "string"}, "billing": {"type": "string"},
                                                           "name": {}},
                          "dependentSchemas": {"card": {"required": ["billing"]},
                                               "name": {"properties": {"billing": {"const": "US"}}}}},
    "dependencies_draft7": {"properties": {"card": {}, "billing": {}},
                            "dependencies": {"card": {"required": ["billing"]}}},
}


def _instances(schema, seed: int) -> list:
    keys = schema_keys(schema)
    rnd = random.Random(seed)
    out = list(SCALARS) + [[], [1], [1, 2]]
    out += [{k: "US" for k, on in zip(keys, mask) if on} for mask in itertools.product((0, 1), repeat=len(keys))]
    out += [{k: rnd.choice(VALUES) for k in keys if rnd.random() < 0.6} for _ in range(800)]
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_negation_exact(name):
    schema = CASES[name]
    compiled = BYTES.compile_json_schema(schema)
    # (draft-07's `dependencies` is read as 2020-12's dependentSchemas / dependentRequired)
    validator = (jsonschema.Draft7Validator if "dependencies" in schema else jsonschema.Draft202012Validator)(schema)
    seen = [0, 0]
    for value in _instances(schema, len(name)):
        want = validator.is_valid(value)
        seen[want] += 1
        assert accepts_json(compiled, value) == want, f"{name}: {json.dumps(value)} valid={want}"
    assert seen[0] and seen[1] > 3  # valid and invalid values were both seen


@pytest.mark.parametrize("schema, pointer, keyword", [
    ({"not": {"enum": [{"a": 1}]}}, "/not", "not"),  # every object but this one: no schema
    ({"type": "number", "not": {"multipleOf": 2}}, "/not", "not"),
    ({"type": "string", "not": {"format": "email"}}, "/not", "not"),
    ({"type": "array", "not": {"uniqueItems": True}}, "/not", "not"),
    ({"if": {"type": "integer"}, "then": {"minimum": 1}}, "/if", "if"),  # "not an integer" among numbers
])
def test_negation_not_expressible_stays_strict(schema, pointer, keyword):
    with pytest.raises(GrammarError) as err:
        json_schema_to_grammar(schema)
    assert err.value.pointer == pointer
    _, warnings = json_schema_to_grammar(schema, strict=False)
    assert any(w.startswith(pointer) and keyword in w for w in warnings), warnings


def test_an_else_if_ladder_stays_bounded():
    """Each if of an else-if ladder multiplies the union (MaskBench's ui5.yaml ran for minutes):
    past MAX_REWRITES branches the rewriting stops, with a strict error at the if, fast."""
    import time

    schema: dict = {"type": "object", "properties": {"v": {"enum": [str(i) for i in range(14)]}}}
    node = schema
    for i in range(12):
        node["if"] = {"properties": {"v": {"const": str(i)}}}
        node["then"] = {"properties": {"k": {"const": i}}}
        node["else"] = {}
        node = node["else"]
    t = time.process_time()
    with pytest.raises(GrammarError) as err:
        json_schema_to_grammar(schema)
    assert "/else/else/" in err.value.pointer and err.value.pointer.endswith("/if")
    _, warnings = json_schema_to_grammar(schema, strict=False)
    assert warnings and time.process_time() - t < 10
