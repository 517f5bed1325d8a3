"""A scripted OpenAI-compatible server behind httpx.MockTransport, for the SDK tests.

    server = FakeServer()
    server.push(completion(content='{"a": 1}'))          # queue the next /chat/completions answers
    server.push_stream([chunk(content="He"), chunk(content="llo", finish_reason="stop")])
    server.push_error(429, "slow down", headers={"retry-after": "2"})
    client = server.client()                               # Client wired to the fake
    server.requests                                        # every request body received, in order

GET /models always lists one model, "fake-model". An empty queue is a test bug (AssertionError).
"""
from __future__ import annotations

import json
from collections import deque
from typing import Any, Callable, Optional, Union

import httpx

from gramserve import AsyncClient, Client

Reply = Union[httpx.Response, Callable[[httpx.Request], httpx.Response], Exception]


def tool_call(name: str, arguments: Any, id: Optional[str] = None) -> dict:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": id or f"call_{name}", "type": "function", "function": {"name": name, "arguments": args}}


def completion(content: Optional[str] = None, tool_calls: Optional[list] = None, finish_reason: str = "stop",
               usage: tuple[int, int] = (10, 5), refusal: Optional[str] = None) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
        finish_reason = "tool_calls" if finish_reason == "stop" else finish_reason
    if refusal:
        message["refusal"] = refusal
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "fake-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}


def chunk(content: Optional[str] = None, tool_calls: Optional[list] = None,
          finish_reason: Optional[str] = None) -> dict:
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "fake-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def text_chunks(text: str, size: int = 3) -> list[dict]:
    """The text split into `size`-character content deltas, the last one finishing the stream."""
    pieces = [text[i:i + size] for i in range(0, len(text), size)] or [""]
    return [chunk(content=p, finish_reason="stop" if i == len(pieces) - 1 else None) for i, p in enumerate(pieces)]


def sse(chunks: list[Any], done: bool = True) -> bytes:
    events = [f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks]
    return ("".join(events) + ("data: [DONE]\n\n" if done else "")).encode()


class FakeServer:
    def __init__(self) -> None:
        self.queue: deque[Reply] = deque()
        self.requests: list[dict] = []
        self.headers: list[httpx.Headers] = []
        self.model_requests = 0

    def push(self, body: dict, status: int = 200, headers: Optional[dict] = None) -> None:
        self.queue.append(httpx.Response(status, json=body, headers=headers))

    def push_stream(self, chunks: list[Any], done: bool = True) -> None:
        self.queue.append(httpx.Response(200, content=sse(chunks, done),
                                         headers={"content-type": "text/event-stream"}))

    def push_error(self, status: int, message: str, type: str = "invalid_request_error",
                   param: Optional[str] = None, code: Any = None, headers: Optional[dict] = None) -> None:
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        self.queue.append(httpx.Response(status, json=body, headers=headers))

    def push_raise(self, exc: Exception) -> None:
        self.queue.append(exc)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/models"):
            self.model_requests += 1
            return httpx.Response(200, json={"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        assert request.url.path.endswith("/chat/completions"), request.url
        self.requests.append(json.loads(request.content))
        self.headers.append(request.headers)
        assert self.queue, "the fake server has no scripted reply left"
        reply = self.queue.popleft()
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply

    def client(self, **kwargs: Any) -> Client:
        kwargs.setdefault("base_url", "http://fake/v1")
        return Client(http_client=httpx.Client(transport=httpx.MockTransport(self.handler)), **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncClient:
        kwargs.setdefault("base_url", "http://fake/v1")
        return AsyncClient(http_client=httpx.AsyncClient(transport=httpx.MockTransport(self.handler)), **kwargs)
