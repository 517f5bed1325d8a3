"""Client/AsyncClient against a fake OpenAI server: parse, stream, stream_parse, request shapes."""
from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Literal, Optional

import httpx
import pytest
from pydantic import BaseModel
from sdk_fakes import FakeServer, chunk, completion, text_chunks
from typing_extensions import TypedDict

import gramserve
from gramserve import jsonschema_check


class Address(BaseModel):
    city: str
    zip_code: Optional[str] = None


class Person(BaseModel):
    name: str
    age: int
    role: Literal["engineer", "artist"]
    addresses: list[Address]


PERSON = {"name": "Ada", "age": 36, "role": "engineer", "addresses": [{"city": "London", "zip_code": None}]}


@dataclasses.dataclass
class Pair:
    left: int
    right: int


class Movie(TypedDict):
    title: str
    year: int


def test_parse_sends_strict_json_schema_and_returns_the_model() -> None:
    server = FakeServer()
    server.push(completion(content=json.dumps(PERSON)))
    client = server.client(api_key="sk-test")
    person = client.parse("Invent a person.", response_model=Person, temperature=0, max_tokens=100, seed=7)
    assert person == Person.model_validate(PERSON)
    body = server.requests[0]
    assert body["messages"] == [{"role": "user", "content": "Invent a person."}]
    assert (body["temperature"], body["max_tokens"], body["seed"], body["model"]) == (0, 100, 7, "fake-model")
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "Person"
    expected = Person.model_json_schema()
    expected["additionalProperties"] = expected["$defs"]["Address"]["additionalProperties"] = False  # strict
    assert fmt["json_schema"]["schema"] == expected
    assert server.headers[0]["authorization"] == "Bearer sk-test"
    assert "stream" not in body


@pytest.mark.parametrize("model,content,expected", [
    (Pair, '{"left": 1, "right": 2}', Pair(1, 2)),
    (Movie, '{"title": "Alien", "year": 1979}', {"title": "Alien", "year": 1979}),
    ({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}, '{"n": 3}', {"n": 3}),
])
def test_parse_other_model_kinds(model, content, expected) -> None:
    server = FakeServer()
    server.push(completion(content=content))
    assert server.client(model="m").parse("x", response_model=model) == expected


def test_validation_failure_carries_the_raw_text() -> None:
    server = FakeServer()
    server.push(completion(content='{"name": "Ada", "age": "old"}'))
    with pytest.raises(gramserve.OutputValidationError) as info:
        server.client(model="m").parse("x", response_model=Person)
    assert info.value.raw == '{"name": "Ada", "age": "old"}'
    assert any(e["loc"] == ("age",) for e in info.value.errors)


def test_truncated_output_and_refusal() -> None:
    server = FakeServer()
    server.push(completion(content='{"name": "Ad', finish_reason="length"))
    server.push(completion(content=None, refusal="I cannot help with that."))
    client = server.client(model="m")
    with pytest.raises(gramserve.TruncatedOutputError, match="max_tokens"):
        client.parse("x", response_model=Person)
    with pytest.raises(gramserve.OutputValidationError, match="refused"):
        client.parse("x", response_model=Person)


@pytest.mark.parametrize("full", [True, False], ids=["jsonschema", "builtin-subset"])
def test_dict_schema_validation(full, monkeypatch) -> None:
    if not full:
        monkeypatch.setattr(jsonschema_check, "_full_validator", lambda: None)
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0},
                                               "tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
              "required": ["n"], "additionalProperties": False}
    server = FakeServer()
    for content in ('{"n": -1}', '{"n": 1, "tags": ["c"]}', '{"tags": []}', '{"n": 1, "x": 0}', '{"n": true}'):
        server.push(completion(content=content))
    client = server.client(model="m")
    for _ in range(5):
        with pytest.raises(gramserve.OutputValidationError):
            client.parse("x", response_model=schema)
    server.push(completion(content='{"n": 2, "tags": ["a"]}'))
    assert client.parse("x", response_model=schema) == {"n": 2, "tags": ["a"]}


