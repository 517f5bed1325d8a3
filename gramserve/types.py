"""Typed views of OpenAI chat-completion responses, and the tool loop's result.

Response models accept unknown fields (extra="allow") so a server adding fields never breaks
the client; every field the SDK reads is declared here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ChatCompletion", "ChatMessage", "Choice", "FunctionCall", "RunResult", "ToolCall",
           "ToolCallRecord", "Usage"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Usage(_Open):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(prompt_tokens=self.prompt_tokens + other.prompt_tokens,
                     completion_tokens=self.completion_tokens + other.completion_tokens,
                     total_tokens=self.total_tokens + other.total_tokens)


class FunctionCall(_Open):
    name: str
    arguments: str = ""  # a JSON object, as text (OpenAI's wire format)


class ToolCall(_Open):
    id: str = ""  # some servers omit it; the tool loop then assigns one
    type: str = "function"
    function: FunctionCall


class ChatMessage(_Open):
    role: str = "assistant"
    content: Optional[str] = None
    tool_calls: Optional[list[ToolCall]] = None
    refusal: Optional[str] = None

    def to_request(self) -> dict[str, Any]:
        """This message as it goes back into a request's `messages`."""
        msg: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [{"id": tc.id, "type": tc.type,
                                  "function": {"name": tc.function.name, "arguments": tc.function.arguments}}
                                 for tc in self.tool_calls]  # exactly OpenAI's fields: servers may forbid extras
        return msg


class Choice(_Open):
    index: int = 0
    message: ChatMessage
    finish_reason: Optional[str] = None


class ChatCompletion(_Open):
    id: str = ""
    model: str = ""
    choices: list[Choice] = Field(min_length=1)
    usage: Optional[Usage] = None

    @property
    def message(self) -> ChatMessage:
        return self.choices[0].message


@dataclass
class ToolCallRecord:
    """One tool call of a run: what the model asked for and what came back."""

    id: str
    name: str
    arguments: dict[str, Any]  # the JSON arguments as the model sent them (empty if unparsable)
    result: Any = None  # the function's return value (None when it failed)
    error: Optional[str] = None  # set when the arguments were invalid or the function raised
    turn: int = 0
    content: str = ""  # the tool message sent back to the model


@dataclass
class RunResult:
    """What `Client.run` returns: the final answer, every call made on the way, and token usage."""

    final_message: ChatMessage
    messages: list[dict[str, Any]]  # the whole conversation, ready to continue
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    turns: int = 0
    finish_reason: Optional[str] = None

    @property
    def content(self) -> str:
        return self.final_message.content or ""
