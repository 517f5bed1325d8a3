"""Tool calling as a grammar: tools + tool_choice -> one Lark grammar the engine compiles.

A reply is free text and/or calls, each call exactly

    <tool_call>{"name": "NAME", "arguments": ARGS}</tool_call>

where NAME is one of the allowed tools and ARGS matches that tool's JSON Schema (lowered by
grammar.json_schema). Calls are separated by "\\n" when parallel_tool_calls allows several.

    required / named:  start = calls                       (no free text)
    auto:              start = text (calls)?                (text never contains "<tool_call>",
                                                             so the call is constrained from its tag on)

The engine takes a constraint as StructuredOutputsParams (json / regex / choice / lark), so the
composed IR grammar is written out as Lark text (`ir_to_lark`); the grammar library reads it
back into the same IR, and its compile cache keys on that text.
"""
from __future__ import annotations

import json

from grammar import ir
from grammar.json_schema import json_schema_to_grammar

TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"
CALL_SEPARATOR = "\n"
MAX_UNROLL = 256  # bounded repeats are unrolled into a chain of rules at most this long


def call_head(name: str) -> str:
    """The fixed text between the opening tag and the arguments (name first, so it streams)."""
    return '{"name": ' + json.dumps(name) + ', "arguments": '


def free_text_without(tag: str) -> ir.Node:
    """Any text in which `tag` never occurs (tag[0] must not occur again inside tag).

    Reading left to right, each '<' opens an attempt '<' + p, p a proper prefix of tag[1:]; an
    attempt ends broken by the next character c when c is neither tag[1+len(p)] nor '<' (a '<'
    opens a new attempt instead). Attempts still open at the end are fine: the tag never completed.
    """
    lt, rest = tag[0], tag[1:]
    assert lt not in rest
    prefixes = [rest[:j] for j in range(len(rest))]  # proper prefixes of rest, "" included
    attempt = ir.Seq((ir.Literal(lt.encode()), ir.Alt(tuple(ir.Literal(p.encode()) for p in prefixes))))
    broken = ir.Alt(tuple(
        ir.Seq((ir.Literal((lt + p).encode()), _not_chars(lt + rest[len(p)]))) for p in prefixes
    ))
    chunk = ir.Alt((_not_chars(lt), ir.Seq((ir.Repeat(attempt, 0, None), broken))))
    return ir.Seq((ir.Repeat(chunk, 0, None), ir.Repeat(attempt, 0, None)))


def _not_chars(chars: str) -> ir.CharClass:
    return ir.CharClass(tuple((ord(c), ord(c)) for c in sorted(set(chars))), negated=True)


def _rename(node: ir.Node, prefix: str) -> ir.Node:
    if isinstance(node, ir.Ref):
        return ir.Ref(prefix + node.name)
    if isinstance(node, (ir.Seq, ir.Alt)):
        return type(node)(tuple(_rename(n, prefix) for n in node.items))
    if isinstance(node, ir.Repeat):
        return ir.Repeat(_rename(node.item, prefix), node.min, node.max)
    return node


def tool_call_grammar(tools: list[tuple[str, dict]], *, allow_text: bool, parallel: bool) -> ir.Grammar:
    """The IR grammar of a reply calling `tools` ((name, parameters schema) pairs).

    Raises grammar.GrammarError (with the JSON pointer inside the schema) for a schema that
    cannot be enforced exactly; the caller names the tool in the 400.
    """
    rules: dict[str, ir.Node] = {}
    alts = []
    for i, (name, schema) in enumerate(tools):
        sub, _warnings = json_schema_to_grammar(schema, strict=True)
        prefix = f"tool{i}_"
        rules.update({prefix + k: _rename(v, prefix) for k, v in sub.rules.items()})
        alts.append(ir.Seq((ir.Literal(call_head(name).encode()), ir.Ref(prefix + sub.start), ir.Literal(b"}"))))
    rules["call"] = ir.Seq((ir.Literal(TOOL_OPEN.encode()), ir.Alt(tuple(alts)), ir.Literal(TOOL_CLOSE.encode())))
    calls: ir.Node = ir.Ref("call")
    if parallel:
        more = ir.Repeat(ir.Seq((ir.Literal(CALL_SEPARATOR.encode()), ir.Ref("call"))), 0, None)
        calls = ir.Seq((ir.Ref("call"), more))
    if allow_text:
        rules["text"] = free_text_without(TOOL_OPEN)
        rules["start"] = ir.Seq((ir.Ref("text"), ir.Alt((ir.EMPTY, calls))))
    else:
        rules["start"] = calls
    return ir.Grammar(rules, start="start")


