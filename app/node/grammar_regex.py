"""A JSON Schema `pattern` (a regular expression subset) as GBNF for the inside of a JSON
string: each matched character is written as JSON spells it (`"` as `\\"`, a tab as `\\t`),
so the text is a valid JSON string whose decoded value matches the pattern.

Supported: literals and escaped punctuation, `.`, classes `[...]` / `[^...]` with ranges,
`\\d \\w \\s \\D \\W \\S`, groups `(...)`, `(?:...)`, `(?P<n>...)`, `(?<n>...)`, alternation,
`* + ? {m} {m,} {m,n}` (lazy forms alike), `^` and `$` at the ends. Anything else (lookaround,
backreferences, `\\b`, `\\p{...}`, flags) raises UnsupportedPattern naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from app.node.grammar_text import ANY_CHAR, repeat

MAX_CODE = 0x10FFFF
_CLASSES = {
    "d": [(0x30, 0x39)],
    "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "s": [(0x09, 0x0D), (0x20, 0x20)],
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}
_QUOTED = {0x22, 0x5C} | set(range(0x20))  # what JSON must escape inside a string

FORMATS = {  # string formats the grammar spells; others are annotations
    "date": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
    "time": r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$",
    "date-time": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:"
    r"[0-5]\d(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$",
    "uuid": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}


class UnsupportedPattern(ValueError):
    """A pattern uses a regular expression feature the grammar cannot express."""


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for lo, hi in sorted(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = max(start, hi + 1)
    if start <= MAX_CODE:
        out.append((start, MAX_CODE))
    return out


def _code(cp: int) -> str:
    """A code point as a GBNF character-class member."""
    if chr(cp).isalnum() and cp < 0x80:
        return chr(cp)
    return f"\\x{cp:02X}" if cp < 0x100 else f"\\u{cp:04X}" if cp < 0x10000 else f"\\U{cp:08X}"


def _class(ranges: list[tuple[int, int]]) -> str:
    """GBNF for one decoded character from `ranges`, written as JSON writes it."""
    plain: list[str] = []
    quoted: list[str] = []
    for lo, hi in sorted(ranges):
        cp = lo
        while cp <= hi:  # split around what JSON escapes (few of those, so few splits)
            if cp in _QUOTED:
                quoted.append(json.dumps(json.dumps(chr(cp))[1:-1]))
                cp += 1
                continue
            end = min([hi] + [q - 1 for q in _QUOTED if q > cp])
            plain.append(_code(cp) if cp == end else f"{_code(cp)}-{_code(end)}")
            cp = end + 1
    seqs = (["[" + "".join(plain) + "]"] if plain else []) + quoted
    if not seqs:
        raise UnsupportedPattern("an empty character class")
    return seqs[0] if len(seqs) == 1 else "(" + " | ".join(seqs) + ")"


class _Parser:
    """A recursive-descent reader of one pattern into GBNF."""

    def __init__(self, pattern: str, add: Callable[[str, str], str]) -> None:
        self.add = add  # names a rule (repeated groups get their own, as llama.cpp needs)
        self.text = pattern
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def alternation(self, top: bool) -> str:
        seqs = [self.sequence(top)]
        while self.peek() == "|":
            self.pos += 1
            seqs.append(self.sequence(top))
        return seqs[0] if len(seqs) == 1 else "(" + " | ".join(s or '""' for s in seqs) + ")"

    def sequence(self, top: bool) -> str:
        parts: list[str] = []
        if top and self.peek() == "^":
            self.pos += 1
        elif top:  # JSON Schema searches: an unanchored start matches anything before
            parts.append(ANY_CHAR + "*")
        end_anchor = False
        while self.peek() not in ("", "|", ")"):
            if self.peek() == "$":
                self.pos += 1
                if not top or self.peek() not in ("", "|"):
                    raise UnsupportedPattern("'$' before the end of the pattern")
                end_anchor = True
                break
            atom = self.atom()
            parts.append(self.quantified(atom))
        if top and not end_anchor:
            parts.append(ANY_CHAR + "*")
        return " ".join(p for p in parts if p)

    def quantified(self, atom: str) -> str:
        ch = self.peek()
        if ch in ("*", "+", "?"):
            self.pos += 1
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[ch]
        elif ch == "{" and self.text[self.pos + 1 : self.pos + 2].isdigit():
            close = self.text.find("}", self.pos)
            body = self.text[self.pos + 1 : close] if close > 0 else ""
            first, comma, last = body.partition(",")
            if not first.isdigit() or not (last.isdigit() or not last):
                raise UnsupportedPattern(f"the repetition '{{{body}'")
            self.pos = close + 1
            lo, hi = int(first), int(last) if last else None if comma else int(first)
            if hi is not None and hi < lo:
                raise UnsupportedPattern(f"the repetition '{{{body}}}'")
        else:
            return atom
        if self.peek() == "?":  # lazy: the same set of strings
            self.pos += 1
        elif self.peek() == "+":
            raise UnsupportedPattern("possessive quantifiers")
        if any(op in atom for op in "{*+?"):  # llama.cpp counts a group's inner rules
            atom = self.add("group", atom)
        return repeat(f"({atom})", lo, hi, self.add)

    def atom(self) -> str:
        ch = self.take()
        if ch == "(":
            if self.peek() == "?":
                head = self.text[self.pos : self.pos + 3]
                if head.startswith("?:"):
                    self.pos += 2
                elif head.startswith(("?P<", "?<")) and head[2:3] not in ("=", "!"):
                    self.pos = self.text.index(">", self.pos) + 1
                else:
                    raise UnsupportedPattern(f"the group '({head}...' (lookaround or flags)")
            inner = self.alternation(top=False)
            if self.take() != ")":
                raise UnsupportedPattern("an unbalanced '('")
            return f"({inner})" if inner else '""'
        if ch == "[":
            return _class(self.char_class())
        if ch == ".":
            return _class(_complement([(0x0A, 0x0A)]))
        if ch == "\\":
            return _class(self.escape())
        if ch in ("*", "+", "?", "{", ")", "^", "$"):
            raise UnsupportedPattern(f"'{ch}' where a character was expected")
        return _class([(ord(ch), ord(ch))])

    def escape(self) -> list[tuple[int, int]]:
        ch = self.take()
        if ch.lower() in _CLASSES:
            ranges = _CLASSES[ch.lower()]
            return _complement(ranges) if ch.isupper() else ranges
        if ch in _ESCAPES:
            return [(ord(_ESCAPES[ch]),) * 2]
        if ch in ("x", "u"):
            width = 2 if ch == "x" else 4
            digits = self.text[self.pos : self.pos + width]
            self.pos += width
            try:
                return [(int(digits, 16),) * 2]
            except ValueError:
                raise UnsupportedPattern(f"the escape '\\{ch}{digits}'") from None
        if ch and not ch.isalnum():
            return [(ord(ch), ord(ch))]
        raise UnsupportedPattern(f"the escape '\\{ch}'")

    def char_class(self) -> list[tuple[int, int]]:
        negate = self.peek() == "^"
        if negate:
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            ch = self.take()
            if not ch:
                raise UnsupportedPattern("an unclosed '['")
            if ch == "]" and not first:
                break
            first = False
            if ch == "[" and self.peek() == ":":
                raise UnsupportedPattern("POSIX classes '[:...:]'")
            if ch == "\\":
                found = self.escape()
            else:
                found = [(ord(ch), ord(ch))]
            if self.peek() == "-" and self.text[self.pos + 1 : self.pos + 2] not in ("]", ""):
                if len(found) != 1 or found[0][0] != found[0][1]:
                    raise UnsupportedPattern("a range from a class escape")
                self.pos += 1
                end = self.take()
                top = self.escape() if end == "\\" else [(ord(end), ord(end))]
                if len(top) != 1 or top[0][0] != top[0][1] or top[0][0] < found[0][0]:
                    raise UnsupportedPattern("a reversed or odd character range")
                found = [(found[0][0], top[0][0])]
            ranges += found
        return _complement(ranges) if negate else ranges


def _inline(hint: str, body: str) -> str:
    return f"({body})"


def pattern_grammar(pattern: str, add: Callable[[str, str], str] = _inline) -> str:
    """GBNF for the characters between a JSON string's quotes that match `pattern` (searched,
    as JSON Schema does: unanchored sides match anything)."""
    parser = _Parser(pattern, add)
    body = parser.alternation(top=True)
    if parser.pos < len(pattern):
        raise UnsupportedPattern(f"an unbalanced ')' at {parser.pos}")
    return body or '""'
