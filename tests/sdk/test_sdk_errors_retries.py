"""Error mapping from the server's error shape, and retries with backoff + Retry-After."""
from __future__ import annotations

import asyncio
import email.utils
import time

import httpx
import pytest
from sdk_fakes import FakeServer, completion, text_chunks

import gramserve
from gramserve import _http
from gramserve.errors import error_from_response


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record retry waits instead of sleeping (sync and async)."""
    waits: list[float] = []

    async def async_sleep(d: float) -> None:
        waits.append(d)

    monkeypatch.setattr(_http, "sleep", waits.append)
    monkeypatch.setattr(_http, "async_sleep", async_sleep)
    return waits


@pytest.mark.parametrize("status,cls", [
    (400, gramserve.BadRequestError), (422, gramserve.BadRequestError), (401, gramserve.AuthenticationError),
    (403, gramserve.AuthenticationError), (404, gramserve.NotFoundError), (429, gramserve.RateLimitError),
    (500, gramserve.ServerError), (503, gramserve.OverloadedError), (418, gramserve.APIStatusError),
])
def test_status_maps_to_exception(status, cls, sleeps) -> None:
    server = FakeServer()
    for _ in range(3):
        server.push_error(status, "boom", type="some_type", param="messages", code="c1")
    with pytest.raises(cls) as info:
        server.client(model="m").chat("hi")
    err = info.value
    assert type(err) is cls  # the most specific class, not a parent
    fields = (err.status_code, err.message, err.type, err.param, err.code)
    assert fields == (status, "boom", "some_type", "messages", "c1")
    assert isinstance(err, gramserve.GramserveError)


@pytest.mark.parametrize("body,message", [
    (b'{"detail": "Not authenticated"}', "Not authenticated"),
    (b'{"detail": [{"loc": ["body"], "msg": "bad"}]}', '[{"loc": ["body"], "msg": "bad"}]'),
    (b"<html>proxy error</html>", "<html>proxy error</html>"),
    (b"", "HTTP 502"),
])
def test_other_error_bodies_are_mapped(body, message) -> None:
    err = error_from_response(502, body)
    assert isinstance(err, gramserve.ServerError) and err.message == message


@pytest.mark.parametrize("status,headers,expected", [
    (429, {"retry-after": "3"}, [3.0]),
    (503, {"retry-after-ms": "250"}, [0.25]),
    (429, {}, None),  # exponential backoff
    (503, {}, None),
])
def test_retryable_statuses_are_retried(status, headers, expected, sleeps) -> None:
    server = FakeServer()
    server.push_error(status, "busy", headers=headers)
    server.push(completion(content="ok"))
    assert server.client(model="m").chat("hi").message.content == "ok"
    assert len(server.requests) == 2
    if expected is not None:
        assert sleeps == expected
    else:
        assert len(sleeps) == 1 and 0.375 <= sleeps[0] <= 0.5  # base 0.5 s, jitter in [0.75, 1]


def test_backoff_doubles_and_max_retries_bounds_attempts(sleeps) -> None:
    server = FakeServer()
    for _ in range(4):
        server.push_error(503, "overloaded")
    with pytest.raises(gramserve.OverloadedError):
        server.client(model="m", max_retries=3).chat("hi")
    assert len(server.requests) == 4 and len(sleeps) == 3
    for k, wait in enumerate(sleeps):
        assert 0.5 * 2 ** k * 0.75 <= wait <= 0.5 * 2 ** k


def test_retry_after_as_http_date(sleeps) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server = FakeServer()
    server.push_error(429, "later", headers={"retry-after": when})
    server.push(completion(content="ok"))
    server.client(model="m").chat("hi")
    assert 27 <= sleeps[0] <= 30


def test_too_long_retry_after_is_not_waited_out(sleeps) -> None:
    server = FakeServer()
    server.push_error(429, "come back tomorrow", headers={"retry-after": "86400"})
    with pytest.raises(gramserve.RateLimitError) as info:
        server.client(model="m").chat("hi")
    assert sleeps == [] and info.value.headers["retry-after"] == "86400"


@pytest.mark.parametrize("status", [400, 401, 404, 500])
def test_other_errors_are_not_retried(status, sleeps) -> None:
    server = FakeServer()
    server.push_error(status, "no")
    with pytest.raises(gramserve.APIStatusError):
        server.client(model="m").chat("hi")
    assert len(server.requests) == 1 and sleeps == []


def test_connection_errors_are_retried_then_raised(sleeps) -> None:
    server = FakeServer()
    server.push_raise(httpx.ConnectError("refused"))
    server.push(completion(content="ok"))
    assert server.client(model="m").chat("hi").message.content == "ok"
    for _ in range(3):
        server.push_raise(httpx.ReadTimeout("slow"))
    with pytest.raises(gramserve.APITimeoutError):
        server.client(model="m").chat("hi")
    assert len(sleeps) == 3


def test_zero_retries_raises_at_once(sleeps) -> None:
    server = FakeServer()
    server.push_raise(httpx.ConnectError("refused"))
    with pytest.raises(gramserve.APIConnectionError):
        server.client(model="m", max_retries=0).chat("hi")
    assert sleeps == []


def test_stream_is_retried_before_it_starts(sleeps) -> None:
    server = FakeServer()
    server.push_error(503, "warming up", headers={"retry-after": "1"})
    server.push_stream(text_chunks("Hello world"))
    assert "".join(server.client(model="m").stream("hi")) == "Hello world"
    assert sleeps == [1.0]


def test_error_event_inside_a_stream_raises() -> None:
    server = FakeServer()
    server.push_stream([text_chunks("Hi")[0], {"error": {"message": "engine died", "type": "server_error"}}])
    with pytest.raises(gramserve.ServerError, match="engine died"):
        list(server.client(model="m").stream("hi"))


def test_async_client_maps_errors_and_retries(sleeps) -> None:
    server = FakeServer()
    server.push_error(429, "busy", headers={"retry-after": "2"})
    server.push(completion(content="ok"))
    server.push_error(401, "bad key", type="authentication_error")

    async def go():
        async with server.async_client(model="m") as client:
            assert (await client.chat("hi")).message.content == "ok"
            with pytest.raises(gramserve.AuthenticationError, match="bad key"):
                await client.chat("hi")

    asyncio.run(go())
    assert sleeps == [2.0] and len(server.requests) == 3


@pytest.mark.parametrize("body", [b"not json", b'{"choices": []}', b'{"object": "list"}'])
def test_malformed_success_body_is_a_typed_error(body) -> None:
    server = FakeServer()
    server.queue.append(httpx.Response(200, content=body))
    with pytest.raises(gramserve.APIResponseValidationError):
        server.client(model="m").chat("hi")
