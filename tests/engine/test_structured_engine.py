"""Structured outputs through the offline API on SmolLM2: constrained and free requests in one batch."""
from __future__ import annotations

import json
import re

import jsonschema
import pytest

from engine.config import EngineConfig
from engine.llm import LLM
from engine.llm_engine import LLMEngine
from engine.sampling_params import SamplingParams, StructuredOutputsParams

pytestmark = pytest.mark.slow

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
LARK = r"""
start: "SELECT " column (", " column)~0..3 " FROM " table
column: /[a-z]{1,8}/
table: "users" | "orders"
"""


@pytest.fixture(scope="module")
def llm(smollm2_loaded):
    return LLM.from_engine(LLMEngine(EngineConfig.from_kwargs(dtype="float32"), loaded=smollm2_loaded))


def _chat(llm, text):
    tok = llm.get_tokenizer()
    return {"prompt_token_ids": tok.encode(llm.render_chat([{"role": "user", "content": text}]), add_special_tokens=False)}


def test_mixed_batch_every_constraint_holds(llm):
    so = StructuredOutputsParams
    cases = [
        (SamplingParams(temperature=0, max_tokens=80, structured_outputs=so(json=PERSON)), "A person as JSON."),
        (SamplingParams(temperature=0.8, seed=3, max_tokens=80, structured_outputs=so(json=PERSON)), "A person as JSON."),
        (SamplingParams(temperature=0.8, seed=4, max_tokens=20, structured_outputs=so(regex=r"\d{3}-\d{4}")), "A phone number."),
        (SamplingParams(temperature=0.8, seed=5, max_tokens=10, structured_outputs=so(choice=["yes", "no", "maybe"])), "Is it raining?"),
        (SamplingParams(temperature=0.8, seed=6, max_tokens=60, structured_outputs=so(grammar=LARK)), "Write SQL."),  # bounded: <= 4 columns
        (SamplingParams(temperature=0.8, seed=7, max_tokens=60, structured_outputs=so(json_object=True)), "Any JSON object."),
        (SamplingParams(temperature=0, max_tokens=12), "Say hello."),
    ]
    outs = llm.generate([_chat(llm, q) for _, q in cases], [p for p, _ in cases], use_tqdm=False)
    texts = [o.outputs[0].text for o in outs]
    for o in outs[:6]:
        assert o.outputs[0].finish_reason == "stop", o.outputs[0]
    for t in texts[:2]:
        jsonschema.validate(json.loads(t), PERSON)
    assert re.fullmatch(r"\d{3}-\d{4}", texts[2])
    assert texts[3] in {"yes", "no", "maybe"}
    import lark

    lark.Lark(LARK, parser="earley").parse(texts[4])
    assert isinstance(json.loads(texts[5]), dict)
    assert outs[6].outputs[0].finish_reason in {"stop", "length"} and texts[6]


def test_a_bad_schema_fails_its_request_alone(llm):
    bad = StructuredOutputsParams(json={"type": "object", "properties": {"x": {"type": "string", "pattern": "(?<=a)b"}}})
    good = SamplingParams(temperature=0, max_tokens=8)
    outs = llm.generate(
        [_chat(llm, "hi"), _chat(llm, "hello")],
        [SamplingParams(temperature=0, max_tokens=8, structured_outputs=bad), good],
        use_tqdm=False,
    )
    failed = outs[0].outputs[0]
    assert failed.finish_reason == "error" and "GrammarError" in failed.error and "/properties/x" in failed.error
    assert outs[1].outputs[0].finish_reason in {"stop", "length"} and outs[1].outputs[0].text
    assert llm.engine.block_manager.num_free_blocks == llm.engine.block_manager.num_blocks


def test_close_before_limit_keeps_a_cut_short_output_valid(llm):
    schema = {"type": "object", "properties": {"story": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["story", "tags"], "additionalProperties": False}
    prompt = _chat(llm, "Write a very long story about a dragon, as JSON.")
    so = StructuredOutputsParams
    closed, cut = llm.generate(
        [prompt, prompt],
        [SamplingParams(temperature=0, max_tokens=28, structured_outputs=so(json=schema)),
         SamplingParams(temperature=0, max_tokens=28, structured_outputs=so(json=schema, close_before_limit=False))],
        use_tqdm=False,
    )
    c = closed.outputs[0]
    assert c.finish_reason == "stop" and len(c.token_ids) <= 28
    jsonschema.validate(json.loads(c.text), schema)
    u = cut.outputs[0]
    assert u.finish_reason == "length" and len(u.token_ids) == 28
    # within the closing margin from the first token, yet the model keeps writing what it wants
    # as long as a way out still fits: both start alike
    assert c.text[:16] == u.text[:16]
    with pytest.raises(ValueError):
        json.loads(u.text)
