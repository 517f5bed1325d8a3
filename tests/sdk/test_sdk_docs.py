"""The SDK quickstart in the README runs, against the fake server."""
from __future__ import annotations

import json
import re
from pathlib import Path

from sdk_fakes import FakeServer, completion, text_chunks, tool_call

import gramserve

DOC = Path(__file__).resolve().parents[2] / "README.md"


def _first_python_block(text: str) -> str:
    text = text[text.index("## Python SDK"):]  # the SDK section of the README
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match, "no python block"
    return match.group(1)


def test_quickstart_runs(monkeypatch, capsys) -> None:
    server = FakeServer()
    guide = {"city": "Paris", "landmarks": [{"name": "Eiffel Tower", "year_built": 1889}]}
    server.push(completion(content=json.dumps(guide)))
    server.push(completion(tool_calls=[tool_call("get_weather", {"city": "Paris"}),
                                       tool_call("get_timezone", {"city": "Paris"})]))
    server.push(completion(content="Sunny, Europe/Paris."))
    server.push_stream(text_chunks("An old silent pond"))
    server.push_stream(text_chunks(json.dumps(guide), size=6))
    made = []

    def fake_client(**kwargs):
        made.append(kwargs)
        return server.client(**kwargs)

    monkeypatch.setattr(gramserve, "Client", fake_client)
    namespace: dict = {"__name__": "quickstart"}
    exec(compile(_first_python_block(DOC.read_text()), str(DOC), "exec", dont_inherit=True), namespace)
    out = capsys.readouterr().out
    assert made == [{"base_url": "http://127.0.0.1:8000/v1"}]
    assert namespace["guide"].landmarks[0].year_built == 1889
    assert "Sunny, Europe/Paris." in out and "An old silent pond" in out
    assert [c.name for c in namespace["result"].tool_calls] == ["get_weather", "get_timezone"]
    assert not server.queue

