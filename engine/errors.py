"""Errors the engine raises at its boundary; server/ maps them to HTTP 400s."""
from __future__ import annotations


class InvalidParameterError(ValueError):
    """A request parameter is out of range or inconsistent.

    `param` names the offending field exactly as the user spelled it (e.g. "temperature",
    "structured_outputs"), so the server can report it in the OpenAI error's `param` slot.
    """

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message

    def __reduce__(self):  # keep the two-argument constructor picklable (thread/process pools)
        return (type(self), (self.param, self.message))
