"""Incremental tool-call parser: model text -> content deltas and OpenAI tool-call deltas.

    text  <tool_call>{"name": "f", "arguments": {...}}</tool_call>\\n<tool_call>...</tool_call>
    ────  ───────────────────────────────────────────────────────────────────────────────────
    content      call 0: CallStart(name) when the head is read, then ArgsDelta fragments
                 carrying the raw text of the arguments value, as it streams

The non-streamed reply runs the SAME parser over the whole text at once, so streamed deltas
reassemble to exactly the non-streamed result: arguments are the model's raw JSON text of the
value (never re-serialized). A call is complete only once its closing tag is read; a reply cut
short (max_tokens) leaves the last call incomplete, and the server reports finish_reason
"length", never "tool_calls".
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from server.tool_grammar import TOOL_CLOSE, TOOL_OPEN

_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*')
_TAIL = re.compile(r"\s*\}\s*" + re.escape(TOOL_CLOSE))


@dataclass
class ParsedCall:
    id: str
    name: str
    arguments: str = ""
    complete: bool = False


@dataclass
class Delta:
    """What one feed() produced: content text, new calls (index, call) and argument fragments."""

    content: str = ""
    started: list[tuple[int, ParsedCall]] = field(default_factory=list)
    arguments: list[tuple[int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.content or self.started or self.arguments)


class _JsonValueScanner:
    """Finds where one JSON value ends, a character at a time (strings, escapes, nesting)."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escape = False
        self.started = False
        self.done = False

    def feed(self, c: str) -> bool:
        """Consume c (part of the value); True when c is the value's last character."""
        if self.in_string:
            if self.escape:
                self.escape = False
            elif c == "\\":
                self.escape = True
            elif c == '"':
                self.in_string = False
                self.done = self.depth == 0
            return self.done
        self.started = True
        if c == '"':
            self.in_string = True
        elif c in "{[":
            self.depth += 1
        elif c in "}]":
            self.depth -= 1
            self.done = self.depth == 0
        return self.done

    def ends_before(self, c: str) -> bool:
        """A bare scalar (number, true, ...) at depth 0 ends before a delimiter."""
        return self.started and self.depth == 0 and not self.in_string and c in ",}] \t\r\n"


class ToolCallParser:
    def __init__(self) -> None:
        self.calls: list[ParsedCall] = []
        self.content = ""
        self._state = "text"  # text -> head -> args -> tail -> text ...
        self._buf = ""  # text not yet classified (a possible tag prefix, an unread head/tail)
        self._scan: _JsonValueScanner | None = None

    def feed(self, text: str) -> Delta:
        out = Delta()
        self._buf += text
        while self._step(out):
            pass
        self.content += out.content
        return out

    def finish(self) -> Delta:
        """End of the reply: a dangling tag prefix in text mode is content after all."""
        out = Delta()
        if self._state == "text" and self._buf and not (self.calls and self._buf.isspace()):
            out.content = self._buf
        if self._state == "text":
            self._buf = ""
        self.content += out.content
        return out

    @property
    def complete_calls(self) -> list[ParsedCall]:
        return [c for c in self.calls if c.complete]

    def _step(self, out: Delta) -> bool:
        """Advance the state machine once; False when it needs more text."""
        return getattr(self, f"_{self._state}")(out)

    def _text(self, out: Delta) -> bool:
        # After a call, whitespace (the "\n" between calls) is held back until something else
        # follows: only then is it content. Both paths (streamed or not) run this same rule.
        i = self._buf.find(TOOL_OPEN)
        if i >= 0:
            before = self._buf[:i]
            out.content += "" if self.calls and before.isspace() else before
            self._buf, self._state = self._buf[i + len(TOOL_OPEN):], "head"
            return True
        emit = self._buf[: len(self._buf) - _partial_suffix(self._buf, TOOL_OPEN)]
        if self.calls and (emit.isspace() or not emit):
            return False
        out.content += emit
        self._buf = self._buf[len(emit):]
        return False

    def _head(self, out: Delta) -> bool:
        m = _HEAD.match(self._buf)
        if m is None:
            if TOOL_CLOSE in self._buf:  # not a call after all: give the text back as content
                out.content += TOOL_OPEN + self._buf
                self._buf, self._state = "", "text"
                return True
            return False
        call = ParsedCall(id=f"call_{uuid.uuid4().hex[:24]}", name=_unescape(m.group(1)))
        self.calls.append(call)
        out.started.append((len(self.calls) - 1, call))
        self._buf, self._state, self._scan = self._buf[m.end():], "args", _JsonValueScanner()
        return True

    def _args(self, out: Delta) -> bool:
        call, scan = self.calls[-1], self._scan
        n = 0
        for c in self._buf:
            if not scan.started and c.isspace():  # whitespace before the value: not arguments
                n += 1
                continue
            if scan.ends_before(c):
                break
            n += 1
            if scan.feed(c):
                break
        frag, self._buf = self._buf[:n], self._buf[n:]
        frag = frag if scan.started else ""
        if not call.arguments:
            frag = frag.lstrip()
        if frag:
            call.arguments += frag
            out.arguments.append((len(self.calls) - 1, frag))
        if scan.done or (self._buf and scan.ends_before(self._buf[0])):
            self._state = "tail"
            return True
        return False

    def _tail(self, out: Delta) -> bool:
        m = _TAIL.match(self._buf)
        if m is None:
            return False
        self.calls[-1].complete = True
        self._buf, self._state = self._buf[m.end():], "text"
        return True


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of text that is a proper prefix of tag."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


def _unescape(s: str) -> str:
    import json

    try:
        return json.loads(f'"{s}"')
    except ValueError:
        return s


def parse_all(text: str) -> ToolCallParser:
    """The non-streamed path: the same parser over the whole reply."""
    p = ToolCallParser()
    p.feed(text)
    p.finish()
    return p
