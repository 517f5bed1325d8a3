"""Grammar IR: a byte/character-level context-free grammar, the meeting point of the front ends.

Front ends (JSON Schema, Lark, regex, choice) lower to a `Grammar`; the compiler turns a
`Grammar` into the token automaton. Nodes are immutable and hashable, so they can be
interned and used as cache keys.

    Grammar(rules={"start": Seq((Literal(b"{"), Ref("members"), Literal(b"}"))), ...}, start="start")

Semantics (all matching is over the UTF-8 bytes of the output):
- Literal(b"...")           exactly these bytes
- CharClass(ranges, negated) one Unicode scalar value (encoded as UTF-8, 1-4 bytes) inside the
                             inclusive code-point ranges (or outside them when negated)
- ByteClass(ranges)          one raw byte in the inclusive byte ranges (for binary-ish terminals)
- Seq(items)                 concatenation; Seq(()) is the empty string
- Alt(items)                 union; Alt(()) matches nothing
- Repeat(item, min, max)     item repeated min..max times (max=None: unbounded)
- Ref(name)                  the rule `name` (rules may be recursive)
- Automaton(start, finals, edges)  a finite automaton: states are ints, an edge (q, label, r)
                             reads one string of `label` (any IR node that reads at least
                             one byte, e.g. a CharClass) going from q to r; matches the label paths from start to a
                             final state (what intersections and complements build: automata.py);
                             every state must lie on a path from start to a final state
- Regex(pattern)             a regular expression (ECMA-262 / Python subset, as in JSON Schema
                             `pattern`), matched in full (implicitly anchored at both ends)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Literal:
    value: bytes


@dataclass(frozen=True)
class CharClass:
    ranges: tuple[tuple[int, int], ...]  # inclusive code-point ranges
    negated: bool = False


@dataclass(frozen=True)
class ByteClass:
    ranges: tuple[tuple[int, int], ...]  # inclusive byte ranges, 0..255


@dataclass(frozen=True)
class Seq:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class Alt:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class Repeat:
    item: "Node"
    min: int = 0
    max: int | None = None


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Automaton:
    start: int
    finals: frozenset
    edges: tuple  # ((from state, label node, to state), ...)


@dataclass(frozen=True)
class Regex:
    pattern: str


Node = Union[Literal, CharClass, ByteClass, Seq, Alt, Repeat, Ref, Regex, Automaton]

EMPTY = Seq(())
NOTHING = Alt(())


@dataclass(frozen=True)
class Grammar:
    rules: dict[str, Node] = field(hash=False)
    start: str = "start"
    # rules kept as pushdown frames (never inlined): small rules used in very many places, such
    # as JSON's bounded whitespace, whose inlined copies would multiply the automaton's size
    frames: frozenset = frozenset()

    def __post_init__(self) -> None:
        if self.start not in self.rules:
            raise ValueError(f"start rule {self.start!r} is not defined")
