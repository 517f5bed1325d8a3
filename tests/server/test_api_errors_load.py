"""4xx in OpenAI's error shape, the queue bound (429 + Retry-After), client disconnects freeing
every KV block, and /metrics parsed with prometheus_client's parser."""
from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from conftest import API_KEY, MODEL, chat
from prometheus_client.parser import text_string_to_metric_families


def _bad(client, **kw) -> dict:
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, "hi", **kw)
    err = e.value.body
    assert set(err) >= {"message", "type", "param", "code"} and err["type"] == "invalid_request_error"
    return err


def test_bad_parameters_are_400_naming_the_field(client):
    assert _bad(client, temperature=5)["param"] == "temperature"
    assert _bad(client, max_completion_tokens=0)["param"] == "max_completion_tokens"
    assert _bad(client, top_logprobs=3)["param"] == "top_logprobs"
    assert _bad(client, extra_body={"best_of": 3})["param"] == "best_of"  # unknown: rejected, not ignored
    assert _bad(client, logit_bias={"999999": 5})["param"] == "logit_bias"
    assert _bad(client, tool_choice="required")["param"] == "tool_choice"
    long_prompt = "hello " * 1100  # the test server's context is 1024 tokens
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, long_prompt)
    assert e.value.body["param"] == "messages" and "1024" in e.value.body["message"]


def test_bad_schema_and_grammar_name_the_pointer_and_line(client):
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=x)y"}}}
    err = _bad(client, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert err["param"] == "response_format" and "/properties/a/pattern" in err["message"]
    err = _bad(client, extra_body={"structured_outputs": {"grammar": 'start: "a"\nfoo: ( "b"\n'}})
    assert err["param"] == "structured_outputs" and "line 2" in err["message"]
    tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
    err = _bad(client, tools=tools, tool_choice="required")
    assert err["param"] == "tools[0].function.parameters" and "/properties/a/pattern" in err["message"]


def test_401_and_404(server, client):
    bad = openai.OpenAI(base_url=server["url"] + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    r = httpx.post(server["url"] + "/v1/completions", json={"model": MODEL, "prompt": "x"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-4", prompt="x", max_tokens=1)
    assert e.value.body["param"] == "model"


def _metrics(url: str) -> dict[str, list]:
    text = httpx.get(url + "/metrics").text
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _value(samples, **labels) -> float:
    return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


def test_queue_full_is_429_and_disconnects_free_every_block(server):
    url, headers = server["url"], {"Authorization": f"Bearer {API_KEY}"}
    body = {"model": MODEL, "prompt": "Write a long story about a dragon.", "max_tokens": 400,
            "temperature": 0, "stream": True, "ignore_eos": True}

    async def main():
        async with httpx.AsyncClient(timeout=600, headers=headers) as http:
            streams = []
            for _ in range(6):  # 4 running + 2 waiting: the server's whole capacity
                cm = http.stream("POST", url + "/v1/completions", json=body)
                resp = await cm.__aenter__()
                assert resp.status_code == 200
                # keep each line iterator alive: a dropped one closes its connection (a disconnect)
                streams.append((cm, resp.aiter_lines()))
            for _, lines in streams[:4]:  # the running ones produce text
                assert (await lines.__anext__()).startswith("data: ")
            m = _metrics(url)
            assert _value(m["gramserve_num_requests_running"]) == 4 and _value(m["gramserve_kv_cache_usage_ratio"]) > 0
            over = await http.post(url + "/v1/completions", json={**body, "stream": False})
            assert over.status_code == 429 and over.headers["retry-after"]
            assert over.json()["error"]["code"] == "queue_full"
            for cm, _ in streams:  # every client goes away mid-stream (the last two before any token)
                await cm.__aexit__(None, None, None)

    asyncio.run(main())
    deadline = time.monotonic() + 60
    while True:
        m = _metrics(url)
        idle = (_value(m["gramserve_num_requests_running"]) == 0 and _value(m["gramserve_num_requests_waiting"]) == 0
                and _value(m["gramserve_kv_cache_free_blocks"]) == _value(m["gramserve_kv_cache_total_blocks"]))
        if idle or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert idle, m
    assert _value(m["gramserve_kv_cache_usage_ratio"]) == 0.0


def test_metrics_parse_and_count(server, client):
    chat(client, "Say yes.", max_tokens=3)
    m = _metrics(server["url"])
    reqs = m["gramserve_requests"]
    assert _value(reqs, endpoint="/v1/chat/completions", status="200") >= 1
    assert _value(m["gramserve_prompt_tokens"]) > 0 and _value(m["gramserve_generation_tokens"]) > 0
    ttft = [s for s in m["gramserve_time_to_first_token_seconds"] if s.name.endswith("_count")]
    assert ttft and ttft[0].value >= 1
    for name in ("gramserve_time_per_output_token_seconds", "gramserve_kv_cache_usage_ratio",
                 "gramserve_grammar_compile_seconds", "gramserve_grammar_cache_hits", "gramserve_grammar_compiles"):
        assert name in m, name
