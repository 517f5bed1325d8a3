"""Regular expressions (the ECMA-262 / Python subset used by JSON Schema `pattern` and Lark) -> IR.

`parse_regex(pattern)` returns an IR node matching the pattern IN FULL (as a whole string).

Supported: literals; escapes \\d \\D \\w \\W \\s \\S (ASCII \\d \\w, ECMA-262 \\s), \\n \\r \\t \\f \\v \\0,
\\xHH, \\uHHHH, \\u{H...}, \\cX, escaped punctuation; `.` (any character but \\n, or any with flag
"s"); classes [...] with ranges, negation and escapes (\\b inside a class is backspace); groups
(...), (?:...), (?P<n>...), (?<n>...), (?#comment); alternation; quantifiers ? * + {n} {n,} {n,m}
(lazy `?` suffixes are matched as greedy: the language is the same); `^` as the first and `$` as
the last token of the pattern or of a top-level alternative (`^a$|^b`: dropped in a full match,
each alternative anchored on its own with search=True); inline flags (?i) (?s) at the very start and
scoped (?i:...); flag "i" folds case.

Raises GrammarError for: lookaround (?= (?! (?<= (?<!, backreferences \\1.. \\k<n> (?P=n),
word boundaries \\b \\B, Unicode properties \\p \\P, possessive quantifiers and atomic groups,
anchors anywhere else, conditionals, unbalanced parentheses or brackets, a quantifier
with nothing to repeat, {n,m} with n > m or a bound above MAX_REPEAT, and verbose mode (?x).

With search=True the pattern is matched anywhere (JSON Schema `pattern` semantics): an
unanchored side gets a run of any characters.
"""
from __future__ import annotations

from . import ir
from .errors import GrammarError
from .utf8 import normalize_ranges

