"""Tool calling through the openai client: every tool_choice, streamed and not; arguments validate
against the tool's schema and streamed deltas reassemble to exactly the non-streamed call."""
from __future__ import annotations

import json

import jsonschema
from conftest import MODEL

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 16},
                                            "unit": {"enum": ["celsius", "fahrenheit"]}},
           "required": ["city", "unit"], "additionalProperties": False}
TIME = {"type": "object", "properties": {"timezone": {"enum": ["UTC", "CET", "PST"]}},
        "required": ["timezone"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                           "parameters": WEATHER}},
         {"type": "function", "function": {"name": "get_time", "description": "Current time in a timezone",
                                           "parameters": TIME}}]
SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def _create(client, **kw):
    kw.setdefault("max_tokens", 40)
    return client.chat.completions.create(model=MODEL, messages=kw.pop("messages", ASK), temperature=0,
                                          tools=TOOLS, **kw)


def _reassemble(chunks) -> tuple[list[dict], str | None, str]:
    calls: dict[int, dict] = {}
    finish, content = None, ""
    for ch in chunks:
        for c in ch.choices:
            content += c.delta.content or ""
            for tc in c.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                slot["id"] = tc.id or slot["id"]
                slot["name"] = (tc.function.name if tc.function and tc.function.name else slot["name"])
                slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
            finish = c.finish_reason or finish
    return [calls[i] for i in sorted(calls)], finish, content


def _check_calls(calls, allowed=("get_weather", "get_time")):
    for call in calls:
        assert call.function.name in allowed
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])
        assert call.id.startswith("call_") and call.type == "function"


def test_required_streamed_reassembles_to_non_streamed(client):
    r = _create(client, tool_choice="required", parallel_tool_calls=False)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and len(choice.message.tool_calls) == 1
    _check_calls(choice.message.tool_calls)
    calls, finish, _ = _reassemble(_create(client, tool_choice="required", parallel_tool_calls=False, stream=True))
    assert finish == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in calls] == [
        (c.function.name, c.function.arguments) for c in choice.message.tool_calls]


def test_named_function_is_the_only_call(client):
    r = _create(client, tool_choice={"type": "function", "function": {"name": "get_time"}},
                parallel_tool_calls=False)
    assert r.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in r.choices[0].message.tool_calls] == ["get_time"]
    _check_calls(r.choices[0].message.tool_calls, allowed=("get_time",))


def test_auto_answers_in_text_or_a_valid_call(client):
    r = _create(client, tool_choice="auto", max_tokens=24)
    msg, finish = r.choices[0].message, r.choices[0].finish_reason
    if msg.tool_calls:
        assert finish == "tool_calls"
        _check_calls(msg.tool_calls)
    else:
        assert msg.content and "<tool_call>" not in msg.content and finish in ("stop", "length")
    calls, s_finish, content = _reassemble(_create(client, tool_choice="auto", max_tokens=24, stream=True))
    assert s_finish == finish and content == (msg.content or "")
    assert [(c["name"], c["arguments"]) for c in calls] == [
        (c.function.name, c.function.arguments) for c in msg.tool_calls or []]


def test_none_never_calls(client):
    r = _create(client, tool_choice="none", max_tokens=8)
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason != "tool_calls"


def test_cut_short_call_reports_length(client):
    r = _create(client, tool_choice="required", max_tokens=12)  # the call head alone is ~12 tokens
    assert r.choices[0].finish_reason == "length"
    assert not r.choices[0].message.tool_calls  # no call with broken arguments


def test_tool_results_round_trip(client):
    first = _create(client, tool_choice="required", parallel_tool_calls=False).choices[0].message
    call = first.tool_calls[0]
    messages = ASK + [first.model_dump(exclude_none=True),
                      {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21})}]
    r = _create(client, messages=messages, tool_choice="none", max_tokens=6)
    assert r.choices[0].message.content
