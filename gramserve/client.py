"""The synchronous client: chat, parse, run (tool loop), stream, stream_parse.

    client = Client(base_url="http://127.0.0.1:8000/v1")
    person = client.parse("Invent a person.", response_model=Person)      # -> Person
    result = client.run("Weather in Paris?", tools=[get_weather])        # -> RunResult
    for text in client.stream("Tell me a story."): ...
    for partial in client.stream_parse("Invent a person.", response_model=Person): ...

Pass `http_client=httpx.Client(transport=...)` to reuse a pool or inject a transport (tests
use httpx.MockTransport); the client then does not close it.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

import httpx

from . import _http
from ._base import DEFAULT_BASE_URL, ClientBase, PartialTracker, validate_output
from ._loop import RunState, StreamAccumulator
from .errors import APIStatusError, GramserveError
from .schema import output_spec
from .streams import TextStream
from .tools import execute_calls
from .types import ChatCompletion, RunResult

__all__ = ["Client"]


class Client(ClientBase):
    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_key: Optional[str] = None,
                 model: Optional[str] = None, timeout: float = 60.0, max_retries: int = 2, *,
                 http_client: Optional[httpx.Client] = None) -> None:
        super().__init__(base_url, api_key, model, timeout, max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: Optional[dict] = None, stream: bool = False) -> httpx.Response:
        """One request with retries; returns a successful response (open, if stream=True)."""
        attempt = 0
        while True:
            try:
                request = self._http.build_request(method, self._url(path), json=body, headers=self._headers(),
                                                   timeout=self.timeout)
                response = self._http.send(request, stream=stream)
                if response.status_code < 400:
                    return response
                response.read()
                response.close()
                error: GramserveError = _http.status_error(response)
            except httpx.TransportError as e:
                error = _http.transport_error(e)
            delay = self.retry.delay(attempt, error)
            if delay is None:
                raise error
            _http.sleep(delay)
            attempt += 1

    def _model(self, model: Optional[str]) -> Optional[str]:
        if model or self.model:
            return model or self.model
        if not self._model_resolved:
            try:
                return self._remember_models(self._send("GET", "models").json())
            except (APIStatusError, ValueError):  # no usable listing: leave "model" out
                return self._remember_models({})
        return self._resolved_model

    def _chunks(self, body: dict) -> Iterator[dict]:
        response = self._send("POST", "chat/completions", body, stream=True)
        try:
            for data in _http.iter_sse_data(response.iter_lines()):
                yield _http.decode_chunk(data)
        finally:
            response.close()

    # -- API ---------------------------------------------------------------------------------
    def list_models(self) -> list[str]:
        return [m["id"] for m in self._send("GET", "models").json().get("data", [])]

    def chat(self, messages: Any, *, model: Optional[str] = None, tools: Optional[list] = None,
             tool_choice: Any = None, response_format: Optional[dict] = None, **sampling: Any) -> ChatCompletion:
        """One chat completion (non-streaming), returned as a typed ChatCompletion."""
        body = self._payload(messages, self._model(model), tools=tools, tool_choice=tool_choice,
                             response_format=response_format, **sampling)
        return _http.parse_completion(self._send("POST", "chat/completions", body))

    def parse(self, messages: Any, response_model: Any, *, model: Optional[str] = None, **sampling: Any) -> Any:
        """A structured answer validated as `response_model` (sent as strict json_schema)."""
        spec = output_spec(response_model)
        completion = self.chat(messages, model=model, response_format=spec.response_format(), **sampling)
        choice = completion.choices[0]
        return validate_output(spec, choice.message.content, choice.finish_reason, choice.message.refusal)

    def run(self, messages: Any, tools: list, *, tool_choice: Any = "auto", max_turns: int = 8,
            model: Optional[str] = None, **sampling: Any) -> RunResult:
        """The tool loop: call tools the model proposes until it answers (see _loop.RunState)."""
        state = RunState(messages, tools, tool_choice, max_turns)
        while True:
            completion = self.chat(state.messages, model=model, **state.request_kwargs(), **sampling)
            calls = state.on_completion(completion)
            if calls is None:
                return state.result()
            execute_calls(calls)
            state.on_results(calls)

    def stream(self, messages: Any, *, model: Optional[str] = None, tools: Optional[list] = None,
               tool_choice: Any = None, **sampling: Any) -> TextStream:
        """Iterate for text deltas; afterwards .message holds the whole reply, tool calls included."""
        body = self._payload(messages, self._model(model), tools=tools, tool_choice=tool_choice, streaming=True,
                             **sampling)
        return TextStream(self._chunks(body))

    def stream_parse(self, messages: Any, response_model: Any, *, model: Optional[str] = None,
                     **sampling: Any) -> Iterator[Any]:
        """Partial values (dicts completed from the JSON so far), then the validated final value."""
        spec = output_spec(response_model)
        body = self._payload(messages, self._model(model), response_format=spec.response_format(), streaming=True,
                             **sampling)
        acc, tracker = StreamAccumulator(), PartialTracker()
        for chunk in self._chunks(body):
            if acc.add(chunk):
                partial = tracker.update(acc.text)
                if partial is not None:
                    yield partial
        yield validate_output(spec, acc.text, acc.finish_reason)
