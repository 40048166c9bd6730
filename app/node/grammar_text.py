"""GBNF building blocks: the rules of plain JSON values, literals, and repetitions of any
count written so llama.cpp's parser takes them (it refuses `{m,}` past 2000 and reads
`{m,n}` past 2000 as unbounded, so long runs are chained through rules of CHUNK)."""

from __future__ import annotations

import json
from collections.abc import Callable

from app.core.wire import JsonValue

ANY_CHAR = (  # any JSON string character, as the grammar for `.*` around an unanchored pattern
    '([^"\\\\\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | '
    '"u" [dD] [0-7] [0-9a-fA-F]{2}))'
)
CHUNK = 500  # repetitions per rule: far below llama.cpp's MAX_REPETITION_THRESHOLD (2000)
PRIMITIVES = {
    "ws": '( " " | "\\n" [ \\t]{0,20} )?',  # bounded, so a wild model cannot pad forever
    "char": ANY_CHAR,  # no raw control character, no lone surrogate
    "string": '"\\"" char* "\\""',
    "integer": '"-"? ("0" | [1-9] [0-9]{0,15})',
    "number": 'integer ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,2})?',
    "boolean": '"true" | "false"',
    "null": '"null"',
    "value": "object | array | string | number | boolean | null",
    "object": '"{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* ws )? "}"',
    "array": '"[" ws ( value ( ws "," ws value )* ws )? "]"',
}
DEPENDS = {
    "string": ["char"],
    "number": ["integer"],
    "value": ["object", "array", "string", "number", "boolean", "null"],
    "object": ["ws", "string", "value"],
    "array": ["ws", "value"],
}


def literal(text: str) -> str:
    """A GBNF string literal of `text` (which holds no control characters)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def json_literal(value: JsonValue) -> str:
    """GBNF for exactly the compact JSON text of `value`."""
    return literal(json.dumps(value, separators=(",", ":")))


def repeat(item: str, lo: int, hi: int | None, add: Callable[[str, str], str]) -> str:
    """GBNF for `item` repeated lo to hi times (no upper end when hi is None), adding rules
    with `add(hint, body)` where the counts are past CHUNK."""
    if lo <= CHUNK and (hi is None or hi <= CHUNK):
        return f"{item}{{{lo},{'' if hi is None else hi}}}"
    parts: list[str] = []
    if lo > CHUNK:
        block = add("block", f"{item}{{{CHUNK}}}")
        parts = [block] * (lo // CHUNK) + ([f"{item}{{{lo % CHUNK}}}"] if lo % CHUNK else [])
    if hi is None:
        parts.append(f"{item}*")
    elif hi > lo:
        # up to `hi - lo` more, a chunk at a time, each rule "under a chunk" or "a chunk, then
        # the next rule" (so one text has one parse)
        rest = hi - lo
        tail = f"{item}{{0,{rest % CHUNK or CHUNK}}}"
        for _ in range(rest % CHUNK or CHUNK, rest, CHUNK):
            tail = add("upto", f"{item}{{0,{CHUNK - 1}}} | {item}{{{CHUNK}}} {tail}")
        parts.append(tail)
    return " ".join(parts)
