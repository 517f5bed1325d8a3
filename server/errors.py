"""OpenAI's error shape and the mapping of every failure to an HTTP status.

    {"error": {"message": str, "type": str, "param": str | None, "code": str | int | None}}

Handlers raise `APIError`; engine and grammar errors are translated here, in one place:
    engine.InvalidParameterError(param)  -> 400 invalid_request_error, param = the field
    grammar.GrammarError(pointer | line) -> 400, the message names the JSON pointer / grammar line
    pydantic ValidationError             -> 400, param = the dotted location of the first error
"""
from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from engine.errors import InvalidParameterError


class APIError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, type: str | None = None,
                 code: str | int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.type = type or _default_type(status)
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _default_type(status: int) -> str:
    return {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
            429: "rate_limit_error", 503: "service_unavailable"}.get(status, "server_error")


def bad_request(message: str, param: str | None = None) -> APIError:
    return APIError(400, message, param=param, code="invalid_parameter" if param else None)


def from_invalid_parameter(err: InvalidParameterError, rename: dict[str, str] | None = None) -> APIError:
    """An engine validation error; `rename` maps engine field names to the request's spelling."""
    param = (rename or {}).get(err.param, err.param)
    return bad_request(f"{param}: {err.message}", param)


def from_grammar_error(err: Exception, param: str) -> APIError:
    """A schema / grammar that does not compile; the text already names the pointer or line."""
    where = []
    pointer = getattr(err, "pointer", None)
    line = getattr(err, "line", None)
    if pointer is not None:
        where.append(f"JSON pointer {pointer or '/'!s}")
    if line is not None:
        where.append(f"grammar line {line}")
    suffix = f" [{'; '.join(where)}]" if where else ""
    return bad_request(f"{param}: {err}{suffix}", param)


def from_validation_errors(errors: list[dict]) -> APIError:
    """The first pydantic error, with its location as the OpenAI `param`."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = _dotted(loc) or None
    if first.get("type") == "extra_forbidden":
        msg = f"unsupported parameter {param!r}: gramserve does not implement it"
    else:
        msg = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return bad_request(msg, param)


def _dotted(loc: list[str]) -> str:
    out = ""
    for part in loc:
        if part.isdigit():
            out += f"[{part}]"
        elif "[" in part or "-" in part:  # pydantic union tags such as "function-after[...]"
            continue
        else:
            out += ("." if out else "") + part
    return out
