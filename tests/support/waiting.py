"""Wait on a condition, never sleep then assert: `eventually` (async) and `eventually_sync`."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


def _name(predicate: Callable[[], Any]) -> str:
    """What the timeout message calls the predicate: its name, or its source line for a lambda."""
    name = getattr(predicate, "__qualname__", repr(predicate))
    if "<lambda>" in name:
        try:
            return inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            pass
    return name


async def eventually(
    predicate: Callable[[], Any],
    timeout: float = 30.0,  # noqa: ASYNC109 - a deadline for many polls, not one awaited call
    interval: float = 0.05,
) -> Any:
    """Poll `predicate` (sync, or returning an awaitable) until it is truthy; return that value.

    AssertionError naming the predicate and its last value when `timeout` seconds pass; an
    AssertionError the predicate raises itself (a state that can never turn good) goes through.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {_name(predicate)}; last value {value!r}"
            )
        await asyncio.sleep(interval)


def eventually_sync(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05
) -> Any:
    """`eventually` for code without an event loop (a test driving threads or processes)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {_name(predicate)}; last value {value!r}"
            )
        time.sleep(interval)
