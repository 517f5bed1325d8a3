"""JSON Schema front end: keyword by keyword, checked by the reference recognizer (the oracle)
and by the compiled matcher over a byte vocabulary, on compact, json.dumps and indented forms."""
import json

import pytest

from grammar import GrammarCompiler, GrammarError, Vocabulary
from grammar.json_schema import json_schema_to_grammar
from grammar.json_values import json_value_rules
from grammar.reference import Recognizer

BYTES = GrammarCompiler(Vocabulary([bytes([i]) for i in range(256)]))


def forms(value) -> list[str]:
    return [json.dumps(value), json.dumps(value, separators=(",", ":")), json.dumps(value, indent=2),
            json.dumps(value, ensure_ascii=False)]


def check(schema, good=(), bad=(), raw_bad=(), oracle=True, **kw):
    """Every form of `good` is accepted and every form of `bad` (and each raw text) rejected."""
    grammar, _ = json_schema_to_grammar(schema, **kw)
    compiled = BYTES.compile_grammar(grammar)
    rec = Recognizer(grammar) if oracle else None

    def accepted(text: str) -> bool:
        m = compiled.matcher()
        fast = m.accept_bytes(text.encode()) and m.can_terminate()
        if rec is not None:
            assert rec.feed(text.encode()).complete() == fast, f"oracle and matcher disagree on {text!r}"
        return fast

    for value in good:
        for text in forms(value):
            assert accepted(text), f"{schema}: valid {text!r} rejected"
    for value in bad:
        for text in forms(value):
            assert not accepted(text), f"{schema}: invalid {text!r} accepted"
    for text in raw_bad:
        assert not accepted(text), f"{schema}: invalid {text!r} accepted"


def test_scalar_types():
    check({"type": "null"}, [None], [0, "null", False])
    check({"type": "boolean"}, [True, False], [None, 0])
    check({"type": ["string", "null"]}, ["x", None, "", "é\n\"\\"], [1, True])
    check({"type": "integer"}, [0, -7, 123456789012345], [1.5, "1"], raw_bad=["01", "-0", "+1", "1e3"])
    check({"type": "number"}, [0, -2.5, 1e-07, 3.14159, 1e300, 12], ["1"], raw_bad=["01.5", ".5", "1."])


def test_whitespace_is_bounded():
    check({"type": "object"}, [{"a": [1, 2]}, {}], raw_bad=[" {}", "{}\n", "{" + " " * 50 + "}"])
    check({"type": "array"}, [[1, [2, {"x": None}]]], raw_bad=["[1,\n" + " " * 41 + "2]"])


