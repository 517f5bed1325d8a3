"""Per-request sampling parameters (vLLM field names and defaults) and their validation.

Every field changes behaviour or is rejected: `__post_init__` normalizes the vLLM spellings
(`stop="x"` -> `["x"]`, `top_k=-1` -> 0, `seed=-1` -> None, string token ids in `logit_bias`
-> int) and raises `InvalidParameterError(param, message)` naming the field for anything out of
range, so the server can answer HTTP 400 before the request is queued.
"""
from __future__ import annotations

import copy
import dataclasses
import enum
import json as _json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidParameterError

_SAMPLING_EPS = 1e-5  # temperatures below this are greedy
_MIN_TEMPERATURE = 1e-2  # 0 < t < this is raised to this (logits / t overflows otherwise)
MAX_TEMPERATURE = 2.0  # OpenAI's and vLLM's upper bound
MAX_N = 128
MAX_LOGPROBS = 20  # OpenAI's top_logprobs cap
MAX_LOGIT_BIAS = 100.0


class SamplingType(enum.IntEnum):
    GREEDY = 0
    RANDOM = 1
    RANDOM_SEED = 2


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require_number(name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> None:
    """value must be a finite number in [lo, hi] ((lo, hi] when lo_open)."""
    if not _is_number(value) or not math.isfinite(value):
        raise InvalidParameterError(name, f"must be a finite number, got {value!r}")
    if (value <= lo if lo_open else value < lo) or value > hi:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise InvalidParameterError(name, f"must be in {interval}, got {value!r}")


def _require_int(name: str, value: Any, lo: int, hi: int | None = None) -> None:
    if not _is_int(value):
        raise InvalidParameterError(name, f"must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"in [{lo}, {hi}]" if hi is not None else f"at least {lo}"
        raise InvalidParameterError(name, f"must be {bound}, got {value}")


@dataclass
class StructuredOutputsParams:
    """One output constraint (vLLM spelling); exactly one field must be set.

    json: a JSON Schema (dict, or its JSON text); regex: a regular expression the whole output
    matches; choice: the output is exactly one of these strings; grammar: Lark grammar text;
    json_object: True for any JSON object (OpenAI's JSON mode).

    close_before_limit (default True): when the tokens a request may still emit (max_tokens, or
    the context window) barely cover the grammar's shortest completion, only tokens that spell
    it are allowed, so the output still ends valid instead of being cut off mid-value.  The
    request then finishes with "stop".  False gives vLLM's behaviour (cut off, "length").
    """

    json: dict | str | None = None
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None
    json_object: bool | None = None
    close_before_limit: bool = True

    KINDS = ("json", "regex", "choice", "grammar", "json_object")

    def __post_init__(self) -> None:
        set_kinds = [k for k in self.KINDS if getattr(self, k) is not None]
        if len(set_kinds) != 1:
            got = ", ".join(set_kinds) if set_kinds else "none"
            raise InvalidParameterError(
                "structured_outputs",
                f"set exactly one of {', '.join(self.KINDS)}; got {got}",
            )
        self._check_value(set_kinds[0])
        if not isinstance(self.close_before_limit, bool):
            raise InvalidParameterError("structured_outputs.close_before_limit", "must be a boolean")

    def _check_value(self, kind: str) -> None:
        value = getattr(self, kind)
        bad = None
        if kind == "json":
            if isinstance(value, str):
                try:
                    value = _json.loads(value)
                except ValueError as exc:
                    bad = f"json is not valid JSON text: {exc}"
            if bad is None and not isinstance(value, (dict, bool)):
                bad = f"json must be a JSON Schema object, got {type(value).__name__}"
        elif kind in ("regex", "grammar"):
            if not isinstance(value, str) or not value:
                bad = f"{kind} must be a non-empty string"
        elif kind == "choice":
            if (not isinstance(value, (list, tuple)) or not value
                    or not all(isinstance(c, str) for c in value)):
                bad = "choice must be a non-empty list of strings"
        elif value is not True:
            bad = "json_object must be True when set (leave it None to disable)"
        if bad is not None:
            raise InvalidParameterError("structured_outputs", bad)

    @property
    def kind(self) -> str:
        """Which constraint is set: one of KINDS."""
        return next(k for k in self.KINDS if getattr(self, k) is not None)

    def cache_key(self) -> str:
        """Canonical text of the constraint: equal constraints give equal keys (dict order
        and json-as-text vs json-as-dict do not matter)."""
        value = getattr(self, self.kind)
        if self.kind == "json" and isinstance(value, str):
            value = _json.loads(value)
        return self.kind + ":" + _json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class SamplingParams:
    """Sampling parameters for one request (see the module docstring for normalization).

    max_tokens=None means "until the context window is full" (the engine applies the limit).
    logprobs=k returns, at each sampled position, the sampled token's logprob plus the top k.
    """

    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    min_tokens: int = 0
    logprobs: int | None = None
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True
    logit_bias: dict[int, float] | None = None
    structured_outputs: StructuredOutputsParams | None = None
    # Set by the engine from the tokenizer/generation config (with_eos), not by users.
    _eos_token_ids: frozenset[int] = field(default=frozenset(), init=False, repr=False,
                                           compare=False)

    def __post_init__(self) -> None:
        self._normalize()
        self._verify_sampling()
        self._verify_lengths()
        self._verify_stops()
        self._verify_logit_bias()
        if not (self.structured_outputs is None
                or isinstance(self.structured_outputs, StructuredOutputsParams)):
            raise InvalidParameterError(
                "structured_outputs", "must be a StructuredOutputsParams or None")
        if self.temperature < _SAMPLING_EPS:
            # Greedy: the truncation knobs cannot change an argmax, so turn them off.
            self.top_p, self.top_k, self.min_p = 1.0, 0, 0.0
            if self.n > 1:
                raise InvalidParameterError(
                    "n", f"must be 1 when temperature is 0 (greedy decoding would return "
                         f"{self.n} identical outputs); raise temperature or set n=1")

    def _normalize(self) -> None:
        if self.seed == -1:
            self.seed = None
        if self.top_k == -1:
            self.top_k = 0
        if self.logprobs is True:
            self.logprobs = 1
        if self.stop is None:
            self.stop = []
        elif isinstance(self.stop, str):
            self.stop = [self.stop]
        elif isinstance(self.stop, (list, tuple)):
            self.stop = list(dict.fromkeys(self.stop))  # dedupe, keep order
        if self.stop_token_ids is None:
            self.stop_token_ids = []
        elif isinstance(self.stop_token_ids, (list, tuple, set, frozenset)):
            self.stop_token_ids = list(dict.fromkeys(self.stop_token_ids))
        if _is_number(self.temperature) and 0 < self.temperature < _MIN_TEMPERATURE:
            self.temperature = _MIN_TEMPERATURE

    def _verify_sampling(self) -> None:
        _require_int("n", self.n, 1, MAX_N)
        _require_number("presence_penalty", self.presence_penalty, -2.0, 2.0)
        _require_number("frequency_penalty", self.frequency_penalty, -2.0, 2.0)
        rp = self.repetition_penalty
        if not _is_number(rp) or not math.isfinite(rp) or rp <= 0:
            raise InvalidParameterError(
                "repetition_penalty", f"must be a finite number greater than 0 (1 = off), "
                                      f"got {rp!r}")
        _require_number("temperature", self.temperature, 0.0, MAX_TEMPERATURE)
        _require_number("top_p", self.top_p, 0.0, 1.0, lo_open=True)
        if not _is_int(self.top_k) or self.top_k < 0:
            raise InvalidParameterError(
                "top_k", f"must be 0 or -1 (disabled) or a positive integer, got {self.top_k!r}")
        _require_number("min_p", self.min_p, 0.0, 1.0)
        if self.seed is not None and not _is_int(self.seed):
            raise InvalidParameterError("seed", f"must be an integer or None, got {self.seed!r}")
        if self.logprobs is not None:
            _require_int("logprobs", self.logprobs, 0, MAX_LOGPROBS)
        for name in ("ignore_eos", "include_stop_str_in_output", "skip_special_tokens"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidParameterError(name, f"must be true or false, got "
                                                  f"{getattr(self, name)!r}")

    def _verify_lengths(self) -> None:
        if self.max_tokens is not None:
            _require_int("max_tokens", self.max_tokens, 1)
        _require_int("min_tokens", self.min_tokens, 0)
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise InvalidParameterError(
                "min_tokens", f"must be at most max_tokens={self.max_tokens}, "
                              f"got {self.min_tokens}")

    def _verify_stops(self) -> None:
        if not isinstance(self.stop, list) or not all(isinstance(s, str) for s in self.stop):
            raise InvalidParameterError("stop", "must be a string or a list of strings")
        if any(not s for s in self.stop):
            raise InvalidParameterError("stop", "stop strings must be non-empty")
        if not isinstance(self.stop_token_ids, list) or not all(
                _is_int(t) and t >= 0 for t in self.stop_token_ids):
            raise InvalidParameterError(
                "stop_token_ids", f"must be a list of non-negative token ids, "
                                  f"got {self.stop_token_ids!r}")

    def _verify_logit_bias(self) -> None:
        if self.logit_bias is None:
            return
        if not isinstance(self.logit_bias, dict):
            raise InvalidParameterError("logit_bias", "must be a mapping token id -> bias")
        biases: dict[int, float] = {}
        for key, bias in self.logit_bias.items():
            try:  # JSON object keys arrive as strings: "50256" -> 50256
                token = int(key) if not isinstance(key, (bool, float)) else None
            except (TypeError, ValueError):
                token = None
            if token is None or token < 0:
                raise InvalidParameterError(
                    "logit_bias", f"keys must be non-negative token ids, got {key!r}")
            _require_number("logit_bias", bias, -MAX_LOGIT_BIAS, MAX_LOGIT_BIAS)
            biases[token] = float(bias)
        self.logit_bias = biases

    @property
    def sampling_type(self) -> SamplingType:
        if self.temperature < _SAMPLING_EPS:
            return SamplingType.GREEDY
        return SamplingType.RANDOM if self.seed is None else SamplingType.RANDOM_SEED

    @property
    def all_stop_token_ids(self) -> frozenset[int]:
        """stop_token_ids plus the model's EOS ids, even with ignore_eos: the sampler masks all
        of them while fewer than min_tokens tokens have been generated."""
        return frozenset(self.stop_token_ids) | self._eos_token_ids

    @property
    def finish_token_ids(self) -> frozenset[int]:
        """Token ids that end the request when sampled: EOS only unless ignore_eos."""
        eos = frozenset() if self.ignore_eos else self._eos_token_ids
        return frozenset(self.stop_token_ids) | eos

    def with_eos(self, eos_token_ids: Iterable[int]) -> "SamplingParams":
        """A copy that knows the model's EOS token ids (called by the engine per request)."""
        out = self.clone()
        out._eos_token_ids = frozenset(int(t) for t in eos_token_ids)
        return out

    def clone(self) -> "SamplingParams":
        """A deep copy: requests (and the n>1 children of one) never share mutable lists."""
        return copy.deepcopy(self)

    def with_updates(self, **changes: Any) -> "SamplingParams":
        """A validated copy with some fields changed (unknown names raise TypeError)."""
        out = dataclasses.replace(copy.deepcopy(self), **changes)
        out._eos_token_ids = self._eos_token_ids
        return out
