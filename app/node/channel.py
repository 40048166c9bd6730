"""Items from an engine thread to one consumer on the event loop, with as few wake-ups as can be.

An `asyncio.Queue` fed through `call_soon_threadsafe` wakes the event loop once per token. On a
machine whose cores are all decoding, every wake-up preempts a llama.cpp thread, and the whole
decode step waits for it. A `Channel` wakes the loop only when its consumer is waiting, and the
consumer takes everything queued since in one go: one token per wake-up while the loop keeps
up, several when it falls behind (many streams), never a backlog of callbacks.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncGenerator
from typing import Generic, TypeVar

T = TypeVar("T")


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # the consumer may have been cancelled meanwhile
        waiter.set_result(None)


class Channel(Generic[T]):
    """A one-consumer queue from any thread to the event loop `loop`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T) -> None:
        """Queue `item` (any thread). RuntimeError when the consumer's loop is closed."""
        with self._lock:
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)

    async def take(self) -> list[T]:
        """Everything queued, in order; waits while nothing is."""
        while True:
            with self._lock:
                if self._items:
                    items = list(self._items)
                    self._items.clear()
                    return items
                waiter: asyncio.Future[None] = self._loop.create_future()
                self._waiter = waiter
            try:
                await waiter
            finally:
                with self._lock:
                    if self._waiter is waiter:
                        self._waiter = None


async def one_by_one(batches: AsyncGenerator[list[T], None]) -> AsyncGenerator[T, None]:
    """The items of `batches`, one at a time (closing `batches` when the consumer stops)."""
    try:
        async for batch in batches:
            for item in batch:
                yield item
    finally:
        await batches.aclose()
