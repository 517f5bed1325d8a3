"""Matcher behaviour: accept/rollback/reset/termination, EOS and special tokens, mask format."""
import time

import numpy as np
import pytest

from grammar import GrammarCompiler, GrammarError, Vocabulary, allocate_bitmask, ir

from grammar_helpers import allowed_ids

TOKENS = [b"a", b"b", b"ab", b"c", b"<eos>", b"<|im_start|>", b"", b"abc"]
EOS, SPECIAL, EMPTY = 4, 5, 6


@pytest.fixture()
def compiler():
    return GrammarCompiler(Vocabulary(TOKENS, eos_token_ids=[EOS], special_token_ids=[SPECIAL]))


def test_bitmask_contract():
    bits = allocate_bitmask(3, 70)
    assert bits.shape == (3, 3) and bits.dtype == np.int32 and not bits.any()
    vocab = Vocabulary([bytes([65 + i % 26]) * (1 + i // 26) for i in range(40)], eos_token_ids=[39])
    m = GrammarCompiler(vocab).compile_regex("A{2}").matcher()  # only token 26 "AA"
    row = allocate_bitmask(1, vocab.size)[0]
    m.fill_bitmask(row)
    assert allowed_ids(row, vocab.size) == {0, 26}  # "A" then "A", or "AA" at once
    assert row.view(np.uint32)[0] == (1 | (1 << 26)) and row[1] == 0  # little-endian bits
    wide = np.full(4, -1, dtype=np.int32)  # logits wider than the vocabulary: padding masked
    m.fill_bitmask(wide)
    assert wide[2] == 0 and wide[3] == 0


def test_accept_rollback_reset(compiler):
    m = compiler.compile_regex("(ab)+c").matcher()
    assert not m.accept_token(3) and m.config == m.grammar.initial  # rejected: no state change
    assert m.accept_token(0) and m.accept_token(1) and m.accept_token(2)
    assert not m.can_terminate() and not m.accept_token(EOS)
    assert m.accept_token(3) and m.can_terminate()
    row = allocate_bitmask(1, len(TOKENS))[0]
    m.fill_bitmask(row)
    assert allowed_ids(row, len(TOKENS)) == {EOS}
    assert m.accept_token(EOS) and m.is_terminated() and not m.can_terminate()
    m.fill_bitmask(row)
    assert not row.any() and not m.accept_token(0)
    m.rollback(2)  # undo EOS and "c"
    assert not m.is_terminated() and not m.can_terminate()
    m.fill_bitmask(row)
    assert allowed_ids(row, len(TOKENS)) == {0, 2, 3, 7}
    with pytest.raises(ValueError):
        m.rollback(99)
    m.reset()
    assert m.config == m.grammar.initial and not m.is_terminated()


def test_special_and_empty_tokens_never_allowed(compiler):
    m = compiler.compile_regex("[a-c<>|_]*").matcher()
    row = allocate_bitmask(1, len(TOKENS))[0]
    m.fill_bitmask(row)
    got = allowed_ids(row, len(TOKENS))
    assert SPECIAL not in got and EMPTY not in got and EOS in got
    assert not m.accept_token(SPECIAL) and not m.accept_token(EMPTY)
    assert not m.accept_token(-1) and not m.accept_token(len(TOKENS))


def test_bounded_rollback(compiler):
    m = compiler.compile_regex("a*").matcher(max_rollback_tokens=2)
    for _ in range(5):
        assert m.accept_token(0)
    m.rollback(2)
    with pytest.raises(ValueError):
        m.rollback(1)


def test_choice_and_any_tokenization(compiler):
    g = compiler.compile_choice(["abc", "ab"])
    for path in ([7], [2, 3], [0, 1, 3], [2]):
        m = g.matcher()
        assert all(m.accept_token(t) for t in path) and m.can_terminate()


def test_compile_cache_and_errors(compiler):
    assert compiler.compile_regex("a+") is compiler.compile_regex("a+")
    assert compiler.compile_json_object() is compiler.compile_json_object()
    for bad in ("a(?=b)", "(a"):
        with pytest.raises(GrammarError):
            compiler.compile_regex(bad)
    with pytest.raises(GrammarError):
        compiler.compile_choice([])
    with pytest.raises(GrammarError, match="undefined"):
        compiler.compile_grammar(ir.Grammar({"start": ir.Ref("nope")}))
    with pytest.raises(GrammarError, match="nothing"):
        compiler.compile_grammar(ir.Grammar({"start": ir.Seq((ir.Literal(b"a"), ir.Ref("start")))}))
    with pytest.raises(GrammarError, match="left recursion"):
        compiler.compile_grammar(ir.Grammar({
            "start": ir.Alt((ir.Seq((ir.Ref("e"), ir.Ref("start"), ir.Literal(b"z"))), ir.Literal(b"y"))),
            "e": ir.Alt((ir.EMPTY, ir.Seq((ir.Literal(b"("), ir.Ref("e"), ir.Literal(b")")))))}))
    # indirect left recursion that inlining turns direct is rewritten, not rejected
    g = compiler.compile_grammar(ir.Grammar({
        "start": ir.Alt((ir.Seq((ir.Ref("b"), ir.Literal(b"c"))), ir.Literal(b"a"))),
        "b": ir.Alt((ir.Seq((ir.Ref("start"), ir.Literal(b"b"))), ir.Ref("start")))}))
    assert g.matcher().accept_bytes(b"abcbc")


def test_json_object_mode_is_bounded():
    vocab = Vocabulary([b" ", b"{", b"}", b'"', b"a", b":", b"1", b"<eos>"], eos_token_ids=[7])
    m = GrammarCompiler(vocab).compile_json_object().matcher()
    assert m.accept_token(1)
    n = 0
    while m.accept_token(0):  # whitespace cannot run forever
        n += 1
    assert n == 32
    m = GrammarCompiler(vocab).compile_json_object().matcher()
    assert m.accept_bytes(b"{") and m.accept_bytes(b'"a": ') and m.accept_bytes(b"1" * 20)
    assert not m.accept_token(6)  # numbers are bounded in digits
    assert m.accept_bytes(b"}") and m.can_terminate()


def test_thread_safety_of_shared_grammar():
    import threading
    chars = [bytes([c]) for c in b"{}[]\":,0123 abc"]
    vocab = Vocabulary(chars + [b"<eos>"], eos_token_ids=[len(chars)])
    g = GrammarCompiler(vocab).compile_json_object()
    text = b'{"a": [1, {"b": "c"}, [[2]]], "c": 30}'
    errors = []

    def run():
        try:
            m = g.matcher()
            row = allocate_bitmask(1, vocab.size)[0]
            for b in text:
                m.fill_bitmask(row)
                t = vocab.tokens.index(bytes([b]))
                assert (row[t >> 5] >> (t & 31)) & 1 and m.accept_token(t)
            assert m.can_terminate()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_warmup_precomputes_without_changing_masks(compiler):
    cold = compiler.compile_grammar(ir.Grammar({"start": ir.Regex("(ab|c)+")}))
    warm = compiler.compile_grammar(ir.Grammar({"start": ir.Regex("(ab|c)+")}))
    assert warm.warmup(time_budget_s=5.0) >= 2
    cached = warm.levels[0].num_masks()
    t0 = time.perf_counter()
    assert warm.warmup(time_budget_s=5.0) == cached  # once per grammar: a second call is free
    assert time.perf_counter() - t0 < 0.5
    row_a, row_b = allocate_bitmask(2, len(TOKENS))
    ma, mb = cold.matcher(), warm.matcher()
    for tok in (0, 1, 3, 2, 7):
        ma.fill_bitmask(row_a)
        mb.fill_bitmask(row_b)
        assert (row_a == row_b).all()
        assert ma.accept_token(tok) and mb.accept_token(tok)
    assert warm.levels[0].num_masks() == cached  # the walk never left the explored states


def test_a_grammar_too_deep_to_compile_is_a_grammar_error(compiler):
    """Nesting past Python's recursion limit is a clear GrammarError for that grammar alone."""
    node = ir.Literal(b"x")
    for _ in range(5000):
        node = ir.Seq((ir.Literal(b"["), node, ir.Literal(b"]")))
    with pytest.raises(GrammarError, match="nests too deeply"):
        compiler.compile_grammar(ir.Grammar({"start": node}))
    assert compiler.compile_grammar(ir.Grammar({"start": ir.Literal(b"ok")})).matcher().accept_bytes(b"ok")


def test_nested_arrays_compile_in_linear_size(compiler):
    """An array's item is spelled twice (the first, then one after each comma): a big item is a
    rule of its own, so arrays nested 40 deep make an automaton of a few thousand states (spelled
    inline, the item doubled at every level: 24 levels took 57 s and 12 GB), and the language is
    the same: exactly the nested arrays, any length at every level."""
    schema = {"type": "integer"}
    for _ in range(40):
        schema = {"type": "array", "items": schema}
    g = compiler.compile_json_schema(schema)
    assert len(g.nfa_arrays[0]) < 20_000
    for text, ok in ((b"[" * 40 + b"1" + b"]" * 40, True),
                     (b"[" * 39 + b"[1,2],[]" + b"]" * 39, True),
                     (b"[" * 40 + b"1" + b"]" * 39, False),  # cannot end: one bracket open
                     (b"[" * 41, False)):
        m = g.matcher()
        assert (m.accept_bytes(text) and m.can_terminate()) == ok, text