def test_builtin_subset_follows_refs_and_combinators() -> None:
    schema = {"$defs": {"P": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
              "anyOf": [{"$ref": "#/$defs/P"}, {"type": "null"}]}
    assert jsonschema_check.check_subset({"x": 1.5}, schema) == []
    assert jsonschema_check.check_subset(None, schema) == []
    assert jsonschema_check.check_subset({"x": "no"}, schema)
    assert jsonschema_check.check_subset({"x": 1}, {"oneOf": [{"type": "integer"}, {"type": "number"}]})


def test_model_is_resolved_once_from_the_server_listing() -> None:
    server = FakeServer()
    server.push(completion(content="a"))
    server.push(completion(content="b"))
    client = server.client()
    client.chat("x")
    client.chat("y", model="explicit")
    client.model = None
    assert [r["model"] for r in server.requests] == ["fake-model", "explicit"]
    assert server.model_requests == 1 and client.list_models() == ["fake-model"]


def test_stream_yields_text_deltas() -> None:
    server = FakeServer()
    server.push_stream([chunk(content=""), *text_chunks("Hello, world!", size=4)])
    client = server.client(model="m")
    deltas = list(client.stream([{"role": "user", "content": "hi"}], max_tokens=20))
    assert deltas == ["Hell", "o, w", "orld", "!"]
    assert server.requests[0]["stream"] is True and server.requests[0]["max_tokens"] == 20


def test_stream_parse_yields_growing_partials_then_the_model() -> None:
    server = FakeServer()
    server.push_stream(text_chunks(json.dumps(PERSON), size=3))
    items = list(server.client(model="m").stream_parse("x", response_model=Person))
    *partials, final = items
    assert final == Person.model_validate(PERSON)
    assert all(isinstance(p, dict) for p in partials) and len(partials) >= 5
    assert partials[-1] == PERSON
    assert {"name": "Ad"} in partials  # strings stream in pieces
    assert all(a != b for a, b in zip(partials, partials[1:]))  # only changes are yielded
    assert server.requests[0]["response_format"]["json_schema"]["name"] == "Person"


def test_stream_parse_invalid_final_raises_with_raw() -> None:
    server = FakeServer()
    server.push_stream(text_chunks('{"name": "Ada"} trailing', size=4))
    with pytest.raises(gramserve.OutputValidationError) as info:
        list(server.client(model="m").stream_parse("x", response_model=Person))
    assert info.value.raw == '{"name": "Ada"} trailing'


def test_async_parse_stream_and_stream_parse() -> None:
    server = FakeServer()
    server.push(completion(content=json.dumps(PERSON)))
    server.push_stream(text_chunks("one two", size=2))
    server.push_stream(text_chunks(json.dumps(PERSON), size=7))

    async def go():
        async with server.async_client() as client:
            person = await client.parse("x", response_model=Person)
            text = [d async for d in client.stream("x")]
            items = [p async for p in client.stream_parse("x", response_model=Person)]
        return person, text, items

    person, text, items = asyncio.run(go())
    assert person == Person.model_validate(PERSON)
    assert "".join(text) == "one two"
    assert items[-1] == person and items[-2] == PERSON


def test_bad_arguments_are_rejected_client_side() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        gramserve.Client(max_retries=-1)
    with pytest.raises(TypeError, match="JSON Schema"):
        FakeServer().client(model="m").parse("x", response_model=object())
    with pytest.raises(TypeError, match="stream"):
        FakeServer().client(model="m").chat("x", stream=True)


def test_stream_keeps_the_whole_message_with_tool_calls_and_usage() -> None:
    server = FakeServer()
    final = chunk(finish_reason="tool_calls")
    final["usage"] = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    server.push_stream([
        chunk(content="Let me check. "),
        chunk(tool_calls=[{"index": 0, "id": "c1", "type": "function",
                           "function": {"name": "lookup", "arguments": '{"q": '}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": '"x"}'}}]),
        final,
    ])
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with server.client(model="m").stream("x", tools=tools, tool_choice="required") as stream:
        assert list(stream) == ["Let me check. "]
    assert stream.message.content == "Let me check. " and stream.finish_reason == "tool_calls"
    assert stream.message.tool_calls[0].function.arguments == '{"q": "x"}'
    assert stream.usage.total_tokens == 13
    assert server.requests[0]["tools"] == tools and server.requests[0]["tool_choice"] == "required"


def test_closing_a_stream_early_closes_the_response() -> None:
    closed = []

    class Body(httpx.SyncByteStream):
        def __iter__(self):
            yield b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n'
            yield b'data: {"choices": [{"index": 0, "delta": {"content": "b"}}]}\n\n'

        def close(self):
            closed.append(True)

    server = FakeServer()
    server.queue.append(httpx.Response(200, stream=Body()))
    stream = server.client(model="m").stream("x")
    assert next(stream) == "a"
    stream.close()
    assert closed == [True]


def test_async_stream_message() -> None:
    server = FakeServer()
    server.push_stream(text_chunks("hello there", size=4))

    async def go():
        stream = server.async_client(model="m").stream("x")
        return [d async for d in stream], stream

    deltas, stream = asyncio.run(go())
    assert "".join(deltas) == "hello there" == stream.message.content and stream.finish_reason == "stop"
