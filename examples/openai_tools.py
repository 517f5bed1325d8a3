"""Tool calling with the official openai SDK against `gramserve serve` (localhost:8000).

tool_choice "required" or a named function constrains the whole reply to calls whose arguments
match the tool's JSON Schema; "auto" lets the model answer in text or call; "none" never calls.
"""
import json
import os

import openai

client = openai.OpenAI(base_url=os.environ.get("GRAMSERVE_URL", "http://127.0.0.1:8000") + "/v1", api_key="unused")
model = client.models.list().data[0].id
tools = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40},
                                                    "unit": {"enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}]
messages = [{"role": "user", "content": "What is the weather in Paris?"}]

r = client.chat.completions.create(model=model, messages=messages, tools=tools, tool_choice="required",
                                   parallel_tool_calls=False, max_tokens=60)
call = r.choices[0].message.tool_calls[0]
print(r.choices[0].finish_reason, call.function.name, json.loads(call.function.arguments))

# streamed: tool-call deltas (index, id, name, then argument fragments)
for chunk in client.chat.completions.create(model=model, messages=messages, tools=tools, tool_choice="required",
                                            parallel_tool_calls=False, max_tokens=60, stream=True):
    for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
        print(tc.index, tc.id, tc.function.name, repr(tc.function.arguments))

# send the result back and let the model answer
messages += [r.choices[0].message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature_c": 18})}]
r = client.chat.completions.create(model=model, messages=messages, tools=tools, max_tokens=40)
print(r.choices[0].message.content)
