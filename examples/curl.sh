#!/usr/bin/env bash
# curl against `gramserve serve` on localhost:8000 (add -H "Authorization: Bearer $KEY" with --api-key).
set -euo pipefail
URL=${URL:-http://127.0.0.1:8000}
MODEL=$(curl -s "$URL/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')

# JSON Schema output
curl -s "$URL/v1/chat/completions" -H 'Content-Type: application/json' -d '{
  "model": "'"$MODEL"'", "max_tokens": 60,
  "messages": [{"role": "user", "content": "Describe a cat."}],
  "response_format": {"type": "json_schema", "json_schema": {"name": "cat", "strict": true, "schema": {
    "type": "object", "additionalProperties": false, "required": ["name", "age"],
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}}}}}
}'
echo

# tool calling
curl -s "$URL/v1/chat/completions" -H 'Content-Type: application/json' -d '{
  "model": "'"$MODEL"'", "max_tokens": 60, "tool_choice": "required", "parallel_tool_calls": false,
  "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
  "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "additionalProperties": false, "required": ["city"],
    "properties": {"city": {"type": "string", "maxLength": 40}}}}}]
}'
echo

# streaming with usage
curl -sN "$URL/v1/chat/completions" -H 'Content-Type: application/json' -d '{
  "model": "'"$MODEL"'", "max_tokens": 16, "stream": true, "stream_options": {"include_usage": true},
  "messages": [{"role": "user", "content": "Say hello."}]
}'