def test_integer_ranges_exact():
    schema = {"type": "integer", "minimum": -13, "maximum": 275}
    check(schema, [-13, -1, 0, 9, 10, 99, 100, 199, 270, 275], [-14, -100, 276, 300, 1000, 2750])
    check({"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 8.5}, [6, 7, 8], [5, 9, 4])
    check({"type": "integer", "minimum": 1000}, [1000, 99999, 10 ** 18], [999, 0, -1000])
    check({"type": "integer", "maximum": -5}, [-5, -6, -1000], [-4, 0, 5])


def test_decimal_ranges_exact():
    check({"type": "number", "minimum": -1.25, "exclusiveMaximum": 3.5},
          [-1.25, -1.2, -1, 0, 0.001, 3, 3.4999, 1.25], [-1.26, -1.3, -2, 3.5, 3.51, 4, 100])
    check({"type": "number", "exclusiveMinimum": 0, "maximum": 1}, [0.5, 1, 0.0001, 0.999], [0, -0.5, 1.01, 2])
    check({"type": "number", "minimum": 0.1, "maximum": 0.12}, [0.1, 0.11, 0.12, 0.115], [0.09, 0.121, 0.13, 1])


def test_multiple_of():
    check({"type": "integer", "multipleOf": 5}, [0, 5, -10, 1234567890], [1, 6, -11])
    check({"type": "integer", "multipleOf": 3, "minimum": 0}, [0, 3, 12, 99999], [-3, 1, 100])
    check({"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 40}, [14, 21, 35], [7, 42, 15])
    check({"type": "number", "multipleOf": 0.01, "minimum": 0}, [0, 1.5, 19.99, 3], [0.001, -1, 1.234])


def test_strings_lengths_patterns_and_escapes():
    check({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "abc", "é\n", "😀😀"], ["a", "abcd", "", "😀"])
    check({"type": "string", "pattern": "^[a-z]+$", "maxLength": 3}, ["abc", "a"], ["abcd", "", "A"])
    check({"type": "string", "pattern": "é"}, ["xéy", "é"], ["e", ""])
    check({"type": "string", "pattern": '^a"b\\\\c/$'}, ['a"b\\c/'], ["abc"], oracle=False)
    check({"type": "string", "pattern": "^[^a]$"}, ["b", "\n", "\u2028", '"'], ["a", "bb"])


def test_formats():
    check({"type": "string", "format": "date"}, ["2024-02-29", "2023-12-31"], ["2023-02-29", "2023-13-01", "x"])
    check({"type": "string", "format": "uuid"}, ["123e4567-e89b-12d3-a456-426614174000"], ["123e4567"])
    check({"type": "string", "format": "ipv4"}, ["192.168.0.1", "0.0.0.0"], ["256.1.1.1", "01.1.1.1"], oracle=False)
    check({"type": "string", "format": "date-time"}, ["2024-05-01T12:30:00Z", "2024-05-01T12:30:00.5+02:00"],
          ["2024-05-01 12:30:00", "2024-05-01T12:30:00"], oracle=False)
    # a relative reference has no ':' before its first '/', '?' or '#' (MaskBench caught "://")
    check({"type": "string", "format": "uri-reference"},
          ["https://x.org/a?b#c", "//host:80/p", "a/b:c", "?q", "#f", "", "../x"], ["://", "1:b", ":x", "a b"],
          oracle=False)
    check({"type": "string", "format": "json-pointer"}, ["", "/", "/a~1b/0", "/é~0"], ["a", "/~2", "/~"])
    check({"type": "string", "format": "relative-json-pointer"}, ["0", "1/a", "2#", "0-1/x"], ["", "01", "-1", "/a", "1##"])
    check({"type": "string", "format": "uri-template"},
          ["http://x.org/{id}", "/s{?q,lang}", "{+path:6}/x{/seg*}", "plain"], ["{}", "{a b}", "{id", "a}b", "{a:0}"],
          oracle=False)
    check({"type": "string", "format": "iri"}, ["https://x.org/a"], ["no scheme", "a"], oracle=False)


def test_object_order_optional_and_additional():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {}},
              "required": ["b"]}
    check(schema, [{"b": "x"}, {"a": 1, "b": "x"}, {"a": 1, "b": "x", "c": [1], "zz": None}],
          [{"a": 1}, {"a": "1", "b": "x"}, {}])
    closed = dict(schema, additionalProperties=False)
    check(closed, [{"b": "x", "c": None}], [{"b": "x", "d": 1}, {"b": "x", "bb": 1}])
    check({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
          [{"a": 1, "x": "y"}, {"x": "y"}], [{"x": 1}, {"a": "s"}])


def test_additional_keys_never_spell_declared_names():
    schema = {"type": "object", "properties": {"ab": {"type": "integer"}}}
    check(schema, [{"ab": 1, "a": "s", "abc": "s", "b": []}], [{"ab": "x"}],
          raw_bad=['{"ab":1,"ab":"s"}', '{"a\\u0062":"s"}'])


def test_min_max_properties():
    schema = {"type": "object", "properties": {"a": {}, "b": {}}, "minProperties": 1, "maxProperties": 2}
    check(schema, [{"a": 1}, {"b": 1, "x": 2}, {"a": 1, "b": 2}], [{}, {"a": 1, "b": 2, "c": 3}])


def test_min_properties_cannot_be_faked_by_a_repeated_key():
    """JSON allows a name twice and a parser keeps one, so additional members count once toward
    minProperties: {"a":1,"x":1,"x":2} has two keys, not three (sampling found this)."""
    schema = {"type": "object", "properties": {"a": {}, "b": {}}, "minProperties": 3}
    check(schema, [{"a": 1, "b": 2, "x": 3}, {"a": 1, "b": 2, "x": 3, "y": 4}], [{"a": 1, "b": 2}, {"a": 1, "x": 3}],
          raw_bad=['{"a":1,"x":1,"x":2}', '{"b":1,"x":1,"y":2}'])  # (the last is valid: two additional keys, cut)
    check({"type": "object", "minProperties": 1}, [{"x": 1}, {"x": 1, "y": 2}], [{}])
    with pytest.raises(GrammarError) as err:  # only additional keys could reach it
        json_schema_to_grammar({"type": "object", "properties": {"a": {}}, "minProperties": 3})
    assert err.value.pointer == "/minProperties"


def test_lengths_and_formats_intersect_any_pattern():
    """Length bounds and a format meet a pattern through automata: exact, whatever its shape."""
    kebab = {"type": "string", "pattern": "^[a-z]+(-[a-z]+)*$", "minLength": 3, "maxLength": 7}
    check(kebab, ["abc", "ab-cd", "a-b-c-d"], ["ab", "abcdefgh", "ab--c", "-abc", "a-b-c-de"])
    check({"type": "string", "pattern": "[0-9]", "maxLength": 3}, ["1", "a1b", "é9"], ["abc", "a1bc", ""])
    check({"type": "string", "pattern": "x", "minLength": 2}, ["xa", "ax", "xx"], ["x", "ab"])
    check({"type": "string", "pattern": "-0[1-5]$", "format": "date"}, ["2024-02-05", "1999-12-01"],
          ["2024-02-06", "2024-02-05x", "24-02-05"])
    check({"type": "string", "pattern": "^[0-9a-f]{4}$|^[0-9a-f]{2}-x$"}, ["beef", "0a-x"], ["beefy", "0a-xx", "0-x"])
    # words x characters: a ~1,000-state product whose labels become shared rules
    words = {"type": "string", "pattern": "^(?:\\S+\\s+){0,9}\\S+$", "maxLength": 40}
    check(words, ["one", "a b c d e f g h i j", "x" * 40], ["a b c d e f g h i j k", "x" * 41, " a", ""],
          oracle=False)


def test_not_of_everything_and_of_nothing():
    check({"anyOf": [{"not": {}}, {"type": "integer"}]}, [1], ["a", None])
    check({"type": "object", "patternProperties": {"^x": {"not": True}}}, [{"a": 1}], [{"xa": 1}])
    check({"type": "integer", "not": False}, [1], ["a"])


def test_dependent_required_both_directions():
    """a -> c (c later in the order: owed once a is out), c -> b (b earlier: c only after b);
    the draft-07 `dependencies` array form means the same."""
    props = {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}}
    for key in ("dependentRequired", "dependencies"):
        schema = {"type": "object", "properties": props, key: {"a": ["c"], "c": ["b"]}}
        check(schema, [{}, {"b": 1}, {"b": 1, "c": 2}, {"a": 1, "b": 2, "c": 3}],
              [{"a": 1}, {"c": 1}, {"a": 1, "c": 2}, {"a": 1, "b": 2}])


def test_one_of_string_branches_disjoint_by_automata():
    """Branches constraining strings only: non-strings satisfy all of them (so none is allowed),
    and strings are exact when the branch languages cannot intersect."""
    schema = {"oneOf": [{"format": "uuid"}, {"pattern": "^\\$[A-Z0-9_-]+"}]}
    check(schema, ["123e4567-e89b-12d3-a456-426614174000", "$KEY_1"], [1, None, "key", "$"])
    # overlapping languages: exactly one of them, by automata ("AB" is in both)
    check({"oneOf": [{"pattern": "A"}, {"pattern": "B", "maxLength": 3}]}, ["A", "xA", "B", "xBx", "ABCD"],
          ["AB", "BA", "x", "xxBx", 1])
    lower, upper = "^[0-9a-f]{4}$", "^[0-9A-F]{4}$"
    check({"oneOf": [{"type": "string", "pattern": lower}, {"type": "string", "pattern": upper}]},
          ["beef", "BEEF"], ["1234", "BeEf"])  # all digits match both
    with pytest.raises(GrammarError):  # not strings only
        json_schema_to_grammar({"oneOf": [{"pattern": "a"}, {"minimum": 1}]})


def test_pattern_properties_next_to_additional_properties():
    """Keys matching a pattern take its schema (all of them where patterns overlap), the other
    undeclared keys additionalProperties: key regions are intersections and complements."""
    schema = {"type": "object", "properties": {"id": {"type": "integer"}},
              "patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": {"type": "boolean"}}
    check(schema, [{"id": 1, "x-a": "s", "y": True}, {"x-": "", "xa": False}, {}],
          [{"x-a": True}, {"y": "s"}, {"id": True}])
    overlap = {"type": "object", "patternProperties": {"a": {"minimum": 0}, "b": {"maximum": 5}},
               "additionalProperties": False}
    check(overlap, [{"ab": 3, "a": 9, "b": -1}], [{"ab": 9}, {"ab": -1}, {"c": 1}])


def test_pattern_properties_with_closed_object():
    schema = {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False}
    check(schema, [{"x-a": 1, "x-b": 2}, {}], [{"x-a": "s"}, {"y": 1}])


def test_property_names():
    check({"type": "object", "propertyNames": {"enum": ["a", "b"]}}, [{"a": 1, "b": 2}, {}], [{"c": 1}])
    check({"type": "object", "propertyNames": {"pattern": "^[a-z]+$", "maxLength": 3}}, [{"ab": 1}],
          [{"abcd": 1}, {"A": 1}])
    # next to patternProperties: the pattern keys obey it too (they did not, MaskBench sampling found)
    keyed = {"type": "object", "additionalProperties": False, "propertyNames": {"$ref": "#/$defs/k"},
             "$defs": {"k": {"type": "string", "pattern": "^[a-f0-9]{2,4}$"}},
             "patternProperties": {".+": {"type": "integer"}}}
    check(keyed, [{"ab": 1}, {"abcd": 2, "ff": 3}, {}], [{"xyz": 1}, {"a": 1}, {"ab": "x"}])
    with pytest.raises(GrammarError) as err:
        json_schema_to_grammar({**keyed, "propertyNames": {"type": "string", "not": {"const": "ab"}}})
    assert err.value.pointer == "/propertyNames"


def test_key_order_is_the_schema_order():
    check({"type": "object", "properties": {"a": {}, "b": {}}, "additionalProperties": False},
          [{"a": 1, "b": 2}], [{"b": 2, "a": 1}])


def test_not_type_and_unknown_formats():
    check({"not": {"type": "null"}}, [1, "x", {}], [None])
    check({"type": ["integer", "string"], "not": {"type": "number"}}, ["x"], [1])
    check({"type": "string", "format": "int64"}, ["anything"], [1])  # unknown format: an annotation


def test_arrays():
    check({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
          [[1], [1, 2, 3]], [[], [1, 2, 3, 4], ["a"]])
    check({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
          [[], ["a"], ["a", 1]], [[1], ["a", 1, 2]])
    check({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "boolean"}, "minItems": 2},
          [["a", True], ["a", True, False]], [["a"], ["a", 1]])
    check({"items": [{"type": "integer"}], "additionalItems": False}, [[1], []], [[1, 2]])  # draft-07


def test_enum_and_const():
    check({"enum": ["a", 1, None, {"k": [1, 2]}]}, ["a", 1, None, {"k": [1, 2]}, 1.0], ["b", 2, {"k": [1]}])
    check({"const": "é"}, ["é"], ["e"])
    # under an integer type, 6 is spelled "6" only: draft-04 does not count 6.0 as an integer
    # (sampling under the mask wrote 6.0 for a draft-04 {"type": "integer", "enum": [6, 12]})
    check({"type": "integer", "enum": [6, 12]}, [6, 12], raw_bad=["6.0", "12.0"])
    check({"type": "string", "enum": ["a", 1, "bb"], "maxLength": 1}, ["a"], ["bb", 1])
    check({"enum": [[1, 1], [1, 2]], "uniqueItems": True, "not": {"const": [3]}}, [[1, 2]], [[1, 1]])


def test_all_of_is_an_intersection():
    schema = {"allOf": [{"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}}, "required": ["a"]},
                        {"properties": {"a": {"maximum": 10}, "b": {"type": "string"}}, "required": ["b"]}]}
    check(schema, [{"a": 3, "b": "x"}], [{"a": 11, "b": "x"}, {"a": 3}, {"b": "x"}, {"a": -1, "b": "x"}])
    closed = {"allOf": [{"properties": {"a": {}}, "additionalProperties": False}, {"properties": {"b": {}}}]}
    check(closed, [{"a": 1}, {}], [{"b": 1}, {"a": 1, "b": 2}])
    check({"allOf": [{"type": ["integer", "string"]}, {"type": "number"}]}, [1], ["x", 1.5])


def test_any_of_one_of_and_refs():
    check({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 1}]}, [1, "a"], ["ab", None])
    tagged = {"oneOf": [{"type": "object", "properties": {"k": {"const": "a"}, "x": {"type": "integer"}},
                         "required": ["k"]},
                        {"type": "object", "properties": {"k": {"const": "b"}}, "required": ["k"]}]}
    check(tagged, [{"k": "a", "x": 1}, {"k": "b"}], [{"k": "c"}, {"k": "a", "x": "s"}])
    untyped = {"oneOf": [{"properties": {"k": {"enum": ["a"]}}, "required": ["k"]},
                         {"properties": {"k": {"enum": ["b"]}}, "required": ["k"]}]}
    check(untyped, [{"k": "a"}, {"k": "b"}], ["x", 1, None, {"k": "c"}])  # non-objects match both branches
    tree = {"$ref": "#/$defs/n", "$defs": {"n": {"type": "object", "properties": {
        "v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/n"}}},
        "required": ["v"], "additionalProperties": False}}}
    check(tree, [{"v": 1}, {"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}]}], [{"v": 1, "kids": [{}]}])
    check({"$defs": {"p": {"type": "integer", "minimum": 1}}, "$ref": "#/$defs/p", "maximum": 3}, [1, 3], [0, 4])


def test_unevaluated_properties():
    schema = {"allOf": [{"properties": {"a": {}}}], "properties": {"b": {}}, "unevaluatedProperties": False}
    check(schema, [{"a": 1, "b": 2}], [{"c": 1}])


@pytest.mark.parametrize("schema, pointer, keyword", [
    ({"type": "array", "uniqueItems": True}, "/uniqueItems", "uniqueItems"),
    ({"properties": {"x": {"not": {"multipleOf": 3}}}}, "/properties/x/not", "not"),
    ({"properties": {"a": {"items": {"if": {"type": "integer"}, "then": {}}}}}, "/properties/a/items/if", "if"),
    ({"type": "array", "contains": {"type": "integer"}}, "/contains", "contains"),
    ({"$ref": "http://example.com/other.json"}, "/$ref", None),
    ({"properties": {"s": {"type": "string", "format": "idn-hostname"}}}, "/properties/s/format", "format"),
    ({"properties": {"s": {"type": "string", "pattern": "(?=a)"}}}, "/properties/s/pattern", None),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, "/oneOf", "oneOf"),
    ({"type": "object", "dependentRequired": {"a": ["b"]}, "properties": {"a": {}}}, "/dependentRequired/a",
     "dependentRequired"),
    # inside a rewriting (not / if / dependentSchemas as unions): the user's pointer, not the union's
    ({"type": "object", "dependencies": {"a": {"properties": {"b": {"uniqueItems": True}}}}},
     "/dependentSchemas/a/properties/b/uniqueItems", "uniqueItems"),
    ({"if": {"required": ["a"]}, "else": {"properties": {"b": {"uniqueItems": True}}}},
     "/else/properties/b/uniqueItems", "uniqueItems"),
    ({"type": "string", "not": {"pattern": "(?=a)"}}, "/not/pattern", None),
    ({"allOf": [{"pattern": "a"}, {"pattern": "b"}]}, "/allOf/1/pattern", "pattern"),
    ({"type": "number", "multipleOf": 0.3}, "/multipleOf", "multipleOf"),
])
def test_strict_errors_name_the_pointer_and_non_strict_warns(schema, pointer, keyword):
    with pytest.raises(GrammarError) as err:
        json_schema_to_grammar(schema)
    assert err.value.pointer == pointer
    if keyword is not None:
        _, warnings = json_schema_to_grammar(schema, strict=False)
        assert any(w.startswith(pointer) and keyword in w for w in warnings), warnings


def test_non_strict_is_a_superset():
    check({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, [[1, 2], [1, 1]], [["a"]],
          strict=False)
    check({"type": "array", "uniqueItems": True, "maxItems": 1}, [[], [1]], [[1, 2]])  # trivially unique


def test_option_forbids_additional_properties_by_default():
    check({"type": "object", "properties": {"a": {}}}, [{"a": 1}], [{"a": 1, "b": 2}],
          allow_additional_properties_default=False)


def test_schema_errors():
    with pytest.raises(GrammarError):
        json_schema_to_grammar("{not json")
    with pytest.raises(GrammarError) as err:
        json_schema_to_grammar({"properties": {"a": {"type": "strnig"}}})
    assert err.value.pointer == "/properties/a/type"
    grammar, warnings = json_schema_to_grammar('{"type": "integer"}')
    assert warnings == [] and grammar.start in grammar.rules


def test_json_value_rules_reusable():
    from grammar import ir
    rules = json_value_rules("json_")
    grammar = ir.Grammar(rules={**rules, "start": ir.Ref("json_value")})
    rec = Recognizer(grammar)
    for text in forms({"a": [1, 2.5, None, True, "x\n"]}):
        assert rec.feed(text.encode()).complete()


def test_long_bounded_strings_are_built_once():
    """A string with a large maxLength unrolls a state per character: used in many places (one
    JSONSchemaBench schema has 50 `maxLength: 4096` strings: a 13.5M-state automaton, 1.2 s to
    compile) it is one rule, built once, and the bound still holds everywhere."""
    field = {"type": "string", "maxLength": 300}
    item = {"type": "object", "properties": {k: field for k in "abcdefghijklmnop"}}
    schema = {"type": "object", "properties": {"x": {"type": "array", "items": item}, "y": field}}
    compiled = BYTES.compile_json_schema(schema)
    assert len(compiled.nfa_arrays[0]) - 1 < 6000  # 3,906 states; 30,196 with 17 inlined copies
    check(schema, good=[{"x": [{"a": "q" * 300, "p": ""}], "y": "é" * 300}, {"y": "z"}],
          bad=[{"x": [{"b": "q" * 301}]}, {"y": "w" * 301}], oracle=False)
