"""HTTP plumbing shared by Client and AsyncClient: retry policy, error raising, SSE decoding.

Retries: 429 and 503 responses and connection errors (including timeouts) are retried up to
max_retries times. The wait before retry k (k = 0, 1, ...) is the server's Retry-After when it
sends one (`retry-after-ms`, or `retry-after` in seconds or as an HTTP date), else
min(max_delay, base_delay * 2**k) scaled by a jitter in [0.75, 1.0]. A Retry-After longer than
max_retry_after is not waited out: the error is raised at once so the caller can decide.
Streams are retried only until the response status arrives; once events flow nothing is resent.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable, Iterator, Optional

import httpx
import pydantic

from .errors import APIConnectionError, APIResponseValidationError, APIStatusError, APITimeoutError, error_from_response
from .types import ChatCompletion

RETRY_STATUSES = frozenset({429, 503})
DONE = "[DONE]"  # the data of the event that ends an OpenAI stream

# looked up at call time so tests can replace them without sleeping
sleep = time.sleep
async_sleep = asyncio.sleep


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, error: BaseException) -> Optional[float]:
        """Seconds to wait before retry number `attempt` (0-based), or None: do not retry."""
        if attempt >= self.max_retries:
            return None
        if isinstance(error, APIStatusError):
            if error.status_code not in RETRY_STATUSES:
                return None
            after = retry_after_seconds(error.headers)
            if after is not None:
                return after if after <= self.max_retry_after else None
        elif not isinstance(error, APIConnectionError):
            return None
        return min(self.max_delay, self.base_delay * 2 ** attempt) * random.uniform(0.75, 1.0)


def retry_after_seconds(headers: Any) -> Optional[float]:
    """The server's requested wait, from retry-after-ms or retry-after (seconds or HTTP date)."""
    lower = {k.lower(): v for k, v in dict(headers or {}).items()}
    try:
        if "retry-after-ms" in lower:
            return max(0.0, float(lower["retry-after-ms"]) / 1000)
        value = lower.get("retry-after")
        if value is None:
            return None
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def transport_error(e: httpx.TransportError) -> APIConnectionError:
    cls = APITimeoutError if isinstance(e, httpx.TimeoutException) else APIConnectionError
    return cls(f"{type(e).__name__}: {e}")


def parse_completion(response: httpx.Response) -> ChatCompletion:
    """A 2xx chat/completions body -> ChatCompletion; anything else is an APIResponseValidationError."""
    try:
        return ChatCompletion.model_validate(response.json())
    except (ValueError, pydantic.ValidationError) as e:  # JSONDecodeError is a ValueError
        raise APIResponseValidationError(f"not an OpenAI chat completion: {e}", response.text[:2000]) from e


def status_error(response: httpx.Response) -> APIStatusError:
    """The response must be read (stream responses included) before calling this."""
    return error_from_response(response.status_code, response.content, dict(response.headers))


class SSEDecoder:
    """Server-sent events, one line at a time: data lines accumulate until a blank line ends the
    event. Comments (":") and event/id/retry fields carry nothing we use and are skipped."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> Optional[str]:
        """The data of the event this line completes, else None."""
        if line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        elif line == "" and self._data:
            return self.flush()
        return None

    def flush(self) -> Optional[str]:
        event, self._data = ("\n".join(self._data) if self._data else None), []
        return event


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Lines of an event stream -> the data of each event, up to `data: [DONE]`."""
    decoder = SSEDecoder()
    for line in lines:
        event = decoder.feed(line)
        if event == DONE:
            return
        if event is not None:
            yield event
    event = decoder.flush()
    if event is not None and event != DONE:
        yield event


async def aiter_sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    decoder = SSEDecoder()
    async for line in lines:
        event = decoder.feed(line)
        if event == DONE:
            return
        if event is not None:
            yield event
    event = decoder.flush()
    if event is not None and event != DONE:
        yield event


def decode_chunk(data: str) -> dict[str, Any]:
    """One SSE data payload -> a chunk dict; an in-stream error object is raised as an APIStatusError."""
    try:
        chunk = json.loads(data)
    except ValueError as e:
        raise APIConnectionError(f"malformed stream event: {data[:200]!r}") from e
    if isinstance(chunk, dict) and "error" in chunk:
        err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
        status = err.get("code") if isinstance(err.get("code"), int) else 500
        raise error_from_response(status, json.dumps({"error": err}).encode())
    return chunk
