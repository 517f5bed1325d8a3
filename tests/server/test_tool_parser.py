"""ToolCallParser: streamed feeding (any split) gives exactly the whole-text result."""
from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from server.chat import format_call
from server.tool_parser import ToolCallParser, parse_all

CALL_A = format_call("get_weather", '{"city": "Paris", "note": "a \\"quoted\\" }{ brace"}')
CALL_B = format_call("add", '{"a": 1, "b": [2, {"c": null}]}')
REPLIES = [
    "Plain text, no call at all <b>bold</b> <tool_ca",
    CALL_A,
    "Let me check. " + CALL_A,
    CALL_A + "\n" + CALL_B,
    CALL_A + "\n" + CALL_B + "\nand some text after",
    CALL_A[:-5],  # cut short inside the closing tag
    CALL_B[:47],  # cut short inside the arguments
    CALL_B[:30],  # cut short inside the head
]


def _stream(text: str, cuts: list[int]) -> tuple[str, list[dict]]:
    """Feed text in pieces; reassemble content and calls from the deltas the way a client does."""
    p = ToolCallParser()
    content, calls = "", {}
    bounds = sorted({0, len(text), *[c % (len(text) + 1) for c in cuts]})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    deltas = [p.feed(piece) for piece in pieces] + [p.finish()]
    for d in deltas:
        content += d.content
        for idx, call in d.started:
            calls[idx] = {"id": call.id, "name": call.name, "arguments": ""}
        for idx, frag in d.arguments:
            calls[idx]["arguments"] += frag
    return content, [calls[i] for i in sorted(calls)], p


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(REPLIES), st.lists(st.integers(0, 400), max_size=12))
def test_streamed_deltas_reassemble_to_the_whole_text_result(text, cuts):
    whole = parse_all(text)
    content, calls, streamed = _stream(text, cuts)
    assert content == whole.content
    assert [(c["name"], c["arguments"]) for c in calls] == [(c.name, c.arguments) for c in whole.calls]
    assert [c.complete for c in streamed.calls] == [c.complete for c in whole.calls]


def test_complete_calls_parse_to_valid_json_arguments():
    p = parse_all("Sure. " + CALL_A + "\n" + CALL_B)
    assert p.content == "Sure. "
    assert [c.name for c in p.complete_calls] == ["get_weather", "add"]
    assert json.loads(p.calls[0].arguments)["note"] == 'a "quoted" }{ brace'
    assert json.loads(p.calls[1].arguments) == {"a": 1, "b": [2, {"c": None}]}


def test_truncated_call_is_incomplete():
    p = parse_all(CALL_B[:47])
    assert p.calls and not p.calls[0].complete and p.complete_calls == []
    assert parse_all(CALL_B[:30]).calls == []  # the name is not known yet: no call started
    p = parse_all(CALL_A[:-5])
    assert p.calls[0].arguments.endswith("}") and not p.calls[0].complete


def test_partial_tag_is_held_back_then_released_as_text():
    p = ToolCallParser()
    assert p.feed("hello <tool_").content == "hello "
    assert p.feed("box>").content == "<tool_box>"
    assert p.finish().content == "" and p.calls == []
