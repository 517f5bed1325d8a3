"""The SDK imports and works with neither torch nor fastapi (nor transformers, numpy) installed.

A fresh interpreter installs a meta path finder that refuses those packages, then imports
gramserve and runs a parse and a tool loop through httpx.MockTransport.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import importlib.abc, sys

    BLOCKED = {"torch", "fastapi", "transformers", "numpy", "triton", "engine", "grammar", "kernels", "server"}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    for name in list(sys.modules):
        assert name.split(".")[0] not in BLOCKED, name

    import json
    import httpx
    from pydantic import BaseModel
    import gramserve
    from gramserve import Client, tool

    class City(BaseModel):
        name: str
        population: int

    @tool
    def double(x: int) -> int:
        """Double a number."""
        return 2 * x

    replies = [
        {"choices": [{"message": {"role": "assistant", "content": '{"name": "Oslo", "population": 700000}'},
                      "finish_reason": "stop"}]},
        {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "double", "arguments": '{"x": 21}'}}]},
            "finish_reason": "tool_calls"}]},
        {"choices": [{"message": {"role": "assistant", "content": "42"}, "finish_reason": "stop"}]},
    ]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=replies.pop(0)))
    client = Client(base_url="http://fake/v1", model="m", http_client=httpx.Client(transport=transport))
    assert client.parse("a city", response_model=City) == City(name="Oslo", population=700000)
    assert client.run("double 21", tools=[double]).content == "42"
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("ok")
''')


def test_sdk_imports_without_heavy_dependencies() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_the_blocker_really_blocks() -> None:
    """Guard against a vacuous pass: the same finder makes `import fastapi` fail."""
    script = SCRIPT.split("import json")[0] + "import fastapi\n"
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "blocked for this test: fastapi" in proc.stderr
