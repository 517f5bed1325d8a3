"""POST /v1/completions: one engine request per prompt; choice index = prompt index * n + sample.

`prompt` may be a string, a list of strings, a list of token ids or a list of such lists.
"""
from __future__ import annotations

import json
import logging
import time
import uuid

from fastapi.responses import JSONResponse

from engine.llm_engine import EngineOutput
from server.errors import APIError, bad_request
from server.generation import Stream, account, event_stream, finish, merge, open_stream, precompile
from server.protocol import CompletionRequest
from server.sampling import completion_sampling_params, structured_from_request

logger = logging.getLogger("gramserve.server")


def _prompts(req: CompletionRequest) -> list:
    p = req.prompt
    if isinstance(p, str):
        return [p]
    if not p:
        raise bad_request("prompt must not be empty", "prompt")
    if isinstance(p[0], int):
        return [{"prompt_token_ids": list(p)}]
    if isinstance(p[0], list):
        if any(not ids for ids in p):
            raise bad_request("a token-id prompt must not be empty", "prompt")
        return [{"prompt_token_ids": ids} for ids in p]
    return list(p)


class _LogprobsAcc:
    """OpenAI's legacy completions logprobs: parallel lists, offsets into the choice's text."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.tokens: list[str] = []
        self.token_logprobs: list[float] = []
        self.top_logprobs: list[dict[str, float]] = []
        self.text_offset: list[int] = []

    def add(self, out: EngineOutput) -> dict:
        new = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for tid, d in zip(out.new_token_ids, out.new_logprobs or []):
            tok = d[tid].decoded_token or ""
            top = {lp.decoded_token or "": lp.logprob for lp in sorted(
                (lp for lp in d.values() if lp.rank is not None), key=lambda lp: lp.rank)}
            for key, value in (("tokens", tok), ("token_logprobs", d[tid].logprob), ("top_logprobs", top),
                               ("text_offset", self.offset)):
                new[key].append(value)
                getattr(self, key).append(value)
            self.offset += len(tok)
        return new

    def as_dict(self) -> dict:
        return {"tokens": self.tokens, "token_logprobs": self.token_logprobs, "top_logprobs": self.top_logprobs,
                "text_offset": self.text_offset}


async def create_completion(state, req: CompletionRequest, http_request):
    state.check_model(req.model)
    structured, structured_param = structured_from_request(req)
    core = state.engine.engine
    params = completion_sampling_params(req, structured, core.model_config.vocab_size)
    prompts = _prompts(req)
    request_id = f"cmpl-{uuid.uuid4().hex}"
    if req.user:  # OpenAI's end-user id: recorded with the request for abuse tracing
        logger.info("%s user=%s", request_id, req.user)
    release = state.admission.acquire(params.n * len(prompts))
    streams: list[Stream] = []
    try:
        if structured is not None:
            await precompile(state, structured, structured_param)
        for i, prompt in enumerate(prompts):
            streams.append(open_stream(state, prompt, params, f"{request_id}-{i}", "prompt"))
    except BaseException:
        for s in streams:
            await s.aclose()
        release()
        raise
    meta = {"id": request_id, "object": "text_completion", "created": int(time.time()),
            "model": state.served_model_name}
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return event_stream(_stream(state, streams, params, meta, include_usage, release), release)
    try:
        echo = [core.tokenizer.decode(core.tokenize_prompt(p)[1]) if req.echo else "" for p in prompts]
        return JSONResponse(await _collect(state, streams, params, meta, echo))
    finally:
        release()


def _usage(streams: list[Stream]) -> dict:
    prompt = sum(s.num_prompt_tokens for s in streams)
    done = sum(sum(s.output_tokens.values()) for s in streams)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


async def _collect(state, streams: list[Stream], params, meta: dict, echo: list[str]) -> dict:
    n = params.n
    texts = {p * n + i: echo[p] for p in range(len(streams)) for i in range(n)}
    reasons: dict[int, str | None] = {}
    lps = {k: _LogprobsAcc(len(echo[k // n])) for k in texts} if params.logprobs is not None else None
    async for p, out in merge(streams):
        account(state, streams[p], out)
        k = p * n + out.index
        texts[k] += out.delta_text
        if lps is not None:
            lps[k].add(out)
        if out.finished:
            if out.finish_reason == "error":
                raise APIError(500, f"generation failed: {out.error}", code="engine_error")
            reasons[k] = out.finish_reason
    for s in streams:
        finish(state, s)
    choices = [{"index": k, "text": texts[k], "finish_reason": reasons.get(k),
                "logprobs": lps[k].as_dict() if lps is not None else None} for k in sorted(texts)]
    return {**meta, "choices": choices, "usage": _usage(streams)}


async def _stream(state, streams: list[Stream], params, meta: dict, include_usage: bool, release):
    n = params.n
    lps: dict[int, _LogprobsAcc] = {}
    extra = {"usage": None} if include_usage else {}
    try:
        async for p, out in merge(streams):
            account(state, streams[p], out)
            k = p * n + out.index
            if out.finished and out.finish_reason == "error":
                yield "data: " + json.dumps(APIError(500, f"generation failed: {out.error}").body()) + "\n\n"
                break
            lp = lps.setdefault(k, _LogprobsAcc(0)).add(out) if params.logprobs is not None else None
            choice = {"index": k, "text": out.delta_text, "logprobs": lp,
                      "finish_reason": out.finish_reason if out.finished else None}
            yield "data: " + json.dumps({**meta, "choices": [choice], **extra}, ensure_ascii=False) + "\n\n"
        for s in streams:
            finish(state, s)
        if include_usage:
            yield "data: " + json.dumps({**meta, "choices": [], "usage": _usage(streams)}) + "\n\n"
        yield "data: [DONE]\n\n"
    except Exception as e:  # headers are sent: report in-band, OpenAI style  # noqa: BLE001
        yield "data: " + json.dumps(APIError(500, f"generation failed: {type(e).__name__}: {e}").body()) + "\n\n"
    finally:
        for s in streams:
            await s.aclose()
        release()
