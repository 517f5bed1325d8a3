"""The protocol logic of the tool loop and of streams, free of I/O so both clients share it.

RunState drives `run`:

    turn 0: request(messages, tools, tool_choice)  -> assistant message
            no tool calls  -> final answer, done
            tool calls     -> prepare (parse + validate) -> execute (client-specific) -> tool messages
    turn 1: request(messages + assistant + tool messages, tool_choice="auto") ...
    after max_turns requests without a final answer -> MaxTurnsExceededError(result so far)

A forcing tool_choice ("required" or a named function) applies to the first turn only; later
turns use "auto", otherwise the model could never give its final answer.

StreamAccumulator folds chat.completion.chunk dicts into text deltas and a final message,
joining tool-call fragments by their `index` (id and name arrive once, arguments in pieces).
"""
from __future__ import annotations

import itertools
from typing import Any, Optional

from .errors import MaxTurnsExceededError
from .tools import PreparedCall, Tool, as_tools, prepare_call
from .types import ChatCompletion, ChatMessage, FunctionCall, RunResult, ToolCall, Usage

_call_ids = itertools.count()


def normalize_messages(messages: Any) -> list[dict[str, Any]]:
    """A str becomes one user message; message objects become dicts; the caller's list is copied."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out = []
    for m in messages:
        out.append(m.to_request() if isinstance(m, ChatMessage) else dict(m))
    return out


def tool_choice_param(choice: Any) -> Any:
    """"auto" | "none" | "required" | a tool name | a Tool | an OpenAI dict -> the wire value."""
    if isinstance(choice, Tool):
        choice = choice.name
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


class RunState:
    def __init__(self, messages: Any, tools: list[Any], tool_choice: Any, max_turns: int) -> None:
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        self.messages = normalize_messages(messages)
        self.tools = as_tools(tools)
        self.tool_choice = tool_choice_param(tool_choice)
        self.max_turns = max_turns
        self.turn = 0
        self.records: list = []
        self.usage = Usage()
        self.last: Optional[ChatMessage] = None
        self.finish_reason: Optional[str] = None

    def request_kwargs(self) -> dict[str, Any]:
        choice = self.tool_choice if self.turn == 0 or self.tool_choice == "none" else "auto"
        return {"tools": [t.to_openai() for t in self.tools.values()], "tool_choice": choice}

    def on_completion(self, completion: ChatCompletion) -> Optional[list[PreparedCall]]:
        """Record the assistant turn; the calls to execute, or None when this is the final answer."""
        if completion.usage is not None:
            self.usage = self.usage + completion.usage
        choice = completion.choices[0]
        message, self.finish_reason = choice.message, choice.finish_reason
        for call in message.tool_calls or []:
            if not call.id:
                call.id = f"call_{next(_call_ids)}"
        self.last = message
        self.messages.append(message.to_request())
        self.turn += 1
        if not message.tool_calls:
            return None
        return [prepare_call(call, self.tools, self.turn - 1) for call in message.tool_calls]

    def on_results(self, calls: list[PreparedCall]) -> None:
        """Append one tool message per call, in the model's order; raise if the turns are spent."""
        for p in calls:
            self.records.append(p.record)
            self.messages.append({"role": "tool", "tool_call_id": p.record.id, "content": p.record.content})
        if self.turn >= self.max_turns:
            raise MaxTurnsExceededError(self.max_turns, self.result())

    def result(self) -> RunResult:
        return RunResult(final_message=self.last or ChatMessage(), messages=self.messages,
                         tool_calls=list(self.records), usage=self.usage, turns=self.turn,
                         finish_reason=self.finish_reason)


class StreamAccumulator:
    def __init__(self) -> None:
        self.content: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}  # index -> {"id", "name", "arguments": [fragments]}
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Usage] = None
        self.model = ""

    def add(self, chunk: dict[str, Any]) -> str:
        """Fold one chunk in; returns its text delta ("" when it carries none)."""
        self.model = chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = Usage.model_validate(chunk["usage"])
        text = ""
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                slot = self.calls.setdefault(tc.get("index", len(self.calls)),
                                             {"id": "", "name": "", "arguments": []})
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"].append(fn.get("arguments") or "")
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        self.content.append(text)
        return text

    @property
    def text(self) -> str:
        return "".join(self.content)

    def message(self) -> ChatMessage:
        calls = [ToolCall(id=c["id"] or f"call_{next(_call_ids)}",
                          function=FunctionCall(name=c["name"], arguments="".join(c["arguments"])))
                 for _, c in sorted(self.calls.items())]
        return ChatMessage(content=self.text or None, tool_calls=calls or None)
