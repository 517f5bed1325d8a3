"""The one exception type of the grammar library.

Front ends raise `GrammarError` for anything they cannot compile exactly: the server turns it
into an HTTP 400 whose message names where the problem is (`pointer` for JSON Schema, `line`
for Lark grammars).
"""
from __future__ import annotations


class GrammarError(Exception):
    """A grammar, schema or pattern that cannot be compiled.

    pointer: JSON pointer into the schema ("/properties/a/pattern"), or None.
    line:    1-based line of a Lark grammar, or None.
    """

    def __init__(self, message: str, *, pointer: str | None = None, line: int | None = None):
        where = []
        if pointer is not None:
            where.append(f"at {pointer or '/'}")
        if line is not None:
            where.append(f"line {line}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.message = message
        self.pointer = pointer
        self.line = line
