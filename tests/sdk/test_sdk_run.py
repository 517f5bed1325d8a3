"""The tool loop (Client.run / AsyncClient.run) against a scripted model."""
from __future__ import annotations

import asyncio
import json
import threading

import pytest
from pydantic import BaseModel
from sdk_fakes import FakeServer, chunk, completion, tool_call

import gramserve
from gramserve import tool
from gramserve._loop import StreamAccumulator


class Reading(BaseModel):
    city: str
    celsius: float


@tool
def get_weather(city: str, unit: str = "C") -> Reading:
    """Current weather.

    Args:
        city: the city name
        unit: C or F
    """
    return Reading(city=city, celsius=21.5)


@tool
async def get_time(city: str) -> dict:
    """Local time in a city."""
    await asyncio.sleep(0)
    return {"city": city, "time": "14:05"}


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"kaboom: {reason}")


def _script_two_turns(server: FakeServer) -> None:
    server.push(completion(tool_calls=[tool_call("get_weather", {"city": "Paris"}, id="c1"),
                                       tool_call("get_time", {"city": "Paris"}, id="c2")], usage=(50, 20)))
    server.push(completion(content="Sunny, 21.5 C, and it is 14:05.", usage=(80, 12)))


def _check_two_turns(result: gramserve.RunResult, server: FakeServer) -> None:
    assert result.content == "Sunny, 21.5 C, and it is 14:05." and result.turns == 2
    assert [(c.name, c.arguments, c.turn) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"}, 0), ("get_time", {"city": "Paris"}, 0)]
    assert result.tool_calls[0].result == Reading(city="Paris", celsius=21.5)
    assert result.tool_calls[1].result == {"city": "Paris", "time": "14:05"}
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (130, 32, 162)
    first, second = server.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather", "get_time"]
    assert first["tool_choice"] == "auto"
    tool_msgs = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_msgs == [{"role": "tool", "tool_call_id": "c1", "content": '{"city":"Paris","celsius":21.5}'},
                         {"role": "tool", "tool_call_id": "c2", "content": '{"city":"Paris","time":"14:05"}'}]
    assert second["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert result.messages[-1] == {"role": "assistant", "content": "Sunny, 21.5 C, and it is 14:05."}


def test_sync_run_with_sync_and_async_tools() -> None:
    server = FakeServer()
    _script_two_turns(server)
    result = server.client(model="m").run("Weather and time in Paris?", tools=[get_weather, get_time])
    _check_two_turns(result, server)


def test_async_run_with_sync_and_async_tools() -> None:
    server = FakeServer()
    _script_two_turns(server)

    async def go():
        async with server.async_client(model="m") as client:
            return await client.run("Weather and time in Paris?", tools=[get_weather, get_time])

    _check_two_turns(asyncio.run(go()), server)


def _barrier_tools(n: int):
    """n async tools that each wait until all n have started: only concurrent execution finishes."""
    started = {"count": 0}

    async def wait_for_all(i: int) -> int:
        started["count"] += 1
        for _ in range(200):
            if started["count"] == n:
                return i
            await asyncio.sleep(0.001)
        raise TimeoutError("the calls ran one after another")

    @tool
    async def probe(i: int) -> int:
        """Waits for its siblings."""
        return await wait_for_all(i)

    return probe


@pytest.mark.parametrize("client_kind", ["sync", "async"])
def test_parallel_async_calls_run_concurrently(client_kind) -> None:
    server = FakeServer()
    server.push(completion(tool_calls=[tool_call("probe", {"i": i}, id=f"c{i}") for i in range(3)]))
    server.push(completion(content="done"))
    probe = _barrier_tools(3)
    if client_kind == "sync":
        result = server.client(model="m").run("go", tools=[probe])
    else:
        result = asyncio.run(server.async_client(model="m").run("go", tools=[probe]))
    assert [c.result for c in result.tool_calls] == [0, 1, 2]
    assert all(c.error is None for c in result.tool_calls)


def test_failures_go_back_to_the_model_instead_of_crashing() -> None:
    server = FakeServer()
    server.push(completion(tool_calls=[
        tool_call("explode", {"reason": "test"}, id="a"),
        tool_call("get_weather", {"town": "Paris"}, id="b"),  # wrong argument name
        tool_call("get_weather", "{not json", id="c"),
        tool_call("no_such_tool", {}, id="d"),
        tool_call("get_weather", {"city": "Rome"}, id="e"),
    ]))
    server.push(completion(content="Sorry about the errors."))
    result = server.client(model="m").run("go", tools=[explode, get_weather])
    errors = {c.id: c.error for c in result.tool_calls}
    assert "RuntimeError: kaboom: test" in errors["a"]
    assert "invalid arguments" in errors["b"] and "city" in errors["b"]
    assert "not valid JSON" in errors["c"]
    assert "unknown tool 'no_such_tool'" in errors["d"]
    assert errors["e"] is None and result.tool_calls[-1].result.city == "Rome"
    contents = {m["tool_call_id"]: m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"}
    assert contents["a"].startswith("Error: explode raised RuntimeError: kaboom")
    assert all(contents[k].startswith("Error:") for k in "bcd") and not contents["e"].startswith("Error")
    assert result.content == "Sorry about the errors."


def test_max_turns_raises_with_the_partial_result() -> None:
    server = FakeServer()
    for i in range(2):
        server.push(completion(tool_calls=[tool_call("get_weather", {"city": f"C{i}"}, id=f"x{i}")]))
    with pytest.raises(gramserve.MaxTurnsExceededError) as info:
        server.client(model="m").run("loop", tools=[get_weather], max_turns=2)
    partial = info.value.result
    assert len(partial.tool_calls) == 2 and partial.turns == 2 and len(server.requests) == 2
    assert partial.messages[-1]["role"] == "tool"


def test_forced_tool_choice_applies_to_the_first_turn_only() -> None:
    server = FakeServer()
    server.push(completion(tool_calls=[tool_call("get_weather", {"city": "Oslo"})]))
    server.push(completion(content="Cold."))
    result = server.client(model="m").run([{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "Oslo?"}],
                                          tools=[get_weather, get_time], tool_choice=get_weather)
    assert server.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert server.requests[1]["tool_choice"] == "auto"
    assert result.content == "Cold." and server.requests[1]["messages"][0]["role"] == "system"


def test_plain_functions_are_wrapped_and_missing_ids_assigned() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    server = FakeServer()
    call = tool_call("add", {"a": 2, "b": "3"})
    call["id"] = ""
    server.push(completion(tool_calls=[call]))
    server.push(completion(content="5"))
    result = server.client(model="m").run("2+3?", tools=[add], temperature=0)
    record = result.tool_calls[0]
    assert record.result == 5 and record.id.startswith("call_")
    assert server.requests[1]["messages"][-1] == {"role": "tool", "tool_call_id": record.id, "content": "5"}
    assert server.requests[0]["temperature"] == 0 and server.requests[1]["temperature"] == 0


def test_duplicate_tool_names_and_bad_max_turns_are_rejected() -> None:
    client = FakeServer().client(model="m")
    with pytest.raises(ValueError, match="two tools"):
        client.run("x", tools=[get_weather, get_weather])
    with pytest.raises(ValueError, match="max_turns"):
        client.run("x", tools=[get_weather], max_turns=0)


def test_sync_run_works_inside_a_running_event_loop() -> None:
    """Client.run with async tools from code that already runs a loop (e.g. a notebook)."""
    server = FakeServer()
    _script_two_turns(server)

    async def caller():
        return server.client(model="m").run("q", tools=[get_weather, get_time])

    _check_two_turns(asyncio.run(caller()), server)


def test_async_client_runs_sync_tools_off_the_event_loop() -> None:
    loop_thread: list[int] = []
    tool_thread: list[int] = []

    @tool
    def where() -> str:
        """Which thread runs me."""
        tool_thread.append(threading.get_ident())
        return "here"

    server = FakeServer()
    server.push(completion(tool_calls=[tool_call("where", {})]))
    server.push(completion(content="ok"))

    async def go():
        loop_thread.append(threading.get_ident())
        return await server.async_client(model="m").run("x", tools=[where])

    assert asyncio.run(go()).tool_calls[0].result == "here"
    assert tool_thread and tool_thread != loop_thread


def test_stream_accumulator_joins_tool_call_fragments() -> None:
    acc = StreamAccumulator()
    pieces = [
        chunk(tool_calls=[{"index": 0, "id": "c1", "type": "function", "function": {"name": "get_weather"}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"ci'}}]),
        chunk(tool_calls=[{"index": 1, "id": "c2", "function": {"name": "get_time", "arguments": ""}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]),
        chunk(tool_calls=[{"index": 1, "function": {"arguments": '{"city": "Rome"}'}}], finish_reason="tool_calls"),
    ]
    assert [acc.add(p) for p in pieces] == [""] * 5
    message = acc.message()
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("c1", "get_weather", {"city": "Paris"}), ("c2", "get_time", {"city": "Rome"})]
    assert acc.finish_reason == "tool_calls" and message.content is None
