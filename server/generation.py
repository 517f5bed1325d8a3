"""Between the HTTP handlers and AsyncLLMEngine: admission, grammar pre-compilation, streams.

    handler ──admission.acquire(n)──> 429 + Retry-After when the queue is full
            ──precompile(spec)──> thread pool; GrammarError -> 400 before anything is queued
            ──open_stream(prompt)──> validated here, so a bad prompt is a 400, not a broken stream
            ──merge(streams)──> one ordered flow of (prompt index, EngineOutput)
            ──cancel_on_disconnect──> a client gone mid-request cancels the handler; closing a
                                      stream aborts its request and frees its KV blocks
"""
from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi.responses import StreamingResponse

from engine.errors import InvalidParameterError
from engine.llm_engine import EngineOutput
from engine.sampling_params import SamplingParams, StructuredOutputsParams
from server.errors import APIError, from_grammar_error, from_invalid_parameter

_DONE = object()


@dataclass
class Stream:
    """One engine request, validated and queued; `outputs()` yields its EngineOutputs."""

    gen: AsyncIterator[EngineOutput]
    arrival: float
    num_prompt_tokens: int
    first_token_time: float | None = None
    output_tokens: dict[int, int] = field(default_factory=dict)

    def outputs(self) -> AsyncIterator[EngineOutput]:
        return self.gen

    async def aclose(self) -> None:
        await self.gen.aclose()  # aborts the request if it has not finished


class Admission:
    """Bounds the sequences in flight: max_num_seqs running plus max_queue waiting."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_flight = 0

    def acquire(self, num_seqs: int):
        """Reserve num_seqs slots or raise 429; returns an idempotent release function."""
        if self.in_flight + num_seqs > self.capacity:
            raise APIError(429, f"the server is at capacity ({self.in_flight} sequences in flight, at most "
                                f"{self.capacity}); retry shortly", code="queue_full", headers={"Retry-After": "1"})
        self.in_flight += num_seqs
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight -= num_seqs

        return release


async def precompile(state, spec: StructuredOutputsParams, param: str) -> None:
    """Compile the constraint off the event loop (the first call also builds the vocabulary
    tables); a bad schema or grammar is a 400 naming `param` and the pointer/line. The engine's
    own compile later is a cache hit."""
    from grammar import GrammarError

    structured = state.engine.engine.structured

    def compile_and_count() -> None:
        structured.compile(spec)
        state.metrics.note_grammar(spec.cache_key(), structured.compiler.cache_size)

    try:
        await asyncio.get_running_loop().run_in_executor(None, compile_and_count)
    except GrammarError as e:
        raise from_grammar_error(e, param) from None


def open_stream(state, prompt, params: SamplingParams, request_id: str, prompt_param: str) -> Stream:
    """Validate the prompt (APIError 400 naming `prompt_param`) and return its stream; the request
    is queued on the stream's first iteration, so headers can go out at once."""
    core = state.engine.engine
    try:
        _, ids = core.tokenize_prompt(prompt)
        core.validate_prompt(ids, params)
    except InvalidParameterError as e:
        raise from_invalid_parameter(e, {"prompt": prompt_param}) from None
    gen = state.engine.generate({"prompt_token_ids": ids}, params, request_id)
    return Stream(gen, time.monotonic(), len(ids))


def account(state, stream: Stream, out: EngineOutput) -> None:
    """Per-output bookkeeping: token counts and the time of the first token."""
    n = len(out.new_token_ids)
    if n and stream.first_token_time is None:
        stream.first_token_time = time.monotonic()
    stream.output_tokens[out.index] = stream.output_tokens.get(out.index, 0) + n
    state.metrics.generation_tokens.inc(n)


def finish(state, stream: Stream) -> None:
    """Record the finished request's latencies (TPOT over its longest sample)."""
    state.metrics.observe_request(
        arrival=stream.arrival, first_token=stream.first_token_time, end=time.monotonic(),
        prompt_tokens=stream.num_prompt_tokens, output_tokens=max(stream.output_tokens.values(), default=0))


async def merge(streams: list[Stream]) -> AsyncIterator[tuple[int, EngineOutput]]:
    """Interleave several streams in arrival order; closing the merge closes (aborts) them all."""
    if len(streams) == 1:
        async for out in streams[0].outputs():
            yield 0, out
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(i: int, s: Stream) -> None:
        try:
            async for out in s.outputs():
                await queue.put((i, out))
            await queue.put((i, _DONE))
        except Exception as e:  # handed to the consumer, which re-raises it  # noqa: BLE001
            await queue.put((i, e))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        live = len(tasks)
        while live:
            i, out = await queue.get()
            if out is _DONE:
                live -= 1
            elif isinstance(out, Exception):
                raise out
            else:
                yield i, out
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # each pump has left its generator
        for s in streams:
            await s.aclose()


async def cancel_on_disconnect(request, work: asyncio.Task, poll_s: float = 0.5):
    """Await `work`; if the HTTP client goes away first, cancel it (which aborts its requests)."""
    while True:
        done, _ = await asyncio.wait({work}, timeout=poll_s)
        if done:
            return work.result()
        if await request.is_disconnected():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            raise APIError(499, "client disconnected")


def event_stream(body, release) -> StreamingResponse:
    """The server-sent-events response for `body`; `release` runs once the body is gone, even if
    it was never iterated (a client that left at once still frees its slots)."""
    weakref.finalize(body, release)
    return StreamingResponse(body, media_type="text/event-stream")
