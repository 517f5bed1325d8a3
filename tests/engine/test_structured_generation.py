"""Constrained generation with SmolLM2 through the offline API, on public schemas.

20 JSONSchemaBench schemas (a fixed shuffle over every subset, those that compile in strict
mode), each asked for 5 completions at temperature 0.7 (n=5: the siblings share the prompt's KV
blocks) and one greedy; plus regex, choice and Lark requests and unconstrained ones, all in one
batch.  Every constrained output must end by its grammar (finish_reason "stop") and validate.
"""
from __future__ import annotations

import json
import os
import random
import re

import jsonschema
import lark
import pytest

from engine.config import EngineConfig
from engine.llm import LLM
from engine.llm_engine import LLMEngine
from engine.sampling_params import SamplingParams, StructuredOutputsParams
from grammar import GrammarCompiler, GrammarError, Vocabulary
from shared_data import data_path

pytestmark = pytest.mark.slow

SCHEMAS = data_path("jsonschemabench", "schemas")
NUM_SCHEMAS = 20
MAX_SCHEMA_CHARS = 900  # keeps the 120 prompts' prefill inside the test budget
MAX_TOKENS = 192  # outputs that loop are closed by close_before_limit (on by default)
LARK_ARITH = r"""
start: expr
?expr: term ((" + " | " - ") term)~0..3
?term: NUMBER | "(" expr ")"
NUMBER: /[1-9][0-9]{0,3}/
"""
REGEX_DATE = r"(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"


def pick_schemas() -> list[tuple[str, dict]]:
    rows = []
    for fname in sorted(os.listdir(SCHEMAS)):
        with open(os.path.join(SCHEMAS, fname)) as f:
            rows += [(f"{fname[:-6]}/{r['id']}", r["schema"])
                     for r in map(json.loads, f) if len(json.dumps(r["schema"])) < MAX_SCHEMA_CHARS]
    random.Random(1).shuffle(rows)
    compiler = GrammarCompiler(Vocabulary([bytes([i]) for i in range(256)]))
    out = []
    for name, schema in rows:
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
            compiler.compile_json_schema(schema)
        except (GrammarError, jsonschema.SchemaError):
            continue
        out.append((name, schema))
        if len(out) == NUM_SCHEMAS:
            return out
    return out


@pytest.fixture(scope="module")
def llm(smollm2_loaded):
    return LLM.from_engine(LLMEngine(EngineConfig.from_kwargs(dtype="float32"), loaded=smollm2_loaded))


@pytest.mark.skipif(not os.path.isdir(SCHEMAS), reason="JSONSchemaBench data not present")
def test_twenty_schemas_sampled_and_greedy_all_validate(llm):
    schemas = pick_schemas()
    assert len(schemas) == NUM_SCHEMAS
    so = StructuredOutputsParams
    messages, params, expect = [], [], []
    for i, (name, schema) in enumerate(schemas):
        ask = [{"role": "user", "content": "Reply with one JSON value matching this JSON Schema:\n"
                + json.dumps(schema)}]
        for p in (SamplingParams(temperature=0.7, n=5, seed=i, max_tokens=MAX_TOKENS,
                                 structured_outputs=so(json=schema)),
                  SamplingParams(temperature=0, max_tokens=MAX_TOKENS, structured_outputs=so(json=schema))):
            messages.append(ask)
            params.append(p)
            expect.append(("json", name, schema))
    others = [
        ("A date in ISO format.", so(regex=REGEX_DATE), ("regex", REGEX_DATE)),
        ("Pick a colour.", so(choice=["red", "green", "blue"]), ("choice", {"red", "green", "blue"})),
        ("Write an arithmetic expression.", so(grammar=LARK_ARITH), ("lark", LARK_ARITH)),
        ("Tell me about Paris.", None, ("free", None)),
        ("Count to five.", None, ("free", None)),
    ]
    for q, s, e in others:
        messages.append([{"role": "user", "content": q}])
        params.append(SamplingParams(temperature=0.7, seed=99, max_tokens=40, structured_outputs=s))
        expect.append((e[0], q, e[1]))
    outs = llm.chat(messages, params, use_tqdm=False)
    checker = jsonschema.FormatChecker()
    bad = []
    for out, (kind, name, spec) in zip(outs, expect):
        for c in out.outputs:
            if kind == "free":
                assert c.text and c.finish_reason in {"stop", "length"}
                continue
            if c.finish_reason != "stop":
                bad.append((name, c.finish_reason, c.text[-80:]))
                continue
            if kind == "json":
                errors = list(jsonschema.validators.validator_for(spec)(
                    spec, format_checker=checker).iter_errors(json.loads(c.text)))
                if errors:
                    bad.append((name, errors[0].message, c.text[:120]))
            elif kind == "regex":
                assert re.fullmatch(spec, c.text), c.text
            elif kind == "choice":
                assert c.text in spec
            else:
                lark.Lark(spec, parser="earley").parse(c.text)
    num = sum(len(o.outputs) for o in outs[:2 * NUM_SCHEMAS])
    assert num == 6 * NUM_SCHEMAS
    assert not bad, bad
