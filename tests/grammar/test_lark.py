"""Lark front end: every grammar in shared/data/lark-grammars that lark loads either compiles or
fails with a clear GrammarError; sentences sampled under the mask parse with lark's own Earley.

The compile sweep covers all files (~20 s, most of it lark loading the big syncode grammars);
sampling uses a documented subset of small grammars whose sentences terminate quickly.
"""
import glob
import os
import random
from collections import deque

import pytest
from lark import Lark

from grammar import GrammarCompiler, GrammarError, Vocabulary, allocate_bitmask

from grammar_helpers import allowed_ids
from shared_data import data_path

ROOT = data_path("lark-grammars")
FILES = sorted(glob.glob(os.path.join(ROOT, "**", "*.lark"), recursive=True))
BYTE_VOCAB = Vocabulary([bytes([b]) for b in range(256)] + [b"select", b" from ", b"  ", b"<eos>"],
                        eos_token_ids=[259])
SQL = r"""
start: select_stmt
select_stmt: "SELECT"i columns "FROM"i NAME where? ";"?
columns: "*" | NAME ("," NAME)*
where: "WHERE"i cond (("AND"i | "OR"i) cond)*
cond: NAME OP value
OP: "=" | "<" | ">" | "<=" | ">=" | "!="
value: NUMBER | ESCAPED_STRING | NAME
%import common.CNAME -> NAME
%import common.NUMBER
%import common.ESCAPED_STRING
%import common.WS
%ignore WS
"""


def _lark_loads(text: str) -> bool:
    try:
        Lark(text, start="start")
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def compiler():
    return GrammarCompiler(BYTE_VOCAB)


@pytest.mark.skipif(not FILES, reason="shared lark grammars not present")
def test_every_loadable_grammar_compiles_or_fails_clearly(compiler):
    compiled = 0
    for path in FILES:
        with open(path) as f:
            text = f.read()
        try:
            g = compiler.compile_lark(text)
        except GrammarError as e:
            if _lark_loads(text):  # our own limitation: the message must say what and where
                assert e.line is not None or "terminal" in str(e) or "left recursion" in str(e), \
                    (path, str(e))
            continue
        compiled += 1
        assert g.matcher().config, path  # a live initial configuration
    assert compiled >= 15


def _complete(compiled, config, rng, limit=4000):
    """Shortest printable-ASCII byte string leading from config to a terminating one (BFS)."""
    seen, queue = {config}, deque([(config, b"")])
    printable = list(range(32, 127)) + [10]
    while queue and limit:
        limit -= 1
        cfg, path = queue.popleft()
        if compiled.can_end(cfg):
            return path
        rng.shuffle(printable)
        for b in printable:
            nxt = compiled.step_bytes(cfg, bytes([b]))
            if nxt and nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, path + bytes([b])))
    return None


def sample(compiled, seed: int, steps: int) -> bytes:
    rng = random.Random(seed)
    m = compiled.matcher()
    row = allocate_bitmask(1, BYTE_VOCAB.size)[0]
    out = b""
    for _ in range(steps):
        m.fill_bitmask(row)
        allowed = allowed_ids(row, BYTE_VOCAB.size)
        ascii_ok = [t for t in allowed if t in (10, 32) or 33 <= t < 127 or t >= 256]
        if 259 in allowed and rng.random() < 0.2:
            return out
        tok = rng.choice(sorted(ascii_ok or allowed))
        if tok == 259:
            return out
        assert m.accept_token(tok)
        out += BYTE_VOCAB.tokens[tok]
    tail = _complete(compiled, m.config, rng)
    assert tail is not None, out
    assert m.accept_bytes(tail) and m.can_terminate()
    return out + tail


SAMPLED = {
    "calc": "syncode/syncode/parsers/grammars/calc_grammar.lark",
    "arithmetic": "outlines/src/outlines/grammars/arithmetic.lark",
    "json": "outlines/src/outlines/grammars/json.lark",
    "csv": "lark-parser/examples/composition/csv.lark",
    "tiny": "syncode/syncode/parsers/grammars/tiny_grammar.lark",
}


@pytest.mark.parametrize("name", sorted(SAMPLED) + ["sql"])
def test_sampled_sentences_parse_with_lark(name, compiler):
    if name == "sql":
        text = SQL
    else:
        path = os.path.join(ROOT, SAMPLED[name])
        if not os.path.exists(path):
            pytest.skip("shared lark grammars not present")
        with open(path) as f:
            text = f.read()
    compiled = compiler.compile_lark(text)
    parser = Lark(text, start="start", parser="earley", lexer="dynamic_complete")
    for seed in range(3):
        sentence = sample(compiled, seed, steps=30).decode("utf-8")
        parser.parse(sentence)  # raises if lark disagrees


def test_errors_carry_the_line(compiler):
    with pytest.raises(GrammarError) as e:
        compiler.compile_lark('start: "a" FOO\nFOO: /a(?=b)/\n')
    assert e.value.line == 2
    with pytest.raises(GrammarError) as e:
        compiler.compile_lark('start: "a"\n  | | missing\n')
    assert "Lark" in str(e.value)
    with pytest.raises(GrammarError, match="postlexer"):
        compiler.compile_lark("%declare _INDENT\nstart: _INDENT \"a\"\n")


def test_ignore_and_case_insensitive(compiler):
    m = compiler.compile_lark(SQL).matcher()
    assert m.accept_bytes(b"select  a ,b FROM t where x >= 3 and y = \"q\\\"\";") and m.can_terminate()
    m = compiler.compile_lark(SQL).matcher()
    assert not m.accept_bytes(b"select ;")  # columns are required


def test_library_imports_reused_exactly(compiler):
    """An %import from lark's library is read once per process: a grammar that %extends what it
    imports changes its own copy only, and lark's errors come back on every import."""
    from grammar.lark_frontend import lark_to_grammar

    plain = "start: NUMBER\n%import common.NUMBER\n"
    extended = plain + '%extend NUMBER: "q"\n'
    before = lark_to_grammar(plain)
    for _ in range(2):
        m = compiler.compile_lark(extended).matcher()
        assert m.accept_bytes(b"q") and m.can_terminate()
        assert lark_to_grammar(plain) == before
    assert not compiler.compile_lark(plain).matcher().accept_bytes(b"q")
    for _ in range(2):
        with pytest.raises(GrammarError, match="Symbol already defined"):
            compiler.compile_lark("start: NAME\n%import python.NAME\n%import common.CNAME -> NAME\n")
