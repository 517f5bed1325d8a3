"""Partial JSON completion: exact cases, and properties over random documents (hypothesis)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gramserve import PartialJSONError, parse_partial_json


@pytest.mark.parametrize("text,expected", [
    ("", None),
    ("  ", None),
    ("{", {}),
    ('{"na', {}),
    ('{"name"', {}),
    ('{"name": ', {}),
    ('{"name": "Ad', {"name": "Ad"}),
    ('{"name": "Ad\\', {"name": "Ad"}),
    ('{"name": "a\\nb', {"name": "a\nb"}),
    ('{"name": "\\u00', {"name": ""}),
    ('{"a": 12', {}),
    ('{"a": -', {}),
    ('{"a": 1.', {}),
    ('{"a": 1e+', {}),
    ('{"a": 12,', {"a": 12}),
    ('{"a": -1.5e3}', {"a": -1500.0}),
    ('{"a": tr', {}),
    ('{"a": true', {"a": True}),
    ('{"a": [1, 2, {"b": nul', {"a": [1, 2, {}]}),
    ('{"a": [1, 2, {"b": null', {"a": [1, 2, {"b": None}]}),
    ('[["x", "y', [["x", "y"]]),
    ('"partial', "partial"),
    ('{"a": {}, "b": []}', {"a": {}, "b": []}),
])
def test_cases(text, expected) -> None:
    assert parse_partial_json(text) == expected


@pytest.mark.parametrize("text", ['{"a" 1', '{"a": 1 "b"', "[1 2]", '{"a": 01', "{'a': 1}", "nope", '{"a": 1}x',
                                  '{"a": "\\x"', "[1,,", '{"a": -}'])
def test_not_a_json_prefix_raises(text) -> None:
    with pytest.raises(PartialJSONError):
        parse_partial_json(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


def _is_prefix_value(partial, full) -> bool:
    """`partial` only holds what `full` holds: strings may be cut short, containers may miss a tail."""
    if isinstance(full, dict):
        return isinstance(partial, dict) and all(k in full and _is_prefix_value(v, full[k])
                                                 for k, v in partial.items())
    if isinstance(full, list):
        return (isinstance(partial, list) and len(partial) <= len(full)
                and all(_is_prefix_value(p, f) for p, f in zip(partial, full)))
    if isinstance(full, str):
        return isinstance(partial, str) and full.startswith(partial)
    return partial == full


@settings(max_examples=60, deadline=None)
@given(value=st.dictionaries(st.text(max_size=5), json_values, max_size=4) | st.lists(json_values, max_size=4),
       ascii_only=st.booleans(), indent=st.sampled_from([None, 1]))
def test_every_prefix_completes_to_a_sub_value(value, ascii_only, indent) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    assert parse_partial_json(text) == value
    for cut in range(len(text)):
        partial = parse_partial_json(text[:cut])
        assert partial is None or _is_prefix_value(partial, value), (text[:cut], partial)


def test_partial_values_grow_monotonically_in_a_stream() -> None:
    value = {"people": [{"name": "Ada Lovelace", "age": 36}, {"name": "Alan", "tags": ["x", "y"]}], "ok": False}
    text = json.dumps(value)
    seen = [parse_partial_json(text[:i]) for i in range(len(text) + 1)]
    assert seen[-1] == value
    for earlier, later in zip(seen, seen[1:]):
        if earlier is not None:
            assert _is_prefix_value(earlier, later)
