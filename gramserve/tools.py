"""@tool: a typed Python function (sync or async) as a model-callable tool, and call execution.

    @tool
    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        '''Current weather in a city.

        Args:
            city: the city name
        '''

`get_weather` stays callable as before and gains .name, .description, .parameters (JSON Schema)
and .to_openai(). During a run, the model's arguments are parsed and validated against the
function's types before the function runs; invalid arguments, an unknown tool name or an
exception inside the function become the tool message the model sees ("Error: ..."), so the
model can correct itself and the loop never crashes on a tool.

Concurrency within one turn: async tools run concurrently (asyncio.gather); sync tools run one
after another in call order (in the caller's thread for Client, in a worker thread for
AsyncClient so the event loop is never blocked). Records keep the model's call order.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pydantic
import pydantic_core
from pydantic import BaseModel

from .schema import function_schema
from .types import ToolCall, ToolCallRecord

__all__ = ["Tool", "tool"]


class Tool:
    """A function plus its tool schema; calling the Tool calls the function."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> None:
        self.fn = fn
        self.schema = function_schema(fn, name, description)
        self.is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.schema.name

    @property
    def description(self) -> str:
        return self.schema.description

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON Schema of the arguments object."""
        return self.schema.parameters

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, async={self.is_async})"

    def to_openai(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    def validate_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Model arguments -> keyword arguments of the function (nested models come back as instances)."""
        model = self.schema.args_model.model_validate(arguments)
        return {name: getattr(model, name) for name in type(model).model_fields}


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None) -> Any:
    """Decorator: `@tool` or `@tool(name=..., description=...)`."""
    if fn is None:
        return lambda f: Tool(f, name=name, description=description)
    return Tool(fn, name=name, description=description)


def as_tools(tools: list[Any]) -> dict[str, Tool]:
    """Plain functions are wrapped on the fly; duplicate names are an error."""
    out: dict[str, Tool] = {}
    for t in tools:
        t = t if isinstance(t, Tool) else Tool(t)
        if t.name in out:
            raise ValueError(f"two tools are named {t.name!r}")
        out[t.name] = t
    return out


@dataclass
class PreparedCall:
    record: ToolCallRecord
    tool: Optional[Tool] = None
    kwargs: Optional[dict[str, Any]] = None  # None: the call failed before running (record.error set)


def prepare_call(call: ToolCall, tools: dict[str, Tool], turn: int) -> PreparedCall:
    """Parse and validate one proposed call; failures are recorded, not raised."""
    record = ToolCallRecord(id=call.id, name=call.function.name, arguments={}, turn=turn)
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except ValueError as e:
        return _failed(record, f"the arguments are not valid JSON ({e}): {call.function.arguments!r}")
    if not isinstance(arguments, dict):
        return _failed(record, f"the arguments must be a JSON object, got {arguments!r}")
    record.arguments = arguments
    target = tools.get(call.function.name)
    if target is None:
        return _failed(record, f"unknown tool {call.function.name!r}; available tools: {sorted(tools)}")
    try:
        kwargs = target.validate_arguments(arguments)
    except pydantic.ValidationError as e:
        return _failed(record, f"invalid arguments for {target.name}: {e}")
    return PreparedCall(record, target, kwargs)


def _failed(record: ToolCallRecord, error: str) -> PreparedCall:
    record.error = error
    record.content = f"Error: {error}"
    return PreparedCall(record)


def _finish(p: PreparedCall, result: Any = None, exc: BaseException | None = None) -> None:
    if exc is not None:
        p.record.error = f"{type(exc).__name__}: {exc}"
        p.record.content = f"Error: {p.tool.name} raised {p.record.error}"
    else:
        p.record.result = result
        p.record.content = render_result(result)


def render_result(value: Any) -> str:
    """A tool's return value as tool-message text: str as is, everything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return pydantic_core.to_json(value).decode()
    except pydantic_core.PydanticSerializationError:
        return str(value)


def _run_sync(p: PreparedCall) -> None:
    try:
        _finish(p, p.tool.fn(**p.kwargs))
    except Exception as e:  # noqa: BLE001 - any tool failure goes back to the model
        _finish(p, exc=e)


async def _run_async(p: PreparedCall) -> None:
    try:
        _finish(p, await p.tool.fn(**p.kwargs))
    except Exception as e:  # noqa: BLE001
        _finish(p, exc=e)


def execute_calls(calls: list[PreparedCall]) -> None:
    """Sync execution: sync tools inline in call order, then the async ones concurrently."""
    runnable = [p for p in calls if p.kwargs is not None]
    for p in runnable:
        if not p.tool.is_async:
            _run_sync(p)
    pending = [p for p in runnable if p.tool.is_async]
    if pending:
        _run_coroutine(_gather(pending))


async def _gather(calls: list[PreparedCall]) -> None:
    await asyncio.gather(*(_run_async(p) for p in calls))


def _run_coroutine(coro: Any) -> None:
    """asyncio.run, or in a helper thread when this thread already runs a loop (e.g. Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(e)

    thread = threading.Thread(target=target, name="gramserve-tools")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


async def aexecute_calls(calls: list[PreparedCall]) -> None:
    """Async execution: async tools concurrently, sync tools sequentially in a worker thread."""
    runnable = [p for p in calls if p.kwargs is not None]
    sync_calls = [p for p in runnable if not p.tool.is_async]

    async def sync_in_order() -> None:
        for p in sync_calls:
            await asyncio.to_thread(_run_sync, p)

    await asyncio.gather(sync_in_order(), *(_run_async(p) for p in runnable if p.tool.is_async))
