"""The tool-call grammar (IR -> Lark -> grammar library) accepts exactly the calls it should."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from grammar import GrammarCompiler, Vocabulary, ir
from server.chat import format_call
from server.tool_grammar import (
    TOOL_OPEN,
    free_text_without,
    ir_to_lark,
    tool_call_grammar,
)

VOCAB = Vocabulary([bytes([b]) for b in range(256)] + [b"<tool_call>", b"</s>"], eos_token_ids=[257])
COMPILER = GrammarCompiler(VOCAB)
WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                            "unit": {"enum": ["c", "f"]}},
           "required": ["city", "unit"], "additionalProperties": False}
ADD = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "number"}}, "required": ["a", "b"]}
TOOLS = [("get_weather", WEATHER), ("add", ADD)]


def _accepts(compiled, text: str) -> bool:
    m = compiled.matcher()
    return m.accept_bytes(text.encode()) and m.can_terminate()


def _compile(allow_text: bool, parallel: bool):
    return COMPILER.compile_lark(ir_to_lark(tool_call_grammar(TOOLS, allow_text=allow_text, parallel=parallel)))


W = format_call("get_weather", '{"city": "Paris \\"9\\"", "unit": "c"}')
A = format_call("add", '{"a": -3, "b": 2.5}')


def test_required_single_call():
    g = _compile(allow_text=False, parallel=False)
    assert _accepts(g, W) and _accepts(g, A)
    assert not _accepts(g, W + "\n" + A)  # parallel_tool_calls=false: one call
    assert not _accepts(g, "Sure. " + W)  # no free text
    assert not _accepts(g, format_call("nope", "{}"))
    assert not _accepts(g, format_call("get_weather", '{"city": "Paris", "unit": "k"}'))
    assert not _accepts(g, format_call("add", '{"a": 1.5, "b": 2}'))  # a is an integer
    assert not _accepts(g, W[:-3])


def test_parallel_and_auto():
    g = _compile(allow_text=False, parallel=True)
    assert _accepts(g, W + "\n" + A + "\n" + W)
    auto = _compile(allow_text=True, parallel=True)
    for text in ("", "Just text <b>x</b> <tool_ca <<", "Let me check. " + W, W + "\n" + A):
        assert _accepts(auto, text), text
    assert not _accepts(auto, "text " + TOOL_OPEN + "garbage")
    assert not _accepts(auto, W + " trailing text")


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="<tool_ca>x/", max_size=24))
def test_free_text_excludes_exactly_the_tag(text):
    g = COMPILER.compile_grammar(ir.Grammar({"start": free_text_without(TOOL_OPEN)}))
    assert _accepts(g, text) == (TOOL_OPEN not in text)


def test_lark_writer_escapes_every_character_class():
    lit = 'a/b\\c"d\n\u00e9\U0001F600[]^-(x)'
    g = ir.Grammar({"start": ir.Seq((ir.Literal(lit.encode()), ir.Repeat(ir.CharClass(((0x5B, 0x5E),), True), 1, 3)))})
    compiled = COMPILER.compile_lark(ir_to_lark(g))
    assert _accepts(compiled, lit + "zz") and _accepts(compiled, lit + "\u00e9")
    assert not _accepts(compiled, lit + "]") and not _accepts(compiled, lit) and not _accepts(compiled, lit + "zzzz")