MAX_REPEAT = 10_000
DIGIT = ((0x30, 0x39),)
WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
SPACE = ((0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
         (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF))
ANY = ((0, 0x10FFFF),)
_SIMPLE = {"n": 0x0A, "r": 0x0D, "t": 0x09, "f": 0x0C, "v": 0x0B, "0": 0x00, "a": 0x07, "e": 0x1B}
_CLASSES = {"d": (DIGIT, False), "D": (DIGIT, True), "w": (WORD, False), "W": (WORD, True),
            "s": (SPACE, False), "S": (SPACE, True)}


def char_class(ranges, negated: bool = False) -> ir.CharClass:
    return ir.CharClass(tuple(normalize_ranges(ranges, negated)))


def fold_case(ranges) -> list[tuple[int, int]]:
    """Add the other-case forms of every letter in `ranges` (exact for ASCII and small ranges)."""
    out = list(ranges)
    for lo, hi in ranges:
        if hi - lo > 5000:
            continue  # huge ranges: fold only the ASCII letters they contain
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            for other in {ch.lower(), ch.upper()}:
                if len(other) == 1 and other != ch:
                    out.append((ord(other), ord(other)))
    return out


class _Parser:
    def __init__(self, pattern: str, flags: str):
        self.p, self.i, self.flags = pattern, 0, set(flags)
        self.anchored = [False, False]

    def error(self, msg: str) -> GrammarError:
        return GrammarError(f"regex {self.p!r}: {msg} at offset {self.i}")

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def parse(self) -> ir.Node:
        """The top-level alternatives, each with its own anchors (`^a$|^b$|c`): self.branches
        holds (node, anchored at start, anchored at end) per alternative."""
        self.leading_flags()
        self.branches = []
        while True:
            start = self.peek() == "^"
            self.i += start
            self._end = False
            node = self.sequence(top=True)
            self.branches.append((node, start, self._end))
            if self.peek() != "|":
                break
            self.i += 1
        if self.i < len(self.p):
            raise self.error("unbalanced ')'")
        self.anchored = [all(b[1] for b in self.branches), all(b[2] for b in self.branches)]
        nodes = [b[0] for b in self.branches]
        return nodes[0] if len(nodes) == 1 else ir.Alt(tuple(nodes))

    def leading_flags(self) -> None:
        while self.p.startswith("(?", self.i) and self.peek(2).isalpha() and self.peek(2) != "P":
            j = self.p.find(")", self.i)
            letters = self.p[self.i + 2: j] if j > 0 else ""
            if not letters.isalpha():  # a scoped group such as (?i:...): the atom parser's
                break
            if any(c not in "imsua" for c in letters):
                raise self.error(f"unsupported inline flags {letters!r}")
            self.flags |= set(letters)
            self.i = j + 1

    def alternation(self) -> ir.Node:
        alts = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            alts.append(self.sequence())
        return alts[0] if len(alts) == 1 else ir.Alt(tuple(alts))

    def sequence(self, top: bool = False) -> ir.Node:
        items: list[ir.Node] = []
        while self.i < len(self.p) and self.peek() not in "|)":
            if self.peek() == "$":
                self.i += 1
                if self.i == len(self.p) or (top and self.peek() == "|"):
                    self._end = True
                    break
                raise self.error("'$' is only supported at the end")
            if self.peek() == "^":
                raise self.error("'^' is only supported at the start")
            atom = self.atom()
            if atom is not None:
                items.append(self.quantified(atom))
        return _seq(items)

    def quantified(self, atom: ir.Node) -> ir.Node:
        while True:
            c = self.peek()
            if c in ("?", "*", "+"):
                self.i += 1
                lo, hi = {"?": (0, 1), "*": (0, None), "+": (1, None)}[c]
            elif c == "{" and (bounds := self.braces()) is not None:
                lo, hi = bounds
            else:
                return atom
            if self.peek() == "?":
                self.i += 1  # lazy: same language
            elif self.peek() == "+":
                raise self.error("possessive quantifiers are not supported")
            atom = ir.Repeat(atom, lo, hi)

    def braces(self) -> tuple[int, int | None] | None:
        j = self.p.find("}", self.i)
        body = self.p[self.i + 1: j] if j > 0 else ""
        parts = body.split(",")
        if not body or len(parts) > 2 or not parts[0].isdigit() or \
                (len(parts) == 2 and parts[1] and not parts[1].isdigit()):
            return None  # not a quantifier: a literal '{'
        lo = int(parts[0])
        hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1] else None)
        if hi is not None and hi < lo:
            raise self.error(f"bad repetition {{{body}}}")
        if max(lo, hi or 0) > MAX_REPEAT:
            raise self.error(f"repetition bound above {MAX_REPEAT}")
        self.i = j + 1
        return lo, hi

    def atom(self) -> ir.Node | None:
        c = self.peek()
        if c in "*+?":
            raise self.error("nothing to repeat")
        if c == "(":
            return self.group()
        if c == "[":
            return self.bracket()
        self.i += 1
        if c == ".":
            return char_class(ANY if "s" in self.flags else ((0x0A, 0x0A),), "s" not in self.flags)
        if c == "\\":
            return self.escape(in_class=False)
        return self.literal(ord(c))

    def literal(self, cp: int) -> ir.Node:
        if "i" in self.flags and chr(cp).lower() != chr(cp).upper():
            return char_class(fold_case([(cp, cp)]))
        return ir.Literal(chr(cp).encode())

    def group(self) -> ir.Node | None:
        self.i += 1
        if self.peek() == "?":
            kind = self.p[self.i + 1: self.i + 3]
            if kind.startswith(":"):
                self.i += 2
            elif kind.startswith("#"):
                j = self.p.find(")", self.i)
                if j < 0:
                    raise self.error("unterminated comment")
                self.i = j + 1
                return None
            elif (scoped := self._scoped_flags()) is not None:
                saved, self.flags = self.flags, self.flags | scoped
                node = self.alternation()
                self.flags = saved
                if self.peek() != ")":
                    raise self.error("missing ')'")
                self.i += 1
                return node
            elif kind in ("P<", "<") or (kind[:1] == "<" and kind not in ("<=", "<!")):
                j = self.p.find(">", self.i)
                if j < 0:
                    raise self.error("unterminated group name")
                self.i = j + 1
            else:
                raise self.error(f"unsupported group '(?{kind}' (lookaround, backreference,"
                                 " conditional or inline flag)")
        node = self.alternation()
        if self.peek() != ")":
            raise self.error("missing ')'")
        self.i += 1
        return node

    def _scoped_flags(self) -> set[str] | None:
        """At '?' of '(?i:...)': consume '?i:' and return the flags; None if not that form."""
        j = self.i + 1
        while j < len(self.p) and self.p[j] in "imsu":
            j += 1
        if j == self.i + 1 or j >= len(self.p) or self.p[j] != ":":
            return None
        letters = set(self.p[self.i + 1: j])
        self.i = j + 1
        return letters

    def escape(self, in_class: bool) -> ir.Node | tuple:
        """An escape after the backslash: a node, or in a class a (ranges, negated) pair."""
        c = self.peek()
        if not c:
            raise self.error("trailing backslash")
        self.i += 1
        if c in _CLASSES:
            ranges, neg = _CLASSES[c]
            return (ranges, neg) if in_class else char_class(ranges, neg)
        if c == "b" and in_class:
            cp = 0x08
        elif c in "bB":
            raise self.error(f"word boundary \\{c} is not supported")
        elif c in "pP":
            raise self.error(f"Unicode property \\{c} is not supported")
        elif c == "k" or (c.isdigit() and c != "0"):
            raise self.error("backreferences are not supported")
        elif c in _SIMPLE:
            cp = _SIMPLE[c]
        elif c == "x":
            cp = self.hex_digits(2)
        elif c == "u":
            cp = self.hex_digits(4)
        elif c == "U":
            cp = self.hex_digits(8)
        elif c == "c" and self.peek().isalpha():
            cp = ord(self.peek()) % 32
            self.i += 1
        elif c.isalnum():
            raise self.error(f"unknown escape \\{c}")
        else:
            cp = ord(c)
        return ([(cp, cp)], False) if in_class else self.literal(cp)

    def hex_digits(self, n: int) -> int:
        if n == 4 and self.peek() == "{":
            j = self.p.find("}", self.i)
            text, self.i = self.p[self.i + 1: j], j + 1
        else:
            text = self.p[self.i: self.i + n]
            self.i += n
        try:
            cp = int(text, 16)
        except ValueError:
            raise self.error(f"bad hex escape {text!r}") from None
        if not text or cp > 0x10FFFF:
            raise self.error(f"bad hex escape {text!r}")
        return cp

    def bracket(self) -> ir.Node:
        self.i += 1
        negated = self.peek() == "^"
        self.i += negated
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            c = self.peek()
            if not c:
                raise self.error("missing ']'")
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            lo = self.class_atom()
            if isinstance(lo, tuple):  # \d, \w ... inside the class
                ranges.extend(normalize_ranges(lo[0], lo[1]))
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                hi = self.class_atom()
                if isinstance(hi, tuple) or hi < lo:
                    raise self.error("bad character range")
                ranges.append((lo, hi))
            else:
                ranges.append((lo, lo))
        if "i" in self.flags:
            ranges = fold_case(ranges)
        return char_class(ranges, negated)

    def class_atom(self) -> int | tuple:
        c = self.peek()
        self.i += 1
        if c != "\\":
            return ord(c)
        got = self.escape(in_class=True)
        ranges, neg = got
        if neg or len(ranges) != 1 or ranges[0][0] != ranges[0][1]:
            return got
        return ranges[0][0]


