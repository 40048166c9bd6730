"""The JSON-schema-to-GBNF converter: exact numeric ranges, patterns as JSON spells them,
grammars llama.cpp accepts, and a named 400 for what it cannot promise."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import llama_cpp
import pytest

from app.core.errors import BadRequest
from app.node.grammar_ranges import integer_range, number_range
from app.node.grammar_regex import pattern_grammar
from app.node.grammar_text import CHUNK, repeat
from app.node.json_grammar import call_grammar, schema_grammar
from tests.support.tiny_gguf import write_llama_gguf

_TOKEN = re.compile(r'(\[(?:[^\]\\]|\\.)*\])|"((?:[^"\\]|\\.)*)"')  # a class or a literal
_GBNF_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def as_regex(gbnf: str) -> re.Pattern[str]:
    """A rule-free GBNF expression as a Python regex (the two notations share the rest)."""

    def literal(m: re.Match[str]) -> str:
        if m.group(1):  # a class: Python writes it the same way
            return m.group(1)
        text = re.sub(r"\\(.)", lambda e: _GBNF_ESCAPES[e.group(1)], m.group(2))
        return "(?:" + re.escape(text) + ")"

    out, pos = [], 0
    for m in _TOKEN.finditer(gbnf):  # classes and literals, the rest with spaces dropped
        out.append(gbnf[pos : m.start()].replace(" ", "") + literal(m))
        pos = m.end()
    out.append(gbnf[pos:].replace(" ", ""))
    return re.compile("".join(out).replace("(", "(?:").replace("(?:?:", "(?:"))


def test_integer_ranges_hold_exactly_the_numbers_inside() -> None:
    for lo, hi in [(1, 5), (0, 0), (-5, 5), (10, 123), (-123, -10), (7, 1000), (99, 101)]:
        spelled = as_regex(integer_range(lo, hi) or "")
        for v in range(-1200, 1200):
            assert bool(spelled.fullmatch(str(v))) == (lo <= v <= hi), (lo, hi, v)
    assert integer_range(3, 2) is None
    assert as_regex(integer_range(None, 3) or "").fullmatch("-9999999999999999")


def _inside(v: Decimal, lo: str | None, lx: bool, hi: str | None, hx: bool) -> bool:
    above = lo is None or (v > Decimal(lo) if lx else v >= Decimal(lo))
    return above and (hi is None or (v < Decimal(hi) if hx else v <= Decimal(hi)))


@pytest.mark.parametrize(
    ("lo", "lx", "hi", "hx"),
    [
        ("0", False, "1", False),
        ("0.5", False, "2.5", False),
        ("0.5", True, "2.5", True),
        ("-1.25", False, "0.75", True),
        ("-3", True, "-1.5", False),
        ("0", True, None, False),
        (None, False, "0", True),
        ("0.1", False, "0.15", False),
        ("12.34", True, "13", False),
    ],
)
def test_number_ranges_hold_exactly_the_decimals_inside(
    lo: str | None, lx: bool, hi: str | None, hx: bool
) -> None:
    bounds = (Decimal(lo) if lo else None, lx, Decimal(hi) if hi else None, hx)
    spelled = as_regex(number_range(*bounds) or "")
    for i in range(-4000, 4000, 7):
        for text in {f"{i / 1000:.3f}", f"{i / 100:.2f}", f"{i / 1000:.4f}".rstrip("0")}:
            text = text.rstrip(".")
            if text.startswith("-") and Decimal(text) == 0:
                continue  # "-0.0" is not spelled; "0.0" is
            want = _inside(Decimal(text), lo, lx, hi, hx)
            assert bool(spelled.fullmatch(text)) == want, (bounds, text)


PATTERNS: list[tuple[str, list[str], list[str]]] = [
    ("^[A-Z]{2}-\\d{3}$", ["AB-123"], ["AB-12", "ab-123", "AB-1234"]),
    ('^a"b\\\\c$', ['a"b\\c'], ["abc"]),
    ("^(cat|dog)s?$", ["cat", "dogs"], ["cow", "cats!"]),
    ("ab", ["ab", "xxabyy"], ["a b"]),  # unanchored, as JSON Schema searches
    ("^[^a-c]+$", ["xyz", "é\t"], ["xaz"]),
    ("^\\w+@\\w+\\.(?:com|org)$", ["me@x.org"], ["me@x.net"]),
    ("^.{2,3}$", ["ab", "a\u2028c"], ["a", "abcd"]),
]


def test_patterns_match_the_json_spelling_of_what_they_match() -> None:
    for pattern, good, bad in PATTERNS:
        spelled = as_regex(pattern_grammar(pattern))
        for text in good + bad:
            spelling = json.dumps(text, ensure_ascii=False)[1:-1]
            assert bool(spelled.fullmatch(spelling)) == (text in good), (pattern, text)


SCHEMAS: list[Any] = [
    {},
    {"type": "object"},
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"type": ["string", "null"], "format": "date-time"},
    {"type": "string", "format": "uuid", "nullable": True},
    {"type": "string", "format": "email"},  # an annotation: any string
    {
        "allOf": [{"$ref": "#/$defs/a"}, {"properties": {"b": {"type": "boolean"}}}],
        "$defs": {"a": {"type": "object", "properties": {"a": {"const": [1, "x"]}}}},
    },
    {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}},
    {"type": "number", "exclusiveMinimum": 0, "maximum": 1e-3},
    {"type": "integer", "minimum": 0, "maximum": 9007199254740991},
    {"anyOf": [{"type": "integer", "minimum": 5}, {"enum": ["a", None, 2.5]}]},
    {"oneOf": [{"type": "integer"}, {"type": ["string", "null"]}, {"enum": [True]}]},
    {  # a tagged union, as pydantic writes one
        "oneOf": [{"$ref": "#/$defs/cat"}, {"$ref": "#/$defs/dog"}],
        "$defs": {
            "cat": {
                "type": "object",
                "properties": {"kind": {"const": "cat"}},
                "required": ["kind"],
            },
            "dog": {
                "type": "object",
                "properties": {"kind": {"enum": ["dog"]}},
                "required": ["kind"],
            },
        },
    },
    {"type": "array", "items": {"type": "string", "pattern": "^x+$"}, "maxItems": 0},
    {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["c"]},
]


@pytest.fixture(scope="module")
def parses(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A check that llama.cpp's grammar parser takes a GBNF text (with a tiny model's vocab)."""
    path = write_llama_gguf(tmp_path_factory.mktemp("gguf") / "vocab.gguf")
    llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def check(text: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode(), b"root")
        if sampler:
            llama_cpp.llama_sampler_free(sampler)
        return bool(sampler)

    assert not check("root ::= nope [")  # the check can fail
    return check


