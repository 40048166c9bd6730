"""GBNF for JSON numbers inside bounds: whole numbers in [lo, hi] digit by digit, and
decimals between two bounds (inclusive or exclusive) without an exponent.

A bounded range is written as the digit strings that spell its members, so the sampler can
never leave the range: 1..5 is `[1-5]`, 10..123 is `"1" [0-9] | [2-9] [0-9] | "1" ...`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

MAX_DIGITS = 16  # integer digits of an unbounded side, as llama.cpp's own converter caps them
MAX_FRACTION = 15  # fraction digits a number may carry
CAP = 10**MAX_DIGITS - 1
ANY_TAIL = f"[0-9]{{0,{MAX_FRACTION}}}"


def alternatives(seqs: list[str]) -> str:
    """One GBNF expression matching any of `seqs` ("" is the empty sequence, and all empty
    gives "")."""
    body = [s for s in dict.fromkeys(seqs) if s]
    if not body:
        return ""
    if "" in seqs:
        return "(" + " | ".join(body) + ")?"
    return body[0] if len(body) == 1 else "(" + " | ".join(body) + ")"


def _digits(lo: int, hi: int) -> str:
    return f'"{lo}"' if lo == hi else f"[{lo}-{hi}]"


def _same_length(x: str, y: str) -> list[str]:
    """The digit strings of one length between x and y (inclusive), as alternatives."""
    if not x:
        return [""]
    if x[0] == y[0]:
        return [f'"{x[0]}" {alternatives(_same_length(x[1:], y[1:]))}'.strip()]
    n = len(x) - 1
    tail = f" [0-9]{{{n}}}" if n else ""
    seqs = []
    first, last = int(x[0]), int(y[0])
    if x[1:] != "0" * n:
        seqs.append(f'"{x[0]}" {alternatives(_same_length(x[1:], "9" * n))}')
        first += 1
    end = [] if y[1:] == "9" * n else [f'"{y[0]}" {alternatives(_same_length("0" * n, y[1:]))}']
    if end:
        last -= 1
    if first <= last:
        seqs.append(_digits(first, last) + tail)
    return seqs + end


def natural_range(lo: int, hi: int) -> list[str]:
    """Alternatives spelling each natural number in [lo, hi] (no leading zeros)."""
    seqs: list[str] = []
    for length in range(len(str(lo)), len(str(hi)) + 1):
        a = max(lo, 10 ** (length - 1) if length > 1 else 0)
        b = min(hi, 10**length - 1)
        if a <= b:
            seqs += _same_length(str(a), str(b))
    return seqs


def integer_range(lo: int | None, hi: int | None) -> str | None:
    """GBNF for the JSON integers in [lo, hi] (a missing side is capped at 16 digits), or
    None when the range is empty."""
    lo = -CAP if lo is None else lo
    hi = CAP if hi is None else hi
    if lo > hi:
        return None
    seqs = []
    if lo < 0:
        seqs.append('"-" ' + alternatives(natural_range(max(1, -hi), -lo)))
    if hi >= 0:
        seqs += natural_range(max(lo, 0), hi)
    return alternatives(seqs)


def _split(value: Decimal) -> tuple[int, str]:
    """The whole part and the fraction digits (no trailing zeros) of a non-negative decimal."""
    whole = int(value)
    fraction = format(value - whole, "f").partition(".")[2].rstrip("0")
    return whole, fraction


def _fraction(a: str, ax: bool, b: str | None, bx: bool) -> list[str]:
    """Digit strings F with 0.a <= 0.F <= 0.b (strict where ax / bx; no upper side when b is
    None), as alternatives; "" is no digits at all (the value 0)."""
    if not a and b is None:
        if ax:  # some digit must be non-zero
            return [f'"0"{{0,{MAX_FRACTION - 1}}} [1-9] {ANY_TAIL}']
        return ["", f"[0-9]{{1,{MAX_FRACTION}}}"]
    if b == "":  # the upper side is 0 itself: only zeros, when both sides allow 0
        return [] if a or ax or bx else ["", f'"0"{{1,{MAX_FRACTION}}}']
    seqs = ["" if not a and not ax else None]
    a0 = int(a[0]) if a else 0
    b0 = 10 if b is None else int(b[0])  # 10: no digit meets the upper side
    if a0 <= b0:
        tight_b = b is not None and a0 == b0
        rest = _fraction(a[1:], ax, b[1:] if tight_b and b else None, bx and tight_b)
        if rest:
            seqs.append(f'"{a0}" {alternatives(rest)}')
    if b is not None and a0 < b0:
        rest = _fraction("", False, b[1:], bx)
        if rest:
            seqs.append(f'"{b0}" {alternatives(rest)}')
    if a0 + 1 <= min(b0, 10) - 1:
        seqs.append(_digits(a0 + 1, min(b0, 10) - 1) + " " + ANY_TAIL)
    return [s for s in seqs if s is not None]


def _with_fraction(whole: str, fractions: list[str]) -> str | None:
    """`whole` followed by a fraction part from `fractions` (see _fraction), or None."""
    if not fractions:
        return None
    digits = [f for f in fractions if f]
    if not digits:
        return whole
    part = f'"." {alternatives(digits)}'
    return f"{whole} ({part})?" if "" in fractions else f"{whole} {part}"


def _magnitude(a: Decimal, ax: bool, b: Decimal, bx: bool) -> list[str]:
    """Non-negative decimals m with a < m < b (inclusive unless flagged), as alternatives."""
    ai, af = _split(a)
    bi, bf = _split(b)
    if ai == bi:
        one = _with_fraction(f'"{ai}"', _fraction(af, ax, bf, bx))
        return [one] if one else []
    seqs = [
        _with_fraction(f'"{ai}"', _fraction(af, ax, None, False)),
        _with_fraction(f'"{bi}"', _fraction("", False, bf, bx)),
    ]
    if ai + 1 <= bi - 1:
        middle = alternatives(natural_range(ai + 1, bi - 1))
        seqs.append(f'{middle} ("." [0-9]{{1,{MAX_FRACTION}}})?')
    return [s for s in seqs if s]


def number_range(
    lo: Decimal | None, lo_exclusive: bool, hi: Decimal | None, hi_exclusive: bool
) -> str | None:
    """GBNF for JSON numbers (no exponent) between the bounds, or None when none lie there."""
    lo = Decimal(-CAP) if lo is None else lo
    hi = Decimal(CAP) if hi is None else hi
    if lo > hi or (lo == hi and (lo_exclusive or hi_exclusive)):
        return None
    seqs = []
    if lo < 0:  # -m with m in (max(0, -hi), -lo]
        low, low_x = (-hi, hi_exclusive) if hi < 0 else (Decimal(0), True)
        negative = _magnitude(low, low_x, -lo, lo_exclusive)
        if negative:
            seqs.append('"-" ' + alternatives(negative))
    if hi >= 0:
        low, low_x = (lo, lo_exclusive) if lo >= 0 else (Decimal(0), False)
        seqs += _magnitude(low, low_x, hi, hi_exclusive)
    return alternatives(seqs) if seqs else None


def whole_bound(bound: Decimal | None, exclusive: bool, direction: int) -> int | None:
    """The nearest whole number inside a bound (direction 1: a lower bound, -1: an upper)."""
    if bound is None:
        return None
    whole = int(bound.to_integral_value("ROUND_CEILING" if direction > 0 else "ROUND_FLOOR"))
    return whole + direction if exclusive and whole == bound else whole


def read_bound(
    schema: Mapping[str, object], key: str, exclusive: str
) -> tuple[Decimal | None, bool]:
    """A schema's bound on one side and whether it is exclusive (draft 2020's number or draft
    4's flag); ValueError naming the keyword when it is not a finite number."""
    plain, strict = schema.get(key), schema.get(exclusive)
    numbers: dict[str, Decimal] = {}
    for name, value in ((key, plain), (exclusive, strict)):
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = Decimal(str(value))
            if not number.is_finite():  # Python's json reads NaN and Infinity
                raise ValueError(f"'{name}' must be a finite number")
            numbers[name] = number
        elif value is not None and not (name == exclusive and isinstance(value, bool)):
            raise ValueError(f"'{name}' must be a number")
    if exclusive in numbers:
        bound, other = numbers[exclusive], numbers.get(key)
        if other is not None and ((other > bound) if key == "minimum" else (other < bound)):
            return other, False  # both given: the tighter one wins
        return bound, True
    return numbers.get(key), strict is True
