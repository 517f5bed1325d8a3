"""A request owns its progress as counters and its token list; there are no phases.

    token_ids = prompt_token_ids + output_token_ids
    num_computed_tokens: how many of token_ids have their K/V in the cache.

Each step the scheduler grants a request `num_tokens - num_computed_tokens` tokens (or a chunk
of them, under the step's token budget). A step that brings the counter level with num_tokens
samples one new token. Prefill, chunked prefill, decode, prefix-cache hits (the counter starts
above zero) and recompute-preemption (the counter drops back to zero) all fall out of this rule.
"""
from __future__ import annotations

import enum
import time
from collections import Counter
from typing import Any

from engine.sampling_params import SamplingParams


class RequestStatus(enum.Enum):
    WAITING = "waiting"
    WAITING_FOR_GRAMMAR = "waiting_for_grammar"
    RUNNING = "running"
    PREEMPTED = "preempted"
    FINISHED_STOPPED = "finished_stopped"
    FINISHED_LENGTH = "finished_length"
    FINISHED_ABORTED = "finished_aborted"
    FINISHED_ERROR = "finished_error"


FINISHED = frozenset(
    {
        RequestStatus.FINISHED_STOPPED,
        RequestStatus.FINISHED_LENGTH,
        RequestStatus.FINISHED_ABORTED,
        RequestStatus.FINISHED_ERROR,
    }
)
FINISH_REASON = {
    RequestStatus.FINISHED_STOPPED: "stop",
    RequestStatus.FINISHED_LENGTH: "length",
    RequestStatus.FINISHED_ABORTED: "abort",
    RequestStatus.FINISHED_ERROR: "error",
}


class Request:
    def __init__(
        self,
        request_id: str,
        prompt_token_ids: list[int],
        params: SamplingParams,
        *,
        seed: int,
        eos_token_ids: frozenset[int] = frozenset(),
        prompt: str | None = None,
        parent_id: str | None = None,
        index: int = 0,
        arrival_time: float | None = None,
    ) -> None:
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = list(prompt_token_ids)
        self.token_ids: list[int] = list(prompt_token_ids)  # prompt + outputs, appended in place
        self.num_prompt_tokens = len(prompt_token_ids)
        self.params = params
        self.seed = seed
        self.eos_token_ids = eos_token_ids
        self.parent_id = parent_id or request_id
        self.index = index
        self.arrival_time = arrival_time if arrival_time is not None else time.monotonic()
        self.status = RequestStatus.WAITING
        self.num_computed_tokens = 0
        self.num_cached_tokens = -1  # prefix-cache hit of the first scheduling (-1: not yet)
        self.num_preemptions = 0
        self.stop_reason: int | str | None = None
        self.error: str | None = None
        self.output_counts: Counter[int] = Counter()  # for presence/frequency penalties
        self.logprobs: list[dict[int, Any]] | None = [] if params.logprobs is not None else None
        self.cumulative_logprob = 0.0 if params.logprobs is not None else None
        self.detokenizer: Any = None  # engine attaches an IncrementalDetokenizer
        self.matcher: Any = None  # structured-output cursor (grammar issue), None = unconstrained
        self.first_token_time: float | None = None

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens :]

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def append_token(self, token_id: int) -> None:
        self.token_ids.append(token_id)
        self.output_counts[token_id] += 1

    def __repr__(self) -> str:
        return (
            f"Request({self.request_id!r}, {self.status.value}, computed={self.num_computed_tokens}/"
            f"{self.num_tokens}, out={self.num_output_tokens})"
        )
