"""JSON Schema output with the official openai SDK against `gramserve serve` (localhost:8000).

    gramserve serve &                # the embedded SmolLM2-135M-Instruct
    python examples/openai_json_schema.py
"""
import json
import os

import openai
import pydantic

client = openai.OpenAI(base_url=os.environ.get("GRAMSERVE_URL", "http://127.0.0.1:8000") + "/v1", api_key="unused")
model = client.models.list().data[0].id


class City(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=40)
    country: str = pydantic.Field(max_length=40)
    population: int


# 1. a pydantic model: the SDK sends response_format json_schema (strict) and parses the reply
parsed = client.chat.completions.parse(model=model, response_format=City, max_tokens=80,
                                       messages=[{"role": "user", "content": "Describe Paris."}])
print(parsed.choices[0].message.parsed)

# 2. a raw JSON Schema
schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}, "confidence": {"type": "number"}},
          "required": ["answer", "confidence"], "additionalProperties": False}
r = client.chat.completions.create(
    model=model, max_tokens=40, messages=[{"role": "user", "content": "Is the Earth round?"}],
    response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema, "strict": True}})
print(json.loads(r.choices[0].message.content))

# 3. vLLM-style extras: regex / choice / Lark grammar
r = client.chat.completions.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "Yes or no?"}],
                                   extra_body={"structured_outputs": {"choice": ["yes", "no"]}})
print(r.choices[0].message.content)
