"""What generate() returns and the engine streams: vLLM's RequestOutput / CompletionOutput shapes.

A RequestOutput holds one CompletionOutput per sample (n of them). While a request runs,
finish_reason is None; when it ends it is one of FINISH_REASONS and, for "stop", stop_reason is
the stop string or stop token id that ended it (None when the model's EOS ended it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

FINISH_STOP = "stop"  # EOS, a stop token id, a stop string, or the grammar terminated
FINISH_LENGTH = "length"  # max_tokens or the context window
FINISH_ABORT = "abort"  # the client went away or the request was cancelled
FINISH_ERROR = "error"  # the request alone failed (e.g. its grammar did not compile); see `error`
FINISH_REASONS = frozenset({FINISH_STOP, FINISH_LENGTH, FINISH_ABORT, FINISH_ERROR})


@dataclass
class Logprob:
    """Log-probability of one token at one position.

    rank: 1-based rank of the token in the distribution at that position (1 = most likely);
    None when unknown. decoded_token: the token's text (see detokenize_logprob_token).
    """

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


# One dict per generated token: the sampled token id plus the top-k ids -> Logprob
# (so each dict has k or k+1 entries).
SampleLogprobs = list[dict[int, Logprob]]


@dataclass
class CompletionOutput:
    """One sample of a request.

    text and token_ids are cumulative (everything generated so far; stop handling applied to
    text). cumulative_logprob is the sum of the sampled tokens' logprobs, None unless
    logprobs were requested.
    """

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: SampleLogprobs | None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    error: str | None = None  # set with finish_reason "error"

    def __post_init__(self) -> None:
        if self.finish_reason is not None and self.finish_reason not in FINISH_REASONS:
            raise ValueError(f"finish_reason must be one of {sorted(FINISH_REASONS)} or None, "
                             f"got {self.finish_reason!r}")
        if self.stop_reason is not None and self.finish_reason != FINISH_STOP:
            raise ValueError("stop_reason is only set when finish_reason is 'stop'")

    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass
class RequestOutput:
    """The state of one request after an engine step (or at the end of generate()).

    num_cached_tokens: prompt tokens served from the prefix cache instead of computed.
    """

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput] = field(default_factory=list)
    finished: bool = False
    num_cached_tokens: int = 0
