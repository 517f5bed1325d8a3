"""Chat rendering: the default tools system prompt, assistant tool calls and tool results."""
from __future__ import annotations

import jinja2
import pytest

from server.chat import render_chat
from server.errors import APIError
from server.protocol import ChatMessage, Tool

# SmolLM2-135M-Instruct's template (no tools support): any role is written verbatim
SMOL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are SmolLM<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


class _Tok:
    def apply_chat_template(self, conv, tokenize, add_generation_prompt, chat_template, **kw):
        assert not tokenize and "tools" not in kw  # this template has no tools support
        return jinja2.Template(chat_template).render(messages=conv, add_generation_prompt=add_generation_prompt)


TOOL = Tool.model_validate({"type": "function", "function": {
    "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}})


def _msgs(*dicts):
    return [ChatMessage.model_validate(d) for d in dicts]


def test_tools_prompt_and_round_trip():
    msgs = _msgs({"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Rome?"}]},
                 {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
                     "name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
                 {"role": "tool", "tool_call_id": "c1", "content": "21C"})
    text = render_chat(_Tok(), SMOL_TEMPLATE, msgs, [TOOL])
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant with access to the following tools")
    assert '"name": "get_weather"' in text and "Weather in Rome?" in text
    assert '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>' in text
    assert "<|im_start|>user\n<tool_response>\n21C\n</tool_response>" in text  # no tool role in the template
    assert text.endswith("<|im_start|>assistant\n")


def test_system_message_keeps_its_text_and_gains_the_tools():
    text = render_chat(_Tok(), SMOL_TEMPLATE, _msgs({"role": "developer", "content": "Be brief."},
                                                    {"role": "user", "content": "hi", "name": "ann"}), [TOOL])
    assert text.startswith("<|im_start|>system\nBe brief.\n\nYou are a helpful assistant")
    assert "<|im_start|>user\nann: hi" in text


@pytest.mark.parametrize("msgs, param", [
    ([{"role": "tool", "content": "x"}], "messages[0].tool_call_id"),
    ([{"role": "tool", "content": "x", "tool_call_id": "nope"}], "messages[0].tool_call_id"),
    ([{"role": "user", "content": "x", "tool_call_id": "c1"}], "messages[0].tool_call_id"),
])
def test_bad_tool_messages_are_400(msgs, param):
    with pytest.raises(APIError) as e:
        render_chat(_Tok(), SMOL_TEMPLATE, _msgs(*msgs), None)
    assert e.value.status == 400 and e.value.param == param