# -- IR -> Lark text ------------------------------------------------------------------------------
class _LarkWriter:
    """Writes an IR grammar as Lark rules; rule names become r0, r1, ... (Lark wants [a-z_0-9])."""

    def __init__(self, grammar: ir.Grammar) -> None:
        self.names = {name: f"r{i}" for i, name in enumerate(grammar.rules)}
        self.lines: list[str] = []
        self.extra = 0

    def fresh(self, body: str) -> str:
        name = f"x{self.extra}"
        self.extra += 1
        self.lines.append(f"{name}: {body}")
        return name

    def expr(self, node: ir.Node) -> str:
        if isinstance(node, ir.Literal):
            return _lark_regex(_escape_regex(node.value.decode("utf-8"))) if node.value else self.empty()
        if isinstance(node, ir.CharClass):
            return _lark_regex(_class_regex(node))
        if isinstance(node, ir.Ref):
            return self.names[node.name]
        if isinstance(node, ir.Seq):
            return "(" + " ".join(self.expr(n) for n in node.items) + ")" if node.items else self.empty()
        if isinstance(node, ir.Alt):
            if not node.items:
                return self.nothing()
            return "(" + " | ".join(self.expr(n) for n in node.items) + ")"
        if isinstance(node, ir.Repeat):
            return self.repeat(node)
        if isinstance(node, ir.Regex):
            return _lark_regex(node.pattern.replace("/", "\\/"))
        raise TypeError(f"cannot write {type(node).__name__} as Lark")  # ByteClass: not produced by JSON

    def empty(self) -> str:
        return self.fresh("")

    def nothing(self) -> str:
        name = f"x{self.extra}"
        self.extra += 1
        self.lines.append(f"{name}: {name} \"\\x00\"")  # non-productive: matches nothing
        return name

    def repeat(self, node: ir.Repeat) -> str:
        item = self.expr(node.item)
        lo, hi = node.min, node.max
        if hi is None:
            head = " ".join([item] * lo)
            return f"({head} ({item})*)" if lo else f"({item})*"
        if hi - lo > MAX_UNROLL or lo > MAX_UNROLL:
            raise ValueError(f"repeat bound {hi} is too large to write as Lark")
        tail = self.empty()
        for _ in range(hi - lo):  # tail_k = (item tail_{k-1})?   -- at most hi - lo more items
            tail = self.fresh(f"({item} {tail})?")
        return "(" + " ".join([item] * lo + [tail]) + ")"

    def write(self, grammar: ir.Grammar) -> str:
        for name, node in grammar.rules.items():
            self.lines.append(f"{self.names[name]}: {self.expr(node)}")
        self.lines.append(f"start: {self.names[grammar.start]}")
        return "\n".join(self.lines) + "\n"


def ir_to_lark(grammar: ir.Grammar) -> str:
    return _LarkWriter(grammar).write(grammar)


def _escape_regex(text: str) -> str:
    return "".join(_escape_char(ord(c), in_class=False) for c in text)


def _escape_char(cp: int, in_class: bool = False) -> str:
    """One code point inside a regex (in or out of a class). Lark evaluates \\uHHHH escapes
    before the regex reader sees them and keeps other backslash escapes, so: ASCII letters,
    digits and space as themselves, ASCII punctuation backslash-escaped, anything else as
    \\uHHHH (a raw, never special character once Lark has evaluated it)."""
    c = chr(cp)
    if (c.isalnum() and cp < 128) or c == " ":
        return c
    if 33 <= cp <= 126:
        return "\\" + c
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return c  # astral: the character itself


def _class_regex(node: ir.CharClass) -> str:
    parts = []
    for lo, hi in node.ranges:
        a = _escape_char(lo, in_class=True)
        parts.append(a if lo == hi else f"{a}-{_escape_char(hi, in_class=True)}")
    return "[" + ("^" if node.negated else "") + "".join(parts) + "]"


def _lark_regex(pattern: str) -> str:
    return "/" + pattern + "/"  # "/" is always escaped by _escape_char
