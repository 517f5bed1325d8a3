"""Partial JSON: complete a prefix of a JSON document into the value it has committed to so far.

    parse_partial_json('{"name": "Ad')            -> {"name": "Ad"}
    parse_partial_json('{"a": [1, 2, {"b": tr')   -> {"a": [1, 2, {}]}
    parse_partial_json('{"a": 12')                -> {}        (the number may still grow)

Rules (each keeps the sequence of partial values monotone: a later prefix only adds to an earlier one):
- open objects and arrays are closed; a key whose value has not started is dropped;
- an unterminated string is kept as the prefix received (strings only ever grow at the end);
  an incomplete escape at its end is dropped;
- numbers and true/false/null are kept only once a delimiter proves them complete, because
  "12" may become "123" and "tr" is not yet a value.
The text must be a prefix of valid JSON; anything else raises PartialJSONError.
One pass, O(len(text)); the parser never backtracks.
"""
from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["PartialJSONError", "parse_partial_json"]

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NUMBER_CHARS = re.compile(r"[-+0-9.eE]+")
_NUMBER_PREFIX = re.compile(r"-?(?:(?:0|[1-9]\d*)(?:\.\d*|(?:\.\d+)?[eE][+-]?\d*)?)?")
_LITERALS = {"true": True, "false": False, "null": None}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_WS = " \t\n\r"


class PartialJSONError(ValueError):
    """The text is not a prefix of any JSON document."""


class _Incomplete(Exception):
    """Raised inside the parser when the input ends; carries the partial value (or _NOTHING)."""

    def __init__(self, value: Any) -> None:
        self.value = value


_NOTHING = object()


def parse_partial_json(text: str) -> Any:
    """The value committed by the JSON prefix `text`, or None when no value has started."""
    parser = _Parser(text)
    try:
        value = parser.value()
    except _Incomplete as inc:
        return None if inc.value is _NOTHING else inc.value
    parser.skip_ws()
    if parser.i != len(text):
        raise PartialJSONError(f"extra data at offset {parser.i}")
    return value


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def skip_ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in _WS:
            self.i += 1

    def peek(self) -> str:
        if self.i >= len(self.s):
            raise _Incomplete(_NOTHING)
        return self.s[self.i]

    def fail(self, what: str) -> PartialJSONError:
        return PartialJSONError(f"expected {what} at offset {self.i}, got {self.s[self.i:self.i + 10]!r}")

    def value(self) -> Any:
        self.skip_ws()
        c = self.peek()
        if c == "{":
            return self.obj()
        if c == "[":
            return self.arr()
        if c == '"':
            return self.string()
        if c in "-0123456789":
            return self.number()
        return self.literal()

    def obj(self) -> dict:
        out: dict[str, Any] = {}
        self.i += 1  # '{'
        first = True
        while True:
            try:
                self.skip_ws()
                if self.peek() == "}":
                    self.i += 1
                    return out
                if not first:
                    if self.peek() != ",":
                        raise self.fail("',' or '}'")
                    self.i += 1
                    self.skip_ws()
                if self.peek() != '"':
                    raise self.fail("a key")
                key = self.string()
                self.skip_ws()
                if self.peek() != ":":
                    raise self.fail("':'")
                self.i += 1
            except _Incomplete:  # the key or the colon is unfinished: the key is not committed
                raise _Incomplete(out) from None
            try:
                out[key] = self.value()
            except _Incomplete as inc:
                if inc.value is not _NOTHING:
                    out[key] = inc.value
                raise _Incomplete(out) from None
            first = False

    def arr(self) -> list:
        out: list[Any] = []
        self.i += 1  # '['
        first = True
        while True:
            try:
                self.skip_ws()
                if self.peek() == "]":
                    self.i += 1
                    return out
                if not first:
                    if self.peek() != ",":
                        raise self.fail("',' or ']'")
                    self.i += 1
                out.append(self.value())
            except _Incomplete as inc:
                if inc.value is not _NOTHING:
                    out.append(inc.value)
                raise _Incomplete(out) from None
            first = False

    def string(self) -> str:
        self.i += 1  # opening quote
        parts: list[str] = []
        s, n = self.s, len(self.s)
        while True:
            j = self.i
            while j < n and s[j] not in '"\\':
                j += 1
            parts.append(s[self.i:j])
            self.i = j
            if j >= n:
                raise _Incomplete("".join(parts))
            if s[j] == '"':
                self.i = j + 1
                return "".join(parts)
            try:
                parts.append(self.escape())
            except _Incomplete:
                raise _Incomplete("".join(parts)) from None

    def escape(self) -> str:
        """At a backslash: decode one escape; an escape cut off by the end of input is dropped."""
        s, i = self.s, self.i
        if i + 1 >= len(s):
            raise _Incomplete(_NOTHING)
        c = s[i + 1]
        if c in _ESCAPES:
            self.i = i + 2
            return _ESCAPES[c]
        if c != "u":
            raise self.fail("a valid escape")
        hexdigits = s[i + 2:i + 6]
        if not re.fullmatch(r"[0-9a-fA-F]*", hexdigits):
            raise self.fail("four hex digits")
        if len(hexdigits) < 4:
            raise _Incomplete(_NOTHING)
        self.i = i + 6
        code = int(hexdigits, 16)
        if 0xD800 <= code < 0xDC00:  # high surrogate: JSON spells non-BMP characters as a pair
            low = s[self.i:self.i + 6]
            if self.i + 6 > len(s) and "\\u".startswith(low[:2]):
                self.i = i
                raise _Incomplete(_NOTHING)
            if re.fullmatch(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}", low):
                self.i += 6
                return chr(0x10000 + ((code - 0xD800) << 10) + (int(low[2:], 16) - 0xDC00))
        return chr(code)

    def number(self) -> int | float:
        run = _NUMBER_CHARS.match(self.s, self.i)
        assert run is not None  # value() saw a '-' or a digit
        if run.end() >= len(self.s):  # touches the end of input: may still grow
            if not _NUMBER_PREFIX.fullmatch(run.group()):
                raise self.fail("a number")
            raise _Incomplete(_NOTHING)
        if not _NUMBER.fullmatch(run.group()):
            raise self.fail("a number")
        self.i = run.end()
        return json.loads(run.group())

    def literal(self) -> Any:
        rest = self.s[self.i:self.i + 5]
        for word, value in _LITERALS.items():
            if rest.startswith(word):
                self.i += len(word)
                return value
            if word.startswith(rest) and self.i + len(rest) == len(self.s):
                raise _Incomplete(_NOTHING)
        raise self.fail("a JSON value")
