"""POST /v1/chat/completions: messages -> prompt -> engine -> chat.completion (or SSE chunks).

Per choice (n of them) a `_Choice` accumulates text, logprobs and, when tools are in play, a
ToolCallParser. The streamed and non-streamed replies are built from the same parser, so the
streamed tool-call deltas reassemble to exactly the non-streamed tool_calls.
"""
from __future__ import annotations

import json
import logging
import time
import uuid

from fastapi.responses import JSONResponse

from engine.llm_engine import EngineOutput
from server.chat import render_chat
from server.errors import APIError
from server.generation import Stream, account, event_stream, finish, merge, open_stream, precompile
from server.protocol import ChatCompletionRequest
from server.sampling import chat_sampling_params, structured_from_request
from server.tool_parser import Delta, ToolCallParser
from server.tools import plan_tools

logger = logging.getLogger("gramserve.server")


class _Choice:
    def __init__(self, index: int, parse_tools: bool, want_logprobs: bool) -> None:
        self.index = index
        self.parser = ToolCallParser() if parse_tools else None
        self.text = ""
        self.logprobs: list[dict] | None = [] if want_logprobs else None
        self.engine_reason: str | None = None

    def add(self, out: EngineOutput) -> tuple[Delta, list[dict]]:
        """Fold one engine output in; returns its parsed delta and its logprob entries."""
        self.text += out.delta_text
        delta = self.parser.feed(out.delta_text) if self.parser else Delta(content=out.delta_text)
        if out.finished:
            self.engine_reason = out.finish_reason
            if self.parser:
                tail = self.parser.finish()
                delta.content += tail.content
            if out.finish_reason == "error":
                raise APIError(500, f"generation failed: {out.error}", code="engine_error")
        entries = _logprob_entries(out) if self.logprobs is not None else []
        if self.logprobs is not None:
            self.logprobs.extend(entries)
        return delta, entries

    @property
    def finish_reason(self) -> str | None:
        """"tool_calls" only when the reply stopped on its own after complete calls."""
        r = self.engine_reason
        if r == "stop" and self.parser and self.parser.calls and all(c.complete for c in self.parser.calls):
            return "tool_calls"
        return r

    def message(self) -> dict:
        if self.parser is None:
            return {"role": "assistant", "content": self.text}
        calls = [_call_json(c) for c in self.parser.complete_calls]
        content = self.parser.content
        return {"role": "assistant", "content": content if content or not calls else None,
                "tool_calls": calls or None}


def _call_json(call, index: int | None = None) -> dict:
    d = {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    if index is not None:
        d["index"] = index
    return d


def _token_entry(lp) -> dict:
    tok = lp.decoded_token or ""
    return {"token": tok, "logprob": lp.logprob, "bytes": list(tok.encode("utf-8"))}


def _logprob_entries(out: EngineOutput) -> list[dict]:
    entries = []
    for tid, d in zip(out.new_token_ids, out.new_logprobs or []):
        top = sorted((lp for lp in d.values() if lp.rank is not None), key=lambda lp: lp.rank)
        entries.append({**_token_entry(d[tid]), "top_logprobs": [_token_entry(lp) for lp in top]})
    return entries


async def create_chat_completion(state, req: ChatCompletionRequest, http_request):
    state.check_model(req.model)
    structured, structured_param = structured_from_request(req)
    plan = await plan_tools(state.tool_grammars, req, structured is not None)
    if plan.spec is not None:
        structured, structured_param = plan.spec, "tools"
    core = state.engine.engine
    params = chat_sampling_params(req, structured, core.model_config.vocab_size)
    prompt = render_chat(core.tokenizer, core.loaded.chat_template, req.messages, plan.prompt_tools)
    ids = core.tokenizer.encode(prompt, add_special_tokens=False)
    request_id = f"chatcmpl-{uuid.uuid4().hex}"
    if req.user:  # OpenAI's end-user id: recorded with the request for abuse tracing
        logger.info("%s user=%s", request_id, req.user)
    release = state.admission.acquire(params.n)
    try:
        if structured is not None:
            await precompile(state, structured, structured_param)
        stream = open_stream(state, {"prompt_token_ids": ids}, params, request_id, "messages")
    except BaseException:
        release()
        raise
    choices = [_Choice(i, plan.parse, params.logprobs is not None) for i in range(params.n)]
    meta = {"id": request_id, "created": int(time.time()), "model": state.served_model_name}
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return event_stream(_stream_chat(state, stream, choices, meta, include_usage, release), release)
    try:
        return JSONResponse(await _collect_chat(state, stream, choices, meta))
    finally:
        release()


async def _collect_chat(state, stream: Stream, choices: list[_Choice], meta: dict) -> dict:
    try:
        async for _, out in merge([stream]):
            account(state, stream, out)
            choices[out.index].add(out)
    finally:
        await stream.aclose()
    finish(state, stream)
    return {
        **meta, "object": "chat.completion",
        "choices": [{"index": c.index, "message": c.message(), "finish_reason": c.finish_reason,
                     "logprobs": {"content": c.logprobs} if c.logprobs is not None else None} for c in choices],
        "usage": _usage(stream),
    }


def _usage(stream: Stream) -> dict:
    done = sum(stream.output_tokens.values())
    return {"prompt_tokens": stream.num_prompt_tokens, "completion_tokens": done,
            "total_tokens": stream.num_prompt_tokens + done}


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _delta_chunks(choice: _Choice, delta: Delta, entries: list[dict], first: bool) -> list[dict]:
    """The OpenAI `choices[]` items for one parsed delta (tool-call starts, then argument text)."""
    items = []
    d: dict = {"role": "assistant", "content": ""} if first else {}
    if delta.content:
        d["content"] = delta.content
    if d or entries:
        items.append({"index": choice.index, "delta": d, "finish_reason": None,
                      "logprobs": {"content": entries} if choice.logprobs is not None else None})
    for idx, call in delta.started:
        tc = {"index": idx, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        items.append({"index": choice.index, "delta": {"tool_calls": [tc]}, "finish_reason": None})
    for idx, frag in delta.arguments:
        tc = {"index": idx, "function": {"arguments": frag}}
        items.append({"index": choice.index, "delta": {"tool_calls": [tc]}, "finish_reason": None})
    return items


async def _stream_chat(state, stream: Stream, choices: list[_Choice], meta: dict, include_usage: bool, release):
    chunk = {**meta, "object": "chat.completion.chunk"}
    extra = {"usage": None} if include_usage else {}
    started = set()
    try:
        async for _, out in merge([stream]):
            account(state, stream, out)
            c = choices[out.index]
            try:
                delta, entries = c.add(out)
            except APIError as e:
                yield _sse(e.body())
                break
            for item in _delta_chunks(c, delta, entries, c.index not in started):
                yield _sse({**chunk, "choices": [item], **extra})
            started.add(c.index)
            if out.finished:
                yield _sse({**chunk, "choices": [{"index": c.index, "delta": {}, "finish_reason": c.finish_reason,
                                                  "logprobs": None}], **extra})
        finish(state, stream)
        if include_usage:
            yield _sse({**chunk, "choices": [], "usage": _usage(stream)})
        yield "data: [DONE]\n\n"
    except Exception as e:  # headers are sent: report in-band, OpenAI style  # noqa: BLE001
        yield _sse(APIError(500, f"generation failed: {type(e).__name__}: {e}").body())
    finally:
        await stream.aclose()
        release()
