"""What `stream()` returns: an iterator of text deltas that also keeps the whole message.

    stream = client.stream("Hi", tools=[...])
    for text in stream:             # text deltas as they arrive
        print(text, end="")
    stream.message                  # the assistant message: content and any streamed tool calls
    stream.finish_reason, stream.usage

The HTTP request starts on the first iteration; breaking out early and calling close() (or
using the stream as a context manager) closes the connection.
"""
from __future__ import annotations

from typing import Any, AsyncIterator, Iterator, Optional

from ._loop import StreamAccumulator
from .types import ChatMessage, Usage

__all__ = ["AsyncTextStream", "TextStream"]


class _StreamState:
    def __init__(self) -> None:
        self._acc = StreamAccumulator()

    @property
    def message(self) -> ChatMessage:
        """The message received so far (complete once iteration has finished)."""
        return self._acc.message()

    @property
    def text(self) -> str:
        return self._acc.text

    @property
    def finish_reason(self) -> Optional[str]:
        return self._acc.finish_reason

    @property
    def usage(self) -> Optional[Usage]:
        """Sent by servers only when asked (stream_options={"include_usage": True})."""
        return self._acc.usage


class TextStream(_StreamState):
    def __init__(self, chunks: Iterator[dict[str, Any]]) -> None:
        super().__init__()
        self._chunks = chunks

    def __iter__(self) -> "TextStream":
        return self

    def __next__(self) -> str:
        for chunk in self._chunks:
            text = self._acc.add(chunk)
            if text:
                return text
        raise StopIteration

    def close(self) -> None:
        self._chunks.close()

    def __enter__(self) -> "TextStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncTextStream(_StreamState):
    def __init__(self, chunks: AsyncIterator[dict[str, Any]]) -> None:
        super().__init__()
        self._chunks = chunks

    def __aiter__(self) -> "AsyncTextStream":
        return self

    async def __anext__(self) -> str:
        async for chunk in self._chunks:
            text = self._acc.add(chunk)
            if text:
                return text
        raise StopAsyncIteration

    async def aclose(self) -> None:
        await self._chunks.aclose()

    async def __aenter__(self) -> "AsyncTextStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
