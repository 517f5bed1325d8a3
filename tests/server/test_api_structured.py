"""Structured outputs over HTTP: response_format json_schema (10 JSONSchemaBench schemas, strict),
client.chat.completions.parse with a pydantic model, json_object, and the regex / choice / Lark extras."""
from __future__ import annotations

import asyncio
import json
import os
import re

import jsonschema
import pydantic
import pytest
from conftest import MODEL, chat
from shared_data import data_path

BENCH = data_path("jsonschemabench") if os.path.isdir(data_path("jsonschemabench")) else None
# small schemas whose every value is bounded (enums, integers, booleans, short strings), so a
# 135M model finishes each within max_tokens; drawn from four subsets
SCHEMA_IDS = {"Github_easy": ["o27835", "o28259", "o28268", "o40223", "o91002"],
              "Github_trivial": ["o10018", "o10021", "o16363", "o24503", "o27834"]}


def _bench_schemas() -> list[tuple[str, dict]]:
    if BENCH is None:
        pytest.skip("shared/data/jsonschemabench is not available")
    out = []
    for subset, ids in SCHEMA_IDS.items():
        with open(os.path.join(BENCH, "schemas", f"{subset}.jsonl")) as f:
            rows = {r["id"]: r["schema"] for r in map(json.loads, f)}
        out += [(i, rows[i]) for i in ids]
    return out


def test_json_schema_strict_on_ten_bench_schemas(aclient):
    schemas = _bench_schemas()

    async def one(client, sem, sid, schema):
        async with sem:  # stay under the server's 4 running + 2 waiting
            r = await client.chat.completions.create(
                model=MODEL, temperature=0, max_tokens=60,
                messages=[{"role": "user", "content": "Reply with a short JSON value for this schema: "
                                                      + json.dumps(schema)[:400]}],
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "s", "schema": schema, "strict": True}})
        return sid, r.choices[0]

    async def main():
        client, sem = aclient(), asyncio.Semaphore(4)
        return await asyncio.gather(*(one(client, sem, sid, s) for sid, s in schemas))

    for (sid, schema), (_, choice) in zip(schemas, asyncio.run(main())):
        assert choice.finish_reason == "stop", (sid, choice.message.content)
        jsonschema.validate(json.loads(choice.message.content), schema)


class Person(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=12)
    age: int


def test_parse_returns_a_pydantic_object(client):
    r = client.chat.completions.parse(model=MODEL, temperature=0, max_tokens=40, response_format=Person,
                                      messages=[{"role": "user", "content": "Invent a person."}])
    assert isinstance(r.choices[0].message.parsed, Person)


def test_json_object_mode(client):
    r = chat(client, "Describe a cat as JSON.", max_tokens=40, response_format={"type": "json_object"})
    text = r.choices[0].message.content
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:  # cut by max_tokens: still a prefix of an object
        assert text.lstrip().startswith("{")


def test_regex_choice_and_lark_extras(client):
    r = chat(client, "What is 6 times 7?", max_tokens=10, extra_body={"structured_outputs": {"regex": r"[0-9]{1,3}"}})
    assert re.fullmatch(r"[0-9]{1,3}", r.choices[0].message.content)
    r = chat(client, "Is the sky blue?", max_tokens=5, extra_body={"structured_outputs": {"choice": ["yes", "no"]}})
    assert r.choices[0].message.content in ("yes", "no") and r.choices[0].finish_reason == "stop"
    lark = 'start: "The answer is " ANSWER "."\nANSWER: /(yes|no|maybe)/\n'
    r = client.completions.create(model=MODEL, prompt="Q: Is water wet? A:", max_tokens=10, temperature=0,
                                  extra_body={"structured_outputs": {"grammar": lark}})
    assert re.fullmatch(r"The answer is (yes|no|maybe)\.", r.choices[0].text)
