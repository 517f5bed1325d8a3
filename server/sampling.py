"""OpenAI request fields -> engine.SamplingParams and engine.StructuredOutputsParams.

Every field lands somewhere or is rejected: ranges are validated by SamplingParams (its errors
name the engine field, renamed here to the request's spelling), shapes by protocol.py, and
cross-field conflicts (two constraints at once) here.
"""
from __future__ import annotations

from engine.errors import InvalidParameterError
from engine.sampling_params import SamplingParams, StructuredOutputsParams
from server.errors import APIError, bad_request, from_invalid_parameter
from server.protocol import ChatCompletionRequest, CompletionRequest, _Sampling


def structured_from_request(req: _Sampling) -> tuple[StructuredOutputsParams | None, str | None]:
    """The output constraint asked by response_format or structured_outputs, and the name of
    the field that asked for it (for error messages)."""
    rf, so = req.response_format, req.structured_outputs
    if rf is not None and rf.type != "text" and so is not None:
        raise bad_request("set response_format or structured_outputs, not both", "structured_outputs")
    try:
        if so is not None:
            fields = so.model_dump(by_alias=True, exclude_none=True)
            return StructuredOutputsParams(**fields), "structured_outputs"
        if rf is None or rf.type == "text":
            if rf is not None and rf.json_schema is not None:
                raise bad_request("json_schema is only allowed with type 'json_schema'", "response_format.json_schema")
            return None, None
        if rf.type == "json_object":
            return StructuredOutputsParams(json_object=True), "response_format"
        if rf.json_schema is None or rf.json_schema.schema_ is None:
            raise bad_request("type 'json_schema' needs json_schema.schema", "response_format.json_schema.schema")
        return StructuredOutputsParams(json=rf.json_schema.schema_), "response_format"
    except InvalidParameterError as e:
        raise bad_request(e.message, "response_format" if so is None else "structured_outputs") from None


def _check_token_ids(req: _Sampling, vocab_size: int) -> None:
    for key in req.logit_bias or {}:
        if key.lstrip("-").isdigit() and not 0 <= int(key) < vocab_size:
            raise bad_request(f"logit_bias: token id {key} is outside the vocabulary [0, {vocab_size})", "logit_bias")
    for t in req.stop_token_ids or []:
        if not 0 <= t < vocab_size:
            raise bad_request(f"stop_token_ids: token id {t} is outside the vocabulary [0, {vocab_size})",
                              "stop_token_ids")


def build_sampling_params(
    req: _Sampling, *, max_tokens: int | None, max_tokens_field: str, logprobs: int | None,
    logprobs_field: str, structured: StructuredOutputsParams | None, vocab_size: int,
) -> SamplingParams:
    """The engine's parameters for `req`; raises APIError(400) naming the offending field."""
    _check_token_ids(req, vocab_size)
    if req.stream_options is not None and not req.stream:
        raise bad_request("stream_options is only allowed with stream=true", "stream_options")
    kw = dict(
        n=req.n, presence_penalty=req.presence_penalty, frequency_penalty=req.frequency_penalty,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p, seed=req.seed, stop=req.stop,
        stop_token_ids=req.stop_token_ids, ignore_eos=req.ignore_eos, max_tokens=max_tokens,
        min_tokens=req.min_tokens, logprobs=logprobs,
        include_stop_str_in_output=req.include_stop_str_in_output, logit_bias=req.logit_bias,
        structured_outputs=structured,
    )
    for name in ("top_k", "min_p", "repetition_penalty"):
        if getattr(req, name) is not None:
            kw[name] = getattr(req, name)
    try:
        return SamplingParams(**kw)
    except InvalidParameterError as e:
        raise from_invalid_parameter(e, {"max_tokens": max_tokens_field, "logprobs": logprobs_field}) from None


def chat_sampling_params(req: ChatCompletionRequest, structured, vocab_size: int) -> SamplingParams:
    if req.max_tokens is not None and req.max_completion_tokens is not None:
        raise bad_request("set max_tokens or max_completion_tokens, not both", "max_completion_tokens")
    field = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if req.top_logprobs is not None and not req.logprobs:
        raise bad_request("top_logprobs needs logprobs=true", "top_logprobs")
    logprobs = (req.top_logprobs or 0) if req.logprobs else None
    return build_sampling_params(req, max_tokens=max_tokens, max_tokens_field=field, logprobs=logprobs,
                                 logprobs_field="top_logprobs", structured=structured, vocab_size=vocab_size)


def completion_sampling_params(req: CompletionRequest, structured, vocab_size: int) -> SamplingParams:
    if req.stream and req.echo:
        # echo is honoured for non-streamed replies only; say so instead of dropping it
        raise bad_request("echo is not supported with stream=true", "echo")
    return build_sampling_params(req, max_tokens=req.max_tokens, max_tokens_field="max_tokens",
                                 logprobs=req.logprobs, logprobs_field="logprobs", structured=structured,
                                 vocab_size=vocab_size)


__all__ = ["APIError", "build_sampling_params", "chat_sampling_params", "completion_sampling_params",
           "structured_from_request"]
