"""AsyncLLMEngine: the engine loop on a background thread, one async stream per request.

    server coroutine                      engine thread
    ----------------                      -------------
    generate() ── add command ──────────> drain commands: add_request / abort_request
         ^                                step() -> [EngineOutput]
         └── asyncio.Queue <── call_soon_threadsafe ── route each output to its request's queue

The LLMEngine is touched by the engine thread only; coroutines talk to it through a command
queue, so a slow client or a compiling grammar never blocks the batch. Leaving the stream early
(client disconnect, cancellation) aborts the request, which frees its KV blocks.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
from typing import AsyncIterator

from engine.llm_engine import EngineOutput, LLMEngine, PromptType
from engine.sampling_params import SamplingParams

logger = logging.getLogger("gramserve.async_engine")


class EngineDeadError(RuntimeError):
    pass


class AsyncLLMEngine:
    def __init__(self, engine: LLMEngine) -> None:
        self.engine = engine
        self._commands: queue.Queue = queue.Queue()
        self._streams: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue, int]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ids = itertools.count()
        self.dead: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="gramserve-engine", daemon=True)
        self._thread.start()

    # -- client side (any event loop) --------------------------------------------------------------
    async def generate(
        self, prompt: PromptType, params: SamplingParams, request_id: str | None = None
    ) -> AsyncIterator[EngineOutput]:
        """Stream the request's outputs; raises InvalidParameterError before the first yield if the
        prompt is invalid. Closing the generator early aborts the request."""
        if self.dead is not None:
            raise EngineDeadError(f"the engine loop died: {self.dead!r}")
        request_id = request_id or f"req-{next(self._ids)}"
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        accepted: asyncio.Future = loop.create_future()
        self._streams[request_id] = (loop, q, params.n)
        self._send(("add", request_id, prompt, params, accepted))
        try:
            await accepted  # raises the add_request error (bad prompt, duplicate id, ...)
        except BaseException:
            self._streams.pop(request_id, None)
            raise
        remaining = params.n
        finished = False
        try:
            while remaining:
                out = await q.get()
                if isinstance(out, BaseException):
                    raise EngineDeadError(f"the engine loop died: {out!r}") from out
                remaining -= int(out.finished)
                yield out
            finished = True
        finally:
            self._streams.pop(request_id, None)
            if not finished:
                self._send(("abort", request_id))

    def abort(self, request_id: str) -> None:
        self._send(("abort", request_id))

    def shutdown(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.engine.structured.shutdown()

    def _send(self, cmd: tuple) -> None:
        self._commands.put(cmd)
        self._wake.set()

    # -- engine thread --------------------------------------------------------------------------
    def _drain_commands(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            if cmd[0] == "add":
                _, rid, prompt, params, accepted = cmd
                loop = accepted.get_loop()
                try:
                    self.engine.add_request(rid, prompt, params)
                except Exception as e:  # reported to the caller, never kills the loop
                    loop.call_soon_threadsafe(_set_exception, accepted, e)
                else:
                    loop.call_soon_threadsafe(_set_result, accepted, None)
            elif cmd[0] == "abort":
                self.engine.abort_request(cmd[1])

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._drain_commands()
                if not self.engine.has_unfinished_requests():
                    self._wake.wait(timeout=0.5)
                    self._wake.clear()
                    continue
                for out in self.engine.step():
                    stream = self._streams.get(out.request_id)
                    if stream is not None:
                        stream[0].call_soon_threadsafe(stream[1].put_nowait, out)
        except BaseException as e:  # pragma: no cover - surfaced to every waiting stream
            logger.exception("engine loop died")
            self.dead = e
            for loop, q, _ in list(self._streams.values()):
                loop.call_soon_threadsafe(q.put_nowait, e)


def _set_result(fut: asyncio.Future, value) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
