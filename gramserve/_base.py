"""Configuration and request shaping shared by Client and AsyncClient (no I/O here)."""
from __future__ import annotations

from typing import Any, Optional

from ._http import RetryPolicy
from ._loop import normalize_messages, tool_choice_param
from .errors import OutputValidationError, TruncatedOutputError
from .partial_json import PartialJSONError, parse_partial_json
from .schema import OutputSpec
from .tools import Tool

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"


class ClientBase:
    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_key: Optional[str] = None,
                 model: Optional[str] = None, timeout: float = 60.0, max_retries: int = 2) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries)
        self._resolved_model: Optional[str] = None
        self._model_resolved = False

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "gramserve-sdk"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _remember_models(self, listing: dict[str, Any]) -> Optional[str]:
        """model=None: use the first model the server lists (None: leave "model" out)."""
        data = listing.get("data") or []
        self._resolved_model = data[0].get("id") if data and isinstance(data[0], dict) else None
        self._model_resolved = True
        return self._resolved_model

    def _payload(self, messages: Any, model: Optional[str], *, tools: Any = None, tool_choice: Any = None,
                 response_format: Any = None, streaming: bool = False, **sampling: Any) -> dict[str, Any]:
        """The chat/completions body. Sampling keywords pass through unchanged (the server
        validates them); None values are left out so server defaults apply."""
        if "stream" in sampling:
            raise TypeError("stream= is chosen by the method: use stream() or stream_parse() to stream")
        body: dict[str, Any] = {"messages": normalize_messages(messages)}
        if model:
            body["model"] = model
        if tools:
            body["tools"] = [t.to_openai() if isinstance(t, Tool) else t for t in tools]
        if tool_choice is not None:
            body["tool_choice"] = tool_choice_param(tool_choice)
        if response_format is not None:
            body["response_format"] = response_format
        if streaming:
            body["stream"] = True
        body.update({k: v for k, v in sampling.items() if v is not None})
        return body


def validate_output(spec: OutputSpec, text: Optional[str], finish_reason: Optional[str],
                    refusal: Optional[str] = None) -> Any:
    """The final structured answer, validated; a truncated answer raises TruncatedOutputError."""
    if refusal:
        raise OutputValidationError(f"the model refused: {refusal}", refusal)
    if text is None:
        raise OutputValidationError("the response has no content", "")
    try:
        return spec.validate_json(text)
    except OutputValidationError as e:
        if finish_reason == "length":
            raise TruncatedOutputError("the output stopped at max_tokens before it was complete; "
                                       "raise max_tokens", text, errors=e.errors) from e
        raise


class PartialTracker:
    """Turns the growing text of a stream into the distinct partial values worth yielding."""

    def __init__(self) -> None:
        self.last: Any = None

    def update(self, text: str) -> Any:
        """The new partial value, or None when it did not change (or is not a JSON prefix yet)."""
        try:
            value = parse_partial_json(text)
        except PartialJSONError:
            return None  # not a JSON prefix: validation of the final text reports it
        if value is None or value == self.last:
            return None
        self.last = value
        return value