def _seq(items: list[ir.Node]) -> ir.Node:
    """Concatenation, merging adjacent literals."""
    out: list[ir.Node] = []
    for it in items:
        if isinstance(it, ir.Literal) and out and isinstance(out[-1], ir.Literal):
            out[-1] = ir.Literal(out[-1].value + it.value)
        else:
            out.append(it)
    return out[0] if len(out) == 1 else ir.Seq(tuple(out))


def regex_anchors(pattern: str) -> tuple[bool, bool]:
    """(anchored at start, anchored at end) of a pattern."""
    parser = _Parser(pattern, "")
    parser.parse()
    return parser.anchored[0], parser.anchored[1]


def _structure(p: str):
    """(index, char) of the pattern text's structural characters: escapes and character classes
    are skipped whole, so every '(' ')' '|' yielded is a real group or alternation."""
    i = 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            j = i + 1 + (p[i + 1: i + 2] == "^")
            j += p[j: j + 1] == "]"
            while j < len(p) and p[j] != "]":
                j += 2 if p[j] == "\\" else 1
            i = j + 1
            continue
        yield i, c
        i += 1


def _split_top(p: str) -> list[str] | None:
    """The top-level alternatives of pattern text; None if the parentheses do not balance (the
    parser reports it)."""
    out, depth, start = [], 0, 0
    for i, c in _structure(p):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(p[start:i])
            start = i + 1
    out.append(p[start:])
    return out if depth == 0 else None


def _unwrap(p: str) -> str | None:
    """The body of a plain or (?:...) group that spans all of p, else None."""
    head = 3 if p.startswith("(?:") else 1 if p.startswith("(") and not p.startswith("(?") else 0
    if not head or not p.endswith(")"):
        return None
    depth = 0
    for _, c in _structure(p[:-1]):  # the first "(" must stay open until the last character
        depth += (c == "(") - (c == ")")
        if depth == 0:
            return None
    return p[head:-1] if depth == 1 else None


def _alternatives(pattern: str) -> list[str]:
    """Top-level alternatives, looking through groups that span a whole alternative, so that
    anchors inside them (`^$|(^a$)`) sit at an alternative's ends."""
    parts = _split_top(pattern)
    if parts is None:
        return [pattern]
    out = []
    for part in parts:
        body = _unwrap(part)
        out += [part] if body is None else _alternatives(body)
    return out


def parse_regex(pattern: str, *, flags: str = "", search: bool = False) -> ir.Node:
    """The IR node for `pattern`: a full match, or with search=True a match anywhere.

    flags: any of "i" (ignore case), "s" (dot matches newline), "m"/"u" (accepted, no effect).
    """
    if "x" in flags:
        raise GrammarError(f"regex {pattern!r}: verbose flag x is not supported")
    alts = [pattern] if pattern.startswith("(?") and not pattern.startswith("(?:") else _alternatives(pattern)
    branches = []
    for alt in alts:  # each alternative parsed alone: its anchors are its own
        parser = _Parser(alt, flags)
        try:
            parser.parse()
        except GrammarError as e:
            if len(alts) == 1:
                raise
            detail = e.message.removeprefix(f"regex {alt!r}: ")
            raise GrammarError(f"regex {pattern!r}: {detail} (in the alternative {alt!r})") from None
        branches += parser.branches
    if not search:
        nodes = [b[0] for b in branches]
        return nodes[0] if len(nodes) == 1 else ir.Alt(tuple(nodes))
    anything = ir.Repeat(char_class(ANY), 0, None)
    parts = [_seq(([] if start else [anything]) + [branch] + ([] if end else [anything]))
             for branch, start, end in branches]
    return parts[0] if len(parts) == 1 else ir.Alt(tuple(parts))