@pytest.mark.parametrize("schema", SCHEMAS)
def test_llama_cpp_accepts_every_grammar(schema: Any, parses: Any) -> None:
    assert parses(schema_grammar(schema))


def test_llama_cpp_accepts_every_pattern_grammar(parses: Any) -> None:
    for pattern in PATTERNS:
        assert parses(schema_grammar({"type": "string", "pattern": pattern[0]})), pattern


def test_long_repetitions_keep_their_exact_counts() -> None:
    # llama.cpp reads {m,n} past 2000 as unbounded and refuses {m,} past 2000: long runs are
    # chained through rules, and must still mean exactly lo..hi.
    def inline(hint: str, body: str) -> str:
        return f"({body})"

    for lo, hi in [(0, 3 * CHUNK + 7), (CHUNK + 1, 2 * CHUNK), (2 * CHUNK, 2 * CHUNK), (7, None)]:
        spelled = as_regex(repeat('"a"', lo, hi, inline))
        for n in range(0, 3 * CHUNK + 20, 3):
            assert bool(spelled.fullmatch("a" * n)) == (lo <= n <= (hi or n)), (lo, hi, n)


LONG: list[Any] = [
    {"type": "string", "minLength": 2500, "maxLength": 5000},
    {"type": "string", "maxLength": 100000},
    {"type": "array", "items": {"type": "integer"}, "minItems": 2001, "maxItems": 3000},
    {"type": "string", "pattern": "^(a{0,100}b?){0,100}$"},
    {"type": "string", "pattern": "^\\d{3000}$"},
]


@pytest.mark.parametrize("schema", LONG)
def test_llama_cpp_takes_long_and_nested_repetitions(schema: Any, parses: Any) -> None:
    assert parses(schema_grammar(schema))


def test_a_forced_call_grammar_keeps_each_tool_s_refs_to_its_own_defs(parses: Any) -> None:
    own: Any = {
        "type": "object",
        "properties": {"x": {"$ref": "#/$defs/x"}},
        "$defs": {"x": {"type": "integer", "minimum": 1, "maximum": 3}},
    }
    other: Any = {"anyOf": [{"type": "object"}, {"type": "null"}]}  # a top-level rule of its own
    text = call_grammar({"f": own, "g": {"type": "object", "properties": {}}, "h": other})
    assert parses(text)
    assert '"{\\"name\\":\\"f\\",\\"arguments\\":"' in text and "[1-3]" in text
    assert text.count("root ::=") == 1 and '"{\\"name\\":\\"h\\"' in text.splitlines()[0]


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"$ref": "#/$defs/missing"}, "'#/$defs/missing'"),
        ({"$ref": "https://example.com/s.json"}, "not a local reference"),
        ({"type": "string", "not": {"const": "x"}}, "'not'"),
        ({"type": "integer", "multipleOf": 3}, "'multipleOf'"),
        ({"type": "array", "uniqueItems": True}, "'uniqueItems'"),
        ({"type": "string", "pattern": "^(?=a)b$"}, "lookaround"),
        ({"type": "string", "pattern": "^(a)\\1$"}, "'\\1'"),
        ({"type": "string", "pattern": "\\bword"}, "'\\b'"),
        ({"type": "integer", "minimum": 3, "maximum": 2.5}, "no integer"),
        ({"type": "string", "minLength": 4, "maxLength": 2}, "'maxLength'"),
        ({"type": "texts"}, "'texts'"),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, "'oneOf' branches may overlap"),
        ({"oneOf": [{"enum": [1, 2]}, {"const": 2.0}]}, "'oneOf' branches may overlap"),
        ({"type": "number", "minimum": float("nan")}, "'minimum' must be a finite number"),
        ({"type": "integer", "exclusiveMaximum": float("inf")}, "'exclusiveMaximum' must be"),
        ({"type": "integer", "maximum": "5"}, "'maximum' must be a number"),
    ],
)
def test_what_it_cannot_promise_is_a_400_naming_it(schema: Any, named: str) -> None:
    with pytest.raises(BadRequest) as err:
        schema_grammar(schema)
    assert named in err.value.message and err.value.param == "response_format"
