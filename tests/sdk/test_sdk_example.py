"""examples/tool_calling.py runs end to end (against the fake server) and prints what it did."""
from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

from sdk_fakes import FakeServer, completion, text_chunks, tool_call

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tool_calling.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("tool_calling_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the example's postponed annotations through it
    spec.loader.exec_module(module)
    return module


def test_example_main_runs() -> None:
    example = _load_example()
    guide = {"city": "Paris", "country": "France", "landmarks": [{"name": "Eiffel Tower", "year_built": 1889}]}
    server = FakeServer()
    server.push(completion(tool_calls=[tool_call("get_weather", {"city": "Paris"}),
                                       tool_call("get_timezone", {"city": "Paris"})]))
    server.push(completion(content="21.5 C in Paris (Europe/Paris)."))
    server.push(completion(content=json.dumps(guide)))
    server.push_stream(text_chunks(json.dumps(guide), size=9))
    out = io.StringIO()
    example.main(server.client(), out=out)
    text = out.getvalue()
    assert "called get_weather({'city': 'Paris'}) -> {'city': 'Paris', 'temperature': 21.5" in text
    assert "called get_timezone({'city': 'Paris'}) -> Europe/Paris" in text
    assert "answer: 21.5 C in Paris (Europe/Paris)." in text
    assert "parsed: CityGuide(city='Paris'" in text and text.count("partial: ") >= 3
    assert server.requests[0]["tool_choice"] == "required" and server.requests[1]["tool_choice"] == "auto"
