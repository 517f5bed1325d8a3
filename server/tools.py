"""tools + tool_choice + parallel_tool_calls -> what the model is shown and how it is constrained.

    tool_choice   tools in prompt   constraint (tool_grammar)              reply parsed for calls
    none          no                none (or response_format's)            no
    auto          yes               text, then calls once the tag starts   yes
    required      yes               one call (or several if parallel)      yes
    {function}    that tool only    one call (or several) of that tool     yes

The Lark text of each distinct (tools, mode) is built once off the event loop and kept in a
small LRU; the grammar library caches the compiled grammar by that text.
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from engine.sampling_params import StructuredOutputsParams
from server.errors import bad_request, from_grammar_error
from server.protocol import ChatCompletionRequest, NamedToolChoice, Tool
from server.tool_grammar import ir_to_lark, tool_call_grammar

_LARK_CACHE_SIZE = 64


@dataclass
class ToolPlan:
    prompt_tools: list[Tool] | None  # tools listed to the model
    spec: StructuredOutputsParams | None  # the call grammar, or None
    parse: bool  # whether the reply is parsed for <tool_call> blocks


class ToolGrammarCache:
    def __init__(self) -> None:
        self._lark: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()  # lark_text runs on executor threads

    def lark_text(self, tools: list[Tool], allow_text: bool, parallel: bool) -> str:
        """Lark grammar text of the calls; raises GrammarError tagged with .tool_index."""
        from grammar import GrammarError

        pairs = [(t.function.name, t.function.parameters or {"type": "object"}) for t in tools]
        key = json.dumps([pairs, allow_text, parallel], sort_keys=True)
        with self._lock:
            if key in self._lark:
                self._lark.move_to_end(key)
                return self._lark[key]
        for i, (_, schema) in enumerate(pairs):  # lower each alone first: errors name the tool
            try:
                tool_call_grammar([pairs[i]], allow_text=False, parallel=False)
            except GrammarError as e:
                e.tool_index = i
                raise
        text = ir_to_lark(tool_call_grammar(pairs, allow_text=allow_text, parallel=parallel))
        with self._lock:
            self._lark[key] = text
            while len(self._lark) > _LARK_CACHE_SIZE:
                self._lark.popitem(last=False)
        return text


def _check_choice(req: ChatCompletionRequest) -> str | NamedToolChoice:
    choice = req.tool_choice
    if not req.tools:
        if choice not in (None, "none"):
            raise bad_request("tool_choice needs tools", "tool_choice")
        return "none"
    names = [t.function.name for t in req.tools]
    if len(set(names)) != len(names):
        raise bad_request("tool names must be unique", "tools")
    if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
        raise bad_request(f"tool_choice names {choice.function.name!r}, which is not in tools", "tool_choice")
    return choice or "auto"


async def plan_tools(cache: ToolGrammarCache, req: ChatCompletionRequest, has_other_constraint: bool) -> ToolPlan:
    from grammar import GrammarError

    choice = _check_choice(req)
    if choice == "none":
        return ToolPlan(None, None, False)
    if has_other_constraint:
        raise bad_request("response_format / structured_outputs cannot be combined with tool calls; "
                          "set tool_choice='none' or drop the format", "tool_choice")
    tools = list(req.tools)
    if isinstance(choice, NamedToolChoice):
        tools = [t for t in tools if t.function.name == choice.function.name]
    loop = asyncio.get_running_loop()
    try:
        text = await loop.run_in_executor(None, cache.lark_text, tools, choice == "auto", req.parallel_tool_calls)
    except GrammarError as e:
        index = req.tools.index(tools[getattr(e, "tool_index", 0)])
        raise from_grammar_error(e, f"tools[{index}].function.parameters") from None
    return ToolPlan(tools, StructuredOutputsParams(grammar=text), True)
