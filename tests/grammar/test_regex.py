"""parse_regex vs Python's re.fullmatch, through the reference recognizer; and the error list."""
import re

import pytest
from hypothesis import given, settings, strategies as st

from grammar import GrammarError, ir, parse_regex
from grammar.reference import accepts
from grammar.regex import regex_anchors

PATTERNS = [
    r"abc", r"a|b|cd", r"a*", r"a+b?", r"(ab)*c", r"(?:x|yz){2,3}", r"a{3}", r"a{2,}", r"[a-c]+",
    r"[^a-c]", r"\d+(\.\d+)?", r"-?(0|[1-9]\d*)", r"\w+@\w+\.com", r"[\w.-]+", r"a.c", r"[.]",
    r"\x41\u00e9", r"[\u00e0-\u00ff]+", r"(?P<y>\d{4})-(?<m>\d\d)", r"a+?b*?", r"\t\n", r"\[\]",
    r"[\]a]", r"[a-]", r"x{", r"x{a}", r"^ab$", r"(a|)b", r"()", r"[^\d\s]", r"\S\W", r"(?i)ab",
    r"[+*?]", r"é+", r"[😀-😂]", r"(a(b(c)?)?)?", r"\.\*", r"[\-a]",
]
ALPHABET = "abcxyz019.-_@ \tAB[]é😀\n{}"


def full(pattern: str, s: str) -> bool:
    py = re.sub(r"\(\?<(?=[A-Za-z])", "(?P<", pattern)  # Python 3.11 lacks (?<name>...)
    return re.fullmatch(py, s, re.ASCII) is not None


@pytest.mark.parametrize("pattern", PATTERNS)
def test_table_strings(pattern):
    g = ir.Grammar({"start": parse_regex(pattern)})
    samples = ["", "a", "ab", "abc", "b", "cd", "aaa", "12.5", "-10", "0", "x{", "x{a}", "[]", "é",
               "Ab", "a\nc", "a.c", "2024-01", "\x41\u00e9", "😀😁", "ab@cd.com", "\t\n", "yzx"]
    for s in samples:
        assert accepts(g, s.encode()) == full(pattern, s), (pattern, s)


@settings(max_examples=150, deadline=None)
@given(pattern=st.sampled_from(PATTERNS), s=st.text(alphabet=ALPHABET, max_size=6))
def test_hypothesis_strings(pattern, s):
    g = ir.Grammar({"start": parse_regex(pattern)})
    assert accepts(g, s.encode()) == full(pattern, s)


@pytest.mark.parametrize("bad", [
    r"a(?=b)", r"(?!a)", r"(?<=a)b", r"(?<!a)b", r"(a)\1", r"\k<n>", r"(?P=n)", r"\bword",
    r"\B", r"\p{L}", r"a++", r"a^b", r"a$b", r"(ab", r"ab)", r"[ab", r"*a", r"a{3,2}", r"\q",
    r"(?x)a b", r"a{100000}", r"[b-a]",
])
def test_unsupported_raise(bad):
    with pytest.raises(GrammarError):
        parse_regex(bad)


def test_search_mode_and_anchors():
    g = ir.Grammar({"start": parse_regex(r"b\d", search=True)})
    assert accepts(g, b"xxb1yy") and not accepts(g, b"xxb")
    g = ir.Grammar({"start": parse_regex(r"^b\d", search=True)})
    assert accepts(g, b"b1yy") and not accepts(g, b"xb1")
    assert regex_anchors(r"^a$") == (True, True) and regex_anchors("a") == (False, False)


def test_flags():
    g = ir.Grammar({"start": parse_regex("a.b", flags="is")})
    assert accepts(g, b"A\nB") and not accepts(g, b"A\n")


@pytest.mark.parametrize("pattern", [r"^$|(^(?:\S+\s+){0,3}\S+$)", r"(^a|b$)", r"((^ab$))|x", r"[(|]x|(y)",
                                     r"^[0-9a-f]{2}-x$|^[0-9a-f]{3}$", r"a$|^b"])
def test_anchors_per_alternative_match_python_search(pattern):
    """Each top-level alternative (also inside a group spanning it) is anchored on its own."""
    import random

    node = parse_regex(pattern, search=True)
    rng = random.Random(pattern)
    for _ in range(200):
        s = "".join(rng.choice("ab x(|)y0f-") for _ in range(rng.randint(0, 6)))
        assert accepts(ir.Grammar({"start": node}), s.encode()) == (re.search(pattern, s) is not None), s


def test_scoped_flags_at_the_start_of_an_alternative():
    """Lark writes case-insensitive literal alternatives as (?:(?i:COUNT)|(?i:SUM))."""
    node = parse_regex("(?:(?i:COUNT)|(?i:SUM))")
    for text, ok in (("count", True), ("SuM", True), ("COUNTSUM", False), ("avg", False)):
        assert accepts(ir.Grammar({"start": node}), text.encode()) == ok, text
