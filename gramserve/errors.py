"""Exceptions raised by the SDK.

    GramserveError                      base of everything the SDK raises
    ├── APIConnectionError              no HTTP response (refused, reset, DNS, ...); retried
    │   └── APITimeoutError             the request timed out; retried
    ├── APIResponseValidationError      a 2xx response that is not the expected OpenAI shape
    ├── APIStatusError                  the server answered 4xx/5xx; carries status, message, type, param, code
    │   ├── BadRequestError             400, 422: the request is invalid (bad schema, unknown field, ...)
    │   ├── AuthenticationError         401, 403
    │   ├── NotFoundError               404: unknown model or route
    │   ├── RateLimitError              429; retried, honouring Retry-After
    │   └── ServerError                 5xx
    │       └── OverloadedError         503; retried, honouring Retry-After
    ├── OutputValidationError           the model's output does not parse/validate; carries the raw text
    │   └── TruncatedOutputError        ... because generation stopped at max_tokens
    └── MaxTurnsExceededError           the tool loop hit max_turns; carries the partial RunResult

The server's error body is OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
FastAPI's {"detail": ...} and non-JSON bodies are mapped too, so no response is ever lost.
"""
from __future__ import annotations

import json
from typing import Any


class GramserveError(Exception):
    """Base class of every exception the SDK raises."""


class APIConnectionError(GramserveError):
    """The request never got an HTTP response."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIResponseValidationError(GramserveError):
    """The server answered 2xx with a body that is not the expected OpenAI shape."""

    def __init__(self, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.body = body


class APIStatusError(GramserveError):
    """The server answered with an error status; fields follow OpenAI's error object."""

    def __init__(self, status_code: int, message: str, *, type: str | None = None, param: str | None = None,
                 code: Any = None, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.body = body
        self.headers = headers or {}


class BadRequestError(APIStatusError):
    pass


class AuthenticationError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    pass


class ServerError(APIStatusError):
    pass


class OverloadedError(ServerError):
    pass


class OutputValidationError(GramserveError):
    """The model's output could not be parsed or validated; `raw` is the text it produced."""

    def __init__(self, message: str, raw: str, *, errors: Any = None) -> None:
        super().__init__(f"{message}\nraw output: {raw[:500]!r}")
        self.raw = raw
        self.errors = errors


class TruncatedOutputError(OutputValidationError):
    """The output stopped at max_tokens (finish_reason "length") before the JSON was complete."""


class MaxTurnsExceededError(GramserveError):
    """The tool loop ran max_turns model turns without a final answer; `result` holds what happened."""

    def __init__(self, max_turns: int, result: Any) -> None:
        super().__init__(f"no final answer after {max_turns} turns ({len(result.tool_calls)} tool calls)")
        self.max_turns = max_turns
        self.result = result


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError, 422: BadRequestError, 401: AuthenticationError, 403: AuthenticationError,
    404: NotFoundError, 429: RateLimitError, 503: OverloadedError,
}


def error_from_response(status_code: int, content: bytes, headers: dict[str, str] | None = None) -> APIStatusError:
    """Map an HTTP error response to the matching APIStatusError subclass."""
    cls = _BY_STATUS.get(status_code) or (ServerError if status_code >= 500 else APIStatusError)
    text = content.decode("utf-8", errors="replace")
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    fields: dict[str, Any] = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):  # OpenAI's shape
        err = body["error"]
        message = str(err.get("message") or text)
        fields = {k: err.get(k) for k in ("type", "param", "code")}
    elif isinstance(body, dict) and "detail" in body:  # FastAPI's default shape
        detail = body["detail"]
        message = detail if isinstance(detail, str) else json.dumps(detail)
    else:
        message = text.strip() or f"HTTP {status_code}"
    return cls(status_code, message, body=body, headers=headers, **fields)
