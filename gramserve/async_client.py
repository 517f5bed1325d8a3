"""The asyncio client: the same API as Client, with coroutines and async generators.

    async with AsyncClient() as client:
        person = await client.parse("Invent a person.", response_model=Person)
        result = await client.run("Weather in Paris?", tools=[get_weather, get_time])
        async for partial in client.stream_parse("Invent a person.", response_model=Person): ...

In `run`, async tools proposed in one turn run concurrently; sync tools run in order in a worker
thread so the event loop keeps serving.
"""
from __future__ import annotations

from typing import Any, AsyncIterator, Optional

import httpx

from . import _http
from ._base import DEFAULT_BASE_URL, ClientBase, PartialTracker, validate_output
from ._loop import RunState, StreamAccumulator
from .errors import APIStatusError, GramserveError
from .schema import output_spec
from .streams import AsyncTextStream
from .tools import aexecute_calls
from .types import ChatCompletion, RunResult

__all__ = ["AsyncClient"]


class AsyncClient(ClientBase):
    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_key: Optional[str] = None,
                 model: Optional[str] = None, timeout: float = 60.0, max_retries: int = 2, *,
                 http_client: Optional[httpx.AsyncClient] = None) -> None:
        super().__init__(base_url, api_key, model, timeout, max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # -- transport ---------------------------------------------------------------------------
    async def _send(self, method: str, path: str, body: Optional[dict] = None,
                    stream: bool = False) -> httpx.Response:
        """One request with retries; returns a successful response (open, if stream=True)."""
        attempt = 0
        while True:
            try:
                request = self._http.build_request(method, self._url(path), json=body, headers=self._headers(),
                                                   timeout=self.timeout)
                response = await self._http.send(request, stream=stream)
                if response.status_code < 400:
                    return response
                await response.aread()
                await response.aclose()
                error: GramserveError = _http.status_error(response)
            except httpx.TransportError as e:
                error = _http.transport_error(e)
            delay = self.retry.delay(attempt, error)
            if delay is None:
                raise error
            await _http.async_sleep(delay)
            attempt += 1

    async def _model(self, model: Optional[str]) -> Optional[str]:
        if model or self.model:
            return model or self.model
        if not self._model_resolved:
            try:
                return self._remember_models((await self._send("GET", "models")).json())
            except (APIStatusError, ValueError):  # no usable listing: leave "model" out
                return self._remember_models({})
        return self._resolved_model

    async def _chunks(self, body: dict) -> AsyncIterator[dict]:
        response = await self._send("POST", "chat/completions", body, stream=True)
        try:
            async for data in _http.aiter_sse_data(response.aiter_lines()):
                yield _http.decode_chunk(data)
        finally:
            await response.aclose()

    # -- API ---------------------------------------------------------------------------------
    async def list_models(self) -> list[str]:
        return [m["id"] for m in (await self._send("GET", "models")).json().get("data", [])]

    async def chat(self, messages: Any, *, model: Optional[str] = None, tools: Optional[list] = None,
                   tool_choice: Any = None, response_format: Optional[dict] = None,
                   **sampling: Any) -> ChatCompletion:
        body = self._payload(messages, await self._model(model), tools=tools, tool_choice=tool_choice,
                             response_format=response_format, **sampling)
        return _http.parse_completion(await self._send("POST", "chat/completions", body))

    async def parse(self, messages: Any, response_model: Any, *, model: Optional[str] = None,
                    **sampling: Any) -> Any:
        spec = output_spec(response_model)
        completion = await self.chat(messages, model=model, response_format=spec.response_format(), **sampling)
        choice = completion.choices[0]
        return validate_output(spec, choice.message.content, choice.finish_reason, choice.message.refusal)

    async def run(self, messages: Any, tools: list, *, tool_choice: Any = "auto", max_turns: int = 8,
                  model: Optional[str] = None, **sampling: Any) -> RunResult:
        state = RunState(messages, tools, tool_choice, max_turns)
        while True:
            completion = await self.chat(state.messages, model=model, **state.request_kwargs(), **sampling)
            calls = state.on_completion(completion)
            if calls is None:
                return state.result()
            await aexecute_calls(calls)
            state.on_results(calls)

    def stream(self, messages: Any, *, model: Optional[str] = None, tools: Optional[list] = None,
               tool_choice: Any = None, **sampling: Any) -> AsyncTextStream:
        """`async for` text deltas; afterwards .message holds the whole reply, tool calls included."""

        async def chunks() -> AsyncIterator[dict]:
            body = self._payload(messages, await self._model(model), tools=tools, tool_choice=tool_choice,
                                 streaming=True, **sampling)
            inner = self._chunks(body)
            try:
                async for chunk in inner:
                    yield chunk
            finally:
                await inner.aclose()

        return AsyncTextStream(chunks())

    async def stream_parse(self, messages: Any, response_model: Any, *, model: Optional[str] = None,
                           **sampling: Any) -> AsyncIterator[Any]:
        spec = output_spec(response_model)
        body = self._payload(messages, await self._model(model), response_format=spec.response_format(),
                             streaming=True, **sampling)
        acc, tracker = StreamAccumulator(), PartialTracker()
        async for chunk in self._chunks(body):
            if acc.add(chunk):
                partial = tracker.update(acc.text)
                if partial is not None:
                    yield partial
        yield validate_output(spec, acc.text, acc.finish_reason)

