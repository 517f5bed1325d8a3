"""Chat and completions through the official openai client: streamed and not, usage, n, logprobs,
stop, seed, token-id prompts, models."""
from __future__ import annotations

from conftest import MODEL, chat


def test_health_answered_before_load_and_models(server, client):
    assert server["saw_503"]  # the socket answers (503) while the model is still loading
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


def test_chat_non_streamed_with_usage(client):
    r = chat(client, "Say hello.", max_tokens=5)
    c = r.choices[0]
    assert c.message.role == "assistant" and c.message.content
    assert c.finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 5 and r.usage.prompt_tokens > 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_streamed_matches_non_streamed_and_reports_usage(client):
    whole = chat(client, "Name a color.", max_tokens=5)
    chunks = list(chat(client, "Name a color.", max_tokens=5, stream=True, stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text == whole.choices[0].message.content
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_n2_logprobs_and_seed(client):
    kw = dict(max_tokens=4, temperature=1.0, n=2, seed=1234, logprobs=True, top_logprobs=2)
    a = chat(client, "Tell me a word.", **kw)
    b = chat(client, "Tell me a word.", **kw)
    assert [c.index for c in a.choices] == [0, 1]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]  # seeded
    for c in a.choices:
        entries = c.logprobs.content
        assert 1 <= len(entries) <= 4
        for e in entries:
            assert e.logprob <= 0 and len(e.top_logprobs) == 2
            assert e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob


def test_stop_string_ends_the_reply(client):
    free = chat(client, "Count from 1 to 9.", max_tokens=8).choices[0].message.content
    stop = free[2:4]  # a stop string the greedy reply reaches at its first occurrence
    stopped = chat(client, "Count from 1 to 9.", max_tokens=8, stop=[stop]).choices[0]
    assert stopped.finish_reason == "stop"
    assert stopped.message.content == free[: free.find(stop)]


def test_completions_prompts_of_every_shape(client):
    r = client.completions.create(model=MODEL, prompt=["The capital of France is", "1, 2, 3,"],
                                  max_tokens=3, temperature=0, logprobs=1)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(len(c.logprobs.tokens) == len(c.logprobs.token_logprobs) > 0 for c in r.choices)
    assert "".join(r.choices[0].logprobs.tokens) == r.choices[0].text
    ids = client.completions.create(model=MODEL, prompt=[504, 3575, 282, 4649, 314], max_tokens=2, temperature=0)
    assert ids.usage.prompt_tokens == 5
    echoed = client.completions.create(model=MODEL, prompt="Hello", max_tokens=2, temperature=0, echo=True)
    assert echoed.choices[0].text.startswith("Hello")


def test_completions_streamed(client):
    whole = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=4, temperature=0)
    chunks = list(client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=4, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
