"""Chat messages (OpenAI shape) -> the model's prompt text through its chat template.

Tools reach the model through the template's own tools support when it has one (the template
mentions `tools`); otherwise, as for SmolLM2, through a default system prompt that lists the
tools' JSON Schemas and the call format the tool grammar enforces:

    <tool_call>{"name": "NAME", "arguments": {...}}</tool_call>

Assistant turns with tool_calls are rendered in that same format, and tool results as
`<tool_response>` blocks, so a multi-turn tool loop reads consistently to the model.
"""
from __future__ import annotations

import json

from server.errors import bad_request
from server.protocol import ChatMessage, Tool
from server.tool_grammar import TOOL_CLOSE, TOOL_OPEN, call_head

TOOLS_PROMPT = (
    "You are a helpful assistant with access to the following tools. Each line is one tool: its "
    "name, what it does and the JSON Schema of its arguments.\n{tools}\n\n"
    "To call a tool, reply with\n" + TOOL_OPEN + '{{"name": <tool name>, "arguments": <arguments as a '
    'JSON object>}}' + TOOL_CLOSE + "\nOtherwise answer the user directly."
)


def _text(msg: ChatMessage) -> str:
    if msg.content is None:
        return msg.refusal or ""
    if isinstance(msg.content, str):
        return msg.content
    return "".join(part.text for part in msg.content)


def format_call(name: str, arguments: str) -> str:
    """One call as the model writes it (the tool grammar's exact shape)."""
    return TOOL_OPEN + call_head(name) + arguments + "}" + TOOL_CLOSE


def tools_system_prompt(tools: list[Tool]) -> str:
    lines = [json.dumps({"name": t.function.name, "description": t.function.description or "",
                         "parameters": t.function.parameters or {"type": "object"}}) for t in tools]
    return TOOLS_PROMPT.format(tools="\n".join(lines))


def _convert(messages: list[ChatMessage], native_tool_role: bool) -> list[dict]:
    """OpenAI messages -> template dicts (role, content string)."""
    out: list[dict] = []
    call_names: dict[str, str] = {}
    for i, msg in enumerate(messages):
        text = _text(msg)
        role = "system" if msg.role == "developer" else msg.role
        if msg.name and msg.role != "tool":  # a participant's name: written before their words
            text = f"{msg.name}: {text}"
        if msg.role == "assistant" and msg.tool_calls:
            for call in msg.tool_calls:
                call_names[call.id] = call.function.name
            calls = "\n".join(format_call(c.function.name, c.function.arguments) for c in msg.tool_calls)
            text = f"{text}\n{calls}" if text else calls
        if msg.role == "tool":
            if msg.name:
                raise bad_request("name is not allowed on tool messages", f"messages[{i}].name")
            if msg.tool_call_id is None:
                raise bad_request("a tool message needs tool_call_id", f"messages[{i}].tool_call_id")
            if msg.tool_call_id not in call_names:
                raise bad_request(f"tool_call_id {msg.tool_call_id!r} answers no earlier assistant tool call",
                                  f"messages[{i}].tool_call_id")
            text = f"<tool_response>\n{text}\n</tool_response>"
            role = "tool" if native_tool_role else "user"
        elif msg.tool_call_id is not None:
            raise bad_request("tool_call_id is only allowed on tool messages", f"messages[{i}].tool_call_id")
        if msg.tool_calls and msg.role != "assistant":
            raise bad_request("tool_calls is only allowed on assistant messages", f"messages[{i}].tool_calls")
        out.append({"role": role, "content": text})
    return out


def render_chat(tokenizer, template: str | None, messages: list[ChatMessage], tools: list[Tool] | None) -> str:
    """The prompt text for `messages` (ends with the assistant generation prompt)."""
    template = template or getattr(tokenizer, "chat_template", None)
    if not template:
        raise bad_request("this model has no chat template: use /v1/completions", "messages")
    # a template that names the tool role renders it; others (SmolLM2 writes any role verbatim,
    # many do not) get tool results as user turns
    native_tools = "tools" in template
    conv = _convert(messages, native_tool_role="tool" in template)
    kwargs = {}
    if tools and native_tools:
        kwargs["tools"] = [t.model_dump(exclude_none=True) for t in tools]
    elif tools:
        prompt = tools_system_prompt(tools)
        if conv[0]["role"] == "system":
            conv[0] = {"role": "system", "content": conv[0]["content"] + "\n\n" + prompt}
        else:
            conv.insert(0, {"role": "system", "content": prompt})
    try:
        return tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True,
                                             chat_template=template, **kwargs)
    except Exception as e:  # jinja raises for conversations the template refuses (role order, ...)  # noqa: BLE001
        raise bad_request(f"the chat template rejected these messages: {e}", "messages") from None
