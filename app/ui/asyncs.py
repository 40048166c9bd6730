"""Run coroutines from Qt slots on the shared qasync loop, with their failures reported."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from app.ui.client import ApiError

log = logging.getLogger(__name__)
_running: set[asyncio.Task[Any]] = set()
T = TypeVar("T")


def spawn(
    coro: Coroutine[Any, Any, T],
    on_error: Callable[[str], None] | None = None,
    on_done: Callable[[T], None] | None = None,
) -> asyncio.Task[T]:
    """Start `coro`; an ApiError (or a bug) reaches `on_error` as a readable sentence."""
    task = asyncio.ensure_future(coro)
    _running.add(task)

    def finished(t: asyncio.Task[T]) -> None:
        _running.discard(t)
        if t.cancelled():
            return
        exc = t.exception()
        if exc is None:
            if on_done is not None:
                on_done(t.result())
            return
        if isinstance(exc, ApiError):
            message = exc.message
        else:
            log.error("GUI task failed", exc_info=exc)
            message = f"something went wrong: {exc}"
        if on_error is not None:
            on_error(message)

    task.add_done_callback(finished)
    return task
