"""Reading tool calls out of what models write."""

from __future__ import annotations

import json

from app.node.tools import forced_calls, might_be_call, parse_calls


def test_tool_calls_are_read_in_the_formats_templates_teach() -> None:
    for text in (
        '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>',
        '[TOOL_CALLS][{"name": "f", "arguments": {"a": 1}}]',
        '{"name": "f", "parameters": {"a": 1}}',
    ):
        [call] = parse_calls(text) or []
        assert call["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert parse_calls("just words") is None and parse_calls('{"no": "name"}') is None
    assert might_be_call("  <tool") and might_be_call("") and not might_be_call("Hello")


def test_a_forced_call_cut_short_keeps_its_name_and_the_arguments_so_far() -> None:
    [call] = forced_calls('{"name":"f","arguments":{"a":"x', ("f", "g"))
    assert call["function"] == {"name": "f", "arguments": '{"a":"x'}
    [call] = forced_calls('{"name":"g', ("f", "g"))
    assert call["function"] == {"name": "g", "arguments": ""}
    [call] = forced_calls('{"name":"f","arguments":{"a":1}}', ("f",))
    assert json.loads(call["function"]["arguments"]) == {"a": 1}
