"""gramserve: the Python SDK for tool calling and typed structured outputs.

    from gramserve import Client, AsyncClient, tool

Depends only on httpx and pydantic; talks to gramserve or any OpenAI-compatible server.
"""
from __future__ import annotations

from .async_client import AsyncClient
from .client import Client
from .errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    GramserveError,
    MaxTurnsExceededError,
    NotFoundError,
    OutputValidationError,
    OverloadedError,
    RateLimitError,
    ServerError,
    TruncatedOutputError,
)
from .partial_json import PartialJSONError, parse_partial_json
from .streams import AsyncTextStream, TextStream
from .tools import Tool, tool
from .types import ChatCompletion, ChatMessage, RunResult, ToolCallRecord, Usage

__all__ = [
    "APIConnectionError", "APIResponseValidationError", "APIStatusError", "APITimeoutError", "AsyncClient",
    "AsyncTextStream", "TextStream",
    "AuthenticationError", "BadRequestError", "ChatCompletion", "ChatMessage", "Client", "GramserveError",
    "MaxTurnsExceededError", "NotFoundError", "OutputValidationError", "OverloadedError", "PartialJSONError",
    "RateLimitError", "RunResult", "ServerError", "Tool", "ToolCallRecord", "TruncatedOutputError", "Usage",
    "parse_partial_json", "tool",
]
